"""The explorer: every layer of a trained run, computed live by striate and shown in the browser.

    striate serve runs/lenet5-modern-mnist          # then open http://127.0.0.1:8000

``app.py`` holds the server (a few Starlette routes and the page's files), ``compute.py``
what the page shows (each layer's output, one unit's arithmetic, the playground, the
filters), ``state.py`` the run and the lock around its model; ``static/`` is the page:
plain HTML, CSS and one small JavaScript module per view, no build step.

>>> from striate.explorer import create_app
>>> app = create_app("runs/lenet5-modern-mnist")      # an ASGI app for uvicorn   # doctest: +SKIP
"""
from .app import MAX_BODY, MAX_PIXELS, create_app
from .state import Explorer, newest_finished_run

__all__ = ["create_app", "Explorer", "newest_finished_run", "MAX_BODY", "MAX_PIXELS"]
