import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from striate.data import MNIST, DatasetNotFoundError, FashionMNIST


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


@pytest.fixture(scope="session")
def real_data():
    """Skip unless MNIST and Fashion-MNIST are both on disk (nothing is downloaded)."""
    try:
        for cls in (MNIST, FashionMNIST):
            for train in (True, False):
                cls(train=train, download=False)
    except DatasetNotFoundError as exc:
        pytest.skip(f"MNIST and Fashion-MNIST are not on disk: {str(exc).splitlines()[0]}")
