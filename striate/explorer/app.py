"""The explorer's server: a handful of Starlette routes around :mod:`compute`, and the page's files.

    GET  /                          the page (static/index.html)
    GET  /static/...                the page's CSS and JavaScript, from this package only
    GET  /api/model                 the run's model: name, classes, layers (shapes, parameters)
    POST /api/forward               body: a PNG or JPEG → probabilities and every layer's output
                                    (?as_is=1: a 28×28 test image, not prepared again)
    POST /api/unit?layer=&channel=&y=&x=   body: the same image (and as_is) → one unit's arithmetic
    GET  /api/playground?size=&kernel=&stride=&padding=&dilation=   output size, conv and pools
    GET  /api/samples               the sample pictures on this machine
    GET  /api/filters?sample=NAME   the hand-made filters on a sample picture
    POST /api/filters               body: a photo → the same on it
    GET  /api/run                   the run's state and metrics.json (the page polls it)
    GET  /api/confusion             the test set's confusion matrix, with examples per cell
    GET  /api/kernels               the first convolution's kernels
    GET  /api/test-images?count=    a few test images (index, label)
    GET  /api/test-images/{i}.png   one test image
    GET  /run/curves.png, /run/confusion.png   the run's own pictures

Errors are data: ``{"error": "..."}`` with 400 (a request that cannot be answered: not an
image, an empty body, an image too large in pixels, a layer or unit out of range), 404 (no
trained run: ``"train"`` says how to make one), 413 (a body over :data:`MAX_BODY` bytes,
refused from its Content-Length or as soon as the stream passes the limit, never read whole).

The model is used under one lock (see :mod:`state`); decoding and JSON run in parallel,
at most :data:`DECODERS` decodes at a time so that memory stays bounded.
"""
from __future__ import annotations

import base64
import threading
import time
from pathlib import Path

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..data.images import ImageError, decode_image
from . import compute
from .state import TRAIN_HINT, Explorer, NoRun

__all__ = ["create_app", "MAX_BODY", "MAX_PIXELS", "STATIC"]

MAX_BODY = 5 * 1024 * 1024         # bytes of an uploaded image
MAX_PIXELS = 16_000_000            # pixels of an uploaded image (a 12-megapixel photo passes), from its header
DECODERS = 4                       # images decoded at once
STATIC = Path(__file__).resolve().parent / "static"
RUN_PICTURES = ("curves.png", "confusion.png")


class TooLarge(Exception):
    """A body over MAX_BODY bytes: answered with 413."""


# ---------------------------------------------------------------------------
# requests in, errors out


async def read_image_bytes(request: Request) -> bytes:
    """The request's body, at most MAX_BODY bytes: refused from the header, or while streaming."""
    length = request.headers.get("content-length")
    if length is not None:
        if not (length.isascii() and length.isdigit()):
            raise compute.Refused(f"Content-Length must be a number of bytes, got {length!r}")
        if int(length) > MAX_BODY:
            raise TooLarge(f"the body is {int(length):,} bytes; at most {MAX_BODY:,} are accepted")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > MAX_BODY:
            raise TooLarge(f"the body is over {MAX_BODY:,} bytes; at most {MAX_BODY:,} are accepted")
        chunks.append(chunk)
    if total == 0:
        raise compute.Refused("the body is empty: send the bytes of a PNG or JPEG image")
    return b"".join(chunks)


def int_param(request: Request, name: str, default: int | None = None) -> int:
    text = request.query_params.get(name)
    if text is None:
        if default is None:
            raise compute.Refused(f"missing query parameter {name!r} (an integer)")
        return default
    try:
        return int(text)
    except ValueError:
        raise compute.Refused(f"query parameter {name!r} must be an integer, got {text!r}") from None


def error(status: int, message: str, **extra) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


async def refused(request, exc):
    return error(400, str(exc))


async def too_large(request, exc):
    return error(413, str(exc))


async def no_run(request, exc):
    return error(404, str(exc), train=TRAIN_HINT)


async def http_error(request, exc: HTTPException):
    return error(exc.status_code, exc.detail or "not found")


