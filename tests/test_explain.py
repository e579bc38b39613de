"""Step-by-step explanations: their numbers against PyTorch, and each topic end to end on the command line."""

import numpy as np
import pytest
import torch
import torch.nn.functional as tF
from PIL import Image

from striate import cli, filters
from striate.explain import DIGIT_ZERO, POOL_INPUT, explain, explain_conv, explain_pool, format_matrix

torch.set_num_threads(1)


def run_cli(argv) -> int:
    """``striate ARGV`` in-process; returns the exit code."""
    return cli.main(argv)


def t(a):
    return torch.tensor(np.asarray(a, dtype=np.float64))


# ---------------------------------------------------------------------------
# conv


def test_conv_default_is_the_chapters_example():
    e = explain("conv")
    a = e.arrays
    assert np.array_equal(a["input"], DIGIT_ZERO)
    assert np.array_equal(a["kernel"], filters.KERNELS["oblique"])
    assert a["feature_map"].tolist() == [[3, 0, 1], [0, 2, 0], [1, 0, 3]]
    assert a["pooled"].ravel().tolist() == [3, 2, 2, 3]            # the chapter's (3, 2, 2, 3)
    assert "encoded as (3, 2, 2, 3)" in e.text and "only the 9 weights" in e.text
    assert "OH = ⌊(5 + 2·0 − 3) / 1⌋ + 1 = ⌊2/1⌋ + 1 = 3" in e.text
    assert "cross-correlation" in e.text
    assert e.text.count("\nstep ") == 9


@pytest.mark.parametrize("trial", range(8))
def test_conv_steps_match_torch(rng, trial):
    H, W = rng.integers(3, 8, size=2)
    kh, kw = rng.integers(1, 4, size=2)
    stride = tuple(int(s) for s in rng.integers(1, 4, size=2))
    padding = tuple(int(p) for p in rng.integers(0, 3, size=2))
    if kh > H + 2 * padding[0] or kw > W + 2 * padding[1]:
        padding = (kh, kw)
    image = np.round(rng.uniform(-1, 1, (H, W)), 2)
    kernel = np.round(rng.uniform(-2, 2, (kh, kw)), 1)
    e = explain_conv(image, kernel, stride=stride, padding=padding, pool=2, pool_stride=1, flip=True)
    a = e.arrays
    ref = tF.conv2d(t(image)[None, None], t(kernel)[None, None], stride=stride, padding=padding)[0, 0].numpy()
    np.testing.assert_allclose(a["feature_map"], ref, atol=1e-12)
    np.testing.assert_allclose(a["sums"], ref, atol=1e-12)                           # the steps add up
    np.testing.assert_allclose(a["products"], a["windows"] * kernel, atol=0)
    turned = tF.conv2d(t(image)[None, None], t(kernel[::-1, ::-1].copy())[None, None], stride=stride,
                       padding=padding)[0, 0].numpy()
    np.testing.assert_allclose(a["convolution"], turned, atol=1e-12)
    if min(ref.shape) >= 2:
        np.testing.assert_allclose(a["pooled"], tF.max_pool2d(t(ref)[None, None], 2, 1)[0, 0].numpy())
    OH, OW = ref.shape
    assert f"⌊({H} + 2·{padding[0]} − {kh}) / {stride[0]}⌋" in e.text
    assert e.text.count("\nstep ") == OH * OW


def test_conv_flip_text():
    e = explain_conv(kernel="sobel-x", flip=True)
    assert "turned by 180° is its negative" in e.text
    np.testing.assert_array_equal(e.arrays["convolution"], -e.arrays["feature_map"])
    assert "the same turned by 180°" in explain_conv(flip=True).text          # the oblique kernel is symmetric


def test_conv_errors():
    with pytest.raises(ValueError, match="does not fit the padded image"):
        explain_conv(np.ones((2, 2)), "box-3")
    with pytest.raises(ValueError, match="2-D grayscale image"):
        explain_conv(np.ones((2, 2, 3)))
    with pytest.raises(ValueError, match="too many to read"):
        explain_conv(np.ones((20, 20)))


