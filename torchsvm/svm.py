"""Estimators with the scikit-learn API, solved with torch on the CPU or a GPU."""

from __future__ import annotations

import functools
import itertools
import math
import warnings
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted
from torch import Tensor

from torchsvm.kernels import (
    Kernel,
    _psd_report,
    kernel_row_blocks,
    linear_kernel,
    polynomial_kernel,
    rbf_kernel,
    sigmoid_kernel,
)
from torchsvm.solvers.dual import decomposition_dual, device_memory_guard, smo_dual
from torchsvm.solvers.primal import primal_newton

__all__ = ["LinearSVC", "SVC", "resolve_device"]


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` is CUDA when available, else CPU; anything else goes to ``torch.device``."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _as_tensor_2d(X: Any, name: str, device: torch.device, dtype: torch.dtype | None = None) -> Tensor:
    """X as a 2-D floating tensor on ``device``, with clear errors for bad shapes and NaN/inf."""
    if isinstance(X, Tensor):
        T = X.detach()
        if not T.is_floating_point():
            T = T.to(torch.float32)
        if T.ndim != 2:
            raise ValueError(f"Expected {name} to be 2-D (n_samples, n_features), got shape {tuple(T.shape)}")
        if T.shape[0] == 0:
            raise ValueError(f"Expected {name} with at least one sample, got shape {tuple(T.shape)}")
        if not bool(torch.isfinite(T).all()):
            raise ValueError(f"Expected {name} to be finite, got NaN or infinity")
    else:
        from sklearn.utils.validation import check_array

        # check_array raises for a wrong dimension, no samples and NaN/inf, naming them.
        T = torch.from_numpy(np.ascontiguousarray(check_array(X, dtype=(np.float64, np.float32))))
    return T.to(device=device, dtype=dtype or T.dtype)


def _check_n_features(est: BaseEstimator, X: Tensor) -> None:
    """scikit-learn's message for a feature count other than fit's."""
    if X.shape[1] != est.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(est).__name__} is expecting {est.n_features_in_} features as input"
        )


def _classes_and_costs(est: BaseEstimator, n_samples: int, y: Any, sample_weight: Any) -> tuple[np.ndarray, np.ndarray]:
    """Set ``est.classes_``; return class indices ``(N,)`` and costs ``C * class weight * sample weight``."""
    if y is None:
        raise ValueError(f"{type(est).__name__} requires y to be passed, but the target y is None")
    y_np = y.detach().cpu().numpy() if isinstance(y, Tensor) else np.asarray(y)
    if y_np.ndim == 2 and y_np.shape[1] == 1:  # a column vector: scikit-learn warns and ravels
        warnings.warn(
            f"A column-vector y was passed when a 1d array was expected; got shape {y_np.shape}, using y.ravel()",
            DataConversionWarning,
            stacklevel=3,
        )
        y_np = y_np.ravel()
    if y_np.ndim != 1 or y_np.shape[0] != n_samples:
        raise ValueError(f"Expected y of shape ({n_samples},) to match X, got shape {y_np.shape}")
    check_classification_targets(y_np)
    est.classes_, y_idx = np.unique(y_np, return_inverse=True)
    if len(est.classes_) < 2:
        raise ValueError(f"Expected at least 2 classes in y, got 1 class: {est.classes_.tolist()}")
    weights = (
        compute_class_weight(est.class_weight, classes=est.classes_, y=y_np)
        if est.class_weight is not None
        else np.ones(len(est.classes_))
    )
    if np.any(weights < 0) or not np.all(np.isfinite(weights)):
        raise ValueError(f"Expected non-negative class weights, got {dict(zip(est.classes_.tolist(), weights))}")
    cost = est.C * weights[y_idx]  # (N,)
    if sample_weight is not None:
        sw = np.asarray(sample_weight, dtype=np.float64)
        if sw.shape != (n_samples,) or np.any(sw < 0):
            raise ValueError(f"Expected non-negative sample_weight of shape ({n_samples},), got {sw.shape}")
        if not np.any(sw > 0):
            raise ValueError("Expected sample_weight with at least one positive entry, got all weights zero")
        cost = cost * sw
    return y_idx, cost


class LinearSVC(ClassifierMixin, BaseEstimator):
    """Linear support vector classifier solved in the primal with torch (CPU or GPU).

    For each class k (one-vs-rest; one problem for two classes) it solves

        minimize 1/2 ||w||^2 + sum_i C_i L(y_i (w . x_i + b)),   y_i in {-1, +1},

    with C_i = C * class_weight[class of i] and the bias b not regularized. All K problems are
    solved together by a batched Newton method on one copy of X (see
    :func:`torchsvm.solvers.primal.primal_newton`); ``hinge`` stops on a certified relative
    duality gap ``tol``, the smooth losses on the relative gradient norm.

    Differences from scikit-learn's ``LinearSVC`` (LIBLINEAR): the default loss is the hinge
    (the soft-margin SVM), the bias is not penalized, and in one-vs-rest every sample keeps its own
    class's weight in all K problems (LIBLINEAR gives the "rest" side weight 1).

    Args:
        C: inverse regularization strength, > 0.
        loss: ``"hinge"``, ``"squared_hinge"`` or ``"logistic"``.
        class_weight: None, a dict ``{class: weight}``, or ``"balanced"``.
        solver: ``"auto"`` or ``"newton"`` (the same, for now).
        tol: stopping tolerance: for the hinge the certified relative duality gap, so the
            objective is within ``tol`` (relative) of the optimum; for the smooth losses the
            gradient norm relative to its value at w = 0.
        max_iter: maximum Newton iterations.
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ...
        random_state: unused by the deterministic Newton solver; kept for the scikit-learn API.

    Attributes:
        coef_: ``(1, n_features)`` for two classes, else ``(n_classes, n_features)``.
        intercept_: ``(1,)`` or ``(n_classes,)``.
        classes_: the sorted class labels.
        n_iter_: Newton iterations run.
        n_features_in_: number of features seen in ``fit``.
        objective_: final primal objective per problem.
        duality_gap_: final relative gap (hinge) or gradient norm (smooth losses).
    """

    def __init__(
        self,
        C: float = 1.0,
        *,
        loss: Literal["hinge", "squared_hinge", "logistic"] = "hinge",
        class_weight: dict | Literal["balanced"] | None = None,
        solver: Literal["auto", "newton"] = "auto",
        tol: float = 1e-3,
        max_iter: int = 300,
        device: str = "auto",
        random_state: int | None = None,
    ) -> None:
        self.C = C
        self.loss = loss
        self.class_weight = class_weight
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.device = device
        self.random_state = random_state

    def _check_params(self) -> None:
        if not isinstance(self.C, (int, float)) or not self.C > 0:
            raise ValueError(f"Expected C > 0, got {self.C!r}")
        if self.loss not in ("hinge", "squared_hinge", "logistic"):
            raise ValueError(f"Expected loss to be 'hinge', 'squared_hinge' or 'logistic', got {self.loss!r}")
        if self.solver not in ("auto", "newton"):
            raise ValueError(f"Expected solver to be 'auto' or 'newton', got {self.solver!r}")
        if not self.tol > 0:
            raise ValueError(f"Expected tol > 0, got {self.tol!r}")
        if not isinstance(self.max_iter, int) or self.max_iter < 1:
            raise ValueError(f"Expected max_iter to be a positive int, got {self.max_iter!r}")

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "LinearSVC":
        """Fit on ``X`` ``(n_samples, n_features)`` (array-like or tensor) and labels ``y`` of any values."""
        self._check_params()
        device = resolve_device(self.device)
        Xt = _as_tensor_2d(X, "X", device)
        y_idx, cost = _classes_and_costs(self, Xt.shape[0], y, sample_weight)
        self.n_features_in_ = Xt.shape[1]

        y_t = torch.as_tensor(y_idx, device=device)
        K = 1 if len(self.classes_) == 2 else len(self.classes_)
        columns = torch.arange(K, device=device) + (1 if K == 1 else 0)  # binary: +1 is classes_[1]
        Y = torch.where(y_t.unsqueeze(1) == columns, 1.0, -1.0).to(Xt.dtype)  # (N, K)
        # Samples with zero cost leave the problem; give them a tiny cost instead of dividing by zero.
        C_t = torch.as_tensor(cost, dtype=Xt.dtype, device=device).clamp_min(1e-12).unsqueeze(1).expand(-1, K)

        result = primal_newton(Xt, Y, C_t, loss=self.loss, tol=self.tol, max_iter=self.max_iter)
        self.coef_ = result.w.t().cpu().numpy()
        self.intercept_ = result.b.cpu().numpy()
        self.n_iter_ = result.info.n_iter
        self.objective_ = result.info.objective.cpu().numpy()
        self.duality_gap_ = result.info.gap
        self._w = result.w  # (D, K) on the device, for fast tensor predictions
        self._b = result.b
        if not result.info.converged:
            warnings.warn(
                f"LinearSVC did not converge in max_iter={self.max_iter} Newton iterations (relative "
                f"{'duality gap' if self.loss == 'hinge' else 'gradient norm'} {result.info.gap:.2e} > "
                f"tol={self.tol}). Increase max_iter, loosen tol, or scale the features.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def decision_function(self, X: Any) -> np.ndarray | Tensor:
        """Signed distances ``(n_samples,)`` for two classes, else ``(n_samples, n_classes)``.

        A tensor input gives a tensor on the model's device; anything else gives a NumPy array.
        """
        check_is_fitted(self, "coef_")
        Xt = _as_tensor_2d(X, "X", self._w.device, self._w.dtype)
        _check_n_features(self, Xt)
        scores = torch.addmm(self._b, Xt, self._w)
        scores = scores[:, 0] if scores.shape[1] == 1 else scores
        return scores if isinstance(X, Tensor) else scores.cpu().numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Class labels (NumPy, values of ``classes_``)."""
        scores = self.decision_function(X)
        s = scores if isinstance(scores, Tensor) else torch.from_numpy(np.asarray(scores))
        idx = (s > 0).long() if s.ndim == 1 else s.argmax(dim=1)
        return self.classes_[idx.cpu().numpy()]


def _resolve_kernel(est: "SVC", X: Tensor) -> Callable[[Tensor, Tensor], Tensor] | None:
    """The kernel as ``k(A, Z) -> (n_A, n_Z)`` with gamma resolved on the training X; None if precomputed."""
    kernel = est.kernel
    if isinstance(kernel, str):
        if kernel == "precomputed":
            return None
        gamma = est.gamma
        if gamma == "scale":
            var = float(X.var())
            gamma = 1.0 / (X.shape[1] * var) if var > 0 else 1.0
        elif gamma == "auto":
            gamma = 1.0 / X.shape[1]
        est._gamma = float(gamma)
        g, degree, coef0 = est._gamma, est.degree, est.coef0
        # partials of module-level functions, not lambdas: a fitted SVC keeps its kernel and must pickle.
        return {
            "linear": functools.partial(linear_kernel),
            "poly": functools.partial(polynomial_kernel, degree=degree, gamma=g, coef0=coef0),
            "rbf": functools.partial(rbf_kernel, gamma=g),
            "sigmoid": functools.partial(sigmoid_kernel, gamma=g, coef0=coef0),
        }[kernel]
    return _CheckedKernel(kernel)


class _CheckedKernel:
    """A user's kernel callable, its output made a tensor of the right shape (a class so it pickles)."""

    def __init__(self, fn: Callable[[Any, Any], Any]) -> None:
        self.fn = fn

    def __call__(self, A: Tensor, Z: Tensor) -> Tensor:
        K = torch.as_tensor(self.fn(A, Z), dtype=A.dtype, device=A.device)
        if K.shape != (A.shape[0], Z.shape[0]):
            raise ValueError(
                f"Expected the kernel callable to return shape ({A.shape[0]}, {Z.shape[0]}), got {tuple(K.shape)}"
            )
        return K


def _ovr_from_ovo(dec: Tensor, n_classes: int) -> Tensor:
    """scikit-learn's one-vs-one -> one-vs-rest decision shape: votes plus confidences squashed to (-1/3, 1/3)."""
    votes = torch.zeros(dec.shape[0], n_classes, dtype=dec.dtype, device=dec.device)
    conf = torch.zeros_like(votes)
    for p, (i, j) in enumerate(itertools.combinations(range(n_classes), 2)):
        conf[:, i] += dec[:, p]
        conf[:, j] -= dec[:, p]
        votes[:, i] += dec[:, p] >= 0  # scikit-learn gives a 0 to class i here; predict gives it to j
        votes[:, j] += dec[:, p] < 0
    return votes + conf / (3 * (conf.abs() + 1))


class SVC(ClassifierMixin, BaseEstimator):
    """Kernel support vector classifier, solved in the dual with torch (CPU or GPU).

    For each binary problem it solves

        maximize  sum_i a_i - 1/2 sum_ij a_i a_j y_i y_j K(x_i, x_j)
        subject to 0 <= a_i <= C_i,  sum_i a_i y_i = 0,   C_i = C * class_weight[class of i]

    and predicts with f(x) = sum over support vectors of a_i y_i K(x_i, x) + b. Multi-class is
    one-vs-one like LIBSVM (``multi_class="ovo"``, the default: measured faster, see ``benchmarks/results/``) or one-vs-rest (``"ovr"``); either way all binary problems are
    solved as one batched problem sharing the kernel computations. A Gram matrix up to
    ``cache_size`` MB is computed once and solved in memory by SMO
    (:func:`torchsvm.solvers.dual.smo_dual`); a larger one is never formed: the decomposition
    solver (:func:`torchsvm.solvers.dual.decomposition_dual`) works from kernel rows.

    Args:
        C: cost of margin violations, > 0.
        kernel: ``"linear"``, ``"poly"``, ``"rbf"``, ``"sigmoid"``, ``"precomputed"`` (fit on a
            Gram matrix ``(N, N)``, predict on ``(M, N)``), a :class:`torchsvm.kernels.Kernel`,
            or a callable ``k(A, Z) -> (n_A, n_Z)`` on tensors.
        degree, gamma, coef0: as scikit-learn; ``gamma="scale"`` is ``1 / (n_features * X.var())``,
            ``"auto"`` is ``1 / n_features``.
        class_weight: None, a dict ``{class: weight}``, or ``"balanced"``.
        tol: stopping tolerance on the maximal KKT violation (LIBSVM's eps).
        max_iter: SMO steps (in memory) or outer iterations (decomposition); -1 for the default.
        decision_function_shape: ``"ovr"`` (``(n_samples, n_classes)``) or ``"ovo"``
            (``(n_samples, n_pairs)``; only with ``multi_class="ovo"``).
        multi_class: ``"ovo"`` or ``"ovr"``: which binary problems are trained.
        solver: ``"auto"`` (in memory when the Gram matrix fits in ``cache_size``), ``"smo"``
            or ``"decomposition"``.
        cache_size: MB allowed for in-memory Gram matrices under ``solver="auto"``; ``"auto"``
            is half the free GPU memory on CUDA and 2048 MB on the CPU.
        working_set_size: variables per outer iteration of the decomposition solver.
        kernel_dtype: ``"float32"`` (as LIBSVM's kernel cache; half the memory and time of
            ``"float64"``) or ``"float64"``: the dtype kernel values are computed and kept in
            during fit. The solver's state (alpha, gradient) and prediction are float64 either way.
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ...

    Attributes (LIBSVM's meanings; for ``multi_class="ovr"``, one row per class instead of per pair):
        support_: indices of the support vectors in the training set, grouped by class.
        support_vectors_: ``(n_SV, n_features)`` (empty for ``"precomputed"``).
        n_support_: support vectors per class.
        dual_coef_: ``(n_classes - 1, n_SV)``: ``y_i a_i`` of each SV in the classifiers it is
            part of, LIBSVM's layout; ``(1, n_SV)`` for two classes.
        intercept_: ``(n_pairs,)`` biases, pairs ``(0, 1), (0, 2), ..., (1, 2), ...``; in pair
            ``(i, j)`` a positive decision is class i, except for two classes where it is
            ``classes_[1]`` (scikit-learn's convention).
        classes_, n_features_in_, shape_fit_; n_iter_: per binary problem, its SMO steps (outer
            iterations where the decomposition solver ran it), counted apart in a batch.
    """

    def __init__(
        self,
        C: float = 1.0,
        *,
        kernel: str | Kernel | Callable[[Tensor, Tensor], Tensor] = "rbf",
        degree: int = 3,
        gamma: float | Literal["scale", "auto"] = "scale",
        coef0: float = 0.0,
        class_weight: dict | Literal["balanced"] | None = None,
        tol: float = 1e-3,
        max_iter: int = -1,
        decision_function_shape: Literal["ovr", "ovo"] = "ovr",
        multi_class: Literal["ovo", "ovr"] = "ovo",
        solver: Literal["auto", "smo", "decomposition"] = "auto",
        cache_size: float | Literal["auto"] = "auto",
        working_set_size: int = 1024,
        kernel_dtype: Literal["float32", "float64"] = "float32",
        device: str = "auto",
    ) -> None:
        self.C = C
        self.kernel = kernel
        self.degree = degree
        self.gamma = gamma
        self.coef0 = coef0
        self.class_weight = class_weight
        self.tol = tol
        self.max_iter = max_iter
        self.decision_function_shape = decision_function_shape
        self.multi_class = multi_class
        self.solver = solver
        self.cache_size = cache_size
        self.working_set_size = working_set_size
        self.kernel_dtype = kernel_dtype
        self.device = device

    def _check_params(self) -> None:
        if not isinstance(self.C, (int, float)) or not self.C > 0:
            raise ValueError(f"Expected C > 0, got {self.C!r}")
        kernels = ("linear", "poly", "rbf", "sigmoid", "precomputed")
        if isinstance(self.kernel, str) and self.kernel not in kernels:
            raise ValueError(f"Expected kernel to be one of {kernels}, a Kernel or a callable, got {self.kernel!r}")
        if not isinstance(self.kernel, str) and not callable(self.kernel):
            raise TypeError(f"Expected kernel to be a string, a Kernel or a callable, got {type(self.kernel).__name__}")
        if isinstance(self.gamma, str):
            if self.gamma not in ("scale", "auto"):
                raise ValueError(f"Expected gamma to be 'scale', 'auto' or a float > 0, got {self.gamma!r}")
        elif not self.gamma > 0:
            raise ValueError(f"Expected gamma > 0, got {self.gamma!r}")
        if not isinstance(self.degree, int) or self.degree < 1:
            raise ValueError(f"Expected degree to be a positive int, got {self.degree!r}")
        if not self.tol > 0:
            raise ValueError(f"Expected tol > 0, got {self.tol!r}")
        if self.cache_size != "auto" and not (isinstance(self.cache_size, (int, float)) and self.cache_size > 0):
            raise ValueError(f"Expected cache_size to be 'auto' or a number of MB > 0, got {self.cache_size!r}")
        if not isinstance(self.max_iter, int) or (self.max_iter < 1 and self.max_iter != -1):
            raise ValueError(f"Expected max_iter to be a positive int or -1, got {self.max_iter!r}")
        for name, value, allowed in (
            ("decision_function_shape", self.decision_function_shape, ("ovr", "ovo")),
            ("multi_class", self.multi_class, ("ovo", "ovr")),
            ("solver", self.solver, ("auto", "smo", "decomposition")),
            ("kernel_dtype", self.kernel_dtype, ("float32", "float64")),
        ):
            if value not in allowed:
                raise ValueError(f"Expected {name} to be one of {allowed}, got {value!r}")
        if self.decision_function_shape == "ovo" and self.multi_class == "ovr":
            raise ValueError("decision_function_shape='ovo' needs multi_class='ovo'")
        if self.kernel == "precomputed" and self.solver == "decomposition":
            raise ValueError("kernel='precomputed' is solved in memory; use solver='auto' or 'smo'")

    def _problems(self, y_idx: np.ndarray, cost: np.ndarray, device: torch.device, dtype: torch.dtype):
        """Labels and costs ``(P, N)`` of the binary problems; ``C_i = 0`` leaves i out of a problem."""
        n_classes = len(self.classes_)
        y_t = torch.as_tensor(y_idx, device=device)
        c_t = torch.as_tensor(cost, dtype=dtype, device=device).clamp_min(1e-12)
        if n_classes == 2:  # one problem; +1 is classes_[1] (scikit-learn's sign)
            return torch.where(y_t == 1, 1.0, -1.0).to(dtype).unsqueeze(0), c_t.unsqueeze(0)
        if self.multi_class == "ovr":
            Y = torch.where(y_t.unsqueeze(0) == torch.arange(n_classes, device=device).unsqueeze(1), 1.0, -1.0)
            return Y.to(dtype), c_t.expand(n_classes, -1)
        pairs = torch.tensor(list(itertools.combinations(range(n_classes), 2)), device=device)  # (P, 2)
        in_i, in_j = y_t.unsqueeze(0) == pairs[:, :1], y_t.unsqueeze(0) == pairs[:, 1:]
        Y = torch.where(in_i, 1.0, -1.0).to(dtype)  # LIBSVM: the pair's first class is +1
        return Y, torch.where(in_i | in_j, c_t, 0.0)

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "SVC":
        """Fit on ``X`` ``(n_samples, n_features)`` (or a Gram matrix for ``"precomputed"``) and labels ``y``."""
        self._check_params()
        device = resolve_device(self.device)
        Xt = _as_tensor_2d(X, "X", device, torch.float64)
        y_idx, cost = _classes_and_costs(self, Xt.shape[0], y, sample_weight)
        N = Xt.shape[0]
        self.n_features_in_ = Xt.shape[1]
        self.shape_fit_ = tuple(Xt.shape)
        kernel = _resolve_kernel(self, Xt)
        Y, Cb = self._problems(y_idx, cost, device, Xt.dtype)  # float64, as the solver state
        # Kernel values in kernel_dtype (LIBSVM caches them as float32); a user's Gram matrix as given.
        Xk = Xt if kernel is None else Xt.to(getattr(torch, self.kernel_dtype))
        if kernel is None:  # precomputed
            if Xt.shape[0] != Xt.shape[1]:
                raise ValueError(f"Expected a square Gram matrix (N, N) for kernel='precomputed', got {tuple(Xt.shape)}")
            asym = float((Xt - Xt.T).abs().max())
            if asym > 1e-6 * max(1.0, float(Xt.abs().max())):
                raise ValueError(f"Expected a symmetric Gram matrix for kernel='precomputed', got max |K - K^T| = {asym:.3g}")
        budget = self._memory_budget(device) if self.solver == "auto" else (math.inf if self.solver == "smo" else 0)
        if kernel is None:
            budget = math.inf  # a precomputed Gram matrix is in memory already: blocks are gathered from it
        ovo = Y.shape[0] > 1 and self.multi_class == "ovo"
        full_bytes = N * N * Xk.element_size()
        K = Xt if kernel is None else None
        # One-vs-one keeps at least half the budget for its pair blocks: there the full Gram
        # matrix is only a shortcut (each pair could compute its own block from X).
        if K is None and full_bytes <= (budget / 2 if ovo else budget):
            with device_memory_guard(
                f"the {N} x {N} Gram matrix", "Use solver='decomposition', a smaller cache_size, or device='cpu'."
            ):
                K = kernel(Xk, Xk)
            budget -= full_bytes
        if K is not None:
            _warn_if_not_psd(K, self.kernel)
        else:
            sample = torch.linspace(0, N - 1, min(N, 512), device=device).long()
            _warn_if_not_psd(kernel(Xk[sample], Xk[sample]), self.kernel)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # fit warns once, below
            if ovo:
                alpha, b, n_iter, gap = self._solve_pairs(Xk, K, Y, Cb, kernel, budget)
            elif K is not None:
                res = smo_dual(K, Y, Cb, tol=self.tol, max_iter=self._max_iter(), dtype=Y.dtype)
                alpha, b, n_iter, gap = res.alpha, res.b, res.info.problem_iters.tolist(), res.info.kkt_violation
            else:
                res = decomposition_dual(
                    Xk, Y, Cb, kernel, working_set_size=self.working_set_size, tol=self.tol,
                    max_iter=self._max_iter(), dtype=Y.dtype,
                )
                alpha, b, n_iter, gap = res.alpha, res.b, res.info.problem_iters.tolist(), res.info.kkt_violation
        if bool((gap > self.tol).any()):
            warnings.warn(
                f"SVC did not converge (max KKT violation {float(gap.max()):.3g} > tol={self.tol}). "
                "Increase max_iter or tol, or scale the features.",
                ConvergenceWarning,
                stacklevel=2,
            )
        self._store(Xt, y_idx, alpha * Y, b, kernel)
        self.n_iter_ = np.asarray(n_iter, dtype=np.int64)
        return self

    def _memory_budget(self, device: torch.device) -> float:
        """Bytes for in-memory Gram matrices: ``cache_size`` MB, or for ``"auto"`` half the free GPU memory (2 GiB on CPU)."""
        if self.cache_size != "auto":
            return float(self.cache_size) * 2**20
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            return 0.5 * free
        return 2048 * 2**20

    def _max_iter(self) -> int | None:
        return None if self.max_iter == -1 else self.max_iter

    def _solve_pairs(
        self, Xt: Tensor, K: Tensor | None, Y: Tensor, Cb: Tensor, kernel: Any, budget: float
    ) -> tuple[Tensor, Tensor, list[int], Tensor]:
        """One-vs-one: each pair touches ~2/n_classes of the samples, so it is solved on its own
        samples. Pairs whose Gram blocks fit in ``budget`` bytes together are solved as one batched
        SMO on padded blocks (padding has C = 0), gathered from K when it is at hand; a pair too
        large for the budget goes to the decomposition solver on its own samples."""
        P, N = Y.shape
        members = [torch.nonzero(Cb[p] > 0).squeeze(1) for p in range(P)]
        itemsize = Xt.element_size()
        alpha = torch.zeros_like(Y)
        b = torch.zeros(P, dtype=Y.dtype, device=Y.device)
        gap = torch.zeros(P, dtype=Y.dtype, device=Y.device)
        n_iter = [0] * P
        sizes = [int(m.numel()) for m in members]
        groups: list[list[int]] = []  # pairs solved together; a lone pair over budget: decomposition
        current: list[int] = []
        for p in range(P):
            if sizes[p] ** 2 * itemsize > budget:
                groups.append([p])
                continue
            trial = current + [p]
            if current and len(trial) * max(sizes[q] for q in trial) ** 2 * itemsize > budget:
                groups.append(current)
                trial = [p]
            current = trial
        if current:
            groups.append(current)
        for group in groups:
            n_max = max(sizes[p] for p in group)
            if n_max * n_max * itemsize > budget:  # one pair, too large for memory
                p, m = group[0], members[group[0]]
                res = decomposition_dual(
                    Xt[m], Y[p, m], Cb[p, m], kernel,
                    working_set_size=self.working_set_size, tol=self.tol, max_iter=self._max_iter(),
                    dtype=Y.dtype,
                )
                alpha[p, m], b[p], gap[p], n_iter[p] = res.alpha[0], res.b[0], res.info.kkt_violation[0], int(res.info.problem_iters[0])
                continue
            idx = torch.zeros(len(group), n_max, dtype=torch.long, device=Y.device)
            valid = torch.zeros(len(group), n_max, dtype=torch.bool, device=Y.device)
            for g, p in enumerate(group):
                idx[g, : sizes[p]], valid[g, : sizes[p]] = members[p], True
            with device_memory_guard(
                f"{len(group)} one-vs-one Gram blocks of {n_max} x {n_max}",
                "Use a smaller cache_size, solver='decomposition' or device='cpu'.",
            ):
                # Block by block: K[idx[:, :, None], idx[:, None, :]] would build (G, n, n) int64 indices.
                K_g = torch.empty(len(group), n_max, n_max, dtype=Xt.dtype if K is None else K.dtype, device=Xt.device)
                for g, i in enumerate(idx):
                    K_g[g] = kernel(Xt[i], Xt[i]) if K is None else K.index_select(0, i).index_select(1, i)
            rows = torch.as_tensor(group, device=Y.device)
            Y_g = torch.where(valid, Y[rows].gather(1, idx), 1.0)
            C_g = torch.where(valid, Cb[rows].gather(1, idx), 0.0)
            res = smo_dual(K_g, Y_g, C_g, tol=self.tol, max_iter=self._max_iter(), dtype=Y.dtype)
            alpha[rows] = alpha[rows].scatter_add(1, idx, torch.where(valid, res.alpha, 0.0))
            b[rows], gap[rows] = res.b, res.info.kkt_violation
            for g, p in enumerate(group):
                n_iter[p] = int(res.info.problem_iters[g])
        return alpha, b, n_iter, gap

    def _store(self, Xt: Tensor, y_idx: np.ndarray, coef: Tensor, b: Tensor, kernel: Any) -> None:
        """Keep the support vectors and set LIBSVM's attributes; ``coef`` is ``y * alpha`` ``(P, N)``."""
        n_classes = len(self.classes_)
        is_sv = (coef != 0).any(0).cpu().numpy()
        # LIBSVM's order: grouped by class, by index within a class.
        order = np.lexsort((np.arange(len(y_idx)), y_idx))
        support = order[is_sv[order]]
        self.support_ = support.astype(np.int32)
        self.n_support_ = np.bincount(y_idx[support], minlength=n_classes).astype(np.int32)
        sv_index = torch.as_tensor(support, device=coef.device, dtype=torch.long)
        self._coef = coef[:, sv_index].T.contiguous()  # (n_SV, P): one matmul predicts all problems
        self._b = b
        self._kernel = kernel
        self._sv = Xt[sv_index] if kernel is not None else None
        self.support_vectors_ = self._sv.cpu().numpy() if kernel is not None else np.empty((0, 0))
        self.intercept_ = b.cpu().numpy()
        coef_np = self._coef.T.cpu().numpy()  # (P, n_SV)
        if n_classes == 2 or self.multi_class == "ovr":
            self.dual_coef_ = coef_np
            return
        dual = np.zeros((n_classes - 1, len(support)))
        sv_class = y_idx[support]
        for p, (i, j) in enumerate(itertools.combinations(range(n_classes), 2)):
            dual[j - 1, sv_class == i] = coef_np[p, sv_class == i]  # SVs of class i: row j - 1
            dual[i, sv_class == j] = coef_np[p, sv_class == j]  # SVs of class j: row i
        self.dual_coef_ = dual

    def _decision(self, X: Any) -> Tensor:
        check_is_fitted(self, "_coef")
        device = self._coef.device
        Xt = _as_tensor_2d(X, "X", device, torch.float64)
        if self._kernel is None:
            if Xt.shape[1] != self.shape_fit_[0]:
                raise ValueError(
                    f"Expected a Gram matrix (n_samples, {self.shape_fit_[0]}) against the training set for "
                    f"kernel='precomputed', got shape {tuple(Xt.shape)}"
                )
            return Xt[:, torch.as_tensor(self.support_, device=device, dtype=torch.long)] @ self._coef + self._b
        _check_n_features(self, Xt)
        # Prediction touches support vectors only, a block of rows at a time.
        blocks = [K_rows @ self._coef for _, K_rows in kernel_row_blocks(self._kernel, Xt, self._sv, 4096)]
        return torch.cat(blocks) + self._b

    def decision_function(self, X: Any) -> np.ndarray | Tensor:
        """``(n_samples,)`` for two classes; else ``(n_samples, n_classes)`` (``"ovr"`` shape) or
        ``(n_samples, n_pairs)`` (``"ovo"``). A tensor input gives a tensor on the model's device."""
        dec = self._decision(X)
        n_classes = len(self.classes_)
        if n_classes == 2:
            dec = dec[:, 0]
        elif self.multi_class == "ovo" and self.decision_function_shape == "ovr":
            dec = _ovr_from_ovo(dec, n_classes)
        return dec if isinstance(X, Tensor) else dec.cpu().numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Class labels; one-vs-one predicts by LIBSVM's vote (ties to the first class)."""
        dec = self._decision(X)
        n_classes = len(self.classes_)
        if n_classes == 2:
            idx = (dec[:, 0] > 0).long()
        elif self.multi_class == "ovr":
            idx = dec.argmax(1)
        else:
            votes = torch.zeros(dec.shape[0], n_classes, device=dec.device)
            for p, (i, j) in enumerate(itertools.combinations(range(n_classes), 2)):
                votes[:, i] += dec[:, p] > 0
                votes[:, j] += dec[:, p] <= 0
            idx = votes.argmax(1)  # first maximum on ties, as LIBSVM
        return self.classes_[idx.cpu().numpy()]


def _warn_if_not_psd(K: Tensor, kernel: Any, n_check: int = 512) -> None:
    """Warn, naming the smallest eigenvalue, when (a sample of) the Gram matrix is not PSD."""
    n = min(K.shape[0], n_check)
    idx = torch.linspace(0, K.shape[0] - 1, n, device=K.device).long()
    ok, message = _psd_report(K[idx][:, idx], None)
    if not ok:
        warnings.warn(
            f"The kernel {kernel!r} is not positive semidefinite on the training data ({message}); "
            "the dual is then not convex and the solution is a local one.",
            UserWarning,
            stacklevel=3,
        )