async def server_error(request, exc):
    return error(500, f"the server failed on this request: {type(exc).__name__}: {exc}")


def png_data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


# ---------------------------------------------------------------------------
# the application


def create_app(run=None, static_dir=STATIC) -> Starlette:
    """The explorer for the run folder (or weights file) ``run``; None: the page without a model.

    ``static_dir`` is where the page's files are served from (the package's ``static/``).
    """
    explorer = Explorer(run)
    decoding = threading.BoundedSemaphore(DECODERS)
    static_dir = Path(static_dir)
    samples: dict[str, np.ndarray] = {}

    def decode(data: bytes, mode: str = "L") -> np.ndarray:
        with decoding:
            try:
                return decode_image(data, mode=mode, name="the uploaded image", max_pixels=MAX_PIXELS)
            except ImageError as exc:
                raise compute.Refused(str(exc)) from None

    def prepared(data: bytes, as_is: bool = False) -> np.ndarray:
        """The digit (28, 28) in [0, 1]: prepared as ``striate predict`` prepares a file, or, with
        ``as_is`` (the page's test images), taken as it is: then it must already be 28×28."""
        gray = decode(data)
        if as_is:
            size = tuple(explorer.require().image_size)
            if gray.shape != size:
                raise compute.Refused(f"as_is=1 takes an image of {size[0]}×{size[1]} pixels, white on black "
                                      f"(a test image), got {gray.shape[0]}×{gray.shape[1]}")
            return gray
        try:
            return explorer.digit(gray)
        except ImageError as exc:
            raise compute.Refused(f"the uploaded image: {exc}") from None

    def as_is(request) -> bool:
        return request.query_params.get("as_is", "0") not in ("0", "", "false")

    # -- the page -------------------------------------------------------------
    async def index(request):
        return FileResponse(static_dir / "index.html", media_type="text/html")

    async def run_picture(request):
        name = request.path_params["name"]
        if name not in RUN_PICTURES or explorer.run is None or not (explorer.folder / name).is_file():
            return error(404, f"no run picture {name!r}")
        return FileResponse(explorer.folder / name, media_type="image/png")

    # -- the model ----------------------------------------------------------
    async def model(request):
        return JSONResponse(await run_in_threadpool(explorer.model_json))

    async def forward(request):
        data = await read_image_bytes(request)
        raw = as_is(request)

        def work():
            start = time.perf_counter()
            digit = prepared(data, raw)
            traces, probs, x = explorer.forward(digit)
            answer = {"probabilities": compute.rounded(probs), "predicted": int(np.argmax(probs)),
                      "class": explorer.run.classes[int(np.argmax(probs))],
                      "input": {"shape": list(digit.shape), "values": compute.rounded(digit)},
                      "model_input": {"shape": list(x.shape), "values": compute.rounded(x)},
                      "layers": [compute.layer_json(t) for t in traces]}
            answer["server_ms"] = round(1000 * (time.perf_counter() - start), 3)
            return answer
        return JSONResponse(await run_in_threadpool(work))

    async def unit(request):
        data = await read_image_bytes(request)
        name = request.query_params.get("layer")
        if not name:
            raise compute.Refused("missing query parameter 'layer' (a layer's name, from /api/model)")
        channel, y, x = (int_param(request, k) for k in ("channel", "y", "x"))
        raw = as_is(request)

        def work():
            traces, _, _ = explorer.forward(prepared(data, raw))
            i = explorer.layer_index(traces, name)
            module = traces[i].module
            if compute.is_conv(module):
                return compute.conv_unit(traces, i, channel, y, x)
            if compute.is_pool(module):
                return compute.pool_unit(traces, i, channel, y, x)
            raise compute.Refused(f"layer {name} is a {type(module).__name__}: the arithmetic is shown for "
                                  f"convolution and pooling layers")
        return JSONResponse(await run_in_threadpool(work))

    # -- what needs no model ----------------------------------------------------
    async def playground(request):
        args = {k: int_param(request, k, d) for k, d in
                (("size", 7), ("kernel", 3), ("stride", 1), ("padding", 0), ("dilation", 1))}
        return JSONResponse(await run_in_threadpool(compute.playground, **args))

    async def sample_list(request):
        from ..data.samples import SAMPLES, sample_names
        return JSONResponse({"samples": [{"name": n, "title": SAMPLES[n][2]} for n in sample_names()]})

    def filtered(gray: np.ndarray) -> dict:
        gray = compute.shrink(gray)
        bank = compute.filter_bank(gray)
        for f in bank:
            f["image"] = png_data_url(compute.to_png(f.pop("output"), compute.display_mode(f["kernel"])))
        return {"image": png_data_url(compute.to_png(gray)), "shape": list(gray.shape),
                "filters": bank}

    async def filters_of_sample(request):
        from ..data.images import to_grayscale
        from ..data.samples import load_sample, sample_names
        name = request.query_params.get("sample", "grace-hopper")
        if name not in sample_names():
            raise compute.Refused(f"no sample {name!r}; there are: {', '.join(sample_names())}")

        def work():
            if name not in samples:
                samples[name] = compute.shrink(to_grayscale(load_sample(name)))
            return filtered(samples[name])
        return JSONResponse(await run_in_threadpool(work))

    async def filters_of_photo(request):
        data = await read_image_bytes(request)
        return JSONResponse(await run_in_threadpool(lambda: filtered(decode(data))))

    # -- the run ------------------------------------------------------------
    async def run_info(request):
        def work():
            if explorer.run is None:
                return {"available": False, "train": TRAIN_HINT}
            info = explorer.model_json()
            return {"available": True, "name": info["name"], "title": info["title"], "state": info["state"],
                    "dataset": info["dataset"], "classes": info["classes"], "metrics": explorer.metrics(),
                    "pictures": [n for n in RUN_PICTURES if (explorer.folder / n).is_file()]}
        return JSONResponse(await run_in_threadpool(work))

    async def confusion(request):
        return JSONResponse(await run_in_threadpool(explorer.confusion))

    async def kernels(request):
        return JSONResponse(await run_in_threadpool(lambda: {"kernels": explorer.first_kernels()}))

    async def test_images(request):
        count = int_param(request, "count", 12)
        seed = int_param(request, "seed", 0)
        if not 1 <= count <= 100:
            raise compute.Refused(f"count must be in 1..100, got {count}")

        def work():
            test = explorer.test_set()
            if test is None:
                return {"available": False, "images": []}
            images, labels = test
            picks = np.random.default_rng(seed).choice(len(labels), size=min(count, len(labels)), replace=False)
            return {"available": True, "count": int(len(labels)),
                    "images": [{"index": int(i), "label": int(labels[i]),
                                "class": explorer.run.classes[int(labels[i])]} for i in picks]}
        return JSONResponse(await run_in_threadpool(work))

    async def test_image(request):
        index = request.path_params["index"]

        def work():
            test = explorer.test_set()
            if test is None:
                raise NoRun("the test set is not on this machine")
            images, _ = test
            if not 0 <= index < len(images):
                raise compute.Refused(f"test image index must be in 0..{len(images) - 1}, got {index}")
            return compute.to_png(images[index].astype(np.float32) / 255)
        return Response(await run_in_threadpool(work), media_type="image/png",
                        headers={"Cache-Control": "max-age=3600"})

    routes = [
        Route("/", index),
        Route("/api/model", model),
        Route("/api/forward", forward, methods=["POST"]),
        Route("/api/unit", unit, methods=["POST"]),
        Route("/api/playground", playground),
        Route("/api/samples", sample_list),
        Route("/api/filters", filters_of_sample, methods=["GET"]),
        Route("/api/filters", filters_of_photo, methods=["POST"]),
        Route("/api/run", run_info),
        Route("/api/confusion", confusion),
        Route("/api/kernels", kernels),
        Route("/api/test-images", test_images),
        Route("/api/test-images/{index:int}.png", test_image),
        Route("/run/{name}", run_picture),
        Mount("/static", app=StaticFiles(directory=static_dir), name="static"),
    ]
    handlers = {compute.Refused: refused, TooLarge: too_large, NoRun: no_run, HTTPException: http_error,
                Exception: server_error}
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.state.explorer = explorer
    return app
