"""The explorer's JSON API: every number is striate's, and the arithmetic adds up."""
from __future__ import annotations

import numpy as np
import pytest

import striate as st
from striate import functional as F
from striate import nn
from striate.explorer import compute, create_app
from striate.models.lenet import C3_CONNECTIONS, PartialConv2d

from .conftest import drawn_one, png_bytes


@pytest.fixture(scope="module")
def one():
    return png_bytes(drawn_one())


def test_model_lists_every_layer_with_shape_and_parameters(client):
    m = client.get("/api/model").json()
    assert m["name"] == "lenet5-modern" and m["classes"] == [str(k) for k in range(10)]
    assert [(layer["name"], layer["type"], layer["output_shape"]) for layer in m["layers"]] == [
        ("c1", "Conv2d", [6, 28, 28]), ("s2", "MaxPool2d", [6, 14, 14]), ("c3", "Conv2d", [16, 10, 10]),
        ("s4", "MaxPool2d", [16, 5, 5]), ("f5", "Linear", [120]), ("f6", "Linear", [84]), ("output", "Linear", [10])]
    assert [layer["parameters"] for layer in m["layers"]] == [156, 0, 2416, 0, 48120, 10164, 850]
    assert sum(layer["parameters"] for layer in m["layers"]) == m["parameters"] == 61706
    assert [layer["activation"] for layer in m["layers"]][:4] == ["ReLU", "none", "ReLU", None]


@pytest.mark.parametrize("format", ["PNG", "JPEG"])
def test_forward_gives_the_probabilities_of_run_predict(client, trained_run, tmp_path, format):
    data = png_bytes(255 - drawn_one(), format)               # dark ink on white paper, as a photo
    path = tmp_path / f"digit.{format.lower()}"
    path.write_bytes(data)
    expected = st.load_run(trained_run).predict([str(path)])[0]
    answer = client.post("/api/forward", content=data).json()
    assert np.allclose(answer["probabilities"], expected, atol=2e-6)
    assert answer["predicted"] == int(np.argmax(expected)) and answer["class"] == str(int(np.argmax(expected)))
    shapes = [layer["output_shape"] for layer in client.get("/api/model").json()["layers"]]
    assert [layer["shape"] for layer in answer["layers"]] == shapes
    assert np.asarray(answer["layers"][0]["values"]).shape == (6, 28, 28)
    assert answer["input"]["shape"] == [28, 28] and answer["model_input"]["shape"] == [1, 32, 32]


def test_a_drawn_one_is_read_as_one(client, one):
    assert client.post("/api/forward", content=one).json()["class"] == "1"


@pytest.mark.parametrize("layer, channel, y, x", [("c1", 2, 10, 12), ("c1", 0, 0, 0), ("c1", 5, 27, 27),
                                                  ("c3", 7, 4, 6), ("c3", 15, 9, 0)])
def test_a_conv_unit_adds_up_to_the_value_forward_returns(client, one, layer, channel, y, x):
    u = client.post(f"/api/unit?layer={layer}&channel={channel}&y={y}&x={x}", content=one).json()
    layers = {entry["name"]: entry for entry in client.post("/api/forward", content=one).json()["layers"]}
    window, kernel, products = (np.asarray(u[k]) for k in ("window", "kernel", "products"))
    assert window.shape == kernel.shape == products.shape == ((1 if layer == "c1" else 6), 5, 5)
    assert np.allclose(window * kernel, products, atol=2e-6)
    assert u["sum"] == pytest.approx(products.sum(), abs=1e-4)
    assert u["sum"] + u["bias"] == pytest.approx(u["value"], abs=1e-4)
    assert u["value"] == pytest.approx(layers[layer]["values"][channel][y][x], abs=1e-6)
    assert u["activation"] == "ReLU" and u["after_activation"] == pytest.approx(max(u["value"], 0.0), abs=1e-6)
    # the window is the input the layer received, at rows y·s − p + i
    inp = np.asarray(u["input"])
    assert np.allclose(window, inp[:, y:y + 5, x:x + 5], atol=1e-6)
    assert u["rows"] == list(range(y, y + 5)) and u["stride"] == [1, 1] and u["padding"] == [0, 0, 0, 0]


