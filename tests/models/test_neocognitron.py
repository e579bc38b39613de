"""The neocognitron (Fukushima, 1980).

Checks: the layer geometry, the S-, V- and C-cell equations against direct
cell-by-cell sums, the choice of representatives against a brute-force search,
the reinforcement rule, the selectivity r, the errors. The paper's "0"–"4"
experiment, the MNIST readout, saving and the command line are tested in
tests/experiments/test_neocognitron.py.
"""
import itertools

import numpy as np
import pytest

from striate.experiments.neocognitron import shift
from striate.models.neocognitron import CLayer, Neocognitron, SLayer, cell_positions


def _window(u, k, ci, cj):
    """u (K, H, W): the k×k window centred on (ci, cj), zero outside, as a loop would read it."""
    K, H, W = u.shape
    out = np.zeros((K, k, k), u.dtype)
    for y, x in itertools.product(range(k), range(k)):
        i, j = ci + y - k // 2, cj + x - k // 2
        if 0 <= i < H and 0 <= j < W:
            out[:, y, x] = u[:, i, j]
    return out


# ---------------------------------------------------------------------------
# geometry and the cell equations


def test_cell_positions():
    np.testing.assert_array_equal(cell_positions(16, 16), np.arange(16))
    assert cell_positions(16, 10).tolist() == [0, 2, 4, 5, 7, 8, 10, 12, 13, 15]
    assert cell_positions(10, 8).tolist() == [0, 1, 3, 4, 5, 6, 8, 9]
    assert cell_positions(6, 2).tolist() == [1, 4]
    assert cell_positions(2, 1).tolist() == [1]
    net = Neocognitron(rng=0)
    shapes = {name: u.shape[1:] for name, u in net.layers(np.zeros((1, 16, 16), np.float32)).items()}
    assert shapes == {"u0": (1, 16, 16), "us1": (24, 16, 16), "uc1": (24, 10, 10), "us2": (24, 8, 8),
                      "uc2": (24, 6, 6), "us3": (24, 2, 2), "uc3": (24, 1, 1)}


@pytest.mark.parametrize("in_size,size,area", [(7, 7, 3), (9, 5, 5), (6, 2, 4)])
def test_s_cells_follow_the_equation(rng, in_size, size, area):
    layer = SLayer(3, 4, in_size, size, area, r=2.5, q=3.0, rng=rng)
    layer.a[...] = rng.uniform(0, 0.3, layer.a.shape)
    layer.b[...] = rng.uniform(0, 2.0, layer.b.shape)
    u = rng.uniform(0, 1, (2, 3, in_size, in_size)).astype(np.float32)
    out, v = layer.respond(u)
    assert out.shape == (2, 4, size, size) and out.dtype == np.float32 and v.shape == (2, 1, size, size)
    pos = cell_positions(in_size, size)
    theta = 2 * 2.5 / (1 + 2.5)
    for n, i, j in itertools.product(range(2), range(size), range(size)):
        x = _window(u[n].astype(np.float64), area, pos[i], pos[j])            # (K_in, k, k)
        v_ref = np.sqrt((layer.c * x ** 2).sum())                             # V-cell
        assert v[n, 0, i, j] == pytest.approx(v_ref, rel=1e-5)
        for k in range(4):
            e = (layer.a[k] * x).sum()
            expected = 2.5 * max((1 + e) / (1 + theta * layer.b[k] * v_ref) - 1, 0)
            assert out[n, k, i, j] == pytest.approx(expected, rel=1e-4, abs=1e-6)
    # the V-cell weights sum to one over all planes and positions
    assert float(layer.c.sum()) * 3 == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("in_size,size,area", [(8, 8, 5), (16, 10, 5), (2, 1, 2)])
def test_c_cells_follow_the_equation(rng, in_size, size, area):
    layer = CLayer(3, in_size, size, area, alpha=0.7)
    u = np.where(rng.uniform(size=(2, 3, in_size, in_size)) < 0.3,
                 rng.uniform(0, 1, (2, 3, in_size, in_size)), 0).astype(np.float32)
    out = layer.respond(u)
    pos = cell_positions(in_size, size)
    for n, i, j in itertools.product(range(2), range(size), range(size)):
        window = _window(u[n].astype(np.float64), area, pos[i], pos[j])
        blurred = (layer.d.astype(np.float64) * window).sum(axis=(1, 2))                 # (K,)
        v = blurred.mean()
        x = np.maximum((1 + blurred) / (1 + v) - 1, 0)
        np.testing.assert_allclose(out[n, :, i, j], x / (0.7 + x), rtol=1e-5, atol=1e-7)
    assert out.min() >= 0 and out.max() < 1


def test_s_layer_is_shift_equivariant(rng):
    layer = SLayer(1, 5, 12, 12, 5, rng=rng)
    x = np.zeros((1, 1, 12, 12), np.float32)
    x[0, 0, 3:7, 4] = 1
    x[0, 0, 3, 4:7] = 1
    moved = shift(x, 2, 3)
    a, b = layer.respond(x)[0], layer.respond(moved)[0]
    np.testing.assert_allclose(b[..., 2:, 3:], a[..., :-2, :-3], rtol=1e-6)


