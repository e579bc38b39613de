"""Solutions to the exercises of notebook 3 (pooling). Run: python notebooks/solutions/03-pooling.py"""
import numpy as np

import striate as st
import striate.functional as F


# 1. average pooling, k×k windows, stride k: cut the map into blocks and average each block
def avg_pool2d_numpy(x, k):
    N, C, H, W = x.shape
    H, W = H // k * k, W // k * k                             # drop what does not fill a window
    blocks = x[:, :, :H, :W].reshape(N, C, H // k, k, W // k, k)
    return blocks.mean(axis=(3, 5))


# 2. max pooling's backward: each window's gradient goes to its first maximum
def max_pool2d_backward(x, g, k):
    N, C, H, W = x.shape
    OH, OW = H // k, W // k
    blocks = x[:, :, :OH * k, :OW * k].reshape(N, C, OH, k, OW, k).transpose(0, 1, 2, 4, 3, 5)
    blocks = blocks.reshape(N, C, OH, OW, k * k)
    first = blocks.argmax(axis=-1)                            # argmax returns the first maximum
    dblocks = np.zeros_like(blocks)
    np.put_along_axis(dblocks, first[..., None], g[..., None], axis=-1)
    dx = np.zeros_like(x)
    dx[:, :, :OH * k, :OW * k] = dblocks.reshape(N, C, OH, OW, k, k).transpose(0, 1, 2, 4, 3, 5).reshape(
        N, C, OH * k, OW * k)
    return dx


rng = np.random.default_rng(2)
for shape, k in [((2, 3, 8, 8), 2), ((1, 2, 9, 7), 2), ((3, 1, 12, 12), 3)]:
    x = rng.standard_normal(shape).astype(np.float32)
    assert np.allclose(avg_pool2d_numpy(x, k), F.avg_pool2d(x, k).numpy(), atol=1e-5)
for shape, k in [((2, 3, 8, 8), 2), ((1, 2, 6, 9), 3)]:
    x0 = rng.integers(0, 4, shape).astype(np.float32)
    x = st.Tensor(x0, requires_grad=True)
    y = F.max_pool2d(x, k)
    g = rng.standard_normal(y.shape).astype(np.float32)
    (y * st.Tensor(g)).sum().backward()
    assert np.allclose(max_pool2d_backward(x0, g, k), x.grad)

# 3. overlapping 3×3 windows, stride 1, on the 4×4 map: four windows
fmap = np.array([[1, 3, 0, 0], [2, 4, 0, 1], [0, 0, 5, 2], [6, 0, 1, 1]], dtype=np.float32)
x = st.Tensor(fmap[None, None], requires_grad=True)
y = F.max_pool2d(x, 3, stride=1)
y.sum().backward()
print("outputs:\n", y.numpy()[0, 0], "\ngradient:\n", x.grad[0, 0])
# the 5 is the maximum of three of the four windows, so it collects 1 from each: 3; the 6 wins the fourth
assert x.grad[0, 0, 2, 2] == 3 and x.grad[0, 0, 3, 0] == 1 and x.grad.sum() == 4
print("all checks passed")
