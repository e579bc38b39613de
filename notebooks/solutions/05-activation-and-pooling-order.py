"""Solutions to the exercises of notebook 5 (activation and pooling order)."""
import time

import numpy as np

import striate.functional as F

POOLS = {"max": F.max_pool2d, "average": F.avg_pool2d, "sum": F.sum_pool2d, "min": F.min_pool2d,
         "L2": F.l2_pool2d}


# 1. compare both orders on random maps of both signs
def commutes(pool, act, seed=0):
    x = np.random.default_rng(seed).standard_normal((50, 3, 8, 8)).astype(np.float32)
    return bool(np.allclose(pool(act(x)).numpy(), act(pool(x)).numpy(), rtol=0, atol=1e-6))


for name, pool in POOLS.items():
    for act in (F.relu, F.tanh, F.sigmoid):
        assert commutes(lambda x: pool(x, 2), act) == (name in ("max", "min")), (name, act.__name__)
print("exercise 1: max and min pooling commute with ReLU, tanh and sigmoid; average, sum and L2 do not")


# 2. an activation that decreases somewhere: |x|. The window (−3, 1) has max 1, |1| = 1,
#    but the largest |x| in it is 3.
def absolute(x):
    return F.relu(x) + F.relu(-x)


window = np.array([[[[-3.0, 1.0]]]], dtype=np.float32)            # (1, 1, 1, 2)
a = F.max_pool2d(absolute(window), (1, 2)).numpy().item()
b = absolute(F.max_pool2d(window, (1, 2))).numpy().item()
print(f"exercise 2: max(|x|) = {a:g}, |max(x)| = {b:g}")
assert a != b and not commutes(lambda x: F.max_pool2d(x, 2), absolute)

# 3. the activation on a quarter of the values
big = np.random.default_rng(1).standard_normal((64, 16, 24, 24)).astype(np.float32)
small = F.max_pool2d(big, 2).numpy()
for label, arr in [("before pooling (64, 16, 24, 24)", big), ("after pooling (64, 16, 12, 12)", small)]:
    start = time.perf_counter()
    for _ in range(20):
        F.relu(arr)
    print(f"exercise 3: ReLU {label}: {1000 * (time.perf_counter() - start) / 20:.2f} ms")
