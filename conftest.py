"""The names every docstring example may use without importing them: ``np``, ``st``, ``F``, ``nn``, ``optim``.

They are the library's conventional aliases (``import striate as st``, ``import striate.functional
as F``, ``from striate import nn, optim``), so each example shows the call itself; run the examples
with ``pytest --doctest-modules striate``.
"""
import numpy as np
import pytest

import striate as st
import striate.functional as F
from striate import nn, optim


@pytest.fixture(scope="session", autouse=True)
def _doctest_names(doctest_namespace):
    doctest_namespace.update(np=np, st=st, F=F, nn=nn, optim=optim)
