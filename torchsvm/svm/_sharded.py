"""A kernel SVC fit over rows sharded across the ranks of a process group (``SVC(distributed=True)``).

Each rank brings its own rows; the problems are solved by
:class:`torchsvm.solvers.sharded.ShardedDecompositionSolver` through
:class:`torchsvm.solvers.stepped.DecompositionProblems` (binary and one-vs-rest: one batched solve
over all rows; one-vs-one: a solver per pair, each on its two classes' rows of every rank), and
the support vectors are gathered so that every rank holds the same fitted model.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from torchsvm.distributed import Collectives, gather_rows
from torchsvm.solvers.dual import DualResult, KernelFn
from torchsvm.solvers.stepped import DecompositionProblems
from torchsvm.svm._base import DualProblems

__all__ = ["solve_sharded", "gather_support"]


def solve_sharded(Xk: Tensor, kernel: KernelFn, problems: DualProblems, shards: Collectives,
                  working_set_size: int, tol: float, max_iter: int | None) -> DualResult:
    """Solve the problems over every rank's rows; ``alpha`` ``(P, N_r)`` is this rank's, the rest global."""
    steps = DecompositionProblems(Xk, problems.Y, problems.C, kernel, p=problems.p, members=problems.members,
                                  working_set_size=working_set_size, tol=tol, dtype=problems.Y.dtype, shards=shards)
    for _ in range(steps.default_max_iter() if max_iter is None else max_iter):
        if steps.step():
            break
    return steps.result()


def gather_support(shards: Collectives, X: Tensor, y_idx: np.ndarray, coef: Tensor,
                   first: int) -> tuple[Tensor, np.ndarray, Tensor, np.ndarray]:
    """Every rank's support vectors, in rank order: ``(rows (n_SV, D), class indices, coef (P, n_SV),
    indices in the concatenation of the shards)``. ``coef`` ``(P, N_r)``; ``first`` is this rank's first row."""
    local = (coef != 0).any(0).nonzero().squeeze(1)
    P, D = coef.shape[0], X.shape[1]
    # One float64 record per support vector: its features, coefficients, class and global index.
    record = torch.cat([X[local].to(torch.float64), coef[:, local].T.to(torch.float64),
                        torch.as_tensor(y_idx, device=X.device)[local].unsqueeze(1).to(torch.float64),
                        (local + first).unsqueeze(1).to(torch.float64)], 1)
    every, _ = gather_rows(shards, record)
    X_sv, coef_sv = every[:, :D].to(X.dtype), every[:, D : D + P].T
    return X_sv, every[:, D + P].long().cpu().numpy(), coef_sv, every[:, D + P + 1].long().cpu().numpy()
