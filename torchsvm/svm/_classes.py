"""The estimators: LinearSVC, LinearSVR (primal), and SVC, NuSVC, SVR, NuSVR, OneClassSVM on the shared LIBSVM-like base."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, OutlierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_array, check_is_fitted
from torch import Tensor

from torchsvm.distributed import LOCAL, Collectives, row_offsets
from torchsvm.kernels import Kernel
from torchsvm.solvers.dcd import dual_coordinate_descent
from torchsvm.solvers.dual import DualResult
from torchsvm.solvers.primal import primal_newton
from torchsvm.svm._base import (
    BaseLibSVM,
    DualProblems,
    as_tensor_2d,
    check_C,
    check_epsilon,
    check_n_features,
    check_nu,
    classes_and_costs,
    fill_bounds,
    ovo_pairs,
    resolve_device,
    sample_costs,
    shard_inputs,
    shards_of,
    targets_1d,
)
from torchsvm.svm._sharded import gather_support, solve_sharded

__all__ = ["LinearSVC", "LinearSVR", "NuSVC", "NuSVR", "OneClassSVM", "SVC", "SVR"]


class BaseLinear(BaseEstimator):
    """What :class:`LinearSVC` and :class:`LinearSVR` share: the checks of C / tol / max_iter, one
    primal Newton solve on the device, its attributes and convergence warning, and the linear
    decision values ``X w + b``."""

    _losses: tuple[str, ...]

    def _check_params(self) -> None:
        check_C(self.C)
        if self.loss not in self._losses:
            raise ValueError(f"Expected loss to be one of {self._losses}, got {self.loss!r}")
        if not self.tol > 0:
            raise ValueError(f"Expected tol > 0, got {self.tol!r}")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, int) or self.max_iter < 1:
            raise ValueError(f"Expected max_iter to be a positive int, got {self.max_iter!r}")

    def _fit_primal(self, X: Tensor, Y: Tensor, C: Tensor, loss: str, offset: Tensor | None = None,
                    shards: Collectives = LOCAL) -> None:
        """Solve the K problems of ``Y`` ``(N, K)`` by :func:`primal_newton` (or, for ``solver="dcd"``, by
        :func:`~torchsvm.solvers.dcd.dual_coordinate_descent` on the CPU); set the fitted attributes."""
        if getattr(self, "solver", "auto") == "dcd":
            result = dual_coordinate_descent(X, Y, C, loss, self.tol, self.max_iter, self.intercept_scaling)
            result = result._replace(w=result.w.to(X.device), b=result.b.to(X.device))
        else:
            result = primal_newton(X, Y, C, loss=loss, tol=self.tol, max_iter=self.max_iter, offset=offset,
                                   shards=shards)
        self.coef_ = result.w.t().cpu().numpy()
        self.intercept_ = result.b.cpu().numpy()
        self.n_iter_ = result.info.n_iter
        self.objective_ = result.info.objective.cpu().numpy()
        self.duality_gap_ = result.info.gap
        self._w = result.w  # (D, K) on the device, for fast tensor predictions
        self._b = result.b
        if not result.info.converged:
            warnings.warn(
                f"{type(self).__name__} did not converge in max_iter={self.max_iter} iterations (relative "
                f"{'duality gap' if loss == 'hinge' else 'gradient norm'} {result.info.gap:.2e} > "
                f"tol={self.tol}). Increase max_iter, loosen tol, or scale the features.",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _linear_decision(self, X: Any) -> Tensor:
        """``X w + b``, ``(n_samples, K)`` on the model's device."""
        check_is_fitted(self, "coef_")
        Xt = as_tensor_2d(X, "X", self._w.device, self._w.dtype)
        check_n_features(self, Xt)
        return torch.addmm(self._b, Xt, self._w)


