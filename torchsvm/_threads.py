"""How many threads a fit may use: small fits run on the calling thread alone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from sklearn.utils.validation import _num_samples

__all__ = ["SMALL_ROWS", "small_fit_threads"]

# A fit of at most this many rows is small: its problems are solved one after the other on the calling thread
# (torchsvm.svm.BaseLibSVM._solve_on_host) and torch's operations run on it too (small_fit_threads).
SMALL_ROWS = 1000


@contextmanager
def small_fit_threads(X: Any) -> Iterator[None]:
    """Hold torch's intra-op threads at one while a fit on ``X`` of at most ``SMALL_ROWS`` rows runs (restored after).

    torch spreads an operation on a few thousand numbers over its OpenMP threads; on a machine whose other cores
    are busy, each such region waits for a thread the OS has descheduled (an iris fit took 3.5x its time beside one
    CPU-bound process, and 1.05x on one thread), and the work is too small to gain from threads anyway. The
    setting is the process's (torch has no per-call one): a concurrent fit in another thread of the same process
    runs on one thread meanwhile."""
    before = torch.get_num_threads()
    try:
        small = _num_samples(X) <= SMALL_ROWS
    except TypeError:  # not array-like: the fit's own checks say so
        small = False
    if before == 1 or not small:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
