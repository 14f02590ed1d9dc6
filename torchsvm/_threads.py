"""How many threads a fit may use: small fits run on the calling thread alone."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

import torch

__all__ = ["SMALL_ROWS", "one_thread_up_to", "rows_of", "run_problems", "small_fit_threads"]

T = TypeVar("T")

# A fit of at most this many rows is small: its problems are solved one after the other on the calling thread
# (torchsvm.svm.problems._solve_on_host) and torch's operations run on it too (small_fit_threads).
SMALL_ROWS = 1000


@contextmanager
def one_thread_up_to(work: float, limit: float) -> Iterator[None]:
    """Hold torch's intra-op threads at one while ``work`` is at most ``limit`` (restored after); see
    :func:`small_fit_threads` for why. The setting is the process's: a concurrent call in another thread of the
    same process runs on one thread meanwhile."""
    before = torch.get_num_threads()
    if before == 1 or not work <= limit:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def small_fit_threads(X: Any) -> AbstractContextManager[None]:
    """Hold torch's intra-op threads at one while a fit on ``X`` of at most ``SMALL_ROWS`` rows runs (restored after).

    torch spreads an operation on a few thousand numbers over its OpenMP threads; on a machine whose other cores
    are busy, each such region waits for a thread the OS has descheduled (benchmarks/results/busy-cpu-*), and the
    work is too small to gain from threads anyway."""
    return one_thread_up_to(rows_of(X), SMALL_ROWS)


def rows_of(X: Any) -> float:
    """The rows of an array-like (arrays, sparse matrices, tensors, data frames, lists); inf where there is no
    telling (the fit's own checks say what is wrong with X)."""
    shape = getattr(X, "shape", None)
    try:
        return float(shape[0]) if shape is not None and len(shape) > 0 else float(len(X))
    except TypeError:
        return float("inf")


def run_problems(solve: Callable[[int], T], K: int) -> list[T]:
    """``[solve(k) for k in range(K)]`` over ``torch.get_num_threads()`` threads (the compiled loops release
    the GIL): a pool rather than numba's static prange, since problems take unequal times and a free
    thread takes the next."""
    workers = min(K, torch.get_num_threads())
    if workers <= 1:
        return [solve(k) for k in range(K)]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(solve, range(K)))
