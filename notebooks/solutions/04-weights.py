"""Solutions to the exercises of notebook 4 (weights). Run: python notebooks/solutions/04-weights.py"""
import numpy as np

import striate as st
import striate.functional as F
from striate import filters, optim
from striate.data import MNIST, DataLoader
from striate.train import fit, preprocess

# 1. horizontal edges, bright above and dark below positive: the top row minus the bottom row (Sobel's
#    weights 1, 2, 1 across); filters.get_kernel("sobel-y") is the bottom row minus the top row
my_kernel = np.array([[1, 2, 1],
                      [0, 0, 0],
                      [-1, -2, -1]], dtype=np.float32)


# 2. a box blur: every weight 1/size², zero padding (size − 1) / 2 to keep the size
def blur(image, size):
    kernel = np.full((1, 1, size, size), 1.0 / size ** 2, dtype=np.float32)
    x = np.asarray(image, dtype=np.float32)[None, None]
    return F.conv2d(x, kernel, padding=(size - 1) // 2).numpy()[0, 0]


rng = np.random.default_rng(3)
for image in [rng.random((9, 11)).astype(np.float32) for _ in range(3)]:
    assert np.allclose(filters.apply(image, my_kernel), filters.apply(image, -filters.get_kernel("sobel-y")))
    for size, name in [(3, "box-3"), (5, "box-5")]:
        assert np.allclose(blur(image, size), filters.apply(image, name), atol=1e-5)

# 3. a learning rate 100 times smaller: the kernels hardly move in one epoch
train = MNIST(train=True)
for lr in (0.05, 0.0005):
    st.manual_seed(0)
    model = st.models.get("lenet5-modern")
    before = model.c1.weight.numpy().copy()
    prep = preprocess("mnist", model.input_shape)
    loader = DataLoader((train.images[:6000], train.labels[:6000]), batch_size=64, shuffle=True, seed=0,
                        transform=prep)
    fit(model, F.cross_entropy, optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True), loader,
        epochs=1, progress=False, log=lambda line: None)
    moved = np.abs(model.c1.weight.numpy() - before).mean()
    print(f"lr {lr}: mean change of a first-layer weight {moved:.4f} (mean size {np.abs(before).mean():.4f})")
print("all checks passed")