class LinearSVC(ClassifierMixin, BaseLinear):
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
        solver: ``"auto"`` / ``"newton"``: the batched Newton method above (any device, bias not
            penalized). ``"dcd"``: LIBLINEAR's problem and method: the bias is a feature of value
            ``intercept_scaling`` and is penalized, solved by dual coordinate descent on the CPU (compiled,
            classes in parallel threads; :func:`torchsvm.solvers.dcd.dual_coordinate_descent`), stopped
            on the same certified gap ``tol``; hinge and squared hinge. The CPU's fast path; at large C
            coordinate descent may need more than ``max_iter`` sweeps (a ``ConvergenceWarning``, as
            LIBLINEAR's), where the Newton solver still certifies its answer.
        intercept_scaling: ``solver="dcd"`` only: the bias feature's value (scikit-learn's meaning).
        tol: stopping tolerance: for the hinge the certified relative duality gap, so the
            objective is within ``tol`` (relative) of the optimum; for the smooth losses the
            gradient norm relative to its value at w = 0.
        max_iter: maximum Newton iterations (``"dcd"``: sweeps over the data).
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ...
        random_state: unused by the deterministic Newton solver; kept for the scikit-learn API.
        distributed: fit over rows sharded across the ranks of an initialized ``torch.distributed``
            process group (data-parallel Newton: gradients, Hessian Gram parts and line-search sums
            are all-reduced); every rank calls ``fit`` with its own rows and ends with the same model.
            Every class must appear on every rank.
        process_group: the group for ``distributed`` (default: the default group).

    Attributes:
        coef_: ``(1, n_features)`` for two classes, else ``(n_classes, n_features)``.
        intercept_: ``(1,)`` or ``(n_classes,)``.
        classes_: the sorted class labels.
        n_iter_: Newton iterations run.
        n_features_in_: number of features seen in ``fit``.
        objective_: final primal objective per problem.
        duality_gap_: final relative gap (hinge) or gradient norm (smooth losses).
        bytes_sent_: ``distributed`` fits only: the bytes this rank handed to collectives during fit.
    """

    def __init__(
        self,
        C: float = 1.0,
        *,
        loss: Literal["hinge", "squared_hinge", "logistic"] = "hinge",
        class_weight: dict | Literal["balanced"] | None = None,
        solver: Literal["auto", "newton", "dcd"] = "auto",
        tol: float = 1e-3,
        max_iter: int = 300,
        device: str = "auto",
        random_state: int | None = None,
        distributed: bool = False,
        process_group: Any = None,
        intercept_scaling: float = 1.0,
    ) -> None:
        self.C = C
        self.loss = loss
        self.class_weight = class_weight
        self.solver = solver
        self.intercept_scaling = intercept_scaling
        self.tol = tol
        self.max_iter = max_iter
        self.device = device
        self.random_state = random_state
        self.distributed = distributed
        self.process_group = process_group

    _losses = ("hinge", "squared_hinge", "logistic")

    def _check_params(self) -> None:
        super()._check_params()
        if self.solver not in ("auto", "newton", "dcd"):
            raise ValueError(f"Expected solver to be 'auto', 'newton' or 'dcd', got {self.solver!r}")
        if self.solver == "dcd" and (self.loss == "logistic" or self.distributed):
            raise ValueError("solver='dcd' solves the hinge and squared hinge in one process; got "
                             f"loss={self.loss!r}, distributed={self.distributed!r} (use solver='newton')")
        if not (isinstance(self.intercept_scaling, (int, float)) and self.intercept_scaling > 0):
            raise ValueError(f"Expected intercept_scaling > 0, got {self.intercept_scaling!r}")

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "LinearSVC":
        """Fit on ``X`` ``(n_samples, n_features)`` (array-like or tensor) and labels ``y`` of any values."""
        self._check_params()
        shards = shards_of(self)
        device = resolve_device(self.device)
        Xt = shard_inputs(shards, X, device)
        y_idx, cost = classes_and_costs(self, Xt.shape[0], y, sample_weight, shards)
        self.n_features_in_ = Xt.shape[1]

        y_t = torch.as_tensor(y_idx, device=device)
        K = 1 if len(self.classes_) == 2 else len(self.classes_)
        columns = torch.arange(K, device=device) + (1 if K == 1 else 0)  # binary: +1 is classes_[1]
        Y = torch.where(y_t.unsqueeze(1) == columns, 1.0, -1.0).to(Xt.dtype)  # (N, K)
        # Samples with zero cost leave the problem; give them a tiny cost instead of dividing by zero.
        C_t = torch.as_tensor(cost, dtype=Xt.dtype, device=device).clamp_min(1e-12).unsqueeze(1).expand(-1, K)
        sent = shards.bytes_sent
        self._fit_primal(Xt, Y, C_t, self.loss, shards=shards)
        if self.distributed:
            self.bytes_sent_ = shards.bytes_sent - sent
        return self

    def decision_function(self, X: Any) -> np.ndarray | Tensor:
        """Signed distances ``(n_samples,)`` for two classes, else ``(n_samples, n_classes)``.

        A tensor input gives a tensor on the model's device; anything else gives a NumPy array.
        """
        scores = self._linear_decision(X)
        scores = scores[:, 0] if scores.shape[1] == 1 else scores
        return scores if isinstance(X, Tensor) else scores.cpu().numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Class labels (NumPy, values of ``classes_``)."""
        scores = self.decision_function(X)
        s = scores if isinstance(scores, Tensor) else torch.from_numpy(np.asarray(scores))
        idx = (s > 0).long() if s.ndim == 1 else s.argmax(dim=1)
        return self.classes_[idx.cpu().numpy()]