def test_a_pooling_unit_shows_the_five_poolings_of_its_window(client, one):
    u = client.post("/api/unit?layer=s2&channel=3&y=6&x=7", content=one).json()
    window = np.asarray(u["window"])
    assert window.shape == (2, 2) and u["pool"] == "max"
    r = u["results"]
    assert r["max"] == pytest.approx(window.max(), abs=1e-6) == pytest.approx(u["value"], abs=1e-6)
    assert r["min"] == pytest.approx(window.min(), abs=1e-6)
    assert r["sum"] == pytest.approx(window.sum(), abs=1e-5)
    assert r["average"] == pytest.approx(window.mean(), abs=1e-5)
    assert r["L2"] == pytest.approx(np.sqrt((window.astype(np.float64) ** 2).sum()), abs=1e-5)
    layers = {layer["name"]: layer for layer in client.post("/api/forward", content=one).json()["layers"]}
    assert u["value"] == pytest.approx(layers["s2"]["values"][3][6][7], abs=1e-6)


def test_the_textbook_conv_agrees_with_a_unit_on_a_padded_strided_layer():
    """Padding and stride: a window hanging over the border reads zeros, and still adds up."""
    rng = np.random.default_rng(1)
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1, rng=rng)
    x = rng.standard_normal((1, 2, 7, 8)).astype(np.float32)
    traces, out = compute.trace(conv, x)
    u = compute.conv_unit(traces, 0, 1, 0, 3)
    assert u["rows"] == [-1, 0, 1] and u["cols"] == [5, 6, 7] and u["padded"][0] == [True] * 3
    assert np.asarray(u["window"])[:, 0].tolist() == [[0, 0, 0], [0, 0, 0]]
    assert u["sum"] + u["bias"] == pytest.approx(float(out[0, 1, 0, 3]), abs=1e-5)
    assert u["activation"] is None


@pytest.mark.parametrize("query, message", [
    ("layer=nope&channel=0&y=0&x=0", "no layer 'nope'"),
    ("layer=c1&channel=6&y=0&x=0", "channel must be in 0..5"),
    ("layer=c1&channel=0&y=28&x=0", "y must be in 0..27"),
    ("layer=c3&channel=0&y=0&x=-1", "x must be in 0..9"),
    ("layer=f5&channel=0&y=0&x=0", "Linear"),
    ("layer=c1&channel=0&y=0", "missing query parameter 'x'"),
    ("layer=c1&channel=zero&y=0&x=0", "must be an integer"),
])
def test_a_unit_out_of_range_is_a_400_that_says_why(client, one, query, message):
    r = client.post(f"/api/unit?{query}", content=one)
    assert r.status_code == 400 and message in r.json()["error"]


@pytest.mark.parametrize("size, kernel, stride, padding, dilation", [
    (7, 3, 1, 0, 1), (7, 3, 2, 1, 1), (32, 5, 1, 0, 1), (28, 5, 3, 2, 2), (9, 2, 2, 0, 1), (5, 5, 1, 2, 1)])
def test_the_playground_gives_the_formula_and_striates_outputs(client, size, kernel, stride, padding, dilation):
    p = client.get(f"/api/playground?size={size}&kernel={kernel}&stride={stride}&padding={padding}"
                   f"&dilation={dilation}").json()
    n = compute.output_size(size, kernel, stride, padding, dilation)
    assert p["output"] == [n, n] and np.asarray(p["conv"]).shape == (n, n)
    assert p["formula"].endswith(f"= ⌊{size + 2 * padding - dilation * (kernel - 1) - 1} / {stride}⌋ + 1")
    x, w = np.asarray(p["input"], np.float32)[None, None], np.asarray(p["weights"], np.float32)[None, None]
    assert np.allclose(p["conv"], F.conv2d(x, w, stride=stride, padding=padding, dilation=dilation).data[0, 0])
    if padding <= kernel // 2:
        assert np.allclose(p["pools"]["max"], F.max_pool2d(x, kernel, stride, padding, dilation).data[0, 0])


