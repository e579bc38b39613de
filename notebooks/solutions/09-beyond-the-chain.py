"""Solutions to the exercises of notebook 9 (beyond the chain). Run: python notebooks/solutions/09-beyond-the-chain.py"""
import numpy as np

import striate as st
import striate.functional as F
from striate import optim
from striate.data import MNIST, DataLoader, RandomTranslate, normalize, translate, MNIST_MEAN, MNIST_STD
from striate.experiments.fcn import FCN
from striate.train import fit, preprocess


# 1. every per-channel response r[k, c] = x[:, c] ⋆ w[k, c] with one grouped convolution, then fuse
def fuse(x, weight, fusion):
    N, C = x.shape[:2]
    K = weight.shape[0]
    # repeat the input K times along channels so that group k·C + c reads channel c with slice w[k, c]
    xs = np.tile(x, (1, K, 1, 1))                                         # (N, K·C, H, W)
    r = F.conv2d(xs, weight.reshape(K * C, 1, *weight.shape[2:]), groups=K * C).numpy()   # (N, K·C, OH, OW)
    if fusion == "concat":
        return r                                                          # output k·C + c holds r[k, c]
    r = r.reshape(N, K, C, *r.shape[2:])
    return r.sum(axis=2) if fusion == "sum" else r.prod(axis=2)


rng = np.random.default_rng(6)
x = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
for fusion in ("sum", "concat", "product"):
    assert np.allclose(fuse(x, w, fusion), F.conv2d_fused(x, w, fusion=fusion).numpy(), atol=1e-4)
print("exercise 1: fuse agrees with F.conv2d_fused")

# 2. two digits side by side: the logits average the whole image, the score maps keep both
train, test = MNIST(train=True), MNIST(train=False)
st.manual_seed(0)
model = FCN(rng=np.random.default_rng(0))
loader = DataLoader((train.images[:6000], train.labels[:6000]), batch_size=64, shuffle=True, seed=0,
                    transform=preprocess("mnist", augment=RandomTranslate(2)))
fit(model, F.cross_entropy, optim.Adam(model.parameters(), lr=0.003), loader, epochs=2, progress=False,
    log=lambda line: None)
pair = np.concatenate([test.images[0], test.images[1]], axis=1)[None, None].astype(np.float32) / 255  # (1, 1, 28, 56)
model.eval()
with st.no_grad():
    x = normalize(pair, MNIST_MEAN, MNIST_STD)
    logits = model(x).numpy()[0]
    maps = model.score_map(x).numpy()[0]                                    # (10, 3, 7)
print(f"exercise 2: digits {test.labels[0]} and {test.labels[1]}; the logits' top two classes "
      f"{np.argsort(logits)[::-1][:2].tolist()}; the score map's answer per column: "
      f"{maps.mean(axis=1).argmax(axis=0).tolist()} (left columns: the first digit, right: the second)")

# 3. the MLP trained on shifted digits
images = test.images[:2000].astype(np.float32)[:, None] / 255
for name, augment in [("MLP", False), ("MLP, shifts in training", True)]:
    net = st.models.get("mlp", rng=np.random.default_rng(0))
    loader = DataLoader((train.images[:10000], train.labels[:10000]), batch_size=64, shuffle=True, seed=0,
                        transform=preprocess("mnist", net.input_shape, augment=augment))
    fit(net, F.cross_entropy, optim.SGD(net.parameters(), lr=0.02, momentum=0.9, nesterov=True), loader, epochs=2,
        progress=False, log=lambda line: None)
    prep = preprocess("mnist", net.input_shape)
    accs = []
    for s in range(5):
        with st.no_grad():
            pred = net.eval()(prep(translate(images, np.tile([0, s], (len(images), 1))), None)).numpy().argmax(axis=1)
        accs.append(100 * (pred == test.labels[:2000]).mean())
    print(f"exercise 3: {name:>24}: " + "  ".join(f"{s} px {a:.1f}%" for s, a in enumerate(accs)))
# With shifts in training the MLP holds up far better at 2-4 pixels: the data, not only the architecture,
# decides how tolerant of shifts a network is (striate experiment shift measures the same).