class LinearSVR(RegressorMixin, BaseLinear):
    """Linear support vector regression solved in the primal with torch (CPU or GPU).

        minimize 1/2 ||w||^2 + sum_i C_i L(y_i - (w . x_i + b)),   b not regularized,

    with the epsilon-insensitive loss L(r) = max(0, |r| - epsilon) or its square. Each sample
    enters as two hinge terms, max(0, (y - epsilon) - f) and max(0, f - (y + epsilon)), and the
    batched Newton solver of :class:`LinearSVC` solves the result (see
    :func:`torchsvm.solvers.primal.primal_newton`'s ``offset``); ``epsilon_insensitive`` stops on
    the certified relative duality gap ``tol``, the squared loss on the relative gradient norm.

    Differences from scikit-learn's ``LinearSVR`` (LIBLINEAR): the bias is not penalized (as in
    :class:`SVR`, whose linear-kernel solution this equals).

    Args:
        epsilon: half width of the tube inside which deviations cost nothing, >= 0.
        C: cost of deviations beyond epsilon, > 0 (``C_i = C * sample_weight_i``).
        loss: ``"epsilon_insensitive"`` or ``"squared_epsilon_insensitive"``.
        tol, max_iter, device, random_state: as :class:`LinearSVC`.

    Attributes:
        coef_: ``(n_features,)``. intercept_: ``(1,)``. n_iter_, n_features_in_, objective_,
        duality_gap_: as :class:`LinearSVC`.
    """

    _losses = ("epsilon_insensitive", "squared_epsilon_insensitive")

    def __init__(
        self,
        *,
        epsilon: float = 0.0,
        C: float = 1.0,
        loss: Literal["epsilon_insensitive", "squared_epsilon_insensitive"] = "epsilon_insensitive",
        tol: float = 1e-3,
        max_iter: int = 300,
        device: str = "auto",
        random_state: int | None = None,
    ) -> None:
        self.epsilon = epsilon
        self.C = C
        self.loss = loss
        self.tol = tol
        self.max_iter = max_iter
        self.device = device
        self.random_state = random_state

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "LinearSVR":
        """Fit on ``X`` ``(n_samples, n_features)`` (array-like or tensor) and real targets ``y``."""
        self._check_params()
        check_epsilon(self)
        device = resolve_device(self.device)
        Xt = as_tensor_2d(X, "X", device)
        N = Xt.shape[0]
        self.n_features_in_ = Xt.shape[1]
        y_np = check_array(targets_1d(self, N, y), ensure_2d=False, dtype=np.float64, input_name="y")
        t = torch.tensor(y_np, dtype=Xt.dtype, device=device)
        cost = torch.as_tensor(sample_costs(self.C, N, sample_weight), dtype=Xt.dtype, device=device).clamp_min(1e-12)
        ones = torch.ones(N, dtype=Xt.dtype, device=device)
        # Two hinge rows per sample: y = +1 must reach f >= t - epsilon, y = -1 must reach -f >= -t - epsilon.
        X2, Y2 = torch.cat([Xt, Xt]), torch.cat([ones, -ones]).unsqueeze(1)
        offset = torch.cat([t - self.epsilon, -t - self.epsilon]).unsqueeze(1)
        hinge = "hinge" if self.loss == "epsilon_insensitive" else "squared_hinge"
        self._fit_primal(X2, Y2, torch.cat([cost, cost]).unsqueeze(1), hinge, offset)
        self.coef_ = self.coef_[0]
        return self

    def predict(self, X: Any) -> np.ndarray | Tensor:
        """Predicted targets ``(n_samples,)``; a tensor input gives a tensor on the model's device."""
        f = self._linear_decision(X)[:, 0]
        return f if isinstance(X, Tensor) else f.cpu().numpy()


def _ovr_from_ovo(dec: Tensor, n_classes: int) -> Tensor:
    """scikit-learn's one-vs-one -> one-vs-rest decision shape: votes plus confidences squashed to (-1/3, 1/3)."""
    votes = torch.zeros(dec.shape[0], n_classes, dtype=dec.dtype, device=dec.device)
    conf = torch.zeros_like(votes)
    for p, (i, j) in enumerate(ovo_pairs(n_classes)):
        conf[:, i] += dec[:, p]
        conf[:, j] -= dec[:, p]
        votes[:, i] += dec[:, p] >= 0  # scikit-learn gives a 0 to class i here; predict gives it to j
        votes[:, j] += dec[:, p] < 0
    return votes + conf / (3 * (conf.abs() + 1))


