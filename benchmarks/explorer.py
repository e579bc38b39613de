"""The explorer's overview: server time per POST /api/forward on LeNet-5 (modern).

    python benchmarks/explorer.py [RUN] [--rounds 200] [--threads 1]

Sends a drawn digit (a 280×280 PNG, as the page's pad sends it) through the app with
Starlette's TestClient, in process, and reports the median and the 25th–75th percentile of:

    server   what the handler reports as server_ms: decode the PNG, prepare the digit
             (mnist_style), the forward pass with every layer kept, the values as lists
    request  the whole request as the client sees it, JSON encoding included
    forward  the forward pass alone (Explorer.forward: preprocess, trace under the lock)

Without RUN, a lenet5-modern with freshly initialised weights is written to a temporary run
folder (the time does not depend on the weights). BLAS threads: 1, as ``striate serve``.
"""
from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from _common import ROOT, blas_info, cpu_model  # noqa: F401  (puts the checkout on sys.path)


def untrained_run(folder: Path) -> Path:
    import striate as st
    from striate.train.run import write_json
    model = st.models.get("lenet5-modern")
    config = {"model": model.config, "dataset": "mnist"}
    st.save(model, folder / "model.safetensors", metadata={"config": config})
    write_json(folder / "config.json", config)
    return folder


def drawn_digit() -> bytes:
    from PIL import Image, ImageDraw
    img = Image.new("L", (280, 280), 0)
    ImageDraw.Draw(img).line([(140, 40), (150, 120), (120, 240)], fill=255, width=20)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def summary(name: str, ms: list[float]) -> str:
    q = np.percentile(ms, [25, 50, 75])
    return f"{name:8s} median {q[1]:6.2f} ms   25th-75th percentile {q[0]:6.2f}-{q[2]:6.2f} ms   (n={len(ms)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", nargs="?", help="a run folder (default: an untrained lenet5-modern)")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import threadpoolctl
    warnings.filterwarnings("ignore", message="Using `httpx`")
    from starlette.testclient import TestClient

    from striate.data.images import decode_image
    from striate.explorer import create_app

    threadpoolctl.threadpool_limits(args.threads, user_api="blas")
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(args.run) if args.run else untrained_run(Path(tmp))
        app = create_app(run)
        explorer = app.state.explorer
        data = drawn_digit()
        server, request, forward = [], [], []
        with TestClient(app) as client:
            for _ in range(10):                                    # warm up
                client.post("/api/forward", content=data)
            digit = explorer.digit(decode_image(data))
            for _ in range(args.rounds):
                t = time.perf_counter()
                answer = client.post("/api/forward", content=data).json()
                request.append(1000 * (time.perf_counter() - t))
                server.append(answer["server_ms"])
                t = time.perf_counter()
                explorer.forward(digit)
                forward.append(1000 * (time.perf_counter() - t))
    print(f"{cpu_model()}; {blas_info()}")
    print(f"run: {run if args.run else 'untrained lenet5-modern'}; {args.rounds} requests of a 280×280 PNG")
    for name, ms in (("server", server), ("request", request), ("forward", forward)):
        print(summary(name, ms))
    print(f"server time under 50 ms: {statistics.median(server) < 50}")


if __name__ == "__main__":
    main()
