"""The server under abuse: huge bodies, non-images, image bombs, paths that try to leave the
package, and 32 requests at once. After each, it keeps serving."""
from __future__ import annotations

import http.client
import json
import shutil
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from striate.explorer import MAX_BODY, MAX_PIXELS, create_app
from striate.explorer.app import STATIC

from .conftest import Server, drawn_one, png_bytes


def request(server, method, path, body=None, headers=None):
    """One request sent as written (no client-side normalisation of ``..`` or %-escapes)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None and "Content-Length" not in (headers or {}):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        if body:
            conn.send(body)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def still_serving(server):
    status, body = request(server, "GET", "/api/model")
    assert status == 200 and json.loads(body)["name"] == "lenet5-modern"


def bomb(width=100_000, height=100_000) -> bytes:
    """A valid little PNG whose header declares width×height pixels (10 gigapixels by default)."""
    small = png_bytes(np.zeros((8, 8), np.uint8))
    ihdr = small.index(b"IHDR")
    fields = struct.pack(">II", width, height) + small[ihdr + 12:ihdr + 17]
    chunk = b"IHDR" + fields
    patched = small[:ihdr - 4] + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return patched + small[ihdr + 4 + 13 + 4:]


def test_a_body_over_the_limit_is_refused_from_its_header_without_being_read(server):
    """413 after the headers alone: the client sends 1 KB of the 6 MB it announced."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.putrequest("POST", "/api/forward")
        conn.putheader("Content-Length", str(MAX_BODY + 1_000_000))
        conn.putheader("Content-Type", "image/png")
        conn.endheaders()
        conn.send(b"\x89PNG" + b"\0" * 1020)
        r = conn.getresponse()
        assert r.status == 413 and "at most 5,242,880" in json.loads(r.read())["error"]
    finally:
        conn.close()
    still_serving(server)


def test_a_streamed_body_over_the_limit_is_cut_off(server):
    """No Content-Length (chunked): 413 as soon as the stream passes the limit. The client
    offers 100 MB and sends 7; the answer is there without the rest."""
    import socket
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"POST /api/forward HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"\0" * 1_000_000
        try:
            for _ in range(7):
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass                                    # the server may close before taking them all
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert b"over 5,242,880 bytes" in body
    still_serving(server)


def test_a_body_of_exactly_the_limit_is_read(client):
    data = png_bytes(drawn_one())
    padded = data + b"\0" * (MAX_BODY - len(data))   # PNG readers ignore what follows IEND
    assert client.post("/api/forward", content=padded).status_code == 200


@pytest.mark.parametrize("body, message", [
    (b"", "the body is empty"),
    (b"this is not an image at all", "not a readable image"),
    (b"%PDF-1.4 fake", "not a readable image"),
    (png_bytes(drawn_one())[:60], "damaged or truncated"),
    (png_bytes(np.zeros((28, 28), np.uint8)), "no digit found"),
])
def test_a_body_that_is_no_usable_image_is_a_400(server, body, message):
    for path in ("/api/forward", "/api/unit?layer=c1&channel=0&y=0&x=0", "/api/filters"):
        status, answer = request(server, "POST", path, body)
        if path == "/api/filters" and message == "no digit found":
            assert status == 200                    # a black photo is a fine photo to filter
            continue
        assert status == 400, (path, answer)
        assert message in json.loads(answer)["error"]
    still_serving(server)


@pytest.mark.parametrize("size", [(100_000, 100_000), (5_000, 4_000), (1, 20_000_000)])
def test_an_image_bomb_is_refused_from_its_header(server, size):
    data = bomb(*size)
    assert len(data) < 200                          # a tiny file declaring millions of pixels
    status, answer = request(server, "POST", "/api/forward", data)
    assert status == 400
    assert f"at most {MAX_PIXELS:,} pixels" in json.loads(answer)["error"].replace(" are accepted", " pixels")
    still_serving(server)


SECRET = "the contents of a file outside the package"


@pytest.fixture(scope="module")
def planted(tmp_path_factory, trained_run):
    """A copy of the static folder holding a symlink to a file outside it, and a server on it."""
    root = tmp_path_factory.mktemp("planted")
    (root / "secret.txt").write_text(SECRET)
    static = root / "static"
    shutil.copytree(STATIC, static)
    (static / "leak.txt").symlink_to(root / "secret.txt")
    (static / "js" / "leak-dir").symlink_to(root, target_is_directory=True)
    (trained_run / "notes.txt").write_text(SECRET)
    server = Server(create_app(trained_run, static_dir=static))
    yield server
    server.stop()
    (trained_run / "notes.txt").unlink()