def test_the_playground_shows_striates_own_error_for_a_window_too_large(client):
    p = client.get("/api/playground?size=3&kernel=5").json()
    assert p["output"] is None and "larger than the padded input" in p["error"]
    r = client.get("/api/playground?size=300")
    assert r.status_code == 400 and "size must be in 1..32" in r.json()["error"]


def test_filters_on_a_sample_and_on_a_photo(client):
    names = [s["name"] for s in client.get("/api/samples").json()["samples"]]
    assert "grace-hopper" in names
    f = client.get("/api/filters?sample=grace-hopper").json()
    by_name = {x["name"]: x for x in f["filters"]}
    assert list(by_name) == st.filters.names()
    assert np.allclose(by_name["sobel-x"]["kernel"], st.filters.get_kernel("sobel-x"))
    assert by_name["sobel"]["kernel"] is None and by_name["sobel"]["combines"] == ["sobel-x", "sobel-y"]
    assert all(x["image"].startswith("data:image/png;base64,") for x in f["filters"])
    assert max(f["shape"]) == compute.FILTER_SIDE
    photo = client.post("/api/filters", content=png_bytes(drawn_one(64)))
    assert photo.status_code == 200 and photo.json()["shape"] == [64, 64]
    assert client.get("/api/filters?sample=nope").status_code == 400


