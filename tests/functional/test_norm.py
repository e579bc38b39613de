import numpy as np
import pytest
import torch
import torch.nn.functional as tF

import striate as st
import striate.functional as F
from tests.reference import assert_close, check_torch, randn, to_torch64

SHAPES = [(8, 5), (4, 3, 9), (2, 3, 7, 9), (5, 1, 4, 4), (1, 4, 3, 2), (3, 2, 2, 3, 2)]


def raw(a):
    """The same running statistic for both libraries: ours updates the array, torch its float64 copy."""
    return ("raw", a, to_torch64(a))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training_matches_torch(shape, affine, rng):
    C = shape[1]
    x = randn(rng, *shape) * 3 + 1
    w, b = randn(rng, C), randn(rng, C)
    rm, rv = randn(rng, C), rng.uniform(0.5, 2, C).astype(np.float32)
    ours_rm, ours_rv = rm.copy(), rv.copy()
    theirs_rm, theirs_rv = to_torch64(rm), to_torch64(rv)
    params = [w, b] if affine else []
    check_torch(
        lambda x, rm, rv, *wb: F.batch_norm(x, rm, rv, *wb, training=True, momentum=0.3),
        lambda x, rm, rv, *wb: tF.batch_norm(x, rm, rv, *wb, training=True, momentum=0.3),
        [x, ("raw", ours_rm, theirs_rm), ("raw", ours_rv, theirs_rv), *params])
    assert_close(ours_rm, theirs_rm.numpy(), 1e-6, "running_mean")
    assert_close(ours_rv, theirs_rv.numpy(), 1e-6, "running_var")


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_batch_norm_eval_matches_torch(shape, rng):
    C = shape[1]
    rm, rv = randn(rng, C), rng.uniform(0.5, 2, C).astype(np.float32)
    x, w, b = randn(rng, *shape), randn(rng, C), randn(rng, C)
    check_torch(lambda x, rm, rv, w, b: F.batch_norm(x, rm, rv, w, b),
                lambda x, rm, rv, w, b: tF.batch_norm(x, rm, rv, w, b), [x, raw(rm), raw(rv), w, b])
    check_torch(lambda x, rm, rv: F.batch_norm(x, rm, rv, eps=1e-3),
                lambda x, rm, rv: tF.batch_norm(x, rm, rv, eps=1e-3), [x, raw(rm), raw(rv)])


def test_batch_norm_without_running_stats_uses_the_batch(rng):
    x, w, b = randn(rng, 6, 4, 5, 3), randn(rng, 4), randn(rng, 4)
    for training in (True, False):
        check_torch(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=training),
                    lambda x, w, b: tF.batch_norm(x, None, None, w, b, training=True), [x, w, b])


@pytest.mark.parametrize("module, shape", [(torch.nn.BatchNorm1d, (16, 6)), (torch.nn.BatchNorm1d, (4, 6, 10)),
                                           (torch.nn.BatchNorm2d, (4, 6, 5, 7))], ids=["1d", "1d-L", "2d"])
@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
def test_running_stats_follow_torch_over_steps(module, shape, momentum, rng):
    C = shape[1]
    layer = module(C, momentum=momentum, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(randn(rng, C)))
        layer.bias.copy_(torch.from_numpy(randn(rng, C)))
    w, b = (p.detach().numpy().astype(np.float32) for p in (layer.weight, layer.bias))   # exact: float32 values
    running_mean, running_var = np.zeros(C, np.float32), np.ones(C, np.float32)
    for step in range(1, 6):
        x = randn(rng, *shape) * (step + 1) + step      # statistics that move from step to step
        # momentum None: a cumulative average, which the layer gets with momentum = 1 / steps
        m = 1 / step if momentum is None else momentum
        ours = F.batch_norm(x, running_mean, running_var, w, b, training=True, momentum=m)
        theirs = layer(to_torch64(x))
        assert_close(ours.data, theirs.detach().numpy(), 1e-5, f"step {step} output")
        assert_close(running_mean, layer.running_mean.numpy(), 1e-5, f"step {step} running_mean")
        assert_close(running_var, layer.running_var.numpy(), 1e-5, f"step {step} running_var")
    layer.eval()
    x = randn(rng, *shape)
    assert_close(F.batch_norm(x, running_mean, running_var, w, b).data,
                 layer(to_torch64(x)).detach().numpy(), 1e-5, "eval output")


