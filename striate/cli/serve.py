"""``striate serve``: the explorer, every layer of a trained run live in the browser.

    striate serve                             the newest finished run under ./runs
    striate serve runs/lenet5-modern-mnist    that run
    striate serve --port 0                    any free port (the address is printed)
"""
from __future__ import annotations

import ipaddress
import socket
import sys
from pathlib import Path

from .common import RAW, CLIError, add_threads_argument

__all__ = ["add_commands", "cmd_serve"]

LOCAL = "127.0.0.1"


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); port 0 takes a free one."""
    if not 0 <= port <= 65535:
        raise CLIError(f"--port must be in 0..65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise CLIError(f"--host {host}: cannot resolve it ({exc.strerror})") from None
    family = infos[0][0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(infos[0][4])
    except OSError as exc:
        sock.close()
        raise CLIError(f"cannot listen on {host}:{port}: {exc.strerror or exc}"
                       + (" (try another --port, or --port 0 for any free one)" if port else "")) from None
    sock.listen(128)
    return sock


def exposure_warning(host: str, address: str) -> str | None:
    """The warning printed when ``--host`` makes the page reachable from other machines (None if not)."""
    try:
        if ipaddress.ip_address(address.split("%")[0]).is_loopback:
            return None
    except ValueError:
        pass
    return (f"warning: listening on {host} ({address}), not {LOCAL}: the page is exposed to anyone who "
            f"can reach this machine")


def cmd_serve(args) -> int:
    import uvicorn

    from ..explorer import create_app, newest_finished_run
    from ..explorer.state import TRAIN_HINT

    if not 0 <= args.port <= 65535:
        raise CLIError(f"--port must be in 0..65535, got {args.port}")
    run: Path | None
    if args.path:
        run = Path(args.path)
        if not run.exists():
            raise CLIError(f"{run}: no such run folder or weights file")
    else:
        run = newest_finished_run(args.runs)
    app = create_app(run)                       # loads the run: a broken one fails here, before listening
    if run is None:
        print(f"no finished run under {args.runs}/: the page shows what needs no trained model "
              f"(convolution arithmetic, pooling, filters); train one with `{TRAIN_HINT}`")
    else:
        print(f"run: {run}")
    sock = _bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    warning = exposure_warning(args.host, host)
    if warning:
        print(warning, file=sys.stderr)
    shown = f"[{host}]" if ":" in host else host
    print(f"explorer at http://{shown}:{port}/  (Ctrl-C stops it)", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def add_commands(sub) -> None:
    """Register ``serve`` on the ``striate`` sub-command parser."""
    s = sub.add_parser(
        "serve", help="the explorer: every layer of a trained run, live in the browser", formatter_class=RAW,
        description="Serve the explorer: draw a digit and see every layer's output, click a unit to see its\n"
                    "arithmetic, try kernel sizes, strides and padding, hand-made filters on a photo, and the\n"
                    "run's training curves and confusion matrix. Everything is computed by striate, live.\n"
                    "Without RUN: the newest finished run under ./runs (or none: the page still works for\n"
                    "what needs no trained model).",
        epilog="examples:\n  striate serve\n  striate serve runs/lenet5-modern-mnist\n"
               "  striate serve --port 0                 (any free port)\n"
               "  striate serve --host 0.0.0.0           (other machines too: the page is then exposed)")
    s.add_argument("path", nargs="?", metavar="RUN", help="a run folder or its model.safetensors")
    s.add_argument("--host", default=LOCAL, help=f"address to listen on (default {LOCAL}: this machine only)")
    s.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    s.add_argument("--runs", default="runs", metavar="DIR", help="where to look for runs without RUN (default runs)")
    add_threads_argument(s)
    s.set_defaults(run=cmd_serve)