class BaseSVC(ClassifierMixin, BaseLibSVM):
    """What :class:`SVC` and :class:`NuSVC` share: the binary problems of the classes, reading the
    solution into LIBSVM's attributes, the one-vs-one / one-vs-rest decisions (the fit itself is
    :meth:`BaseLibSVM.fit`). Subclasses check their parameters, may rewrite the problems
    (:meth:`_problems`) and read the solution (:meth:`_coefficients`)."""

    multi_class: str
    _problem_params = ("C", "class_weight")  # what GridSearchCV may vary within one batched solve

    def _problems(self, y_idx: np.ndarray, cost: np.ndarray, device: torch.device, dtype: torch.dtype) -> DualProblems:
        """The binary problems, ``(P, N)`` labels and costs; one-vs-one pairs list their own rows."""
        n_classes = len(self.classes_)
        y_t = torch.as_tensor(y_idx, device=device)
        c_t = torch.as_tensor(cost, dtype=dtype, device=device).clamp_min(1e-12)
        if n_classes == 2:  # one problem; +1 is classes_[1] (scikit-learn's sign)
            return DualProblems(torch.where(y_t == 1, 1.0, -1.0).to(dtype).unsqueeze(0), c_t.unsqueeze(0))
        if self.multi_class == "ovr":
            Y = torch.where(y_t.unsqueeze(0) == torch.arange(n_classes, device=device).unsqueeze(1), 1.0, -1.0)
            return DualProblems(Y.to(dtype), c_t.expand(n_classes, -1))
        pairs = torch.tensor(ovo_pairs(n_classes), device=device)  # (P, 2)
        in_i, in_j = y_t.unsqueeze(0) == pairs[:, :1], y_t.unsqueeze(0) == pairs[:, 1:]
        Y = torch.where(in_i, 1.0, -1.0).to(dtype)  # LIBSVM: the pair's first class is +1
        C = torch.where(in_i | in_j, c_t, 0.0)
        return DualProblems(Y, C, members=[torch.nonzero(m).squeeze(1) for m in (in_i | in_j)])

    def _coefficients(self, res: DualResult, problems: DualProblems) -> tuple[Tensor, Tensor]:
        """``(y * alpha (P, N), b (P,))``: what the decision function multiplies the kernel by."""
        return res.alpha * problems.Y, res.b

    def _fit_problems(self, Xt: Tensor, y: Any, sample_weight: Any,
                      shards: Collectives = LOCAL) -> tuple[DualProblems, Any]:
        y_idx, cost = classes_and_costs(self, Xt.shape[0], y, sample_weight, shards)
        return self._problems(y_idx, cost, Xt.device, Xt.dtype), y_idx  # float64, as the solver state

    def _set_solution(self, Xt: Tensor, kernel: Any, res: DualResult, problems: DualProblems, y_idx: Any) -> None:
        coef, b = self._coefficients(res, problems)
        self._store(Xt, y_idx, coef, b, kernel)
        self.n_iter_ = res.info.problem_iters.cpu().numpy().astype(np.int64)

    def _store(self, Xt: Tensor, y_idx: np.ndarray, coef: Tensor, b: Tensor, kernel: Any) -> None:
        """Keep the support vectors and set LIBSVM's attributes; ``coef`` is ``y * alpha`` ``(P, N)``."""
        n_classes = len(self.classes_)
        # LIBSVM's order: grouped by class, by index within a class.
        support = self._keep_support(Xt, coef, b, kernel, np.lexsort((np.arange(len(y_idx)), y_idx)))
        self.n_support_ = np.bincount(y_idx[support], minlength=n_classes).astype(np.int32)
        coef_np = self._coef.T.cpu().numpy()  # (P, n_SV)
        if n_classes == 2 or self.multi_class == "ovr":
            self.dual_coef_ = coef_np
            return
        dual = np.zeros((n_classes - 1, len(support)))
        sv_class = y_idx[support]
        for p, (i, j) in enumerate(ovo_pairs(n_classes)):
            dual[j - 1, sv_class == i] = coef_np[p, sv_class == i]  # SVs of class i: row j - 1
            dual[i, sv_class == j] = coef_np[p, sv_class == j]  # SVs of class j: row i
        self.dual_coef_ = dual

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
        return self._predict_from_decision(self._decision(X))

    def _predict_from_decision(self, dec: Tensor) -> np.ndarray:
        n_classes = len(self.classes_)
        if n_classes == 2:
            idx = (dec[:, 0] > 0).long()
        elif self.multi_class == "ovr":
            idx = dec.argmax(1)
        else:
            votes = torch.zeros(dec.shape[0], n_classes, device=dec.device)
            for p, (i, j) in enumerate(ovo_pairs(n_classes)):
                votes[:, i] += dec[:, p] > 0
                votes[:, j] += dec[:, p] <= 0
            idx = votes.argmax(1)  # first maximum on ties, as LIBSVM
        return self.classes_[idx.cpu().numpy()]