def test_running_stats_in_tensors_and_float64_are_updated_in_place(rng):
    x = randn(rng, 8, 3, 4, 4)
    rm, rv = st.Tensor(np.zeros(3)), st.Tensor(np.ones(3))
    data = rm.data
    F.batch_norm(x, rm, rv, training=True)
    assert rm.data is data and np.abs(rm.data).sum() > 0
    mean64, var64 = np.zeros(3), np.ones(3)                  # float64 statistics, float32 input
    out = F.batch_norm(x, mean64, var64, training=True)
    assert out.dtype == np.float32 and mean64.dtype == np.float64
    assert_close(mean64, 0.1 * x.mean(axis=(0, 2, 3)), 1e-6)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck_float64(training, rng):
    for shape in [(5, 3), (3, 2, 4), (2, 3, 3, 2)]:
        C = shape[1]
        rm, rv = rng.standard_normal(C), rng.uniform(0.5, 2, C)
        x, w, b = rng.standard_normal(shape), rng.standard_normal(C), rng.standard_normal(C)
        # copies: a training call updates the statistics, and gradcheck calls many times
        assert st.gradcheck(lambda x, w, b: F.batch_norm(x, rm.copy(), rv.copy(), w, b, training=training),
                            [x, w, b])
        assert st.gradcheck(lambda x: F.batch_norm(x, None, None, training=training), [x])


def test_batch_norm_constant_input_has_finite_gradients(rng):
    # the variance is 0, so only eps keeps 1/sqrt(var + eps) finite (and large: 316)
    x = np.full((4, 3, 5, 5), 2.5, np.float32)
    g = randn(rng, *x.shape)
    for running in [(None, None), (np.zeros(3, np.float32), np.ones(3, np.float32))]:
        t, w, b = (st.Tensor(a, requires_grad=True) for a in (x, randn(rng, 3), randn(rng, 3)))
        out = F.batch_norm(t, *running, w, b, training=True)
        out.backward(g)
        assert (out.data == b.data.reshape(1, 3, 1, 1)).all()       # x − mean is exactly 0
        assert all(np.isfinite(a).all() for a in (t.grad, w.grad, b.grad))
        tt = to_torch64(x, requires_grad=True)
        tF.batch_norm(tt, None, None, to_torch64(w.data), to_torch64(b.data),
                      training=True).backward(to_torch64(g))
        assert_close(t.grad, tt.grad.numpy(), 1e-4, "gradient of a constant input")


def test_batch_norm_errors():
    x = np.zeros((4, 3, 5, 5), np.float32)
    C3 = np.zeros(3, np.float32)
    with pytest.raises(ValueError,
                       match=r"batch_norm expects input \(N, C\), \(N, C, L\) or \(N, C, H, W\), got shape \(3,\)"):
        F.batch_norm(C3, None, None)
    with pytest.raises(ValueError,
                       match=r"weight of shape \(3,\) \(one per channel of input \(4, 3, 5, 5\)\), got \(4,\)"):
        F.batch_norm(x, None, None, weight=np.ones(4, np.float32))
    with pytest.raises(ValueError,
                       match=r"running_var as floats of shape \(3,\) \(one per channel\), got float32 \(5,\)"):
        F.batch_norm(x, C3, np.ones(5, np.float32))
    with pytest.raises(ValueError, match="running_mean and running_var both given or both None"):
        F.batch_norm(x, C3, None)
    with pytest.raises(ValueError, match=r"more than one value per channel when training, got input \(1, 3\)"):
        F.batch_norm(np.zeros((1, 3), np.float32), C3, C3.copy(), training=True)
    with pytest.raises(TypeError, match="momentum must be a number"):
        F.batch_norm(x, C3, C3.copy(), training=True, momentum=None)
    with pytest.raises(TypeError, match="batch_norm expects a float32 or float64 input, got dtype int64"):
        F.batch_norm(st.Tensor(np.zeros((4, 3)), dtype=np.int64), None, None)
    with pytest.raises(TypeError, match="array it can update in place, got list"):
        F.batch_norm(x, [0.0] * 3, [1.0] * 3)