# ---------------------------------------------------------------------------
# pool


@pytest.mark.parametrize("x, k, s", [(None, 2, None), ("random", 3, 1), ("random", 2, 1), ("random", 3, 2)])
def test_pool_values_and_gradients_match_torch(rng, x, k, s):
    x = POOL_INPUT if x is None else np.round(rng.uniform(-3, 3, (5, 6)), 1)
    e = explain_pool(x, k, s)
    stride = k if s is None else s
    refs = {"max": lambda v: tF.max_pool2d(v, k, stride),
            "avg": lambda v: tF.avg_pool2d(v, k, stride),
            "sum": lambda v: tF.avg_pool2d(v, k, stride) * (k * k),
            "min": lambda v: -tF.max_pool2d(-v, k, stride),
            "L2": lambda v: tF.lp_pool2d(v, 2, k, stride)}
    for name, ref in refs.items():
        v = t(x)[None, None].requires_grad_(True)
        out = ref(v)
        out.backward(torch.ones_like(out))
        np.testing.assert_allclose(e.arrays[name], out.detach()[0, 0].numpy(), atol=1e-12, err_msg=name)
        np.testing.assert_allclose(e.arrays[f"grad_{name}"], v.grad[0, 0].numpy(), atol=1e-12, err_msg=name)


def test_pool_default_numbers_in_text():
    e = explain("pool")
    assert "max 4   avg 2.5   sum 10   min 1   L2 √(1 + 9 + 16 + 4) = 5.477" in e.text
    assert e.arrays["max"].tolist() == [[4, 5], [2, 4]]


# ---------------------------------------------------------------------------
# channels, layers, dropout, batch norm


def test_channels_fusions_match_torch(rng):
    image = rng.uniform(0, 1, (9, 11, 3))
    e = explain("channels", image=image, size=11)
    a = e.arrays
    x = t(a["image"].transpose(2, 0, 1))[None]
    w = t(a["weight"])
    K, C = w.shape[:2]
    np.testing.assert_allclose(a["sum"], tF.conv2d(x, w).numpy(), atol=1e-12)
    per_channel = tF.conv2d(x, w.transpose(0, 1).reshape(K * C, 1, 3, 3), groups=C).numpy()   # c·K + k
    concat = per_channel.reshape(1, C, K, 9 - 2, 11 - 2).transpose(0, 2, 1, 3, 4).reshape(1, K * C, 7, 9)
    np.testing.assert_allclose(a["concat"], concat, atol=1e-12)
    np.testing.assert_allclose(a["product"][0], a["responses"].prod(axis=1), atol=1e-12)
    assert "shape (1, 2, 7, 9)" in e.text and "shape (1, 6, 7, 9)" in e.text


def test_layers_parameter_arithmetic():
    e = explain("layers")
    assert "(5·5·1 + 1)·6 = 156" in e.text and "(400 + 1)·120 = 48,120" in e.text
    assert "Total: 61,706 trainable parameters." in e.text
    assert "⌊(32 + 2·0 − 5)/1⌋ + 1 = 28" in e.text and "16·5·5 = 400" in e.text
    assert e.arrays["params"].sum() == 61_706
    paper = explain("layers", model="lenet5")
    assert "Total: 60,000 trainable parameters." in paper.text
    assert "60 connections·5·5 + 16 biases = 1,516" in paper.text
    assert "(1 coefficient + 1 bias)·6 = 12" in paper.text


def test_dropout_numbers():
    e = explain("dropout", p=0.25, shape=(3, 6), seed=4)
    a = e.arrays
    scale = 1 / 0.75
    np.testing.assert_allclose(a["scaled_mask"], a["mask"] * scale)
    np.testing.assert_allclose(a["output"], a["input"] * a["scaled_mask"])
    np.testing.assert_allclose(a["grad"], a["scaled_mask"])
    np.testing.assert_array_equal(a["eval_output"], a["input"])
    assert set(np.unique(a["mask"])) <= {0.0, 1.0}


