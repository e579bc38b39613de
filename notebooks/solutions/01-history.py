"""Solutions to the exercises of notebook 1 (history). Run: python notebooks/solutions/01-history.py"""
from striate import nn
import striate as st
from striate.experiments import neocognitron as neo


# 1. parameters of a convolution: each of the K kernels reads C / groups maps of k×k weights, plus a bias
def conv_params(in_channels, out_channels, kernel_size, groups=1, bias=True):
    return out_channels * (in_channels // groups * kernel_size * kernel_size + (1 if bias else 0))


# 2. parameters of a dense layer: a weight from each input to each unit, plus a bias per unit
def dense_params(n_in, n_out):
    return n_out * (n_in + 1)


def check_exercise_1_2():
    cases = [(1, 6, 5, 1, True), (6, 16, 5, 1, True), (96, 256, 5, 2, True), (3, 8, 3, 1, False), (4, 4, 3, 4, True)]
    for c, k, size, g, b in cases:
        want = sum(p.size for p in nn.Conv2d(c, k, size, groups=g, bias=b).parameters())
        assert conv_params(c, k, size, groups=g, bias=b) == want
    for n, m in [(400, 120), (120, 84), (84, 10)]:
        assert dense_params(n, m) == sum(p.size for p in nn.Linear(n, m).parameters())


check_exercise_1_2()
modern = conv_params(1, 6, 5) + conv_params(6, 16, 5) + dense_params(400, 120) + dense_params(120, 84) \
    + dense_params(84, 10)
table = st.summary(st.models.get("lenet5-modern"), (1, 1, 32, 32), print_fn=None)
print(f"lenet5-modern by hand: {modern:,}; st.summary: {table.trainable_params:,}")
assert modern == table.trainable_params == 61_706

# 3. fewer rounds of self-organisation
for rounds in (1, 3, 20):
    result = neo.run_digits(rounds=rounds, seed=0, print_fn=None)
    print(f"rounds={rounds:>2}: each pattern its own cell: {result['distinct']}, "
          f"variants answered by their pattern's cell: {100 * result['agreement']:.0f}%")