@pytest.mark.parametrize("shape, normalized", [((4, 7), (7,)), ((2, 3, 5), (5,)), ((2, 3, 4, 5), (3, 4, 5)),
                                                ((1, 6, 2), (6, 2))], ids=str)
def test_layer_norm_matches_torch(shape, normalized, rng):
    x, w, b = randn(rng, *shape) * 2 + 1, randn(rng, *normalized), randn(rng, *normalized)
    check_torch(lambda x, w, b: F.layer_norm(x, normalized, w, b),
                lambda x, w, b: tF.layer_norm(x, normalized, w, b), [x, w, b])
    check_torch(lambda x: F.layer_norm(x, normalized[-1] if len(normalized) == 1 else normalized),
                lambda x: tF.layer_norm(x, normalized), [x])
    assert st.gradcheck(lambda x, w, b: F.layer_norm(x, normalized, w, b),
                        [rng.standard_normal(shape), rng.standard_normal(normalized), rng.standard_normal(normalized)])


def test_layer_norm_errors():
    with pytest.raises(ValueError, match=r"ending in normalized_shape \(4,\), got \(2, 3\)"):
        F.layer_norm(np.zeros((2, 3), np.float32), 4)


# ---------------------------------------------------------------------------
# local response normalisation


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6, 9])
def test_lrn_matches_torch(size, rng):
    for shape in [(2, 7, 5, 4), (3, 4, 6), (1, 1, 3, 3), (2, 5, 3, 2, 2)]:
        alpha, beta, k = float(rng.uniform(1e-4, 1)), float(rng.uniform(0.3, 1.5)), float(rng.uniform(0.5, 2))
        x = randn(rng, *shape) * 2
        check_torch(lambda t: F.local_response_norm(t, size, alpha, beta, k),
                    lambda t: tF.local_response_norm(t, size, alpha, beta, k), [x])
    x = randn(rng, 2, 10, 6, 6)                                                   # the defaults
    check_torch(lambda t: F.local_response_norm(t, size), lambda t: tF.local_response_norm(t, size), [x])


@pytest.mark.parametrize("size", [2, 3, 4, 5])
def test_lrn_gradcheck_float64(size, rng):
    x = rng.standard_normal((2, 6, 3, 2))
    assert st.gradcheck(lambda t: F.local_response_norm(t, size, alpha=0.5, beta=0.75, k=1.5), [x])


def test_lrn_alexnet_form(rng):
    # Krizhevsky et al.: b_c = a_c / (k + α Σ_{|c'−c| ≤ n/2} a_c'²)^β, k=2, n=5, α=1e-4, β=0.75
    a = randn(rng, 2, 8, 3, 3) * 30
    a64 = a.astype(np.float64)
    sq = np.pad(a64 ** 2, ((0, 0), (2, 2), (0, 0), (0, 0)))
    energy = sum(sq[:, j:j + 8] for j in range(5))
    expected = a64 / (2 + 1e-4 * energy) ** 0.75
    ours = F.local_response_norm(a, 5, alpha=5 * 1e-4, beta=0.75, k=2.0)
    assert_close(ours.data, expected, 1e-6, "AlexNet LRN")


def test_lrn_keeps_dtype_and_errors():
    assert F.local_response_norm(np.ones((1, 3, 2), np.float64), 2).dtype == np.float64
    with pytest.raises(ValueError,
                       match=r"local_response_norm expects input \(N, C, L\) or \(N, C, H, W\), got shape \(4, 3\)"):
        F.local_response_norm(np.ones((4, 3), np.float32), 3)
    with pytest.raises(ValueError, match="size must be a positive int"):
        F.local_response_norm(np.ones((1, 3, 2), np.float32), 0)