@pytest.mark.parametrize("path", [
    "/static/../pyproject.toml", "/static/%2e%2e/app.py", "/static/%2E%2E/%2E%2E/explorer/app.py",
    "/static/..%2fapp.py", "/static/..%2F..%2Fsecret.txt", "/static/js/..%2f..%2fsecret.txt",
    "/static/%2e%2e%2fsecret.txt", "/static//etc/passwd", "/static/%2fetc%2fpasswd", "/static/etc/passwd",
    "/static/leak.txt", "/static/js/leak-dir/secret.txt", "/static/./../secret.txt",
    "/run/config.json", "/run/metrics.json", "/run/model.safetensors", "/run/notes.txt",
    "/run/..%2fsecret.txt", "/run/%2e%2e%2fsecret.txt", "/run/../static/index.html", "/run//etc/passwd",
    "/api/test-images/..%2f..%2fsecret.txt.png", "/api/test-images/-1.png", "//etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd", "/secret.txt", "/static/index.html%00.txt",
])
def test_nothing_outside_the_page_and_the_run_pictures_is_served(planted, path):
    status, body = request(planted, "GET", path)
    assert status in (400, 404), (path, status)
    assert SECRET.encode() not in body and b"root:" not in body and b"[project]" not in body
    still_serving(planted)


def test_the_page_and_the_run_pictures_are_served(planted):
    assert request(planted, "GET", "/")[0] == 200
    assert request(planted, "GET", "/static/js/main.js")[0] == 200
    status, body = request(planted, "GET", "/run/curves.png")
    assert status == 200 and body.startswith(b"\x89PNG")


def test_requests_read_and_write_no_other_file(server, trained_run, tmp_path, monkeypatch):
    """The run folder and the current folder are as they were after every kind of request."""
    monkeypatch.chdir(tmp_path)

    def snapshot():
        return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in trained_run.iterdir()}

    before = snapshot()
    one = png_bytes(drawn_one())
    for method, path, body in [("POST", "/api/forward", one), ("POST", "/api/unit?layer=s4&channel=3&y=1&x=1", one),
                               ("GET", "/api/playground?size=9&kernel=3", None), ("GET", "/api/run", None),
                               ("GET", "/api/confusion", None), ("POST", "/api/filters", one),
                               ("GET", "/api/filters?sample=mri", None), ("GET", "/api/test-images/3.png", None)]:
        assert request(server, method, path, body)[0] == 200, path
    assert snapshot() == before and list(tmp_path.iterdir()) == []


def test_32_concurrent_requests_are_all_answered_with_the_same_numbers(server):
    """The model is used under one lock: 32 forward passes at once all succeed and agree."""
    images = [png_bytes(drawn_one()), png_bytes(255 - drawn_one(), "JPEG")]
    expected = [json.loads(request(server, "POST", "/api/forward", im)[1]) for im in images]

    def one(i):
        kind = i % 3
        if kind == 2:
            return i, request(server, "POST", "/api/unit?layer=c3&channel=4&y=5&x=5", images[0])
        return i, request(server, "POST", "/api/forward", images[kind])

    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(one, range(32)))
    unit = json.loads(request(server, "POST", "/api/unit?layer=c3&channel=4&y=5&x=5", images[0])[1])
    for i, (status, body) in answers:
        assert status == 200
        got = json.loads(body)
        if i % 3 == 2:
            assert got["value"] == unit["value"] and got["sum"] == unit["sum"]
        else:
            assert got["probabilities"] == expected[i % 3]["probabilities"]
            assert got["layers"] == expected[i % 3]["layers"]
    still_serving(server)


def test_the_model_is_not_safe_without_the_lock(trained_run):
    """Why the lock is there: two forward passes interleaved on one model record each other's
    layers (the hooks are the model's own state), so the lock is not optional."""
    from striate import load_run
    from striate.explorer import compute
    run = load_run(trained_run)
    x = run.preprocess(np.zeros((1, 28, 28), np.float32))
    names = {id(m): n for n, m in run.model.named_modules()}
    started = []

    def intruder(module, inputs, output):        # a second request's forward starting mid-way
        if names.get(id(module)) == "c3" and not started:
            started.append(True)
            compute.trace(run.model, x)

    handle = run.model.c3.register_forward_hook(intruder)
    try:
        traces, _ = compute.trace(run.model, x)
    finally:
        handle.remove()
    assert len(traces) != 7                        # the outer pass saw the inner pass's layers too
