"""The page in a real browser: Debian's Chromium driven by Playwright (sync API).

Elements are found by role, label, text or test id, and the tests wait on what a person
would see, never on sleeps. Each test's screenshots are kept in its tmp folder. A missing
browser skips these tests on a workstation and fails them in CI (when $CI is set).
"""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import urllib.request

import numpy as np
import pytest

import striate as st
from striate.explorer import create_app

from .conftest import Server

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
WAIT_MS = 30_000


def _missing(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required in CI: apt-get install chromium; pip install playwright)")
    pytest.skip(f"{reason}; install Debian's chromium and the playwright package to run the browser tests")


def _chromium() -> str:
    for candidate in (os.environ.get("STRIATE_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.path.exists(candidate):
            return candidate
    _missing("Chromium was not found (/usr/bin/chromium, or $STRIATE_CHROMIUM)")


@pytest.fixture(scope="module")
def playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed")
    executable = _chromium()
    with sync_playwright() as p:
        yield p, executable


@pytest.fixture(scope="module")
def browser(playwright):
    p, executable = playwright
    b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
    yield b
    b.close()


class Page:
    """A fresh browser context and page that records console errors and uncaught exceptions."""

    def __init__(self, browser, url, viewport, **options):
        self.context = browser.new_context(viewport=viewport, **options)
        self.page = self.context.new_page()
        self.errors = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url)

    def close(self):
        self.context.close()


@pytest.fixture
def open_page(browser, tmp_path):
    opened = []

    def start(url, viewport=DESKTOP, **options):
        p = Page(browser, url, viewport, **options)
        opened.append(p)
        return p.page
    yield start
    for p in opened:
        p.page.screenshot(path=tmp_path / "last.png")
        errors = p.errors
        p.close()
        assert errors == [], f"console errors: {errors}"


@pytest.fixture(scope="module")
def served(trained_run):
    s = Server(create_app(trained_run))
    yield s
    s.stop()


def expect(locator):
    from playwright.sync_api import expect as _expect
    return _expect(locator)


def ready(page):
    """The first test image has gone through the model: the prediction is on screen."""
    expect(page.get_by_test_id("predicted")).not_to_have_text("–", timeout=WAIT_MS)


def draw(page, points):
    """Drag the mouse through ``points`` (fractions of the pad's width and height)."""
    box = page.get_by_label("drawing pad: draw a digit here").bounding_box()
    at = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for x, y in at[1:]:
        page.mouse.move(x, y, steps=12)
    page.mouse.up()


def pad_png(page) -> bytes:
    url = page.get_by_label("drawing pad: draw a digit here").evaluate("c => c.toDataURL('image/png')")
    return base64.b64decode(url.split(",", 1)[1])


def post(url, body) -> dict:
    req = urllib.request.Request(url, data=body, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def number(text: str) -> float:
    return float(text.replace("−", "-"))


def test_drawing_a_one_shows_one(open_page, served, trained_run, tmp_path):
    page = open_page(served.url)
    ready(page)
    page.get_by_role("button", name="Clear").click()
    draw(page, [(0.5, 0.15), (0.52, 0.5), (0.53, 0.85)])
    expect(page.get_by_test_id("predicted")).to_have_text("1", timeout=WAIT_MS)
    page.screenshot(path=tmp_path / "drawn-one.png")
    # the class on screen is run.predict's for the very picture on the pad
    (tmp_path / "pad.png").write_bytes(pad_png(page))
    probs = st.load_run(trained_run).predict([str(tmp_path / "pad.png")])[0]
    assert str(int(np.argmax(probs))) == "1"
    expect(page.get_by_text(f"{100 * probs.max():.1f}%").first).to_be_visible()


def test_clicking_a_conv_unit_shows_arithmetic_that_adds_up(open_page, served, tmp_path):
    page = open_page(served.url)
    ready(page)
    page.get_by_label("c3 channel 4").click(position={"x": 30, "y": 40})
    heading = page.locator("#unit-body h3")
    expect(heading).to_have_text(re.compile(r"c3 · channel 4 · unit \(\d+, \d+\)"), timeout=WAIT_MS)
    y, x = map(int, re.search(r"\((\d+), (\d+)\)", heading.inner_text()).groups())
    total, bias, value = (number(page.get_by_test_id(k).inner_text()) for k in ("unit-sum", "unit-bias", "unit-value"))
    assert total + bias == pytest.approx(value, abs=2e-4)               # as shown, to 4 decimals
    after = number(page.get_by_test_id("unit-after").inner_text())
    assert after == pytest.approx(max(value, 0.0), abs=1e-4)            # ReLU
    # the API, asked about the same unit of the same test image, returns that value
    first = json.loads(urllib.request.urlopen(served.url + "/api/test-images?count=12&seed=0").read())["images"][0]
    png = urllib.request.urlopen(f"{served.url}/api/test-images/{first['index']}.png").read()
    api = post(f"{served.url}/api/unit?layer=c3&channel=4&y={y}&x={x}&as_is=1", png)
    assert value == pytest.approx(api["value"], abs=5e-5)
    assert total == pytest.approx(api["sum"], abs=5e-5) and bias == pytest.approx(api["bias"], abs=5e-5)
    products = page.locator("#unit-body table[aria-label^='products']")
    expect(products).to_have_count(6)                                   # c3 reads 6 input channels
    expect(page.get_by_text(re.compile(r"✓ the forward pass gave c3\[4,"))).to_be_visible()
    page.locator("#unit").screenshot(path=tmp_path / "unit.png")


def test_a_pooling_unit_shows_the_five_poolings(open_page, served):
    page = open_page(served.url)
    ready(page)
    page.get_by_label("s2 channel 1").click(position={"x": 35, "y": 35})
    expect(page.get_by_text("this layer")).to_be_visible(timeout=WAIT_MS)
    for name in ("max", "average", "sum", "min", "L2"):
        expect(page.locator(".pool-name", has_text=re.compile(f"^{name}$"))).to_have_count(1)
    value = number(page.get_by_test_id("unit-value").inner_text())
    card = page.locator(".pool-card.this .pool-value")
    assert number(card.inner_text()) == pytest.approx(value, abs=1e-4)


def test_the_playground_gives_the_output_size(open_page, served, tmp_path):
    page = open_page(served.url)
    size = page.get_by_test_id("pg-output-size")
    expect(size).to_have_text("4 × 4", timeout=WAIT_MS)                 # 7, kernel 3, stride 2, padding 1
    page.get_by_label("input size H").fill("28")
    page.get_by_label("kernel size k").fill("5")
    page.get_by_label("stride s").fill("1")
    page.get_by_label("padding p").fill("0")
    expect(size).to_have_text("24 × 24")
    page.get_by_label("stride s").fill("3")
    page.get_by_label("padding p").fill("2")
    page.get_by_label("dilation d").fill("2")
    expect(size).to_have_text("8 × 8")                                  # ⌊(28 + 4 − 8 − 1) / 3⌋ + 1 = 7 + 1
    expect(page.locator("#pg-formula")).to_contain_text("⌊(28 + 2·2 − 2·(5 − 1) − 1) / 3⌋ + 1")
    page.get_by_label("input size H").fill("3")
    page.get_by_label("padding p").fill("0")
    expect(page.locator("#pg-formula")).to_contain_text("larger than the padded input")
    page.locator("#playground").screenshot(path=tmp_path / "playground.png")


def test_the_run_curves_confusion_matrix_and_kernels(open_page, served, tmp_path):
    page = open_page(served.url)
    ready(page)
    expect(page.get_by_role("img", name="confusion matrix")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text(re.compile(r"test accuracy \d+\.\d\d%"))).to_be_visible()
    page.locator(".chart .dot.test").last.hover()
    expect(page.get_by_role("tooltip")).to_contain_text("epoch 2, test")
    cell = page.locator(".confusion g.clickable").first
    cell.click()
    expect(page.locator("#cell-examples h3")).to_contain_text("True 0, predicted 0")
    expect(page.locator("#cell-examples img").first).to_be_visible()
    expect(page.locator("#kernels canvas")).to_have_count(6)
    page.locator("#run").screenshot(path=tmp_path / "run.png")


def test_filters_on_a_sample_picture(open_page, served):
    page = open_page(served.url)
    expect(page.get_by_role("heading", name="sobel-x")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator(".filter img")).to_have_count(20)               # the picture and 19 filters


def swipe(page, points):
    """Draw with a finger: touch events through the browser's own input pipeline (which makes
    them pointer events, as on a phone), through ``points`` (fractions of the pad)."""
    box = page.get_by_label("drawing pad: draw a digit here").bounding_box()
    at = [{"x": box["x"] + fx * box["width"], "y": box["y"] + fy * box["height"]} for fx, fy in points]
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [at[0]]})
    for a, b in zip(at, at[1:]):
        for t in np.linspace(0, 1, 10)[1:]:
            point = {"x": a["x"] + t * (b["x"] - a["x"]), "y": a["y"] + t * (b["y"] - a["y"])}
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def test_the_page_fits_a_phone_and_a_finger_draws(open_page, served, tmp_path):
    page = open_page(served.url, PHONE, has_touch=True, is_mobile=True)
    ready(page)
    page.get_by_role("button", name="Clear").click()
    swipe(page, [(0.48, 0.15), (0.5, 0.5), (0.52, 0.85)])
    expect(page.get_by_test_id("predicted")).to_have_text("1", timeout=WAIT_MS)
    page.screenshot(path=tmp_path / "phone-drawn.png")
    page.get_by_label("c1 channel 0").click(position={"x": 20, "y": 20})
    expect(page.get_by_test_id("unit-value")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_role("img", name="confusion matrix")).to_be_visible(timeout=WAIT_MS)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=tmp_path / "phone.png", full_page=True)