def _as_ranks(sizes, run):
    """``run(rank, reduce)`` on len(sizes) threads, as ranks of one job: ``reduce`` sums over them (a barrier)."""
    import threading
    barrier = threading.Barrier(len(sizes), timeout=30)
    slots: list = [None] * len(sizes)
    results: list = [None] * len(sizes)
    errors: list = []

    def rank(r):
        def reduce(a):
            slots[r] = np.array(a, dtype=np.float64)
            barrier.wait()
            total = sum(slots[1:], slots[0].copy())            # the same order on every rank
            barrier.wait()
            return total
        try:
            results[r] = run(r, reduce)
        except BaseException as exc:                            # noqa: BLE001 (reported below)
            errors.append(exc)
            barrier.abort()
    threads = [threading.Thread(target=rank, args=(r,)) for r in range(len(sizes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


@pytest.mark.parametrize("sizes", [(4, 4), (3, 5), (2, 3, 3)], ids=str)
@pytest.mark.parametrize("shape", [(8, 3, 5, 5), (8, 4), (8, 2, 7)], ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_synchronised_batch_norm_equals_batch_norm_on_the_whole_batch(sizes, shape, dtype, rng):
    # each rank's loss is the mean over its share, weighted into the global mean by share / batch (as
    # DataParallel does): forward, running statistics and weighted gradients are the whole batch's
    C, N = shape[1], shape[0]
    x, w, b = rng.standard_normal(shape) * 2 + 0.5, rng.standard_normal(C), rng.standard_normal(C)
    G = rng.standard_normal(shape)                              # dL/dout of the whole batch's mean loss
    rm0, rv0 = rng.standard_normal(C), rng.uniform(0.5, 2, C)

    def whole():                                                # float64 reference, one process
        t, tw, tb = (st.Tensor(a, requires_grad=True, dtype=np.float64) for a in (x, w, b))
        rm, rv = rm0.copy(), rv0.copy()
        out = F.batch_norm(t, rm, rv, tw, tb, training=True, momentum=0.3)
        out.backward(G)
        return out.data, t.grad, tw.grad, tb.grad, rm, rv
    ref = whole()
    bounds = np.cumsum((0,) + sizes)

    def rank(r, reduce):
        lo, hi = bounds[r], bounds[r + 1]
        t, tw, tb = (st.Tensor(a, requires_grad=True, dtype=dtype) for a in (x[lo:hi], w, b))
        rm, rv = rm0.astype(dtype), rv0.astype(dtype)
        out = F.batch_norm(t, rm, rv, tw, tb, training=True, momentum=0.3, reduce=reduce)
        out.backward((G[lo:hi] * (N / (hi - lo))).astype(dtype))   # the gradient of the share's mean loss
        share = float((hi - lo) / N)
        return out.data, t.grad * share, tw.grad * share, tb.grad * share, rm, rv
    ranks = _as_ranks(sizes, rank)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for r in ranks:
        assert r[0].dtype == dtype and r[1].dtype == dtype
    assert_close(np.concatenate([r[0] for r in ranks]), ref[0], tol, "output")
    assert_close(np.concatenate([r[1] for r in ranks]), ref[1], tol, "input gradient")
    assert_close(sum(r[2] for r in ranks), ref[2], tol, "weight gradient (weighted sum over ranks)")
    assert_close(sum(r[3] for r in ranks), ref[3], tol, "bias gradient (weighted sum over ranks)")
    for r in ranks:
        assert_close(r[4], ref[4], tol, "running mean")
        assert_close(r[5], ref[5], tol, "running variance")
        assert (r[4] == ranks[0][4]).all() and (r[5] == ranks[0][5]).all()   # the same on every rank


def test_synchronised_batch_norm_with_one_process_is_batch_norm(rng):
    # reduce=identity (one process) gives the ordinary result; reduce=None is bit for bit the old path
    x, g = randn(rng, 6, 3, 4, 4, dtype=np.float64), randn(rng, 6, 3, 4, 4, dtype=np.float64)
    outs = []
    for reduce in (None, lambda a: np.array(a)):
        t = st.Tensor(x, requires_grad=True, dtype=np.float64)
        out = F.batch_norm(t, np.zeros(3), np.ones(3), training=True, reduce=reduce)
        out.backward(g)
        outs.append((out.data, t.grad))
    assert_close(outs[1][0], outs[0][0], 1e-12, "output")
    assert_close(outs[1][1], outs[0][1], 1e-12, "input gradient")
    # evaluation with running statistics never calls reduce
    F.batch_norm(x, np.zeros(3), np.ones(3), training=False, reduce=lambda a: pytest.fail("reduce called"))
    with pytest.raises(TypeError, match="reduce"):
        F.batch_norm(x, None, None, training=True, reduce=3)
