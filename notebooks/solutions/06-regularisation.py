"""Solutions to the exercises of notebook 6 (regularisation). Run: python notebooks/solutions/06-regularisation.py"""
import numpy as np

import striate as st
import striate.functional as F
from striate import nn, optim
from striate.data import FashionMNIST, DataLoader
from striate.train import evaluate, preprocess, train_step


# 1. inverted dropout: keep with probability 1 − p, scale the kept values by 1 / (1 − p)
def my_dropout(x, p, rng):
    keep = rng.random(x.shape, dtype=x.dtype) >= x.dtype.type(p)
    return x * keep / (1 - p)


x = np.random.default_rng(5).standard_normal((6, 7)).astype(np.float32)
for p in (0.1, 0.5, 0.75):
    assert np.allclose(my_dropout(x, p, np.random.default_rng(7)),
                       F.dropout(x, p=p, training=True, rng=np.random.default_rng(7)).numpy())
print("exercise 1: my_dropout agrees with F.dropout")


# 2 and 3: more data, and other dropout rates
def make_cnn(p):
    rng = np.random.default_rng(0)
    dropout = [nn.Dropout(p)] if p > 0 else []
    return nn.Sequential(nn.Conv2d(1, 16, 5, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 5, rng=rng), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(512, 256, rng=rng), nn.ReLU(), *dropout,
                         nn.Linear(256, 128, rng=rng), nn.ReLU(), *dropout, nn.Linear(128, 10, rng=rng))


def gap(n, p, epochs):
    train, test = FashionMNIST(train=True), FashionMNIST(train=False)
    prep = preprocess("fashion-mnist")
    loader = DataLoader((train.images[:n], train.labels[:n]), batch_size=64, shuffle=True, seed=0, transform=prep)
    st.manual_seed(0)
    model = make_cnn(p)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    for _ in range(epochs):
        model.train()
        for xb, yb in loader:
            train_step(model, F.cross_entropy, opt, xb, yb)
    tr = evaluate(model, DataLoader((train.images[:2000], train.labels[:2000]), batch_size=500, transform=prep))
    te = evaluate(model, DataLoader((test.images[:1000], test.labels[:1000]), batch_size=500, transform=prep))
    return tr["acc"], te["acc"]


for n, p, epochs in [(6000, 0.0, 3), (1000, 0.2, 12), (1000, 0.8, 12)]:
    tr, te = gap(n, p, epochs)
    print(f"{n:>6,} images, dropout {p}: train {100 * tr:.1f}%, test {100 * te:.1f}%, gap {100 * (tr - te):.1f} points")
# With 6,000 images the gap without dropout shrinks to a few points: more data is the best regulariser.
# Dropout 0.8 keeps the gap smallest but also learns slowest.
