"""Solutions to the exercises of notebook 2 (convolution). Run: python notebooks/solutions/02-convolution.py"""
import numpy as np

import striate.functional as F
from striate import filters


# 1. the clearest convolution: pad, then one window per output position, times the kernel, summed
def conv2d_loops(image, kernel, stride=1, padding=0):
    image = np.pad(np.asarray(image, dtype=np.float64), padding)
    K = kernel.shape[0]
    H = (image.shape[0] - K) // stride + 1
    W = (image.shape[1] - K) // stride + 1
    out = np.zeros((H, W))
    for i in range(H):
        for j in range(W):
            window = image[i * stride:i * stride + K, j * stride:j * stride + K]
            out[i, j] = (window * kernel).sum()
    return out


# 2. the output size: a dilated kernel spans dilation·(K − 1) + 1 pixels
def output_size(H, K, P, S, dilation=1):
    return (H + 2 * P - (dilation * (K - 1) + 1)) // S + 1


# 3. a true convolution is a cross-correlation with the kernel turned by 180°
def true_convolution(image, kernel):
    turned = np.ascontiguousarray(kernel[::-1, ::-1])
    return F.conv2d(image[None, None].astype(np.float32), turned[None, None].astype(np.float32)).numpy()[0, 0]


rng = np.random.default_rng(1)
for H, W, K, S, P in [(7, 7, 3, 1, 0), (8, 9, 3, 2, 1), (10, 7, 5, 3, 2), (5, 5, 5, 1, 0)]:
    image, kernel = rng.standard_normal((H, W)), rng.standard_normal((K, K))
    want = F.conv2d(image[None, None], kernel[None, None], stride=S, padding=P).numpy()[0, 0]
    assert np.allclose(conv2d_loops(image, kernel, stride=S, padding=P), want, atol=1e-4)
for H, K, P, S, D in [(28, 5, 0, 1, 1), (28, 3, 1, 2, 1), (13, 3, 0, 1, 2), (32, 5, 2, 3, 3), (9, 4, 1, 2, 1)]:
    assert output_size(H, K, P, S, D) == F.conv2d(np.zeros((1, 1, H, H)), np.zeros((1, 1, K, K)), stride=S,
                                                  padding=P, dilation=D).shape[-1]
image = rng.random((12, 12)).astype(np.float32)
emboss = filters.get_kernel("emboss")
assert np.allclose(true_convolution(image, emboss), filters.convolve(image, emboss, padding="valid"), atol=1e-5)
# emboss turned by 180° swaps its negative (top-left) and positive (bottom-right) corners: the relief is
# lit from the opposite side
turned = filters.flip(emboss)
print("emboss:\n", emboss, "\nturned by 180°:\n", turned)
assert not np.allclose(true_convolution(image, emboss), filters.apply(image, emboss, padding="valid"))
print("all checks passed")