def test_batchnorm_matches_torch():
    e = explain("batchnorm", seed=3, momentum=0.2)
    a = e.arrays
    rm, rv = torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    ref = tF.batch_norm(t(a["input"]), rm, rv, t(a["gamma"]), t(a["beta"]), training=True, momentum=0.2)
    np.testing.assert_allclose(a["output"], ref.numpy(), atol=1e-12)
    np.testing.assert_allclose(a["running_mean"], rm.numpy(), atol=1e-12)
    np.testing.assert_allclose(a["running_var"], rv.numpy(), atol=1e-12)
    assert "*before* the nonlinearity" in e.text


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_winograd_tile_equals_the_direct_sums_and_torch(seed):
    e = explain("winograd", seed=seed)
    a = e.arrays
    ref = tF.conv2d(t(a["tile"])[None, None], t(a["kernel"])[None, None])[0, 0].numpy()
    for name in ("direct", "winograd", "conv2d"):
        np.testing.assert_allclose(a[name], ref, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(a["M"], a["U"] * a["V"])
    assert "16 multiplications" in e.text and "36 multiplications" in e.text


def test_format_matrix_aligns():
    assert format_matrix([[1, -2.5], [10, 0.125]]) == ["   1 -2.5", "  10 0.12"]


def test_unknown_topic():
    with pytest.raises(ValueError, match="unknown topic 'convolve'; choose one of: conv, pool"):
        explain("convolve")


# ---------------------------------------------------------------------------
# striate explain


@pytest.mark.parametrize("argv, check", [
    (["conv"], "encoded as (3, 2, 2, 3)"),
    (["conv", "--kernel", "sobel-x", "--stride", "2", "--padding", "1", "--flip"], "its negative"),
    (["pool", "--input", "1 2 3; 4 5 6; 7 8 9", "--kernel-size", "2", "--stride", "1"], "max 5"),
    (["channels", "--size", "24"], "concat"),
    (["layers"], "61,706"),
    (["dropout", "--p", "0.3"], "Dropout with p = 0.3"),
    (["batchnorm"], "running_var"),
    (["winograd", "--seed", "3"], "Aᵀ M A"),
])
def test_explain_command_writes_png(tmp_path, capsys, argv, check):
    assert run_cli(["explain", *argv, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert check in out
    path = tmp_path / f"explain-{argv[0]}.png"
    expected = tuple(int(v) for v in out.rsplit("(", 1)[1].split(" pixels")[0].split("×"))
    with Image.open(path) as img:
        assert img.size == expected and min(img.size) > 200 and path.stat().st_size > 5_000


def test_explain_sizes_are_predicted(tmp_path):
    for topic in ("pool", "dropout"):
        e = explain(topic)
        path = tmp_path / f"{topic}.png"
        assert e.save_png(path) == e.png_size()
        with Image.open(path) as img:
            assert img.size == e.png_size()


def test_explain_conv_on_a_photo_and_errors(tmp_path, capsys):
    assert run_cli(["explain", "conv", "--sample", "grace-hopper", "--size", "6", "--kernel", "laplacian-4",
                    "--pool", "0"]) == 0
    out = capsys.readouterr().out
    assert "grace-hopper shrunk to 5×6" in out and "\nstep 12:" in out and "\nstep 13:" not in out
    assert run_cli(["explain", "conv", "--kernel", "edgy"]) == 2
    assert "--kernel: unknown kernel 'edgy'" in capsys.readouterr().err
    assert run_cli(["explain", "conv", "--input", "1 2; 3"]) == 2
    assert "--input" in capsys.readouterr().err
    assert run_cli(["explain", "conv", "--kernel", "sobel"]) == 2
    assert "combines two kernels" in capsys.readouterr().err
    assert run_cli(["explain", "layers", "--model", "resnet"]) == 2
    assert "unknown model 'resnet'" in capsys.readouterr().err
