"""One-vs-one problems on their own rows: their Gram blocks packed into groups within a memory budget,
built from each class's own block (cached) and the pair's cross block, solved as batched SMO; a pair
too large for the budget goes to the decomposition solver."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from sklearn.exceptions import ConvergenceWarning
from torch import Tensor

from torchsvm._sparse import Matrix, SparseRows
from torchsvm.solvers.dual import DualInfo, DualResult, decomposition_dual, device_memory_guard, smo_dual

if TYPE_CHECKING:
    from torchsvm.svm._inputs import DualProblems

__all__ = ["BlockCache", "BlockSettings", "by_segments", "gram_blocks", "pack_blocks", "solve_blocks"]


class BlockSettings(NamedTuple):
    tol: float
    max_iter: int | None
    working_set_size: int
    batched_kernel: bool  # the kernel takes (B, n, D) row sets (the built-in kernels)


def solve_blocks(Xt: Matrix, K: Tensor | None, problems: DualProblems, kernel: Any, budget: float,
                 settings: BlockSettings) -> DualResult:
    """Problems on their own rows (``row_index``: one-vs-one): those whose Gram blocks fit in ``budget`` bytes
    together are solved as one batched SMO on their padded blocks (padding has C = 0), computed from
    their rows or gathered from K when it is at hand; a problem too large for the budget goes to the
    decomposition solver. ``alpha`` comes back over each problem's own rows, as ``row_index`` lists them."""
    Y, Cb, index = problems.Y, problems.C, problems.row_index
    assert index is not None  # the block solver is for problems on their own rows
    P = Y.shape[0]
    valid = Cb > 0  # each problem's rows come first, then its padding
    sizes = valid.sum(1).tolist()
    itemsize = Xt.element_size()
    alpha = torch.zeros_like(Y)
    b, r, gap = (torch.zeros(P, dtype=Y.dtype, device=Y.device) for _ in range(3))
    n_iter = torch.zeros(P, dtype=torch.long, device=Y.device)
    opts: dict[str, Any] = dict(tol=settings.tol, max_iter=settings.max_iter, dtype=Y.dtype, nu=problems.nu)
    # A quarter of the budget keeps each class's own block (it serves the class's k - 1 pairs).
    diagonal_blocks, budget = BlockCache(budget / 4), budget * 3 / 4
    buffer: Tensor | None = None  # the groups' blocks, reused: fresh memory costs a page fault per 4 KB
    for group in pack_blocks(sizes, itemsize, budget):
        n_max = max(sizes[p] for p in group)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # fit warns once
            if n_max * n_max * itemsize > budget:  # one problem, too large for memory
                buffer = None  # the decomposition solver's kernel rows take its place
                p, v = group[0], valid[group[0]]
                res = decomposition_dual(Xt[index[p, v]], Y[p, v], Cb[p, v], kernel,
                                         working_set_size=settings.working_set_size,
                                         p=None if problems.p is None else problems.p[p, v],
                                         alpha0=None if problems.alpha0 is None else problems.alpha0[p, v].unsqueeze(0),
                                         **opts)
                alpha[p, v], b[p] = res.alpha[0], res.b[0]
                r[p] = 1.0 if res.r is None else res.r[0]
                gap[p], n_iter[p] = res.info.kkt_violation[0], res.info.problem_iters[0]
                continue
            grp = torch.as_tensor(group, device=Y.device)
            # Problems on the same rows (one pair at several C values) share one block: equal rows of
            # (index, sign of y) with the padding marked, so equal rows mean equal row sets and sides.
            signed = torch.where(valid[grp, :n_max], (index[grp, :n_max] + 1) * Y[grp, :n_max].sign().long(), 0)
            unique, block_of = torch.unique(signed, dim=0, return_inverse=True)
            with device_memory_guard(f"{len(unique)} one-vs-one Gram blocks of {n_max} x {n_max}",
                                     "Use a smaller cache_size, solver='decomposition' or device='cpu'."):
                size = len(unique) * n_max * n_max
                if buffer is None or buffer.numel() < size:
                    buffer = None  # freed before the larger one is taken
                    buffer = torch.empty(size, dtype=Xt.dtype if K is None else K.dtype, device=Y.device)
                K_g = gram_blocks(Xt, K, kernel, unique, diagonal_blocks, buffer[:size].view(len(unique), n_max, n_max),
                                    settings.batched_kernel)

            def cut(T: Tensor | None) -> Tensor | None:  # the group's first n_max variables
                return None if T is None else T[grp, :n_max]  # noqa: B023 (called in this iteration)

            res = smo_dual(K_g, Y[grp, :n_max], Cb[grp, :n_max], p=cut(problems.p), alpha0=cut(problems.alpha0),
                           kernel_index=block_of, **opts)
            del K_g  # the buffer alone holds the blocks (freed whole when a larger one is needed)
        alpha[grp, :n_max] = res.alpha
        b[grp], gap[grp], n_iter[grp] = res.b, res.info.kkt_violation, res.info.problem_iters
        if res.r is not None:
            r[grp] = res.r
    info = DualInfo(bool((gap <= settings.tol).all()), int(n_iter.max()), gap, n_iter)
    return DualResult(alpha, b, info, r if problems.nu else None)