@pytest.fixture
def bare_server():
    s = Server(create_app(None))
    yield s
    s.stop()


def test_without_a_run_the_page_says_how_to_train_one(open_page, bare_server, tmp_path):
    page = open_page(bare_server.url)
    expect(page.get_by_text("striate train lenet5-modern").first).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_test_id("pg-output-size")).to_have_text("4 × 4")
    expect(page.get_by_role("heading", name="sobel-x")).to_be_visible(timeout=WAIT_MS)
    page.screenshot(path=tmp_path / "no-run.png", full_page=True)


def test_an_uploaded_photo_is_read(open_page, served, tmp_path):
    from .conftest import drawn_one, png_bytes
    photo = tmp_path / "one.jpg"
    photo.write_bytes(png_bytes(255 - drawn_one(600), "JPEG"))       # dark ink on white paper
    page = open_page(served.url)
    ready(page)
    page.get_by_role("tab", name="Upload").click()
    page.locator("#upload").set_input_files(str(photo))
    expect(page.get_by_test_id("predicted")).to_have_text("1", timeout=WAIT_MS)


@pytest.fixture
def training(trained_run, tmp_path):
    """A copy of the run that looks as if it were still training: one epoch so far."""
    run = tmp_path / "training"
    shutil.copytree(trained_run, run)
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({"epochs": metrics["epochs"][:1], "finished": False}))
    s = Server(create_app(run))
    yield run, metrics, s
    s.stop()


def test_a_run_still_training_updates_live(open_page, training):
    run, metrics, server = training
    page = open_page(server.url)
    status = page.locator("#run-status")
    expect(status).to_contain_text("training…", timeout=WAIT_MS)
    expect(page.locator(".run-summary")).to_have_text("lenet5-modern on mnist · 1 epoch")
    expect(page.locator(".chart .dot.test")).to_have_count(2)          # one per chart
    (run / "metrics.json").write_text(json.dumps(metrics))              # the second epoch, and the end
    expect(status).to_contain_text("finished", timeout=WAIT_MS)
    expect(page.locator(".run-summary")).to_contain_text("· 2 epochs · test accuracy")
    expect(page.locator(".chart .dot.test")).to_have_count(4)


def test_a_missing_browser_fails_in_ci_and_skips_elsewhere(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="required in CI"):
        _missing("Chromium was not found")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="install Debian's chromium"):
        _missing("Chromium was not found")