class SVC(BaseSVC):
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
        distributed: fit over rows sharded across the ranks of an initialized ``torch.distributed``
            process group: every rank calls ``fit`` with its own rows and ends with the same model,
            the single-process fit on the ranks' rows concatenated in rank order, to ``tol``
            (:class:`torchsvm.solvers.sharded.ShardedDecompositionSolver`; one-vs-one: a solver per pair,
            all stepped together).
            Every class must appear on every rank. ``predict`` needs no other rank.
        process_group: the group for ``distributed`` (default: the default group).

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
        bytes_sent_: ``distributed`` fits only: the bytes this rank handed to collectives during fit.
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
        distributed: bool = False,
        process_group: Any = None,
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
        self.distributed = distributed
        self.process_group = process_group

    def _check_params(self) -> None:
        check_C(self.C)
        self._check_kernel_params()
        for name, value, allowed in (
            ("decision_function_shape", self.decision_function_shape, ("ovr", "ovo")),
            ("multi_class", self.multi_class, ("ovo", "ovr")),
        ):
            if value not in allowed:
                raise ValueError(f"Expected {name} to be one of {allowed}, got {value!r}")
        if self.decision_function_shape == "ovo" and self.multi_class == "ovr":
            raise ValueError("decision_function_shape='ovo' needs multi_class='ovo'")
        if self.distributed and (self.kernel == "precomputed" or self.solver == "smo"):
            raise ValueError("distributed=True computes kernel rows on each rank's shard: it needs the features "
                             f"(not kernel='precomputed') and the decomposition solver (not solver='smo'), got "
                             f"kernel={self.kernel!r}, solver={self.solver!r}")

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "SVC":
        """Fit on ``X`` ``(n_samples, n_features)`` and ``y``; with ``distributed=True``, on this rank's rows
        (every rank calls fit with its own shard and ends with the same model)."""
        if not self.distributed:
            return super().fit(X, y, sample_weight)
        self._check_params()
        shards = shards_of(self)
        device = resolve_device(self.device)
        Xt = shard_inputs(shards, X, device, torch.float64)
        problems, y_idx = self._fit_problems(Xt, y, sample_weight, shards)
        offsets = row_offsets(shards, Xt.shape[0], device)
        self.n_features_in_, self.shape_fit_ = Xt.shape[1], (int(offsets[-1]), Xt.shape[1])
        kernel = self._resolve_kernel(Xt, shards)
        sent = shards.bytes_sent
        res = solve_sharded(Xt.to(getattr(torch, self.kernel_dtype)), kernel, problems, shards,
                            self.working_set_size, self.tol, self._max_iter())
        self._warn_convergence(res.info.kkt_violation)
        coef, b = self._coefficients(res, problems)
        X_sv, y_sv, coef_sv, index = gather_support(shards, Xt, y_idx, coef, int(offsets[shards.rank]))
        self._store(X_sv, y_sv, coef_sv, b, kernel)
        self.support_ = index[self.support_].astype(np.int32)  # rows of the shards' concatenation
        self.n_iter_ = res.info.problem_iters.cpu().numpy().astype(np.int64)
        self.bytes_sent_ = shards.bytes_sent - sent
        return self


class NuSVC(BaseSVC):
    """Nu-support vector classifier (LIBSVM's nu-SVC), solved in the dual with torch (CPU or GPU).

    For each binary problem (one-vs-one for more classes, as LIBSVM) it solves

        minimize  1/2 sum_ij a_i a_j y_i y_j K(x_i, x_j)
        subject to 0 <= a_i <= w_i,  sum_i a_i y_i = 0,  sum_i a_i = nu sum_i w_i

    (w the sample weights, 1 by default) by the batched SMO with LIBSVM's nu working-set
    selection (both variables of a step of one sign), then rescales as LIBSVM does: with r the
    multiplier of the second constraint, the decision function is
    f(x) = sum_i (a_i / r) y_i K(x_i, x) - rho / r. ``nu`` bounds the fraction of margin errors
    from above and of support vectors from below.

    Args:
        nu: in (0, 1]; for every pair of classes with (weighted) sizes n1, n2 it must satisfy
            nu (n1 + n2) / 2 <= min(n1, n2), else ``ValueError("specified nu is infeasible")``.
        kernel, degree, gamma, coef0, tol, max_iter, decision_function_shape, solver, cache_size,
            working_set_size, kernel_dtype, device: as :class:`SVC`.

    No ``class_weight``: LIBSVM's nu-SVC does not use class weights (scikit-learn accepts the
    parameter and its solution does not change); weight samples with ``sample_weight``.

    Attributes: as :class:`SVC` (``dual_coef_`` and ``intercept_`` after the 1/r rescaling).
    """

    multi_class = "ovo"  # LIBSVM's nu-SVC is one-vs-one; not a parameter
    _problem_params = ("nu",)

    def __init__(
        self,
        *,
        nu: float = 0.5,
        kernel: str | Kernel | Callable[[Tensor, Tensor], Tensor] = "rbf",
        degree: int = 3,
        gamma: float | Literal["scale", "auto"] = "scale",
        coef0: float = 0.0,
        tol: float = 1e-3,
        max_iter: int = -1,
        decision_function_shape: Literal["ovr", "ovo"] = "ovr",
        solver: Literal["auto", "smo", "decomposition"] = "auto",
        cache_size: float | Literal["auto"] = "auto",
        working_set_size: int = 1024,
        kernel_dtype: Literal["float32", "float64"] = "float32",
        device: str = "auto",
    ) -> None:
        self.nu = nu
        self.kernel = kernel
        self.degree = degree
        self.gamma = gamma
        self.coef0 = coef0
        self.tol = tol
        self.max_iter = max_iter
        self.decision_function_shape = decision_function_shape
        self.solver = solver
        self.cache_size = cache_size
        self.working_set_size = working_set_size
        self.kernel_dtype = kernel_dtype
        self.device = device

    def _check_params(self) -> None:
        check_nu(self)
        self._check_kernel_params()
        if self.decision_function_shape not in ("ovr", "ovo"):
            raise ValueError(f"Expected decision_function_shape to be one of ('ovr', 'ovo'), got {self.decision_function_shape!r}")

    def _problems(self, y_idx: np.ndarray, cost: np.ndarray, device: torch.device, dtype: torch.dtype) -> DualProblems:
        """The C-SVC problems with the sample weights as bounds, p = 0 and LIBSVM's start: each
        sign's bounds filled in order up to nu sum(w) / 2."""
        if np.count_nonzero(np.bincount(y_idx, weights=cost) > 0) < 2:
            raise ValueError("Invalid input - all samples with positive weights belong to the same class")
        problems = super()._problems(y_idx, cost, device, dtype)
        pos = problems.Y > 0
        C_pos, C_neg = torch.where(pos, problems.C, 0.0), torch.where(pos, 0.0, problems.C)
        n_pos, n_neg = C_pos.sum(1), C_neg.sum(1)
        half = self.nu * (n_pos + n_neg) / 2
        if bool((half > torch.minimum(n_pos, n_neg) * (1 + 1e-12)).any()):
            raise ValueError("specified nu is infeasible")
        alpha0 = torch.where(pos, fill_bounds(C_pos, half), fill_bounds(C_neg, half))
        return problems._replace(p=torch.zeros_like(problems.Y), alpha0=alpha0, nu=True)

    def _coefficients(self, res: DualResult, problems: DualProblems) -> tuple[Tensor, Tensor]:
        """LIBSVM's rescaling by 1/r: ``(y * alpha / r, -rho / r)``."""
        r = res.r.unsqueeze(1)
        return res.alpha * problems.Y / r, res.b / res.r


