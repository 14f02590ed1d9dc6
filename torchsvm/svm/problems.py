"""The fit of a kernel estimator as functions: prepare the input, build the binary-form problems, solve them, and
turn the solution into fitted attributes.

Every kernel estimator (``SVC``, ``NuSVC``, ``SVR``, ``NuSVR``, ``OneClassSVM``) fits by these four calls, in
one process or sharded (``shards``); so do ``GridSearchCV`` (many estimators' problems on one fold solved as one
batch) and the kernel LightningModules (the problems stepped by the decomposition solver, one outer iteration
per training step, over several processes)::

    prepared = prepare(est, X)                                       # checks; kernel; X in its dtype
    problems, context = make_problems(est, prepared.X, y, sample_weight)
    result = solve(est, prepared, problems)                          # one-vs-one blocks, memory plan
    set_solution(est, prepared, result, problems, context)           # fitted attributes, fit_status_

The estimator is where the parameters are read (``est.C``, ``est.kernel``, ...) and the fitted attributes
written, as scikit-learn's ``validate_data(est, X)`` does; its kind is its LIBSVM ``svm_type``
(``est._impl``: ``"c_svc"``, ``"nu_svc"``, ``"epsilon_svr"``, ``"nu_svr"``, ``"one_class"``, scikit-learn's
names), which picks the problems' form and how a solution is read. This module imports no estimator.

``stepped`` gives the problems to a stepping decomposition solver instead of ``solve`` (one outer iteration
per call of its ``step``). ``stack`` joins several estimators' problems over the same rows into one batch;
``decisions`` gives fitted estimators' decision values from one kernel block against their support vectors,
``decision_values`` those of a set of support vectors and coefficients. A fitted model as plain data is a
:class:`Solution` (``est.to_solution()``, ``type(est).from_solution(solution, **params)``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from torch import Tensor

from torchsvm._sparse import Matrix, SparseRows, is_sparse
from torchsvm._threads import SMALL_ROWS
from torchsvm._warnings import warn_convergence
from torchsvm.distributed import LOCAL, Collectives, row_offsets
from torchsvm.kernels import Kernel, KernelFn, kernel_function
from torchsvm.solvers.dual import DualResult, device_memory_guard, smo_dual
from torchsvm.solvers.smo import smo_dual_host
from torchsvm.solvers.stepped import DecompositionProblems
from torchsvm.svm._blocks import BlockSettings, by_segments, solve_blocks
from torchsvm.svm._inputs import (
    X_ADVICE,
    CheckedKernel,
    DualProblems,
    Prepared,
    ProblemArrays,
    Solution,
    as_tensor_2d,
    check_feature_names,
    classes_and_costs,
    decision_values,
    dense_if_narrow,
    fill_bounds,
    fit_device,
    float_targets,
    ovo_layout,
    ovo_pair_array,
    ovr_from_ovo,
    pair_coefficients,
    raw_gram,
    sample_costs,
    shard_inputs,
    sharded_variance,
    training_rows,
    variance,
    warn_if_not_psd,
)
from torchsvm.svm._sharded import gather_support

# keep_support, set_dual_coef and store_classes (the fitted attributes of support vectors) are also the
# estimators' from_solution's; they are not part of the seam for other code.
__all__ = ["DualProblems", "Prepared", "Solution", "as_tensor_2d", "batched_params", "check_params",
           "decision_values", "decisions", "kernel_dtype", "make_problems", "ovr_from_ovo", "pair_coefficients",
           "predict_from_decision", "prepare", "resolve_kernel", "set_solution", "solve", "stack", "stepped",
           "working_set_size"]

# kernel_dtype="auto": float64 kernel values on the CPU up to this many training rows (a float64 Gram
# matrix of 128 MB), float32 above.
_FLOAT64_ROWS = 4096

_NOT_FINITE = ("The dual coefficients or intercepts are not finite. The input data may contain large values and need "
               "to be preprocessed.")  # scikit-learn's words


def check_params(est: BaseEstimator) -> None:
    """Validate ``est``'s parameters as ``fit`` does (scikit-learn's constraints and messages)."""
    est._check_params()


def batched_params(est: BaseEstimator) -> tuple[str, ...]:
    """The parameters that change ``est``'s problems but not its kernel: candidates differing only in them
    are solved as one batch (a grid over C shares one Gram matrix)."""
    return est._problem_params


# -- 1. prepare: the input and the kernel ----------------------------------------------------------------------
def prepare(est: BaseEstimator, X: Any, shards: Collectives = LOCAL, *, checked: bool = False) -> Prepared:
    """Check ``est``'s parameters (unless ``checked``) and ``X``, resolve the kernel on ``X``; sets the input
    attributes (``n_features_in_``, ``shape_fit_``, ``_gamma``). The rows are float32 for float32 X (no float64
    copy beside the kernel's; support vectors are kept in float64, exactly), float64 otherwise; ``X_kernel``
    is them in ``kernel_dtype``.

    A callable kernel on X that is not numbers (strings, graphs, ...) gets X as it is, as scikit-learn does:
    its Gram matrix is then solved as a precomputed one, and X is kept for prediction.

    With ``shards``, ``X`` is this rank's rows (float64); ``shape_fit_`` and gamma are of all ranks' rows."""
    if not checked:
        check_params(est)
    device = fit_device(est.device, X, shards.distributed)
    est._gamma = 0.0  # kernels without a gamma (callables, precomputed) keep this; resolve_kernel sets the rest
    if shards.distributed:
        return _prepare_shard(est, X, shards, device)
    est._raw_fit = X if _takes_raw(est.kernel, X) else None
    if est._raw_fit is None:
        check_feature_names(est, X, reset=True)
    Xt = raw_gram(est, X) if est._raw_fit is not None else training_rows(X, device)
    est.n_features_in_ = Xt.shape[1]
    est.shape_fit_ = (int(Xt.shape[0]), int(Xt.shape[1]))
    kernel = None if est._raw_fit is not None else resolve_kernel(est, Xt, numpy=not isinstance(X, Tensor))
    if kernel is None:  # precomputed: the user's Gram matrix, as given
        K = _checked_gram(Xt)
        return Prepared(K, None, K, K)
    dtype = kernel_dtype(est, device, Xt.shape[0])
    with device_memory_guard(f"X in kernel_dtype ({Xt.shape[0]} x {Xt.shape[1]}, {dtype}) on {device}", X_ADVICE):
        return Prepared(Xt, kernel, Xt.to(dtype), None)


def _prepare_shard(est: BaseEstimator, X: Any, shards: Collectives, device: torch.device) -> Prepared:
    """:func:`prepare` of this rank's rows of a sharded fit (features, not a Gram matrix)."""
    Xt = shard_inputs(shards, X, device, torch.float64)
    assert isinstance(Xt, Tensor)  # shard_inputs refuses sparse X for a sharded fit
    offsets = row_offsets(shards, Xt.shape[0], device)
    est._raw_fit = None
    est.n_features_in_, est.shape_fit_ = Xt.shape[1], (int(offsets[-1]), Xt.shape[1])
    kernel = resolve_kernel(est, Xt, shards)
    assert kernel is not None  # a precomputed kernel cannot be sharded (checked with the parameters)
    return Prepared(Xt, kernel, Xt.to(kernel_dtype(est, device, est.shape_fit_[0])), None, int(offsets[shards.rank]))


def _checked_gram(K: Matrix) -> Tensor:
    """A user's Gram matrix, checked: dense and square; an asymmetric one is solved as given, with a warning."""
    if isinstance(K, SparseRows):
        raise TypeError("Sparse precomputed kernels are not supported.")  # scikit-learn's words
    if K.shape[0] != K.shape[1]:
        raise ValueError(f"Expected a square Gram matrix (N, N) for kernel='precomputed', got {tuple(K.shape)}")
    asym = float((K - K.T).abs().max())
    if asym > 1e-6 * max(1.0, float(K.abs().max())):
        # scikit-learn (LIBSVM) solves it as given, reading its rows; so does torchsvm, saying so
        warnings.warn(f"Expected a symmetric Gram matrix for kernel='precomputed', got max |K - K^T| = "
                      f"{asym:.3g}; solving with its rows as given, as LIBSVM does", UserWarning, stacklevel=5)
    return K


def _takes_raw(kernel: Any, X: Any) -> bool:
    """Whether a user's callable kernel gets X as it is: X is not a tensor nor convertible to numbers."""
    if not callable(kernel) or isinstance(kernel, (str, Kernel)) or isinstance(X, Tensor) or is_sparse(X):
        return False
    try:
        np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        return True
    return False


def resolve_kernel(est: BaseEstimator, X: Matrix, shards: Collectives = LOCAL, numpy: bool = False) -> KernelFn | None:
    """``est``'s kernel as ``k(A, Z) -> (n_A, n_Z)`` with gamma resolved on the training X (all ranks' rows for
    a sharded fit; sets ``est._gamma``); None if precomputed. ``numpy``: a user's callable (not a torchsvm
    :class:`~torchsvm.kernels.Kernel`) is called on NumPy arrays, the training X having been NumPy."""
    kernel = est.kernel
    if not isinstance(kernel, str):
        return CheckedKernel(kernel, numpy=numpy and not isinstance(kernel, Kernel))
    if kernel == "precomputed":
        return None
    gamma = est.gamma
    if gamma == "scale":
        var = float(sharded_variance(X, shards) if isinstance(X, Tensor) and shards.distributed  # dense rows
                    else variance(X))
        gamma = 1.0 / (X.shape[1] * var) if var > 0 else 1.0
        if gamma == 0.0:  # scikit-learn's value too, a constant kernel: say why
            warnings.warn(f"gamma='scale' is 0.0 (a constant kernel): X.var() = {var:.3g} overflows or is too "
                          "large; scale the features (e.g. StandardScaler) or pass a gamma", UserWarning, stacklevel=4)
    elif gamma == "auto":
        gamma = 1.0 / X.shape[1]
    est._gamma = float(gamma)
    return kernel_function(kernel, est._gamma, est.degree, est.coef0)


def kernel_dtype(est: BaseEstimator, device: torch.device, n_rows: int) -> torch.dtype:
    """The dtype ``est`` computes kernel values in for ``n_rows`` training rows on ``device``: ``kernel_dtype``;
    ``"auto"`` is float64 on the CPU for up to ``_FLOAT64_ROWS`` training rows (scikit-learn's answers to its
    tests' tolerances, at little cost), float32 beyond (kernel rows cost half the time and memory) and on a GPU."""
    if est.kernel_dtype == "auto":
        return torch.float64 if device.type != "cuda" and n_rows <= _FLOAT64_ROWS else torch.float32
    return getattr(torch, est.kernel_dtype)


# -- 2. make_problems: the binary-form dual problems -------------------------------------------------------------
def make_problems(est: BaseEstimator, X: Matrix, y: Any, sample_weight: Any = None,
                  shards: Collectives = LOCAL) -> tuple[DualProblems, Any]:
    """``est``'s binary-form problems on the rows ``X`` (this rank's, with ``shards``: then over every row,
    each problem's rows listed in ``members``) and what :func:`set_solution` needs back (class indices for the
    classifiers). Classifiers also get ``classes_`` and ``class_weight_`` here."""
    arrays, context = _KINDS[est._impl].problems(est, X.shape[0], y, sample_weight, shards)
    problems = arrays.tensors(X.device)
    return (problems.expanded(X.shape[0]) if shards.distributed else problems), context


def _class_problems(est: BaseEstimator, N: int, y: Any, sample_weight: Any,
                    shards: Collectives) -> tuple[ProblemArrays, np.ndarray]:
    """C-SVC's and nu-SVC's problems: one per pair of classes (one-vs-one) or per class (one-vs-rest)."""
    nu = est._impl == "nu_svc"
    # nu-SVC: the bounds are the sample weights (nu takes C's place), and LIBSVM ignores class_weight there
    costs = classes_and_costs(est, N, y, sample_weight, 1.0 if nu else float(est.C), est.class_weight, shards)
    est.classes_, est.class_weight_ = costs.classes, costs.class_weight
    if nu:
        return _nu_start(class_problems(costs.y_idx, costs.sample, len(costs.classes), "ovo"), est.nu), costs.y_idx
    cost = costs.per_sample()
    if np.count_nonzero(np.bincount(costs.y_idx, weights=cost) > 0) < 2:  # LIBSVM's error
        raise ValueError("Invalid input - all samples with positive weights belong to the same class.")
    return class_problems(costs.y_idx, cost, len(costs.classes), est.multi_class), costs.y_idx


def class_problems(y_idx: np.ndarray, cost: np.ndarray, n_classes: int, multi_class: str) -> ProblemArrays:
    """The binary problems of class indices ``y_idx`` with per-sample costs ``cost``: ``(P, N)`` labels and costs
    (0: not in the problem); one-vs-one pairs list their own rows of positive cost."""
    cost = np.asarray(cost, dtype=np.float64)
    if n_classes == 2:  # one problem; +1 is classes_[1] (scikit-learn's sign)
        return ProblemArrays(np.where(y_idx == 1, 1.0, -1.0)[None], cost[None])
    if multi_class == "ovr":
        Y = np.where(y_idx[None] == np.arange(n_classes)[:, None], 1.0, -1.0)
        return ProblemArrays(Y, np.tile(cost, (n_classes, 1)))
    # One-vs-one: each pair on its own rows (those of positive cost of its two classes): the first
    # class's rows ascending, then the second's, then padding (its Gram block is then four slices).
    N = len(y_idx)
    pairs = ovo_pair_array(n_classes)  # (P, 2)
    kept = np.flatnonzero(cost > 0)
    by_class = kept[np.argsort(y_idx[kept], kind="stable")]  # rows grouped by class, ascending within each
    counts = np.bincount(y_idx[kept], minlength=n_classes)
    starts = np.cumsum(counts) - counts
    rows = np.full((n_classes, max(1, int(counts.max()))), N)  # (k, m), padded with N
    cls = y_idx[by_class]
    rows[cls, np.arange(len(by_class)) - starts[cls]] = by_class
    width = max(1, int((counts[pairs[:, 0]] + counts[pairs[:, 1]]).max()))
    both = np.concatenate([rows[pairs[:, 0]], rows[pairs[:, 1]]], 1)  # (P, 2m), padding after each class
    order = np.argsort(both == N, axis=1, kind="stable")  # the padding moved last
    index = np.take_along_axis(both, order, 1)[:, :width]
    valid = index < N
    index = np.where(valid, index, 0)
    Y = np.where(valid & (y_idx[index] == pairs[:, :1]), 1.0, -1.0)  # LIBSVM: the first class is +1
    return ProblemArrays(Y, np.where(valid, cost[index], 0.0), row_index=index)


def _nu_start(problems: ProblemArrays, nu: float) -> ProblemArrays:
    """nu-SVC: the C-SVC problems with the sample weights as bounds, p = 0 and LIBSVM's start: each sign's bounds
    filled in order up to nu sum(w) / 2 (a pair without samples of positive weight on one side is infeasible)."""
    pos = problems.Y > 0
    C_pos, C_neg = np.where(pos, problems.C, 0.0), np.where(pos, 0.0, problems.C)
    n_pos, n_neg = C_pos.sum(1), C_neg.sum(1)
    half = nu * (n_pos + n_neg) / 2
    if np.any(half > np.minimum(n_pos, n_neg) * (1 + 1e-12)):
        raise ValueError("specified nu is infeasible")
    alpha0 = np.where(pos, fill_bounds(C_pos, half), fill_bounds(C_neg, half))
    return problems._replace(p=np.zeros_like(problems.Y), alpha0=alpha0, nu=True)


def _regression_problem(est: BaseEstimator, N: int, y: Any, sample_weight: Any,
                        shards: Collectives) -> tuple[ProblemArrays, None]:
    """epsilon-SVR's and nu-SVR's one problem of 2N variables [a; a*] on the rows [X; X] (labels +1, -1)."""
    y_np = float_targets(est, N, y)
    cost = sample_costs(est.C, N, sample_weight)
    ones = np.ones(N)
    Y = np.concatenate([ones, -ones])[None]
    C = np.concatenate([cost, cost])[None]
    rows = np.tile(np.arange(N), 2)
    if est._impl == "epsilon_svr":
        return ProblemArrays(Y, C, p=np.concatenate([est.epsilon - y_np, est.epsilon + y_np])[None], rows=rows), None
    a0 = fill_bounds(cost, est.nu * cost.sum() / 2)  # LIBSVM's start: a = a*, filled in order
    return ProblemArrays(Y, C, p=np.concatenate([-y_np, y_np])[None], alpha0=np.concatenate([a0, a0])[None], nu=True,
                         rows=rows), None


def _one_class_problem(est: BaseEstimator, N: int, y: Any, sample_weight: Any,
                       shards: Collectives) -> tuple[ProblemArrays, None]:
    """The one-class SVM's problem: 0 <= a_i <= w_i, sum_i a_i = nu sum_i w_i."""
    w = sample_costs(1.0, N, sample_weight)
    alpha0 = fill_bounds(w, est.nu * w.sum())[None]  # LIBSVM's start: sum a = nu sum w
    return ProblemArrays(Y=np.ones((1, N)), C=w[None], p=np.zeros((1, N)), alpha0=alpha0), None


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


# -- 3. solve -----------------------------------------------------------------------------------------------------
def solve(est: BaseEstimator, prepared: Prepared, problems: DualProblems, shards: Collectives = LOCAL) -> DualResult:
    """Solve the P problems with ``est``'s solver settings: ``alpha (P, n)``, ``b (P,)``, ``r`` (nu), per-problem
    steps and KKT violations in ``info``.

    Problems spanning every row share one kernel: in memory (SMO, batched) when its n x n values fit in the
    budget, else the decomposition solver works from kernel rows. One-vs-one problems (``row_index``) are solved
    on their own rows (:func:`~torchsvm.svm._blocks.solve_blocks`), each Gram block computed from its two classes'
    rows (half the work of the full Gram matrix, none of its memory). Sharded problems (``shards``) go to the
    decomposition solver over every rank's rows. On the CPU, in memory, compiled code solves them
    (:func:`_solve_on_host`)."""
    Xk, kernel, K = prepared.X_kernel, prepared.kernel, prepared.gram
    if shards.distributed:
        assert kernel is not None  # sharded fits take features (checked with the parameters)
        return stepped(est, Xk, kernel, problems, shards).run(_max_iter(est))
    if K is not None and _libsvm_rounding(est, K):  # a precomputed Gram matrix: LIBSVM caches it so too
        K = K.clone()
        _as_libsvm_keeps(K)
    budget = math.inf if K is not None else _memory_budget(est, Xk.device)
    if (K is None and est.solver == "auto" and Xk.device.type == "cpu" and problems.row_index is None
            and problems.Y.shape[0] == 1 and problems.Y.shape[1] > est._in_memory_variables):
        budget = 0.0  # one large problem on the CPU: kernel rows cost less than the whole Gram matrix
    if _on_host(est, Xk, problems, budget):
        return _solve_on_host(est, Xk, kernel, K, problems)
    rows = problems.rows  # (one-vs-one problems name their rows by index instead)
    Xr = Xk if rows is None else Xk[rows]
    n = Xr.shape[0]
    full_bytes = n * n * Xk.element_size()
    if K is not None and rows is not None:
        K = K[rows][:, rows]
    elif K is None and problems.row_index is None and full_bytes <= budget:
        K = _gram(est, kernel, Xr)
        budget -= full_bytes
    _check_psd(est, Xr, kernel, K)
    if problems.row_index is not None:
        q = working_set_size(est, problems.row_index.shape[1], Xr.element_size(), Xr.device)
        settings = BlockSettings(est.tol, _max_iter(est), q, isinstance(est.kernel, str))
        return solve_blocks(Xr, K, problems, kernel, budget, settings)
    opts: dict[str, Any] = dict(tol=est.tol, max_iter=_max_iter(est), dtype=problems.Y.dtype, p=problems.p,
                                alpha0=problems.alpha0, nu=problems.nu)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # fit warns once, for the estimator
        if K is not None:
            return smo_dual(K, problems.Y, problems.C, **opts)
        assert kernel is not None
        return stepped(est, Xk, kernel, problems).run(_max_iter(est))


def stepped(est: BaseEstimator, X_kernel: Matrix, kernel: KernelFn, problems: DualProblems,
            shards: Collectives = LOCAL) -> DecompositionProblems:
    """``problems`` given to the decomposition solver as ``est``'s fit gives them (the one translation, used by
    fit, sharded fits and the kernel LightningModules), to be advanced one outer iteration per
    :meth:`~DecompositionProblems.step`: over every row of ``X_kernel`` (one-vs-one pairs list their rows as
    ``members``), several variables on one sample (epsilon-SVR's two) read that sample's kernel row (one
    process), and the working set is :func:`working_set_size`'s."""
    problems = problems.expanded(X_kernel.shape[0])
    rows = problems.rows
    shared = (rows is not None and problems.members is None and not shards.distributed
              and rows.numel() > X_kernel.shape[0])
    X = X_kernel if rows is None or shared else X_kernel[rows]
    q = working_set_size(est, X.shape[0], X.element_size(), X.device, shards)
    return DecompositionProblems(X, problems.Y, problems.C, kernel, p=problems.p, alpha0=problems.alpha0,
                                 nu=problems.nu, members=problems.members, working_set_size=q, tol=est.tol,
                                 dtype=problems.Y.dtype, shards=shards, row_of=rows if shared else None)


def _max_iter(est: BaseEstimator) -> int | None:
    return None if est.max_iter == -1 else est.max_iter


def _memory_budget(est: BaseEstimator, device: torch.device) -> float:
    """Bytes for in-memory Gram matrices: ``cache_size`` MB, or for ``"auto"`` half the free GPU memory (2 GiB on CPU)."""
    if est.solver == "smo":
        return math.inf
    if est.solver == "decomposition":
        return 0.0
    if est.cache_size != "auto":
        return float(est.cache_size) * 2**20
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return 0.5 * free
    return 2048 * 2**20


def working_set_size(est: BaseEstimator, n_columns: int, itemsize: int, device: torch.device,
                      shards: Collectives = LOCAL) -> int:
    """``working_set_size``; ``"auto"`` is 2048 on the CPU while the two buffers of its kernel rows
    (``2 q n_columns`` values) fit in ``cache_size`` (2 GiB for ``"auto"``), else 1024, and 1024 on a GPU
    and for a sharded fit (whose cost model, in docs/guide/distributed.md, is for that q).
    On the CPU a larger working set means fewer outer iterations for the same kernel work (measured in
    benchmarks/results/working-set-*)."""
    if est.working_set_size != "auto":
        return int(est.working_set_size)
    if device.type == "cuda" or shards.distributed:
        return 1024
    budget = 2.0**31 if est.cache_size == "auto" else float(est.cache_size) * 2**20
    return 2048 if 2 * 2048 * n_columns * itemsize <= budget else 1024


def _on_host(est: BaseEstimator, Xk: Matrix, problems: DualProblems, budget: float) -> bool:
    """Whether the problems are solved on one Gram matrix of the training rows by compiled CPU code
    (:func:`_solve_on_host`): on the CPU, where the batched path would solve them in memory (not
    ``solver="decomposition"``), except one-vs-one pairs whose blocks are built from their classes'
    blocks (large pairs of many features: half the kernel work of the whole Gram matrix)."""
    # The budget is the batched path's: a Gram matrix over the variables (epsilon-SVR: 2N of them on N rows)
    # within it, else the decomposition solver (the host path would need only the rows' N x N).
    n = Xk.shape[0] if problems.row_index is not None else problems.Y.shape[1]
    if Xk.device.type != "cpu" or est.solver == "decomposition" or n * n * Xk.element_size() > budget:
        return False
    return problems.row_index is None or not by_segments(problems.row_index.shape[1], Xk.shape[1])


def _solve_on_host(est: BaseEstimator, Xk: Matrix, kernel: KernelFn | None, K: Tensor | None,
                   problems: DualProblems) -> DualResult:
    """One Gram matrix of the training rows, then every problem solved by compiled code on its rows of it
    (:func:`~torchsvm.solvers.smo.smo_dual_host`: one-vs-one pairs and epsilon-SVR's two variables per
    sample read it in place), from the start to the bias: one thread up to ``SMALL_ROWS`` rows (where threads
    would cost more than the work, and a busy machine's other cores are left alone), numba's threads above
    (as many as torch may use)."""
    K = _gram(est, kernel, Xk) if K is None else K
    _check_psd(est, Xk, kernel, K)
    P, n = problems.Y.shape
    rows = problems.row_index if problems.rows is None else problems.rows.expand(P, n)
    host = lambda T: None if T is None else T.numpy()  # noqa: E731 (CPU tensors: shared, not copied)
    return smo_dual_host(K.contiguous().numpy(), problems.Y.numpy(), problems.C.numpy(), host(problems.p),
                         host(problems.alpha0), est.tol, _max_iter(est), problems.nu, host(rows),
                         parallel=Xk.shape[0] > SMALL_ROWS and torch.get_num_threads() > 1)


def _gram(est: BaseEstimator, kernel: KernelFn | None, X: Matrix) -> Tensor:
    """The Gram matrix of the training rows (a built-in kernel's of :func:`dense_if_narrow`'s rows; a user's
    callable gets sparse rows as they are), an allocation failure made a clear error."""
    assert kernel is not None  # only a precomputed fit has none, and it has K
    with device_memory_guard(f"the {X.shape[0]} x {X.shape[0]} Gram matrix",
                             "Use solver='decomposition', a smaller cache_size, or device='cpu'."):
        rows = dense_if_narrow(X) if isinstance(est.kernel, str) else X
        K = kernel(rows, rows)
    if not math.isfinite(float(K.sum())):  # an overflowing X (one pass: a NaN or inf makes the sum one)
        raise ValueError(_NOT_FINITE + " (The kernel matrix has non-finite values.)")
    if _libsvm_rounding(est, K):
        _as_libsvm_keeps(K)
    return K


def _libsvm_rounding(est: BaseEstimator, K: Tensor) -> bool:
    """Whether the Gram matrix ``K`` is kept as LIBSVM keeps it (:func:`_as_libsvm_keeps`): float64 values on
    the CPU with ``kernel_dtype="auto"`` (``"float64"`` keeps them exact)."""
    return est.kernel_dtype == "auto" and K.dtype == torch.float64 and K.device.type == "cpu"


def _as_libsvm_keeps(K: Tensor) -> None:
    """Round the off-diagonal kernel values of a float64 Gram matrix to float32 in place, as LIBSVM's kernel cache
    keeps them (its Qfloat; the diagonal stays float64, as its QD): near-hard margins (C = 1e9, gamma = 1e-3 on
    standardized iris) turn on differences of kernel values near 1 that float32 rounds, and the models then
    agree with scikit-learn's, not only the objective (benchmarks/results/iris-grid-*)."""
    diagonal = K.diagonal().clone()
    K.copy_(K.to(torch.float32))
    K.diagonal().copy_(diagonal)


def _check_psd(est: BaseEstimator, X: Matrix, kernel: KernelFn | None, K: Tensor | None) -> None:
    """Warn when the Gram matrix is not PSD. Skipped for the kernels PSD by construction (linear,
    RBF, polynomial with coef0 >= 0: Mercer kernels; a negative eigenvalue there is rounding),
    where the eigenvalues of a 512-sample block would cost more than a small fit."""
    if est.kernel in ("linear", "rbf") or (est.kernel == "poly" and est.coef0 >= 0):
        return
    if K is not None:
        warn_if_not_psd(K, est.kernel)
    elif kernel is not None:
        sample = torch.linspace(0, X.shape[0] - 1, min(X.shape[0], 512), device=X.device).long()
        with device_memory_guard(f"the {len(sample)} x {len(sample)} Gram matrix of sampled rows (a PSD check)",
                                 "Use solver='decomposition', a smaller cache_size, or device='cpu'."):
            warn_if_not_psd(kernel(X[sample], X[sample]), est.kernel)


# -- 4. set_solution: the fitted attributes -------------------------------------------------------------------
def set_solution(est: BaseEstimator, prepared: Prepared, result: DualResult, problems: DualProblems,
                 context: Any, shards: Collectives = LOCAL) -> None:
    """The fitted attributes from ``result`` (support vectors, coefficients, intercepts, ``n_iter_``);
    ``fit_status_`` and the non-convergence warning. With ``shards``, the support vectors are gathered, so that
    every rank holds the same model."""
    _fit_status(est, result)
    _KINDS[est._impl].solution(est, prepared, result, problems, context, shards)


def _fit_status(est: BaseEstimator, res: DualResult) -> None:
    """``fit_status_`` (0: every problem converged, 1: max_iter stopped one, as LIBSVM's) and its warning in
    scikit-learn's words."""
    # a non-finite kernel value (overflowing X) leaves a NaN violation and the solver's start
    if not all(bool(torch.isfinite(t).all()) for t in (res.alpha, res.b, res.info.kkt_violation)):
        raise ValueError(_NOT_FINITE)
    # LIBSVM's rule too: a problem that took max_iter steps stopped early, even if its last step met tol
    spent = est.max_iter != -1 and bool((res.info.problem_iters >= est.max_iter).any())
    est.fit_status_ = int(spent or bool((res.info.kkt_violation > est.tol).any()))
    if est.fit_status_:
        warn_convergence(
            f"Solver terminated early (max_iter={est.max_iter}).  Consider pre-processing your data with "
            f"StandardScaler or MinMaxScaler. ({type(est).__name__}: max KKT violation "
            f"{float(res.info.kkt_violation.max()):.3g} > tol={est.tol}; raise max_iter or tol.)",
            stacklevel=4,  # from warn_convergence: _fit_status, set_solution, then its caller (fit)
        )


def _class_solution(est: BaseEstimator, prepared: Prepared, res: DualResult, problems: DualProblems,
                    y_idx: np.ndarray, shards: Collectives) -> None:
    coef = res.alpha.cpu().numpy() * problems.Y.cpu().numpy()  # y * alpha: what the kernel values are multiplied by
    b = res.b.cpu().numpy()
    if est._impl == "nu_svc":  # LIBSVM's rescaling by 1/r: (y alpha / r, -rho / r)
        assert res.r is not None  # a nu problem's solution carries r
        r = res.r.cpu().numpy()
        coef, b = coef / r[:, None], b / r
    if shards.distributed:  # every rank's support vectors, in rank order: the same model on every rank
        assert isinstance(prepared.X, Tensor)  # sharded fits take dense rows
        X_sv, y_sv, coef_sv, index = gather_support(shards, prepared.X, y_idx,
                                                    torch.as_tensor(coef, device=prepared.X.device), prepared.first_row)
        store_classes(est, X_sv, y_sv, coef_sv.cpu().numpy(), b, prepared.kernel)
        est.support_ = index[est.support_].astype(np.int32)  # rows of the shards' concatenation
    else:
        rows = None if problems.row_index is None else problems.row_index.cpu().numpy()
        store_classes(est, prepared.X, y_idx, coef, b, prepared.kernel, rows)
    est.n_iter_ = res.info.problem_iters.cpu().numpy().astype(np.int64)


def _single_solution(est: BaseEstimator, prepared: Prepared, res: DualResult, problems: DualProblems,
                     context: Any, shards: Collectives) -> None:
    """A regressor's or the one-class SVM's one problem: epsilon/nu-SVR's coefficients are a - a*."""
    N = prepared.X.shape[0]
    alpha = res.alpha.cpu().numpy()
    coef = alpha if est._impl == "one_class" else alpha[:, :N] - alpha[:, N:]
    support = keep_support(est, prepared.X, coef, res.b.cpu().numpy(), prepared.kernel, np.arange(N))
    set_dual_coef(est, coef[:, support])
    est._n_support = np.array([len(support)], dtype=np.int32)
    est.n_iter_ = int(res.info.problem_iters[0])
    if est._impl == "one_class":
        est.offset_ = -est.intercept_


class _Kind(NamedTuple):
    """What an estimator's kind (``_impl``, LIBSVM's svm_type) decides: its problems' form and how a solution is read."""

    problems: Callable[[BaseEstimator, int, Any, Any, Collectives], tuple[ProblemArrays, Any]]
    solution: Callable[..., None]


_KINDS: dict[str, _Kind] = {"c_svc": _Kind(_class_problems, _class_solution),
                            "nu_svc": _Kind(_class_problems, _class_solution),
                            "epsilon_svr": _Kind(_regression_problem, _single_solution),
                            "nu_svr": _Kind(_regression_problem, _single_solution),
                            "one_class": _Kind(_one_class_problem, _single_solution)}


def keep_support(est: BaseEstimator, Xt: Matrix, coef: np.ndarray, b: np.ndarray, kernel: KernelFn | None,
                 order: np.ndarray) -> np.ndarray:
    """Keep the rows of ``Xt`` with a nonzero coefficient in some problem, in ``order``, as ``est``'s support vectors;
    returns their indices. Used by fit and by ``from_solution``.

    ``coef`` ``(m, N)`` holds each row's coefficients (for P problems: ``f = K(x, SV) coef_SV^T + b``;
    one-vs-one classifiers keep LIBSVM's k - 1 per row instead, see ``BaseSVC._combine``).
    """
    is_sv = (coef != 0).any(0)
    support = order[is_sv[order]]
    est.support_ = support.astype(np.int32)
    est._coef = torch.as_tensor(coef.T[support], device=Xt.device)  # (n_SV, m)
    est._b = torch.as_tensor(b, device=Xt.device)
    est._kernel = kernel
    est._rbf_rows = None  # the decision's prepared support vectors, made on first use
    sv_index = torch.as_tensor(support, device=Xt.device, dtype=torch.long)
    est._sv = sv = Xt[sv_index].to(torch.float64) if kernel is not None else None  # float32 rows: exact
    if sv is None:
        est.support_vectors_ = np.empty((0, 0))
    else:  # sparse when X was (scikit-learn's convention)
        est.support_vectors_ = sv.scipy() if isinstance(sv, SparseRows) else sv.cpu().numpy()
    est.intercept_ = np.array(b, dtype=np.float64)
    return support


def set_dual_coef(est: BaseEstimator, coef: np.ndarray) -> None:
    """``dual_coef_`` ``(m, n_SV)``: CSR after a sparse fit, as scikit-learn's (its support vectors are)."""
    est.dual_coef_ = scipy.sparse.csr_matrix(coef) if isinstance(est._sv, SparseRows) else coef


def store_classes(est: BaseEstimator, Xt: Matrix, y_idx: np.ndarray, coef: np.ndarray, b: np.ndarray, kernel: Any,
                  index: np.ndarray | None = None) -> np.ndarray:
    """A classifier's support vectors and LIBSVM's attributes; ``coef`` is ``y * alpha`` ``(P, n)`` over the rows
    ``index`` ``(P, n)`` lists, or over all rows of Xt without it; returns the rows kept. Used by fit and by
    ``from_solution``."""
    n_classes = len(est.classes_)
    order = np.lexsort((np.arange(len(y_idx)), y_idx))  # LIBSVM's order: by class, by index within one
    if ovo_layout(n_classes, est.multi_class):  # one-vs-one: LIBSVM's k - 1 coefficients per row, not one per pair
        coef = _ovo_dual_rows(coef, index, y_idx, n_classes, len(y_idx))
    support = keep_support(est, Xt, coef, b, kernel, order)
    est._n_support = np.bincount(y_idx[support], minlength=n_classes).astype(np.int32)
    set_dual_coef(est, est._coef.T.cpu().numpy())
    return support


def _ovo_dual_rows(coef: np.ndarray, index: np.ndarray | None, y_idx: np.ndarray, n_classes: int,
                   n_rows: int) -> np.ndarray:
    """LIBSVM's one-vs-one layout ``(k - 1, n_rows)`` from the pairs' coefficients ``coef`` ``(P, n)`` on
    the rows ``index`` (all rows without it): a row of class c has one coefficient per other class o,
    its coefficient in pair (c, o), in row o - 1 (o > c) or o (o < c)."""
    problem, at = np.nonzero(coef)
    row = at if index is None else index[problem, at]
    pairs = ovo_pair_array(n_classes)[problem]  # (nnz, 2)
    c = y_idx[row]
    other = np.where(c == pairs[:, 0], pairs[:, 1], pairs[:, 0])
    out = np.zeros((n_classes - 1, n_rows), dtype=coef.dtype)
    out[np.where(other < c, other, other - 1), row] = coef[problem, at]
    return out


# -- fitted models' decisions, for GridSearchCV ---------------------------------------------------------------
def decisions(models: list[BaseEstimator], K: Tensor, support_rows: np.ndarray) -> list[Tensor]:
    """Each fitted model's decision values from ``K`` ``(n, n_rows)``, the kernel of the test rows against
    the training rows ``support_rows`` (sorted; covering every model's ``support_``)."""
    return [m._combine(K[:, torch.as_tensor(np.searchsorted(support_rows, m.support_), device=K.device)]) + m._b
            for m in models]


def predict_from_decision(est: BaseEstimator, decision: Tensor) -> Any:
    """``est.predict``'s output from its decision values (labels for the classifiers)."""
    return est._predict_from_decision(decision)
