import numpy as np
import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(scope="session", autouse=True)
def one_blas_thread():
    """One BLAS thread for the whole suite.

    The suite's matrix products are small; with two OpenBLAS threads on a machine
    whose cores are shared with other programs they run many times slower.
    """
    with threadpool_limits(1, user_api="blas"):
        yield


@pytest.fixture
def rng(request):
    """A fresh generator per test, seeded from the test's name (reproducible, different per test)."""
    seed = sum(ord(c) * (i + 1) for i, c in enumerate(request.node.nodeid)) % (2 ** 32)
    return np.random.default_rng(seed)
