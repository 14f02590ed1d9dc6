"""The problem API: a LIBSVM-family fit as batched binary-form dual problems, step by step.

Every kernel estimator (``SVC``, ``NuSVC``, ``SVR``, ``NuSVR``, ``OneClassSVM``) fits in four steps,
and code that needs to take a fit apart calls them here rather than the estimators' own methods:
``GridSearchCV`` (many estimators' problems on one fold solved as one batch), the kernel
LightningModules (the problems stepped by the decomposition solver, one outer iteration per
training step, over several processes) and sharded fits::

    prepared = prepare(est, X)                                       # checks; kernel; X in its dtype
    problems, context = make_problems(est, prepared.X, y, sample_weight)
    result = solve(est, prepared, problems)                          # one-vs-one blocks, memory plan
    set_solution(est, prepared, result, problems, context)           # fitted attributes, fit_status_

``stack`` joins several estimators' problems over the same rows into one batch; ``decisions``
gives fitted estimators' decision values from one kernel block against their support vectors,
``decision_values`` those of a set of support vectors and coefficients.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from torchsvm._sparse import Matrix
from torchsvm.distributed import LOCAL, Collectives
from torchsvm.kernels import KernelFn
from torchsvm.solvers.dual import DualResult
from torchsvm.svm._base import BaseLibSVM, DualProblems, decision_values
from torchsvm.svm._classes import _ovr_from_ovo

__all__ = ["BaseLibSVM", "DualProblems", "Prepared", "batched_params", "check_params", "decision_values", "decisions",
           "kernel_dtype", "make_problems", "ovr_from_ovo", "predict_from_decision", "prepare", "set_solution", "solve",
           "stack"]


class Prepared(NamedTuple):
    X: Matrix  # the training rows (float32 if X was, else float64; the Gram matrix when precomputed)
    kernel: KernelFn | None  # k(A, Z) with gamma resolved on X; None for a precomputed kernel
    X_kernel: Matrix  # X in the kernel's dtype (the solvers' input)
    gram: Tensor | None  # the Gram matrix when precomputed


def check_params(est: BaseLibSVM) -> None:
    """Validate ``est``'s parameters as ``fit`` does (scikit-learn's constraints and messages)."""
    est._check_params()


def prepare(est: BaseLibSVM, X: Any) -> Prepared:
    """Check ``est``'s parameters and ``X``, resolve the kernel on ``X``; sets the input attributes
    (``n_features_in_``, ``shape_fit_``, ``_gamma``)."""
    check_params(est)
    return Prepared(*est._prepare(X))


def make_problems(est: BaseLibSVM, X: Matrix, y: Any, sample_weight: Any = None,
                  shards: Collectives = LOCAL) -> tuple[DualProblems, Any]:
    """``est``'s binary-form problems on the rows ``X`` (this rank's, with ``shards``) and what
    :func:`set_solution` needs back (class indices for the classifiers)."""
    return est._fit_problems(X, y, sample_weight, shards)


def solve(est: BaseLibSVM, prepared: Prepared, problems: DualProblems) -> DualResult:
    """Solve ``problems`` with ``est``'s solver settings (SMO on Gram blocks within the memory budget,
    else the decomposition solver; one-vs-one pairs on their own rows)."""
    return est._solve(prepared.X_kernel, prepared.kernel, prepared.gram, problems)


def set_solution(est: BaseLibSVM, prepared: Prepared, result: DualResult, problems: DualProblems,
                 context: Any) -> None:
    """The fitted attributes from ``result``; ``fit_status_`` and the non-convergence warning."""
    est._finish(result, stacklevel=4)  # the warning points at the caller of fit (or of this function's caller)
    est._set_solution(prepared.X, prepared.kernel, result, problems, context)


def batched_params(est: BaseLibSVM) -> tuple[str, ...]:
    """The parameters that change ``est``'s problems but not its kernel: candidates differing only in them
    are solved as one batch (a grid over C shares one Gram matrix)."""
    return est._problem_params


def kernel_dtype(est: BaseLibSVM, device: torch.device, n_rows: int) -> torch.dtype:
    """The dtype ``est`` computes kernel values in for ``n_rows`` training rows on ``device``."""
    return est._kernel_dtype(device, n_rows)


def stack(parts: list[DualProblems]) -> DualProblems:
    """Problems of several estimators over the same rows as one batch (defaults of p and alpha0 made
    explicit; one-vs-one problems padded to one width, the padding of C = 0)."""
    first = parts[0]
    width = max(q.Y.shape[1] for q in parts)

    def cat(tensors: list[Tensor], fill: float) -> Tensor:
        return torch.cat([torch.nn.functional.pad(t, (0, width - t.shape[1]), value=fill) for t in tensors])

    p = None if all(q.p is None for q in parts) else cat([-torch.ones_like(q.Y) if q.p is None else q.p for q in parts], 0.0)
    a0 = None if all(q.alpha0 is None for q in parts) else cat(
        [torch.zeros_like(q.Y) if q.alpha0 is None else q.alpha0 for q in parts], 0.0)
    index = None if first.row_index is None else cat([q.row_index for q in parts if q.row_index is not None], 0)
    return DualProblems(cat([q.Y for q in parts], -1.0), cat([q.C for q in parts], 0.0), p, a0, first.rows, None,
                        first.nu, index)


def decisions(models: list[BaseLibSVM], K: Tensor, support_rows: np.ndarray) -> list[Tensor]:
    """Each fitted model's decision values from ``K`` ``(n, n_rows)``, the kernel of the test rows against
    the training rows ``support_rows`` (sorted; covering every model's ``support_``)."""
    return [m._combine(K[:, torch.as_tensor(np.searchsorted(support_rows, m.support_), device=K.device)]) + m._b
            for m in models]


def predict_from_decision(est: BaseLibSVM, decision: Tensor) -> Any:
    """``est.predict``'s output from its decision values (labels for the classifiers)."""
    return est._predict_from_decision(decision)


def ovr_from_ovo(decision: Tensor, n_classes: int) -> Tensor:
    """One-vs-one decision values ``(n, k (k - 1) / 2)`` in scikit-learn's one-vs-rest shape ``(n, k)``
    (votes plus confidences squashed to (-1/3, 1/3))."""
    return _ovr_from_ovo(decision, n_classes)