# ---------------------------------------------------------------------------
# self-organisation


def _brute_representatives(u, column):
    """Candidates by scanning every column; then each plane's strongest candidate."""
    K, h, w = u.shape
    half = column // 2
    candidates = set()
    for m in itertools.product(range(h), range(w)):
        cells = [(u[k, i, j], k, i, j) for k in range(K)
                 for i in range(max(0, m[0] - half), min(h, m[0] + half + 1))
                 for j in range(max(0, m[1] - half), min(w, m[1] + half + 1))]
        best = max(cells)
        if best[0] > 0:
            candidates.add(best[1:])
    reps = {}
    for k, i, j in candidates:
        if k not in reps or u[k, i, j] > u[k][reps[k]]:
            reps[k] = (i, j)
    return reps


@pytest.mark.parametrize("column", [1, 3, 5])
def test_representatives_match_a_brute_force_search(rng, column):
    layer = SLayer(1, 6, 9, 9, 3, column=column, rng=0)
    for _ in range(5):
        u = np.where(rng.uniform(size=(6, 9, 9)) < 0.4, rng.uniform(size=(6, 9, 9)), 0).astype(np.float32)
        planes, rows, cols = layer.representatives(u)
        got = {int(k): (int(i), int(j)) for k, i, j in zip(planes, rows, cols)}
        assert got == _brute_representatives(u, column)


def test_reinforcement_rule(rng):
    layer = SLayer(2, 3, 6, 6, 3, q=4.0, column=11, rng=rng)
    u = rng.uniform(0, 1, (1, 2, 6, 6)).astype(np.float32)
    out, v = layer.respond(u)
    a0, b0 = layer.a.copy(), layer.b.copy()
    planes = layer.reinforce(u[0], out[0], v[0])
    assert planes.size == 1                              # an 11×11 column covers the whole 6×6 layer
    k = int(planes[0])
    i, j = np.unravel_index(out[0, k].argmax(), (6, 6))
    assert out[0, k, i, j] == out[0].max()
    np.testing.assert_allclose(layer.a[k] - a0[k], 4.0 * layer.c * _window(u[0], 3, i, j), rtol=1e-5)
    assert layer.b[k] - b0[k] == pytest.approx(2.0 * v[0, 0, i, j], rel=1e-5)
    others = [p for p in range(3) if p != k]
    np.testing.assert_array_equal(layer.a[others], a0[others])
    np.testing.assert_array_equal(layer.b[others], b0[others])
    assert layer.wins.tolist() == [int(p == k) for p in range(3)]
    # silence: no positive output, no representative, nothing learnt
    assert layer.reinforce(u[0], np.zeros_like(out[0]), v[0]).size == 0


def test_selectivity_r(rng):
    """A plane reinforced strongly on a feature answers x with about (1 + r)·cos − r."""
    r = 4.0
    layer = SLayer(1, 1, 5, 1, 5, r=r, q=1e5, init_scale=1e-6, rng=0)
    feature = rng.uniform(0.2, 1, (1, 1, 5, 5)).astype(np.float32)
    out, v = layer.respond(feature)
    layer.reinforce(feature[0], out[0], v[0])
    assert layer.respond(feature)[0].item() == pytest.approx(1.0, abs=1e-3)
    c = layer.c
    for _ in range(5):
        x = np.clip(feature + rng.normal(0, 0.3, feature.shape), 0, 1).astype(np.float32)
        cos = float((c * x[0, 0] * feature[0, 0]).sum()
                    / np.sqrt((c * x[0, 0] ** 2).sum() * (c * feature[0, 0] ** 2).sum()))
        expected = max((1 + r) * cos - r, 0)
        assert layer.respond(x)[0].item() == pytest.approx(expected, abs=2e-3)


def test_errors():
    net = Neocognitron(rng=0)
    with pytest.raises(ValueError, match=r"expects input \(N, 1, 16, 16\).*got \(2, 1, 28, 28\)"):
        net(np.zeros((2, 1, 28, 28), np.float32))
    with pytest.raises(TypeError, match="float input"):
        net(np.zeros((2, 1, 16, 16), np.uint8))
    with pytest.raises(ValueError, match="r needs 3 values"):
        Neocognitron(r=(4.0, 1.5))
    with pytest.raises(ValueError, match="denser than the one below"):
        SLayer(1, 4, 8, 10)
    with pytest.raises(ValueError, match="area must be a positive int"):
        SLayer(1, 4, 8, 8, area=0)
    with pytest.raises(ValueError, match=r"SLayer expects input \(N, 1, 8, 8\)"):
        SLayer(1, 4, 8, 8)(np.zeros((1, 2, 8, 8), np.float32))
    with pytest.raises(ValueError, match="alpha must be positive"):
        CLayer(4, 8, 8, alpha=0)
