"""The end of a kernel SVC fit over rows sharded across the ranks of a process group
(``SVC(distributed=True)``): the support vectors gathered, so that every rank holds the same fitted model.

The fit itself is the estimators' one path (the functions of :mod:`torchsvm.svm.problems` with
the group's shards): each rank brings its own rows, and the problems are solved by
:class:`torchsvm.solvers.sharded.ShardedDecompositionSolver` through
:class:`torchsvm.solvers.stepped.DecompositionProblems` (binary and one-vs-rest: one batched solve
over all rows; one-vs-one: a solver per pair, each on its two classes' rows of every rank).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from torchsvm.distributed import Collectives, gather_rows

__all__ = ["gather_support"]


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
