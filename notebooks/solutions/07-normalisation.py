"""Solutions to the exercises of notebook 7 (normalisation). Run: python notebooks/solutions/07-normalisation.py"""
import numpy as np

import striate as st
import striate.functional as F
from striate import nn, optim
from striate.data import MNIST, DataLoader
from striate.train import evaluate, preprocess, train_step


# 1. per channel: mean and variance over the batch and all positions (the biased variance, as in training)
def batch_norm_train(x, gamma, beta, eps=1e-5):
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    var = x.var(axis=(0, 2, 3), keepdims=True)
    return gamma.reshape(1, -1, 1, 1) * (x - mean) / np.sqrt(var + eps) + beta.reshape(1, -1, 1, 1)


rng = np.random.default_rng(4)
for shape in [(8, 3, 5, 5), (2, 4, 7, 3)]:
    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    C = shape[1]
    gamma, beta = rng.standard_normal(C).astype(np.float32), rng.standard_normal(C).astype(np.float32)
    want = F.batch_norm(x, np.zeros(C, np.float32), np.ones(C, np.float32), gamma, beta, training=True).numpy()
    assert np.allclose(batch_norm_train(x, gamma, beta), want, atol=1e-4)
print("exercise 1: batch_norm_train agrees with F.batch_norm")

# 2. in eval mode a fresh layer uses its running statistics, mean 0 and variance 1: it changes nothing.
#    After many training-mode passes the running statistics approach the batch's, and eval normalises.
rng = np.random.default_rng(0)
x = (rng.standard_normal((32, 3, 8, 8)) * np.array([0.1, 5.0, 1.0]).reshape(1, 3, 1, 1)
     + np.array([2.0, -3.0, 0.0]).reshape(1, 3, 1, 1)).astype(np.float32)
bn = nn.BatchNorm2d(3)
bn.eval()
print("exercise 2: fresh layer in eval mode, output means", bn(st.Tensor(x)).numpy().mean(axis=(0, 2, 3)))
bn.train()
for _ in range(100):
    bn(st.Tensor(x))
bn.eval()
y = bn(st.Tensor(x)).numpy()
print("            after 100 training passes: means", y.mean(axis=(0, 2, 3)), "stds", y.std(axis=(0, 2, 3)))
assert np.allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-3)

# 3. without batch norm at lr 0.2, with He initialisation
train, test = MNIST(train=True), MNIST(train=False)
prep = preprocess("mnist")
loader = DataLoader((train.images[:6000], train.labels[:6000]), batch_size=64, shuffle=True, seed=0, transform=prep)
test_loader = DataLoader((test.images[:1000], test.labels[:1000]), batch_size=500, transform=prep)
gen = np.random.default_rng(0)
model = nn.Sequential(nn.Conv2d(1, 8, 5, rng=gen), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 5, rng=gen), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Flatten(), nn.Linear(256, 64, rng=gen), nn.ReLU(), nn.Linear(64, 10, rng=gen))
for layer in model:
    if isinstance(layer, (nn.Conv2d, nn.Linear)):
        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu", rng=gen)
        nn.init.zeros_(layer.bias)
opt = optim.SGD(model.parameters(), lr=0.2, momentum=0.9, nesterov=True)
for epoch in range(2):
    for xb, yb in loader:
        train_step(model, F.cross_entropy, opt, xb, yb)
print(f"exercise 3: no batch norm, He initialisation, lr 0.2: test accuracy {100 * evaluate(model, test_loader)['acc']:.1f}%")
# The initialisation alone does not make lr 0.2 safe: the step size is still too large for a network
# whose layers' scales are free to grow; batch norm keeps them fixed.