def gram_blocks(X: Matrix, K: Tensor | None, kernel: Any, signed: Tensor, cache: BlockCache, out: Tensor,
                batched_kernel: bool = False) -> Tensor:
    """``out`` ``(U, n, n)`` filled with the Gram block of each problem's rows, ``signed`` ``(U, n)`` = (row + 1) * y (0:
    padding). Gathered from K when given. Else a pair's block is four slices, its rows being its +1
    class's then its -1 class's: the two classes' own blocks (from ``cache``: a class's block serves
    its k - 1 pairs) and their cross block, computed once and mirrored. Rows in another layout are
    computed whole, and so are small blocks (:func:`by_segments`), batched when ``batched_kernel`` (the
    kernel takes ``(B, n, D)`` row sets) on dense rows. Padding rows get row 0's values (their C is 0:
    they never move)."""
    U, n = signed.shape
    index = (signed.abs() - 1).clamp_min(0)
    if K is not None:
        chunk = max(1, 2**24 // (n * n))  # only the blocks' n x n values (not n rows of K first)
        for start in range(0, U, chunk):
            I = index[start : start + chunk]
            out[start : start + chunk] = K[I.unsqueeze(2), I.unsqueeze(1)]
        return out
    segments = by_segments(n, X.shape[1])

    def block(rows: Tensor) -> Tensor:  # one class's own block
        return kernel(X[rows], X[rows])

    if not segments and batched_kernel and not isinstance(X, SparseRows):
        # Small blocks (many classes): Python's cost per call dominates, so whole blocks a batch at a
        # time (the built-in kernels take (B, n, D) row sets), each chunk's temporaries within ~128 MB.
        chunk = max(1, 2**24 // (n * n + n * X.shape[1]))
        for start in range(0, U, chunk):
            rows = X[index[start : start + chunk].reshape(-1)].reshape(-1, n, X.shape[1])
            out[start : start + chunk] = kernel(rows, rows)
        return out
    n_pos, n_neg = (signed > 0).sum(1).tolist(), (signed < 0).sum(1).tolist()
    for u in range(U):
        a, m = n_pos[u], n_pos[u] + n_neg[u]
        I = index[u]
        if not segments or not (bool((signed[u, :a] > 0).all()) and bool((signed[u, a:m] < 0).all())):
            out[u] = kernel(X[I], X[I])  # small, or not two class segments
            continue
        A, B = I[:a], I[a:m]
        out[u, :a, :a] = cache.get(A, functools.partial(block, A))
        out[u, a:m, a:m] = cache.get(B, functools.partial(block, B))
        cross = kernel(X[A], X[B])
        out[u, :a, a:m] = cross
        _copy_transposed(out[u, a:m, :a], cross)
        if m < n:  # padding: every padding row is row 0, so one kernel row serves them all
            pad = kernel(X[I[m : m + 1]], X[I])
            out[u, m:] = pad
            out[u, :, m:] = pad.T
    return out


def _copy_transposed(dst: Tensor, src: Tensor, strip: int = 256) -> None:
    """``dst[:] = src.T`` by strips of ``src``'s rows: a whole-matrix transposed copy reads or writes
    one element per cache line (slower several times over on a block of thousands of rows)."""
    for start in range(0, src.shape[0], strip):
        dst[:, start : start + strip] = src[start : start + strip].T


# -- the fitted model ------------------------------------------------------------------


# One-vs-one Gram blocks of n rows of D features are built from their classes' blocks (see gram_blocks)
# when n^2 D exceeds this: half the kernel work then outweighs three kernel calls per block instead of one
# batched call.
_SEGMENTS_FROM = 2**24


def by_segments(n: int, n_features: int) -> bool:
    """Whether a one-vs-one block of ``n`` rows of ``n_features`` is built from its classes' blocks."""
    return n * n * n_features > _SEGMENTS_FROM


class BlockCache:
    """Gram blocks of row sets, kept while they fit in ``max_bytes`` (the least recently used dropped first)."""

    def __init__(self, max_bytes: float) -> None:
        self.max_bytes = max_bytes
        self.blocks: dict[bytes, Tensor] = {}

    def get(self, rows: Tensor, compute: Callable[[], Tensor]) -> Tensor:
        key = rows.cpu().numpy().tobytes()
        block = self.blocks.pop(key, None)
        if block is not None:
            self.blocks[key] = block  # most recently used last: the least recently used leaves first
        else:
            block = compute()
            size = block.numel() * block.element_size()
            while self.blocks and sum(b.numel() * b.element_size() for b in self.blocks.values()) + size > self.max_bytes:
                self.blocks.pop(next(iter(self.blocks)))
            if size <= self.max_bytes:
                self.blocks[key] = block
        return block


def pack_blocks(sizes: list[int], itemsize: int, budget: float) -> list[list[int]]:
    """Group problems (of ``sizes`` rows) in order so that each group's padded Gram blocks fit in
    ``budget`` bytes; a problem too large alone forms its own group (the decomposition solver's)."""
    groups: list[list[int]] = []
    current: list[int] = []
    largest = 0  # of current
    for p, size in enumerate(sizes):
        if size**2 * itemsize > budget:
            groups.append([p])
            continue
        if current and (len(current) + 1) * max(largest, size) ** 2 * itemsize > budget:
            groups.append(current)
            current, largest = [], 0
        current.append(p)
        largest = max(largest, size)
    if current:
        groups.append(current)
    return groups