class BaseSVR(RegressorMixin, BaseLibSVM):
    """What :class:`SVR` and :class:`NuSVR` share: the 2N-variable problem on the rows [X; X]
    (labels +1 for a, -1 for a*), reading the solution, the prediction. Subclasses check their parameters
    and set the linear term, start and constraints (:meth:`_problem`)."""

    def _problem(self, Y: Tensor, y: Tensor, cost: Tensor) -> DualProblems:
        """The problem on labels ``Y`` ``(1, 2N)``, for targets ``y`` and costs ``cost`` ``(N,)``."""
        raise NotImplementedError

    def _fit_problems(self, Xt: Tensor, y: Any, sample_weight: Any,
                      shards: Collectives = LOCAL) -> tuple[DualProblems, Any]:
        N = Xt.shape[0]
        y_np = check_array(targets_1d(self, N, y), ensure_2d=False, dtype=np.float64, input_name="y")
        y_t = torch.tensor(y_np, dtype=torch.float64, device=Xt.device)  # a copy: y may be read-only
        cost = torch.as_tensor(sample_costs(self.C, N, sample_weight), dtype=torch.float64, device=Xt.device)
        ones = torch.ones(N, dtype=torch.float64, device=Xt.device)
        Y = torch.cat([ones, -ones]).unsqueeze(0)  # variables [a; a*] on the rows [X; X]
        return self._problem(Y, y_t, cost)._replace(rows=torch.arange(N, device=Xt.device).repeat(2)), None

    def _set_solution(self, Xt: Tensor, kernel: Any, res: DualResult, problems: DualProblems, context: Any) -> None:
        N = Xt.shape[0]
        coef = res.alpha[:, :N] - res.alpha[:, N:]  # (1, N): a - a*
        support = self._keep_support(Xt, coef, res.b, kernel, np.arange(N))
        self.dual_coef_ = coef[:, torch.as_tensor(support, device=coef.device, dtype=torch.long)].cpu().numpy()
        self.n_support_ = np.array([len(support)], dtype=np.int32)
        self.n_iter_ = int(res.info.problem_iters[0])

    def predict(self, X: Any) -> np.ndarray | Tensor:
        """Predicted targets ``(n_samples,)``; a tensor input gives a tensor on the model's device."""
        dec = self._decision(X)[:, 0]
        return dec if isinstance(X, Tensor) else dec.cpu().numpy()

    def _predict_from_decision(self, dec: Tensor) -> np.ndarray:
        return dec[:, 0].cpu().numpy()


