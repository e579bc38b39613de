"""Fixtures of the explorer's tests: a small trained run, the app, and a real server on a free port.

The run is a LeNet-5 (modern) trained for two epochs on the first 12,000 MNIST images
(about 5 s, 96-97% on its 2,000 test images): enough to read a drawn digit. MNIST is found
the way ``striate train`` finds it ($STRIATE_DATA, ./data, ../shared/data beside the
checkout, ~/.cache/striate), whatever the current folder.
"""
from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest

from striate.explorer import create_app


def pytest_configure(config):
    # starlette's TestClient says it prefers another client package; httpx works all the same
    config.addinivalue_line("filterwarnings", "ignore:Using `httpx` with `starlette.testclient`")

RUN_ARGS = ["--limit", "12000", "--epochs", "2", "--quiet"]


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    from striate.cli import main
    from striate.data import MNIST, DatasetNotFoundError
    try:
        MNIST(train=False, download=False)
    except DatasetNotFoundError as exc:
        pytest.skip(f"MNIST is not on this machine: {str(exc).splitlines()[0]}")
    out = tmp_path_factory.mktemp("explorer") / "lenet5-modern-mnist"
    assert main(["train", "lenet5-modern", "--out", str(out)] + RUN_ARGS) == 0
    return out


@pytest.fixture(scope="session")
def app(trained_run):
    return create_app(trained_run)


@pytest.fixture(scope="session")
def client(app):
    from starlette.testclient import TestClient
    with TestClient(app) as c:
        yield c


def png_bytes(image: np.ndarray, format: str = "PNG") -> bytes:
    """A (H, W) uint8 or [0, 1] float array as the bytes of an image file."""
    from PIL import Image
    a = np.asarray(image)
    if a.dtype != np.uint8:
        a = np.clip(a * 255 + 0.5, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a, mode="L").save(buf, format=format)
    return buf.getvalue()


def drawn_one(size: int = 280) -> np.ndarray:
    """A white vertical stroke on black, as a person draws a 1 on the page's pad."""
    from PIL import Image, ImageDraw
    img = Image.new("L", (size, size), 0)
    ImageDraw.Draw(img).line([(size // 2, size // 7), (size // 2 + size // 40, 6 * size // 7)], fill=255,
                             width=size // 14)
    return np.asarray(img)


class Server:
    """uvicorn serving ``app`` on 127.0.0.1 and a free port, in a thread; ``stop()`` ends it."""

    def __init__(self, app):
        import socket

        import uvicorn
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="error", access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.sock.close()


@pytest.fixture(scope="module")
def server(app):
    s = Server(app)
    yield s
    s.stop()
