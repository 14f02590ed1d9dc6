"""The problem API: a LIBSVM-family fit as batched binary-form dual problems, step by step.

Every kernel estimator (``SVC``, ``NuSVC``, ``SVR``, ``NuSVR``, ``OneClassSVM``) fits in four steps
(its ``fit`` is these calls, in one process or sharded: ``shards``), and code that needs to take a fit
apart calls them here rather than the estimators' own methods: ``GridSearchCV`` (many estimators'
problems on one fold solved as one batch) and the kernel LightningModules (the problems stepped by
the decomposition solver, one outer iteration per training step, over several processes)::

    prepared = prepare(est, X)                                       # checks; kernel; X in its dtype
    problems, context = make_problems(est, prepared.X, y, sample_weight)
    result = solve(est, prepared, problems)                          # one-vs-one blocks, memory plan
    set_solution(est, prepared, result, problems, context)           # fitted attributes, fit_status_

``stepped`` gives the problems to a stepping decomposition solver instead of ``solve`` (one outer
iteration per call of its ``step``).

``as_tensor_2d`` converts X as the estimators' own ``fit`` and ``decision_function`` do. ``stack`` joins
several estimators' problems over the same rows into one batch; ``decisions`` gives fitted estimators'
decision values from one kernel block against their support vectors, ``decision_values`` those of a
set of support vectors and coefficients. A fitted model as plain data is a :class:`Solution`
(``est.to_solution()``, ``type(est).from_solution(solution, **params)``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from torchsvm._sparse import Matrix
from torchsvm.distributed import LOCAL, Collectives
from torchsvm.kernels import KernelFn
from torchsvm.solvers.dual import DualResult
from torchsvm.solvers.stepped import DecompositionProblems
from torchsvm.svm._base import BaseLibSVM, DualProblems, Prepared, Solution, as_tensor_2d, decision_values
from torchsvm.svm._classes import ovr_from_ovo, pair_coefficients

__all__ = ["BaseLibSVM", "DualProblems", "Prepared", "Solution", "as_tensor_2d", "batched_params", "check_params",
           "decision_values", "decisions", "kernel_dtype", "make_problems", "ovr_from_ovo", "pair_coefficients",
           "predict_from_decision", "prepare", "set_solution", "solve", "stack", "stepped"]


def check_params(est: BaseLibSVM) -> None:
    """Validate ``est``'s parameters as ``fit`` does (scikit-learn's constraints and messages)."""
    est._check_params()


def prepare(est: BaseLibSVM, X: Any, shards: Collectives = LOCAL) -> Prepared:
    """Check ``est``'s parameters and ``X``, resolve the kernel on ``X``; sets the input attributes
    (``n_features_in_``, ``shape_fit_``, ``_gamma``). With ``shards``, ``X`` is this rank's rows and
    the attributes are of all ranks' rows."""
    check_params(est)
    return est._prepare(X, shards)


def make_problems(est: BaseLibSVM, X: Matrix, y: Any, sample_weight: Any = None,
                  shards: Collectives = LOCAL) -> tuple[DualProblems, Any]:
    """``est``'s binary-form problems on the rows ``X`` (this rank's, with ``shards``: then over every
    row, each problem's rows listed in ``members``) and what :func:`set_solution` needs back (class
    indices for the classifiers)."""
    return est._make_problems(X, y, sample_weight, shards)


def solve(est: BaseLibSVM, prepared: Prepared, problems: DualProblems, shards: Collectives = LOCAL) -> DualResult:
    """Solve ``problems`` with ``est``'s solver settings (SMO on Gram blocks within the memory budget,
    else the decomposition solver; one-vs-one pairs on their own rows; over every rank's rows with
    ``shards``)."""
    return est._solve(prepared.X_kernel, prepared.kernel, prepared.gram, problems, shards)


def stepped(est: BaseLibSVM, X_kernel: Matrix, kernel: KernelFn, problems: DualProblems,
            shards: Collectives = LOCAL) -> DecompositionProblems:
    """``problems`` given to the decomposition solver as ``est``'s fit gives them (its working-set rule
    and tol), to be advanced one outer iteration per :meth:`~DecompositionProblems.step`."""
    return est._stepped(X_kernel, kernel, problems, shards)


def set_solution(est: BaseLibSVM, prepared: Prepared, result: DualResult, problems: DualProblems,
                 context: Any, shards: Collectives = LOCAL) -> None:
    """The fitted attributes from ``result``; ``fit_status_`` and the non-convergence warning. With
    ``shards``, the support vectors are gathered, so that every rank holds the same model."""
    est._finish(result, stacklevel=4)  # the warning points at the caller of fit (or of this function's caller)
    est._set_solution(prepared, result, problems, context, shards)


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