class SVR(BaseSVR):
    """Epsilon-support vector regression, solved in the dual with torch (CPU or GPU).

    LIBSVM's epsilon-SVR: with a, a* the multipliers of the samples above and below the tube,

        minimize  1/2 (a - a*)^T K (a - a*) + epsilon sum_i (a_i + a*_i) - sum_i y_i (a_i - a*_i)
        subject to 0 <= a_i, a*_i <= C_i,  sum_i (a_i - a*_i) = 0,

    solved as one problem of 2N variables in LIBSVM's binary form (labels +1 for a, -1 for a*,
    linear term epsilon -+ y) by the same batched solvers as :class:`SVC`. Predicts
    f(x) = sum over support vectors of (a_i - a*_i) K(x_i, x) + b.

    Args:
        kernel, degree, gamma, coef0, tol, cache_size, max_iter, solver, working_set_size,
            kernel_dtype, device: as :class:`SVC`.
        C: cost of a deviation beyond epsilon, > 0 (``C_i = C * sample_weight_i``).
        epsilon: half width of the tube inside which deviations cost nothing, >= 0.

    Attributes:
        support_, support_vectors_, n_support_ (``(1,)``), dual_coef_ (``(1, n_SV)``: a - a*),
        intercept_ (``(1,)``), n_features_in_, shape_fit_, n_iter_ (SMO steps or outer iterations).
    """

    def __init__(
        self,
        *,
        kernel: str | Kernel | Callable[[Tensor, Tensor], Tensor] = "rbf",
        degree: int = 3,
        gamma: float | Literal["scale", "auto"] = "scale",
        coef0: float = 0.0,
        tol: float = 1e-3,
        C: float = 1.0,
        epsilon: float = 0.1,
        cache_size: float | Literal["auto"] = "auto",
        max_iter: int = -1,
        solver: Literal["auto", "smo", "decomposition"] = "auto",
        working_set_size: int = 1024,
        kernel_dtype: Literal["float32", "float64"] = "float32",
        device: str = "auto",
    ) -> None:
        self.kernel = kernel
        self.degree = degree
        self.gamma = gamma
        self.coef0 = coef0
        self.tol = tol
        self.C = C
        self.epsilon = epsilon
        self.cache_size = cache_size
        self.max_iter = max_iter
        self.solver = solver
        self.working_set_size = working_set_size
        self.kernel_dtype = kernel_dtype
        self.device = device

    _problem_params = ("C", "epsilon")

    def _check_params(self) -> None:
        check_C(self.C)
        check_epsilon(self)
        self._check_kernel_params()

    def _problem(self, Y: Tensor, y: Tensor, cost: Tensor) -> DualProblems:
        return DualProblems(
            Y=Y,
            C=torch.cat([cost, cost]).clamp_min(1e-12).unsqueeze(0),
            p=torch.cat([self.epsilon - y, self.epsilon + y]).unsqueeze(0),
        )


class NuSVR(BaseSVR):
    """Nu-support vector regression (LIBSVM's nu-SVR), solved in the dual with torch (CPU or GPU).

    The epsilon-SVR problem with the tube width chosen by the solver: with a, a* as in :class:`SVR`,

        minimize  1/2 (a - a*)^T K (a - a*) - sum_i y_i (a_i - a*_i)
        subject to 0 <= a_i, a*_i <= C_i,  sum_i (a_i - a*_i) = 0,  sum_i (a_i + a*_i) = nu sum_i C_i,

    solved by the batched SMO with LIBSVM's nu working-set selection. ``nu`` bounds the fraction
    of samples outside the tube from above and of support vectors from below.

    Args:
        nu: in (0, 1].
        C: cost of a deviation beyond the tube, > 0 (``C_i = C * sample_weight_i``).
        kernel, degree, gamma, coef0, tol, cache_size, max_iter, solver, working_set_size,
            kernel_dtype, device: as :class:`SVC`.

    Attributes: as :class:`SVR`.
    """

    def __init__(
        self,
        *,
        nu: float = 0.5,
        C: float = 1.0,
        kernel: str | Kernel | Callable[[Tensor, Tensor], Tensor] = "rbf",
        degree: int = 3,
        gamma: float | Literal["scale", "auto"] = "scale",
        coef0: float = 0.0,
        tol: float = 1e-3,
        cache_size: float | Literal["auto"] = "auto",
        max_iter: int = -1,
        solver: Literal["auto", "smo", "decomposition"] = "auto",
        working_set_size: int = 1024,
        kernel_dtype: Literal["float32", "float64"] = "float32",
        device: str = "auto",
    ) -> None:
        self.nu = nu
        self.C = C
        self.kernel = kernel
        self.degree = degree
        self.gamma = gamma
        self.coef0 = coef0
        self.tol = tol
        self.cache_size = cache_size
        self.max_iter = max_iter
        self.solver = solver
        self.working_set_size = working_set_size
        self.kernel_dtype = kernel_dtype
        self.device = device

    _problem_params = ("C", "nu")

    def _check_params(self) -> None:
        check_nu(self)
        check_C(self.C)
        self._check_kernel_params()

    def _problem(self, Y: Tensor, y: Tensor, cost: Tensor) -> DualProblems:
        C = cost.clamp_min(1e-12)
        a0 = fill_bounds(C, self.nu * C.sum() / 2)  # LIBSVM's start: a = a*, filled in order
        return DualProblems(
            Y=Y,
            C=torch.cat([C, C]).unsqueeze(0),
            p=torch.cat([-y, y]).unsqueeze(0),
            alpha0=torch.cat([a0, a0]).unsqueeze(0),
            nu=True,
        )