def test_the_run_its_confusion_matrix_kernels_and_test_images(client, trained_run):
    r = client.get("/api/run").json()
    assert r["available"] and r["state"] == "finished" and len(r["metrics"]["epochs"]) == 2
    assert r["pictures"] == ["curves.png", "confusion.png"]
    c = client.get("/api/confusion").json()
    matrix = np.asarray(c["matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == c["count"] == 2000
    assert c["accuracy"] == pytest.approx(r["metrics"]["final_test_acc"], abs=1e-9)
    assert all(len(c["examples"][t][p]) == min(matrix[t, p], 40) for t in range(10) for p in range(10))
    k = client.get("/api/kernels").json()["kernels"]
    assert k["layer"] == "c1" and np.allclose(k["values"], st.load_run(trained_run).model.c1.weight.data, atol=1e-6)
    images = client.get("/api/test-images?count=5").json()["images"]
    assert len(images) == 5 and all(0 <= i["index"] < 2000 for i in images)
    png = client.get(f"/api/test-images/{images[0]['index']}.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert client.get("/api/test-images/2000.png").status_code == 400
    assert client.get("/run/curves.png").headers["content-type"] == "image/png"


def test_without_a_run_the_page_still_explains_convolution():
    from starlette.testclient import TestClient
    with TestClient(create_app(None)) as c:
        for url in ("/api/model", "/api/confusion", "/api/kernels"):
            r = c.get(url)
            assert r.status_code == 404 and r.json()["train"] == "striate train lenet5-modern"
        assert c.post("/api/forward", content=png_bytes(drawn_one())).status_code == 404
        assert c.get("/api/run").json() == {"available": False, "train": "striate train lenet5-modern"}
        assert c.get("/api/playground?size=7&kernel=3").json()["output"] == [5, 5]
        assert c.get("/api/filters?sample=grace-hopper").status_code == 200
        assert c.get("/").status_code == 200


def test_a_run_still_training_is_reloaded_when_its_weights_change(trained_run, tmp_path):
    """The page polls /api/run; a new checkpoint on disk is picked up by the next request."""
    import shutil

    from starlette.testclient import TestClient
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    with TestClient(create_app(run)) as c:
        before = c.get("/api/kernels").json()["kernels"]["values"]
        state = st.load(run / "model.safetensors")
        state["c1.weight"] = state["c1.weight"] * 2
        st.save(state, run / "model.safetensors", metadata={"config": st.load_run(run).config})
        after = c.get("/api/kernels").json()["kernels"]["values"]
        assert np.allclose(after, 2 * np.asarray(before), atol=1e-5)


def test_a_test_image_goes_in_as_it_is(client, trained_run):
    """?as_is=1: the page's test images reach the model unchanged, as run.predict takes the test set."""
    from striate.data import MNIST
    images = MNIST(train=False, download=False).images
    png = client.get("/api/test-images/7.png").content
    answer = client.post("/api/forward?as_is=1", content=png).json()
    assert np.allclose(answer["probabilities"], st.load_run(trained_run).predict(images[7:8])[0], atol=2e-6)
    assert np.allclose(answer["input"]["values"], images[7] / 255, atol=1e-6)
    u = client.post("/api/unit?layer=c3&channel=1&y=2&x=3&as_is=1", content=png).json()
    assert u["value"] == pytest.approx(answer["layers"][2]["values"][1][2][3], abs=1e-6)
    r = client.post("/api/forward?as_is=1", content=png_bytes(drawn_one()))
    assert r.status_code == 400 and "28×28" in r.json()["error"]


@pytest.mark.parametrize("name, mode", [("box-3", "clip"), ("gaussian", "clip"), ("sharpen", "clip"),
                                        ("emboss", "clip"), ("sobel-x", "signed"), ("laplacian-8", "signed"),
                                        ("line-45", "signed"), ("oblique", "stretch"), ("sobel", "stretch")])
def test_each_filter_is_shown_on_the_scale_that_suits_it(name, mode):
    kernel = None if name in st.filters.MAGNITUDES else st.filters.get_kernel(name)
    assert compute.display_mode(kernel) == mode


def grouped(rng):
    return nn.Conv2d(4, 6, 3, groups=2, rng=rng)                 # maps 3-5 read channels 2-3


def partly_connected(rng):
    return PartialConv2d(C3_CONNECTIONS, 5, rng=rng)             # LeNet-5's C3: map 6 reads 0-3


def strided_dilated(rng):
    return nn.Conv2d(6, 2, 5, stride=3, padding=2, dilation=2, rng=rng)


@pytest.mark.parametrize("make, channels, channel, reads", [
    (grouped, 4, 4, [2, 3]), (partly_connected, 6, 6, [0, 1, 2, 3]), (strided_dilated, 6, 1, [0, 1, 2, 3, 4, 5])])
def test_a_unit_of_a_grouped_or_partly_connected_conv_adds_up(make, channels, channel, reads):
    """A map reads its group's channels, or those of its connection table: only those are shown."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, channels, 14, 14)).astype(np.float32)
    traces, out = compute.trace(make(rng), x)
    u = compute.conv_unit(traces, 0, channel, 1, 2)
    assert u["channels"] == reads and np.asarray(u["window"]).shape[0] == len(reads)
    assert u["sum"] + u["bias"] == pytest.approx(float(out[0, channel, 1, 2]), abs=1e-5)


def test_the_confusion_matrix_is_compiled_and_the_live_forward_pass_is_not(trained_run, one, monkeypatch):
    """The confusion matrix needs only each test image's class: its batches run st.compile's plan
    (one plan for batches of 250), with the matrix an op-by-op pass gives. A drawn digit's forward
    pass shows every layer's output, so it runs op by op (a plan gives only the last)."""
    from striate.explorer.state import CONFUSION_BATCH, Explorer
    from tests.compile.helpers import record_plan_batches
    runs = record_plan_batches(monkeypatch)
    explorer = Explorer(trained_run)
    c = explorer.confusion()
    assert runs == [CONFUSION_BATCH] * (2000 // CONFUSION_BATCH)
    assert len(explorer.run._compiled.compiled.plans) == 1
    images, labels = explorer.test_set()
    eager = explorer.run.predict(images, compiled=False).argmax(axis=1)
    np.testing.assert_array_equal(c["matrix"], compute.confusion(eager, labels, 10, 40)["matrix"])
    runs.clear()
    from starlette.testclient import TestClient
    with TestClient(create_app(trained_run)) as client:
        r = client.post("/api/forward", content=one)
    assert r.status_code == 200 and len(r.json()["layers"]) == 7
    assert runs == []
