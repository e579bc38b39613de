"""Every layer against its torch.nn counterpart in float64, with the same weights.

Torch's (float32) weights are copied into ours through ``load_state_dict`` (strict),
which also proves that parameter and buffer names agree; then torch's layer runs in
float64, the reference. The forward output, the input gradient and every parameter
gradient are compared, driven by one random upstream gradient, for our float32 layer
and for a float64 copy of it.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as tF

import striate as st
from striate import nn
from tests.reference import as_float64, assert_close, to_torch64

RTOL = 1e-5          # striate's float32 layer against torch's float64 one
RTOL64 = 1e-10       # striate's float64 copy of the layer against the same reference


def copy_weights(theirs: torch.nn.Module, ours: nn.Module) -> None:
    """torch's weights (float32 values, whatever the module's dtype) into ours, in float32."""
    ours.load_state_dict({k: v.detach().numpy().astype(np.float32) if v.is_floating_point()
                          else v.numpy().copy() for k, v in theirs.state_dict().items()})


def compare(ours, theirs, x, rng, copy=True, rtol=RTOL, grad_floor=0.0, ours64=None):
    """Forward, input gradient and parameter gradients of ``ours`` and ``theirs`` on ``x``.

    ``theirs`` runs in float64 (its float32 weights convert exactly): the reference. ``ours``
    must keep float32 and agree at ``rtol`` (outputs scaled by max(1, max|ref|), gradients by
    max(grad_floor, their own magnitude)); a float64 copy of ``ours`` must agree at RTOL64
    (a test that steps a layer several times keeps its own float64 copy and passes it as ``ours64``).
    """
    if copy:
        copy_weights(theirs, ours)
    theirs.double()
    if ours64 is None:
        ours64 = as_float64(ours)        # copied before the run: the same running statistics
    xt = to_torch64(x, requires_grad=True)
    ref = theirs(xt)
    g = rng.standard_normal(tuple(ref.shape)).astype(np.float32)
    ref.backward(to_torch64(g))
    theirs_params = dict(theirs.named_parameters())
    for net, dtype, tol in ((ours, np.float32, rtol), (ours64, np.float64, RTOL64)):
        xs = st.Tensor(x, requires_grad=True, dtype=dtype)
        out = net(xs)
        assert out.dtype == dtype
        assert_close(out.data, ref.detach().numpy(), tol, f"{dtype.__name__} forward")
        out.backward(g.astype(dtype))
        assert_close(xs.grad, xt.grad.numpy(), tol, f"{dtype.__name__} input gradient", floor=grad_floor)
        ours_params = dict(net.named_parameters())
        assert ours_params.keys() == theirs_params.keys()
        for name, p in theirs_params.items():
            assert_close(ours_params[name].grad, p.grad.numpy(), tol, f"{dtype.__name__} gradient of {name}",
                         floor=grad_floor)
    return out


def randn(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# (our layer, torch layer, input shape); weights are torch's, copied into ours
CASES = [
    ("conv", lambda: nn.Conv2d(3, 6, 3), lambda: torch.nn.Conv2d(3, 6, 3), (2, 3, 7, 9)),
    ("conv-groups", lambda: nn.Conv2d(4, 6, (3, 2), stride=2, padding=(1, 0), dilation=(1, 2), groups=2,
                                      bias=False),
     lambda: torch.nn.Conv2d(4, 6, (3, 2), stride=2, padding=(1, 0), dilation=(1, 2), groups=2, bias=False),
     (3, 4, 9, 8)),
    ("conv-same", lambda: nn.Conv2d(2, 3, (4, 3), padding="same", dilation=2),
     lambda: torch.nn.Conv2d(2, 3, (4, 3), padding="same", dilation=2), (1, 2, 9, 7)),
    ("conv-valid", lambda: nn.Conv2d(1, 2, 5, padding="valid"),
     lambda: torch.nn.Conv2d(1, 2, 5, padding="valid"), (2, 1, 8, 8)),
    ("conv-transpose", lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
     lambda: torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2), (2, 4, 5, 6)),
    ("conv-transpose-dilated", lambda: nn.ConvTranspose2d(3, 2, (2, 3), dilation=2, bias=False),
     lambda: torch.nn.ConvTranspose2d(3, 2, (2, 3), dilation=2, bias=False), (1, 3, 4, 5)),
    ("maxpool", lambda: nn.MaxPool2d(3, 2, 1), lambda: torch.nn.MaxPool2d(3, 2, 1), (2, 3, 7, 9)),
    ("maxpool-ceil", lambda: nn.MaxPool2d(2, ceil_mode=True), lambda: torch.nn.MaxPool2d(2, ceil_mode=True),
     (2, 3, 7, 9)),
    ("avgpool-ceil", lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True, divisor_override=2),
     lambda: torch.nn.AvgPool2d(3, 2, 1, ceil_mode=True, divisor_override=2), (1, 2, 8, 6)),
    ("maxpool-dilated", lambda: nn.MaxPool2d((2, 3), stride=(1, 2), dilation=2),
     lambda: torch.nn.MaxPool2d((2, 3), stride=(1, 2), dilation=2), (1, 2, 9, 9)),
    ("avgpool", lambda: nn.AvgPool2d(2), lambda: torch.nn.AvgPool2d(2), (2, 3, 8, 7)),
    ("avgpool-pad", lambda: nn.AvgPool2d(3, 2, 1, count_include_pad=False),
     lambda: torch.nn.AvgPool2d(3, 2, 1, count_include_pad=False), (2, 2, 7, 9)),
    ("sumpool", lambda: nn.SumPool2d(3, 2, 1),
     lambda: torch.nn.AvgPool2d(3, 2, 1, divisor_override=1), (2, 2, 7, 9)),
    ("adaptive-avg", lambda: nn.AdaptiveAvgPool2d((3, 4)), lambda: torch.nn.AdaptiveAvgPool2d((3, 4)),
     (2, 3, 7, 9)),
    ("adaptive-max", lambda: nn.AdaptiveMaxPool2d(3), lambda: torch.nn.AdaptiveMaxPool2d(3), (2, 3, 7, 8)),
    ("global-avg", lambda: nn.GlobalAvgPool2d(), lambda: torch.nn.AdaptiveAvgPool2d(1), (2, 3, 5, 6)),
    ("global-max", lambda: nn.GlobalMaxPool2d(), lambda: torch.nn.AdaptiveMaxPool2d(1), (2, 3, 5, 6)),
    ("linear", lambda: nn.Linear(7, 5), lambda: torch.nn.Linear(7, 5), (4, 7)),
    ("linear-3d-nobias", lambda: nn.Linear(7, 5, bias=False), lambda: torch.nn.Linear(7, 5, bias=False),
     (2, 3, 7)),
    ("flatten", lambda: nn.Flatten(), lambda: torch.nn.Flatten(), (2, 3, 4, 5)),
    ("flatten-mid", lambda: nn.Flatten(1, 2), lambda: torch.nn.Flatten(1, 2), (2, 3, 4, 5)),
    ("unflatten", lambda: nn.Unflatten(1, (3, 4)), lambda: torch.nn.Unflatten(1, (3, 4)), (2, 12)),
    ("relu", lambda: nn.ReLU(), lambda: torch.nn.ReLU(), (2, 3, 4, 5)),
    ("leaky-relu", lambda: nn.LeakyReLU(0.2), lambda: torch.nn.LeakyReLU(0.2), (2, 3, 4, 5)),
    ("tanh", lambda: nn.Tanh(), lambda: torch.nn.Tanh(), (2, 3, 4, 5)),
    ("sigmoid", lambda: nn.Sigmoid(), lambda: torch.nn.Sigmoid(), (2, 3, 4, 5)),
    ("softmax", lambda: nn.Softmax(dim=1), lambda: torch.nn.Softmax(dim=1), (2, 3, 4, 5)),
    ("softmax-last", lambda: nn.Softmax(), lambda: torch.nn.Softmax(dim=-1), (4, 10)),
    ("log-softmax", lambda: nn.LogSoftmax(dim=1), lambda: torch.nn.LogSoftmax(dim=1), (4, 10)),
    ("lrn", lambda: nn.LocalResponseNorm(3, alpha=1e-2, beta=0.75, k=2.0),
     lambda: torch.nn.LocalResponseNorm(3, alpha=1e-2, beta=0.75, k=2.0), (2, 5, 4, 3)),
    ("layernorm", lambda: nn.LayerNorm((3, 4, 5)), lambda: torch.nn.LayerNorm((3, 4, 5)), (2, 3, 4, 5)),
    ("identity", lambda: nn.Identity(), lambda: torch.nn.Identity(), (2, 3)),
    ("zeropad", lambda: nn.ZeroPad2d((1, 2, 0, 3)), lambda: torch.nn.ZeroPad2d((1, 2, 0, 3)), (2, 3, 4, 5)),
    ("constpad", lambda: nn.ConstantPad2d(1, 0.5), lambda: torch.nn.ConstantPad2d(1, 0.5), (2, 3, 4, 5)),
]


@pytest.mark.parametrize("ours, theirs, shape", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_layer_matches_torch(ours, theirs, shape, rng):
    torch.manual_seed(int(rng.integers(2 ** 31)))
    theirs = theirs()
    with torch.no_grad():                  # nonzero biases and affine parameters, so they are tested
        for p in theirs.parameters():
            p.add_(torch.from_numpy(randn(rng, *p.shape)) * 0.1)
    compare(ours(), theirs, randn(rng, *shape), rng)


def test_lp_pools_match_torch(rng):
    x = np.abs(randn(rng, 2, 3, 7, 9)) + 0.1      # torch's LPPool takes a signed root: keep x > 0
    compare(nn.LPPool2d(3, 3, stride=2), torch.nn.LPPool2d(3, 3, stride=2), x, rng)
    compare(nn.L2Pool2d((2, 3)), torch.nn.LPPool2d(2, (2, 3)), x, rng)


def test_min_pool_is_minus_max_of_minus(rng):
    class TorchMin(torch.nn.Module):
        def forward(self, x):
            return -tF.max_pool2d(-x, 3, 2, 1)
    compare(nn.MinPool2d(3, 2, 1), TorchMin(), randn(rng, 2, 3, 7, 9), rng)


def test_scaled_tanh(rng):
    class TorchScaledTanh(torch.nn.Module):
        def forward(self, x):
            return 1.7159 * torch.tanh(x * (2 / 3))
    compare(nn.ScaledTanh(), TorchScaledTanh(), randn(rng, 3, 4, 5), rng)
    layer = nn.ScaledTanh(a=2.0, s=0.5)
    assert_close(layer(st.Tensor([1.0])).data, [2 * np.tanh(0.5)])


# ---------------------------------------------------------------------------
# fused convolution: sum is Conv2d, concat a depthwise conv, product the product of responses


def _torch_responses(x, w, stride, padding):
    """r[n, k, c] = x[:, c] ⋆ w[k, c] with torch: (N, K, C, OH, OW)."""
    K, C, kh, kw = w.shape
    wt = w.permute(1, 0, 2, 3).reshape(C * K, 1, kh, kw)          # group c holds w[:, c]
    r = tF.conv2d(x, wt, stride=stride, padding=padding, groups=C)  # channel c·K + k
    N, _, OH, OW = r.shape
    return r.reshape(N, C, K, OH, OW).transpose(1, 2)


@pytest.mark.parametrize("fusion", ["sum", "concat", "product"])
def test_fused_conv(fusion, rng):
    C, K = 3, 4
    ours = nn.FusedConv2d(C, K, (3, 2), stride=2, padding=1, fusion=fusion, rng=rng)
    assert ours.out_channels == (K * C if fusion == "concat" else K)
    ours.bias.data[...] = randn(rng, ours.out_channels)

    class Torch(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.tensor(ours.weight.data))
            self.bias = torch.nn.Parameter(torch.tensor(ours.bias.data))

        def forward(self, x):
            r = _torch_responses(x, self.weight, 2, 1)              # (N, K, C, OH, OW)
            if fusion == "sum":
                out = r.sum(2)
            elif fusion == "product":
                out = r.prod(2)
            else:
                out = r.reshape(r.shape[0], K * C, *r.shape[3:])   # map k·C + c
            return out + self.bias.reshape(1, -1, 1, 1)

    compare(ours, Torch(), randn(rng, 2, C, 7, 8), rng, copy=False)    # product too: the reference is float64


def test_fused_sum_is_conv2d(rng):
    fused = nn.FusedConv2d(3, 5, 3, padding=1, rng=1)
    conv = nn.Conv2d(3, 5, 3, padding=1, rng=1)
    np.testing.assert_array_equal(fused.weight.data, conv.weight.data)   # same initialisation
    x = randn(rng, 2, 3, 6, 6)
    assert_close(fused(x).data, conv(x).data)


# ---------------------------------------------------------------------------
# batch norm: outputs, gradients and running statistics over several steps


@pytest.mark.parametrize("cls, tcls, shape", [
    (nn.BatchNorm1d, torch.nn.BatchNorm1d, (8, 5)),
    (nn.BatchNorm1d, torch.nn.BatchNorm1d, (4, 5, 7)),
    (nn.BatchNorm2d, torch.nn.BatchNorm2d, (4, 5, 3, 6)),
])
@pytest.mark.parametrize("kwargs", [{}, dict(momentum=None), dict(affine=False, eps=1e-3, momentum=0.3),
                                    dict(track_running_stats=False), dict(bias=False)])
def test_batch_norm(cls, tcls, shape, kwargs, rng):
    ours, theirs = cls(5, **kwargs), tcls(5, **kwargs)
    if theirs.affine:
        with torch.no_grad():
            theirs.weight.add_(torch.from_numpy(randn(rng, 5)))
            if theirs.bias is not None:
                theirs.bias.add_(torch.from_numpy(randn(rng, 5)))
    copy_weights(theirs, ours)
    ours64 = as_float64(ours)               # steps alongside: its statistics and gradients stay float64
    for _ in range(3):                                              # training steps
        compare(ours, theirs, randn(rng, *shape) * 2 + 1, rng, copy=False, ours64=ours64)
    for name, buf in theirs.state_dict().items():
        assert_close(ours.state_dict()[name], buf.numpy(), RTOL, name)
        assert_close(ours64.state_dict()[name], buf.numpy(), RTOL64, name)
    ours.eval()
    ours64.eval()
    theirs.eval()
    compare(ours, theirs, randn(rng, *shape), rng, copy=False, ours64=ours64)
    if ours.track_running_stats:
        assert ours.running_mean.dtype == np.float32 and ours.running_var.dtype == np.float32
        assert ours.num_batches_tracked.dtype == np.int64 and int(ours.num_batches_tracked) == 3


def test_batch_norm_checks_input():
    with pytest.raises(ValueError,
                       match=r"BatchNorm2d\(3\) expects input \(N, C, H, W\) with C=3, got \(2, 4, 5, 5\)"):
        nn.BatchNorm2d(3)(np.zeros((2, 4, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\) expects input \(N, C\) or \(N, C, L\)"):
        nn.BatchNorm1d(3)(np.zeros((2, 3, 5, 5), np.float32))
    with pytest.raises(ValueError, match="momentum must be a number >= 0 and <= 1"):
        nn.BatchNorm2d(3, momentum=1.5)
    with pytest.raises(ValueError, match="eps must be a number > 0"):
        nn.BatchNorm2d(3, eps=0)


def test_synchronised_batch_norm_layer_passes_its_reduce_in_training_only(rng):
    # the layer hands ``reduce`` to F.batch_norm: called once forward, once backward, in training only;
    # with the identity (one process) the result is the ordinary layer's
    calls = []

    def reduce(a):
        calls.append(a.shape)
        return np.array(a)
    x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
    plain, synced = nn.BatchNorm2d(3), nn.BatchNorm2d(3, reduce=reduce)
    assert "synchronised" in repr(synced) and "synchronised" not in repr(plain)
    xs = [st.Tensor(x, requires_grad=True) for _ in range(2)]
    outs = [plain(xs[0]), synced(xs[1])]
    for o in outs:
        (o * o).sum().backward()
    assert calls == [(7,), (6,)]                                  # [Σx, Σx², n] forward; [Σg, Σg·x̂] backward
    assert_close(outs[1].data, outs[0].data, 1e-5, "output")
    assert_close(xs[1].grad, xs[0].grad, 1e-4, "input gradient")
    assert_close(synced.running_var, plain.running_var, 1e-6, "running variance")
    synced.eval()
    synced(x)
    assert len(calls) == 2                                        # evaluation is local
    with pytest.raises(TypeError, match="reduce must be None or a callable"):
        nn.BatchNorm1d(3, reduce=1)


# ---------------------------------------------------------------------------
# dropout


def test_dropout_train_and_eval(rng):
    x = st.Tensor(np.ones((200, 50), np.float32), requires_grad=True)
    layer = nn.Dropout(0.25, rng=0)
    out = layer(x)
    kept = out.data != 0
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_allclose(out.data[kept], 1 / 0.75, rtol=1e-6)
    out.backward(np.ones_like(out.data))
    np.testing.assert_array_equal(x.grad, out.data)                 # the same mask and scale
    layer.eval()
    assert layer(x) is x or np.array_equal(layer(x).data, x.data)
    assert np.array_equal(nn.Dropout(0.0)(x).data, x.data)
    assert not nn.Dropout(1.0)(x).data.any()


def test_dropout_rng_is_in_plain_sight():
    x = np.ones((4, 100), np.float32)
    # a seed gives the layer its own reproducible stream
    a, b = nn.Dropout(0.5, rng=7), nn.Dropout(0.5, rng=7)
    np.testing.assert_array_equal(a(x).data, b(x).data)
    # rng=None follows striate's default generator, also when seeded after the layer was built
    layer = nn.Dropout(0.5)
    st.manual_seed(3)
    first = layer(x).data
    st.manual_seed(3)
    np.testing.assert_array_equal(layer(x).data, first)
    # and a saved generator state restores the masks
    state = st.random.get_state()
    again = layer(x).data
    st.random.set_state(state)
    np.testing.assert_array_equal(layer(x).data, again)


def test_dropout2d_drops_whole_maps():
    out = nn.Dropout2d(0.5, rng=1)(np.ones((6, 8, 3, 3), np.float32)).data
    per_map = out.reshape(6, 8, 9)
    assert ((per_map == 0).all(axis=2) | (per_map == 2).all(axis=2)).all()


def test_dropout_checks_p():
    with pytest.raises(ValueError, match=r"Dropout: p must be a number >= 0 and <= 1, got 1.5"):
        nn.Dropout(1.5)


# ---------------------------------------------------------------------------
# branches and skip connections


def test_residual_and_concat_match_torch(rng):
    class TorchBlock(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                                            torch.nn.Conv2d(4, 4, 3, padding=1))
            self.shortcut = torch.nn.Conv2d(3, 4, 1)
            self.branches = torch.nn.ModuleList([torch.nn.Conv2d(4, 2, 1), torch.nn.MaxPool2d(3, 1, 1)])

        def forward(self, x):
            y = self.body(x) + self.shortcut(x)
            return torch.cat([b(y) for b in self.branches], dim=1)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.res = nn.Residual(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                                                 nn.Conv2d(4, 4, 3, padding=1)), nn.Conv2d(3, 4, 1))
            self.cat = nn.Concat(nn.Conv2d(4, 2, 1), nn.MaxPool2d(3, 1, 1))

        def forward(self, x):
            return self.cat(self.res(x))

    theirs, ours = TorchBlock(), Block()
    rename = {"body": "res.body", "shortcut": "res.shortcut", "branches": "cat"}
    ours.load_state_dict({rename[k.split(".")[0]] + k[len(k.split(".")[0]):]: v.detach().numpy()
                          for k, v in theirs.state_dict().items()})
    x = randn(rng, 2, 3, 6, 5)
    theirs.double()                                   # the reference: float64
    xt = to_torch64(x, requires_grad=True)
    ref = theirs(xt)
    g = randn(rng, *ref.shape)
    ref.backward(to_torch64(g))
    for net, dtype, tol in ((ours, np.float32, RTOL), (as_float64(ours), np.float64, RTOL64)):
        xs = st.Tensor(x, requires_grad=True, dtype=dtype)
        out = net(xs)
        assert out.shape == (2, 6, 6, 5) and out.dtype == dtype
        assert_close(out.data, ref.detach().numpy(), tol, f"{dtype.__name__} forward")
        out.backward(g.astype(dtype))
        assert_close(xs.grad, xt.grad.numpy(), tol, f"{dtype.__name__} input gradient (two paths summed)",
                     floor=0)


def test_residual_identity_and_errors(rng):
    block = nn.Residual(nn.ReLU())
    x = randn(rng, 2, 3)
    assert_close(block(x).data, np.maximum(x, 0) + x)
    with pytest.raises(ValueError, match=r"Residual: the body's output \(2, 4\) and the input \(2, 3\)"):
        nn.Residual(nn.Linear(3, 4))(x)
    with pytest.raises(TypeError, match="body must be a Module"):
        nn.Residual(lambda x: x)
    with pytest.raises(ValueError, match="at least one branch"):
        nn.Concat()


# ---------------------------------------------------------------------------
# configuration checks and reprs


@pytest.mark.parametrize("make, error, match", [
    (lambda: nn.Conv2d(3, 4, 3, groups=2), ValueError,
     r"Conv2d: in_channels \(=3\) must be divisible by groups \(=2\)"),
    (lambda: nn.Conv2d(4, 3, 3, groups=2), ValueError,
     r"Conv2d: out_channels \(=3\) must be divisible by groups \(=2\)"),
    (lambda: nn.Conv2d(0, 3, 3), ValueError, r"Conv2d: in_channels must be an int >= 1, got 0"),
    (lambda: nn.Conv2d(3.0, 3, 3), TypeError, r"Conv2d: in_channels must be an int >= 1, got 3.0"),
    (lambda: nn.Conv2d(3, 3, 0), ValueError, r"Conv2d: kernel_size must be positive"),
    (lambda: nn.Conv2d(3, 3, 3, stride=(1, 0)), ValueError, r"Conv2d: stride must be positive"),
    (lambda: nn.Conv2d(3, 3, 3, padding=-1), ValueError, r"Conv2d: padding must be non-negative"),
    (lambda: nn.Conv2d(3, 3, 3, padding="full"), ValueError, r"'same' or 'valid', got 'full'"),
    (lambda: nn.Conv2d(3, 3, 3, stride=2, padding="same"), ValueError, r"padding='same' needs stride 1"),
    (lambda: nn.ConvTranspose2d(3, 3, 3, stride=2, output_padding=2), ValueError,
     r"output_padding \(=\(2, 2\)\) must be smaller than stride"),
    (lambda: nn.FusedConv2d(3, 3, 3, fusion="max"), ValueError, r"fusion must be one of"),
    (lambda: nn.Conv2d(3, 3, 3, algorithm="fft"), ValueError,
     r"Conv2d: algorithm must be one of 'auto', 'im2col', 'winograd', got 'fft'"),
    (lambda: nn.MaxPool2d(2, padding=2), ValueError, r"MaxPool2d: padding \(=2\) must be at most half"),
    (lambda: nn.AvgPool2d(0), ValueError, r"AvgPool2d: kernel_size must be positive"),
    (lambda: nn.LPPool2d(0, 2), ValueError, r"LPPool2d: norm_type must be a finite number >= 1, got 0"),
    (lambda: nn.AdaptiveAvgPool2d(0), ValueError, r"output_size must be positive"),
    (lambda: nn.Linear(3, -1), ValueError, r"Linear: out_features must be an int >= 1, got -1"),
    (lambda: nn.LocalResponseNorm(0), ValueError, r"LocalResponseNorm: size must be an int >= 1"),
    (lambda: nn.Softmax(dim=None), TypeError, r"Softmax: dim must be an int"),
])
def test_configuration_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("ours, theirs", [
    (lambda: nn.Conv2d(3, 6, 5), lambda: torch.nn.Conv2d(3, 6, 5)),
    (lambda: nn.Conv2d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2, bias=False),
     lambda: torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2, bias=False)),
    (lambda: nn.Conv2d(4, 6, 3, padding="same"), lambda: torch.nn.Conv2d(4, 6, 3, padding="same")),
    (lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, output_padding=1),
     lambda: torch.nn.ConvTranspose2d(4, 6, 3, stride=2, output_padding=1)),
    (lambda: nn.Linear(120, 84), lambda: torch.nn.Linear(120, 84)),
    (lambda: nn.BatchNorm2d(6), lambda: torch.nn.BatchNorm2d(6)),
    (lambda: nn.BatchNorm1d(6, affine=False, momentum=None),
     lambda: torch.nn.BatchNorm1d(6, affine=False, momentum=None)),
    (lambda: nn.MaxPool2d(3, 2, 1, ceil_mode=True), lambda: torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True)),
    (lambda: nn.AvgPool2d(3, 2, 1), lambda: torch.nn.AvgPool2d(3, 2, 1)),
    (lambda: nn.ReLU(), lambda: torch.nn.ReLU()),
    (lambda: nn.LeakyReLU(0.2), lambda: torch.nn.LeakyReLU(0.2)),
    (lambda: nn.Flatten(), lambda: torch.nn.Flatten()),
    (lambda: nn.Softmax(dim=1), lambda: torch.nn.Softmax(dim=1)),
    (lambda: nn.AdaptiveAvgPool2d((3, 4)), lambda: torch.nn.AdaptiveAvgPool2d((3, 4))),
])
def test_repr_like_torch(ours, theirs):
    assert repr(ours()) == repr(theirs())


def test_conv2d_algorithm_reaches_the_op_and_its_repr(rng):
    x = rng.standard_normal((2, 32, 8, 8)).astype(np.float32)
    layers = {alg: nn.Conv2d(32, 32, 3, padding=1, rng=0, algorithm=alg) for alg in ("im2col", "winograd")}
    assert repr(layers["winograd"]) == "Conv2d(32, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), " \
                                       "algorithm=winograd)"
    outs = {alg: layer(st.Tensor(x)).data for alg, layer in layers.items()}
    assert not np.array_equal(outs["im2col"], outs["winograd"])       # two computations ...
    exact = as_float64(layers["im2col"])(st.Tensor(x, dtype=np.float64)).data
    for out in outs.values():                                        # ... one result (float64's)
        np.testing.assert_allclose(out, exact, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="algorithm='winograd' needs dilation 1"):
        nn.Conv2d(4, 4, 3, dilation=2, algorithm="winograd")(st.Tensor(np.zeros((1, 4, 9, 9), np.float32)))


def test_sequential_repr():
    model = nn.Sequential(nn.Conv2d(1, 6, 5), nn.MaxPool2d(2), nn.Dropout(0.5))
    assert repr(model) == ("Sequential(\n"
                           "  (0): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))\n"
                           "  (1): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)\n"
                           "  (2): Dropout(p=0.5)\n"
                           ")")


def test_layers_take_arrays_and_keep_float64(rng):
    x = randn(rng, 2, 12)
    for layer in (nn.Unflatten(1, (3, 4)), nn.Linear(12, 3), nn.ReLU(), nn.Softmax()):
        assert isinstance(layer(x), st.Tensor)
    # a float64 model (for gradient checks) stays float64
    layer = nn.Linear(12, 3, rng=0)
    for p in layer.parameters():
        p.data = p.data.astype(np.float64)
    assert layer(x.astype(np.float64)).dtype == np.float64