class OneClassSVM(OutlierMixin, BaseLibSVM):
    """Unsupervised outlier detection (Schoelkopf's one-class SVM), solved in the dual with torch.

    LIBSVM's formulation: minimize 1/2 a^T K a subject to 0 <= a_i <= w_i, sum_i a_i = nu sum_i w_i
    (w the sample weights, 1 by default), started as LIBSVM does (the first samples at their
    bound) and solved by the same batched solvers as :class:`SVC`. The decision function is
    f(x) = sum over support vectors of a_i K(x_i, x) - rho: positive inside the estimated support
    of the data, negative outside.

    Args:
        nu: an upper bound on the fraction of training errors and a lower bound on the fraction
            of support vectors, in (0, 1].
        kernel, degree, gamma, coef0, tol, cache_size, max_iter, solver, working_set_size,
            kernel_dtype, device: as :class:`SVC`.

    Attributes:
        support_, support_vectors_, n_support_, dual_coef_ (``(1, n_SV)``), intercept_ (``-rho``),
        offset_ (``rho``: ``decision_function = score_samples - offset_``), n_features_in_, n_iter_.
    """

    def __init__(
        self,
        *,
        kernel: str | Kernel | Callable[[Tensor, Tensor], Tensor] = "rbf",
        degree: int = 3,
        gamma: float | Literal["scale", "auto"] = "scale",
        coef0: float = 0.0,
        tol: float = 1e-3,
        nu: float = 0.5,
        cache_size: float | Literal["auto"] = "auto",
        max_iter: int = -1,
        solver: Literal["auto", "smo", "decomposition"] = "auto",
        working_set_size: int = 1024,
        kernel_dtype: Literal["float32", "float64"] = "float32",
        device: str = "auto",
    ) -> None:
        self.kernel = kernel
        self.degree = degree
        self.gamma = gamma
        self.coef0 = coef0
        self.tol = tol
        self.nu = nu
        self.cache_size = cache_size
        self.max_iter = max_iter
        self.solver = solver
        self.working_set_size = working_set_size
        self.kernel_dtype = kernel_dtype
        self.device = device

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> "OneClassSVM":
        """Fit on ``X`` ``(n_samples, n_features)``; ``y`` is ignored."""
        return super().fit(X, None, sample_weight)

    def _check_params(self) -> None:
        check_nu(self)
        self._check_kernel_params()

    def _fit_problems(self, Xt: Tensor, y: Any, sample_weight: Any,
                      shards: Collectives = LOCAL) -> tuple[DualProblems, Any]:
        N, dev = Xt.shape[0], Xt.device
        w = torch.as_tensor(sample_costs(1.0, N, sample_weight), dtype=torch.float64, device=dev)
        return DualProblems(
            Y=torch.ones(1, N, dtype=torch.float64, device=dev),
            C=w.clamp_min(1e-12).unsqueeze(0),
            p=torch.zeros(1, N, dtype=torch.float64, device=dev),
            alpha0=fill_bounds(w, self.nu * w.sum()).unsqueeze(0),  # LIBSVM's start: sum a = nu sum w
        ), None

    def _set_solution(self, Xt: Tensor, kernel: Any, res: DualResult, problems: DualProblems, context: Any) -> None:
        support = self._keep_support(Xt, res.alpha, res.b, kernel, np.arange(Xt.shape[0]))
        self.dual_coef_ = res.alpha[:, torch.as_tensor(support, device=Xt.device, dtype=torch.long)].cpu().numpy()
        self.n_support_ = np.array([len(support)], dtype=np.int32)
        self.offset_ = -self.intercept_
        self.n_iter_ = int(res.info.problem_iters[0])

    def decision_function(self, X: Any) -> np.ndarray | Tensor:
        """``sum_i a_i K(x_i, x) - rho``, ``(n_samples,)``: positive for inliers."""
        dec = self._decision(X)[:, 0]
        return dec if isinstance(X, Tensor) else dec.cpu().numpy()

    def score_samples(self, X: Any) -> np.ndarray | Tensor:
        """The unshifted scores ``sum_i a_i K(x_i, x)`` (``decision_function + offset_``)."""
        dec = self.decision_function(X)
        return dec + float(self.offset_[0])

    def predict(self, X: Any) -> np.ndarray:
        """+1 for inliers, -1 for outliers (LIBSVM's: -1 on the boundary)."""
        dec = self._decision(X)[:, 0]
        return torch.where(dec > 0, 1, -1).cpu().numpy()
