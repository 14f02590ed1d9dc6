"""The linear family: LinearSVC and LinearSVR, solved in the primal (Newton) or by dual coordinate descent.

Both solve LIBLINEAR's problems by default, as scikit-learn's classes do: the intercept is the
weight of a constant feature of value ``intercept_scaling`` and is penalized with the others
(``penalize_intercept=False`` leaves it free, the textbook SVM; ``fit_intercept=False`` drops it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import numpy as np
import scipy.sparse
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from torch import Tensor

from torchsvm._sparse import Matrix, SparseRows, addmm, dense_array, row_norms_sq, vstack
from torchsvm._threads import one_thread_up_to, small_fit_threads
from torchsvm._warnings import warn_convergence
from torchsvm.distributed import LOCAL, Collectives
from torchsvm.solvers.primal import Loss, PrimalResult, SolverInfo, primal_newton, primal_newton_host
from torchsvm.svm._inputs import (
    as_tensor_2d,
    check_feature_names,
    check_n_features,
    classes_and_costs,
    fit_device,
    float_targets,
    report,
    sample_costs,
    shard_inputs,
    shards_of,
    solver_dtype,
)
from torchsvm.svm._params import LINEAR, Constrained, StrOptions
from torchsvm.svm.modules import DecisionHead, LinearSVMModule

__all__ = ["LinearSVC", "LinearSVR"]

# The thresholds below are rules; the measurements behind them are in docs/benchmarks.md ("The thresholds
# in the code").
# solver="auto": coordinate descent checks its duality gap every this many sweeps (and where its projected gradients
# settle); where it hands problems to the Newton method (see fit_primal), it does so at a check.
_CHECK_EVERY = 50
# ... every this many sweeps on at most _STALL_ROWS rows (times problems), where a sweep costs microseconds.
_CHECK_EVERY_SMALL = 200
_STALL_ROWS = 20000
# ... and a hinge problem on at most this many rows (times problems) is not handed over before max_iter sweeps.
_HINGE_SWEEPS_ROWS = 5000
# solver="auto": the Newton method when D / (fraction of nonzeros in X) is below this (for the hinge, only where its
# compiled method runs: the torch one's smoothing stages cost more): a sweep of coordinate descent costs the
# nonzeros, a Newton step dense products.
_DENSE_NEWTON = 2500.0
# ... except where C ||x||^2 (mean over rows, the intercept's column included) is at most this: coordinate descent
# then converges in a few dozen sweeps (the squared hinge's dual diagonal 1 / (2C) dominates; the hinge's box [0, C]
# is narrow), and, for the squared hinge, X is wide enough (D / density at least _DENSE_DCD_WIDTH) that a Newton
# step is not cheap.
_DENSE_DCD_SCALE = 3.0
_DENSE_DCD_WIDTH = 500.0
# solver="auto": one squared-hinge problem (binary, or LinearSVR's) on X wider than _DENSE_NEWTON with more rows
# than features by the Newton method with conjugate gradients where _DENSE_DCD_SCALE < C ||x||^2 <= this
# (coordinate descent beyond: its sweeps then cost less than the Newton steps' conjugate gradients).
_NEWTON_CG_SCALE = 300.0


# The (squared) hinge's Newton method runs as compiled code (primal_newton_host, the problems over torch's threads) on
# a dense CPU X up to N (D + 1)^2 K = this: below it torch's operations per step cost more than the arithmetic, above
# it the batched torch method's threads and BLAS win.
_HOST_NEWTON_WORK = 1e8
# ... a sparse X as a dense copy of at most this many entries (80 MB in float64).
_HOST_DENSE_COPY = 1e7
# The torch Newton method runs on one torch thread for N D K up to this: alone, one thread is as fast there, and on
# a busy machine many small parallel regions stall.
_ONE_THREAD_NEWTON_WORK = 1e7


def _newton(X: Matrix, Y: Tensor, C: Tensor, loss: Loss, tol: float, max_iter: int, offset: Tensor | None,
            shards: Collectives, bias_penalty: float, W0: Tensor | None = None, b0: Tensor | None = None) -> PrimalResult:
    """The primal Newton method: compiled on the host for a small dense (squared) hinge problem in one process,
    else the batched torch method (results on X's device either way)."""
    N, D = X.shape
    if loss in ("hinge", "squared_hinge") and _host_newton(X, Y.shape[1], shards.distributed):
        def host(T: Tensor | None) -> np.ndarray | None:
            return None if T is None else T.detach().cpu().numpy()

        A = (X.to_dense() if isinstance(X, SparseRows) else X).detach().numpy()
        result = primal_newton_host(A, Y.detach().numpy(), C.detach().numpy(), loss, W0=host(W0),
                                    b0=host(b0), offset=host(offset), tol=tol, max_iter=max_iter,
                                    bias_penalty=bias_penalty)
        return result._replace(w=result.w.to(X.dtype), b=result.b.to(X.dtype))
    # Its steps are many small torch operations: on one thread up to _ONE_THREAD_NEWTON_WORK (a busy machine's
    # descheduled threads stall every parallel region).
    with one_thread_up_to(N * D * Y.shape[1], _ONE_THREAD_NEWTON_WORK if not shards.distributed else 0.0):
        return primal_newton(X, Y, C, loss=loss, tol=tol, max_iter=max_iter, offset=offset, shards=shards,
                             bias_penalty=bias_penalty, W0=W0, b0=b0)


def _host_newton(X: Matrix, problems: int, distributed: bool = False) -> bool:
    """Whether the (squared) hinge's Newton method runs as compiled code here: a CPU X in one process, with
    N (D + 1)^2 K at most _HOST_NEWTON_WORK (a sparse X as a dense copy of at most _HOST_DENSE_COPY entries)."""
    N, D = X.shape
    return (X.device.type == "cpu" and not distributed and N * (D + 1) ** 2 * problems <= _HOST_NEWTON_WORK
            and (isinstance(X, Tensor) or N * D <= _HOST_DENSE_COPY))


def _density(X: Matrix) -> float:
    """The fraction of nonzero entries of X (a sample of 2,000 rows: one pass over them)."""
    if isinstance(X, SparseRows):
        return X.nnz / max(1, X.shape[0] * X.shape[1])
    rows = X[:: max(1, X.shape[0] // 2000)]
    if rows.device.type == "cpu":  # NumPy on a view: a small fit's torch operations cost more than the pass
        return np.count_nonzero(rows.detach().numpy()) / max(1, rows.numel())
    return float((rows != 0).float().mean())


def _mean_sq_norm(X: Matrix) -> float:
    """The mean of ||x_i||^2 over the rows of X."""
    if isinstance(X, Tensor) and X.device.type == "cpu":
        A = X.detach().numpy()
        return float(np.einsum("ij,ij->", A, A, dtype=np.float64)) / max(1, A.shape[0])
    return float(row_norms_sq(X).mean())

# LIBLINEAR's solvers by loss, penalty and dual, as scikit-learn checks them (_get_liblinear_solver_type):
# a combination absent here is refused with scikit-learn's words.
_LIBLINEAR_COMBINATIONS: dict[str, dict[str, tuple[bool, ...]]] = {
    "hinge": {"l2": (True,)},
    "squared_hinge": {"l1": (False,), "l2": (False, True)},
    "epsilon_insensitive": {"l2": (True,)},
    "squared_epsilon_insensitive": {"l2": (False, True)},
    "logistic": {"l2": (False, True)},  # torchsvm's own loss (Newton only)
}


def _check_combination(penalty: str, loss: str, dual: bool | str) -> None:
    """scikit-learn's "Unsupported set of arguments" for a (penalty, loss, dual) LIBLINEAR has no solver for."""
    by_penalty = _LIBLINEAR_COMBINATIONS[loss]
    if penalty not in by_penalty:
        problem = f"The combination of penalty='{penalty}' and loss='{loss}' is not supported"
    elif dual != "auto" and dual not in by_penalty[penalty]:
        problem = f"The combination of penalty='{penalty}' and loss='{loss}' are not supported when dual={dual}"
    else:
        return
    raise ValueError(f"Unsupported set of arguments: {problem}, Parameters: penalty={penalty!r}, loss={loss!r}, "
                     f"dual={dual!r}")


class LinearSettings(NamedTuple):
    """A linear fit's parameters as the solvers read them (scikit-learn's ``_fit_liblinear`` takes its
    parameters so): the estimators' own, and ``penalty``, ``multi_class`` and ``distributed``, which
    only :class:`LinearSVC` has."""

    loss: str  # the estimator's: hinge, squared_hinge, epsilon_insensitive, squared_epsilon_insensitive, logistic
    dual: bool | str
    C: float
    tol: float
    max_iter: int
    solver: str  # "auto", "newton", "dcd" or "newton-cg"
    fit_intercept: bool
    intercept_scaling: float
    penalize_intercept: bool
    random_state: Any
    penalty: str = "l2"
    multi_class: str = "ovr"
    distributed: bool = False

    @property
    def hinge(self) -> str:
        """The loss as the primal solvers name it (epsilon-insensitive losses are hinges on two copies of each sample)."""
        names = {"epsilon_insensitive": "hinge", "squared_epsilon_insensitive": "squared_hinge"}
        return names.get(self.loss, self.loss)

    @property
    def bias_penalty(self) -> float:
        """lam of 1/2 lam b^2: inf without an intercept, 1 / intercept_scaling^2 for LIBLINEAR's, 0 if free."""
        if not self.fit_intercept:
            return math.inf
        return 1.0 / float(self.intercept_scaling) ** 2 if self.penalize_intercept else 0.0

    @property
    def constant_feature(self) -> float:
        """The constant feature's value B for coordinate descent: 0 without an intercept."""
        return float(self.intercept_scaling) if self.fit_intercept else 0.0

    @property
    def coordinate_only(self) -> bool:
        """Problems only coordinate descent solves here: L1 penalty, Crammer-Singer."""
        return self.penalty == "l1" or self.multi_class == "crammer_singer"

    @property
    def dcd_solves(self) -> bool:
        """Whether LIBLINEAR's dual coordinate descent solves the problem (a penalized intercept or none, one process)."""
        return self.hinge in ("hinge", "squared_hinge") and self.bias_penalty != 0 and not self.distributed

    def seed(self) -> int:
        """Coordinate descent's seed from ``random_state``, drawn as scikit-learn draws LIBLINEAR's."""
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))


def check_settings(s: LinearSettings) -> None:
    """The combinations of parameters the linear solvers refuse, in scikit-learn's words where it has them."""
    if s.multi_class != "crammer_singer":  # scikit-learn ignores loss and penalty there
        _check_combination(s.penalty, s.loss, s.dual)
    if s.coordinate_only and (s.solver == "newton" or not s.bias_penalty or s.distributed):
        raise ValueError(
            "penalty='l1' and multi_class='crammer_singer' are solved by LIBLINEAR's coordinate descent, one "
            "process, intercept penalized (or none); got "
            f"solver={s.solver!r}, penalize_intercept={s.penalize_intercept!r}, distributed={s.distributed!r}")
    if s.solver == "dcd" and not s.dcd_solves:
        raise ValueError(
            "solver='dcd' solves the hinge and squared hinge with a penalized intercept (or none) in one process; "
            f"got loss={s.loss!r}, penalize_intercept={s.penalize_intercept!r}, distributed={s.distributed!r} "
            "(use solver='newton')"
        )
    if s.solver == "newton-cg" and not (s.dcd_solves and s.hinge == "squared_hinge"):
        raise ValueError(
            "solver='newton-cg' solves the squared hinge (or squared epsilon-insensitive loss) with a penalized "
            f"intercept (or none) in one process; got loss={s.loss!r}, penalize_intercept={s.penalize_intercept!r}, "
            f"distributed={s.distributed!r} (use solver='newton')"
        )


def choose_solver(X: Matrix, s: LinearSettings, problems: int = 1) -> str:
    """``"dcd"``, ``"newton"`` or ``"newton-cg"`` for ``problems`` problems on X: ``"auto"`` picks coordinate
    descent on the CPU where it solves the problem, the Newton method otherwise (on a GPU, and for a free
    intercept or the logistic loss), and on dense enough X: a sweep of coordinate descent costs the nonzeros,
    a Newton step dense products, so for the squared hinge Newton wins once D / density is small (see
    _DENSE_NEWTON), and for the hinge where its compiled Newton method runs; unless C ||x||^2 is small enough
    for coordinate descent to converge in a few dozen sweeps (and, for the squared hinge, X is wide enough:
    D / density at least _DENSE_DCD_WIDTH). One squared-hinge problem on a sparse or wide X with more rows than
    features goes to the Newton method with conjugate gradients where C ||x||^2 is moderate (_NEWTON_CG_SCALE)."""
    if s.solver != "auto":
        return s.solver
    if X.device.type != "cpu" or not s.dcd_solves:
        return "newton"
    width = X.shape[1] / max(_density(X), 1e-12)
    if width >= _DENSE_NEWTON and s.hinge == "squared_hinge" and X.shape[0] > X.shape[1] and problems == 1:
        # One problem on more rows than features (scikit-learn's rule for its primal solver): the Newton method with
        # conjugate gradients where C ||x||^2 is large enough to cost coordinate descent hundreds of sweeps and not
        # so large that the Newton steps (their active sets changing) outnumber them in cost. One-vs-rest problems
        # (10 classes) ran as fast or faster by coordinate descent at every C measured.
        scale = float(s.C) * (_mean_sq_norm(X) + s.constant_feature ** 2)
        return "newton-cg" if _DENSE_DCD_SCALE < scale <= _NEWTON_CG_SCALE else "dcd"
    if width >= _DENSE_NEWTON or (s.hinge == "hinge" and not _host_newton(X, problems)):
        return "dcd"
    if s.hinge == "squared_hinge" and width < _DENSE_DCD_WIDTH:
        return "newton"
    scale = float(s.C) * (_mean_sq_norm(X) + s.constant_feature ** 2)
    return "dcd" if scale <= _DENSE_DCD_SCALE else "newton"


def fit_primal(X: Matrix, Y: Tensor, C: Tensor, s: LinearSettings, offset: Tensor | None = None,
               shards: Collectives = LOCAL,
               descend: Callable[[int, bool], PrimalResult] | None = None) -> tuple[PrimalResult, str]:
    """Solve the K problems of ``Y`` ``(N, K)`` with costs ``C`` ``(N, K)`` (and hinge offsets ``offset``):
    the solution on X's device and the solver that found it, in words.

    ``solver="auto"`` on the CPU runs coordinate descent and, where it would stop before its certified
    gap reaches ``tol`` (large C) and the Newton method runs as compiled code (a small dense X), the Newton
    method from its iterate, which certifies the answer. ``descend(check_every, hand_over)``, where given,
    is the coordinate descent of the same problem in another form (LinearSVR's one variable per sample);
    by default LIBLINEAR's on the rows of X."""
    # The compiled solvers' modules import numba: loaded on the first fit, not at import.
    from torchsvm.solvers.dcd import dual_coordinate_descent
    from torchsvm.solvers.l1_cd import l1_coordinate_descent
    from torchsvm.solvers.newton_cg import newton_cg_squared_hinge

    device, loss = X.device, s.hinge
    newton: dict[str, Any] = dict(loss=loss, tol=s.tol, max_iter=s.max_iter, offset=offset, shards=shards,
                                  bias_penalty=s.bias_penalty)
    if s.penalty == "l1":  # on the CPU whatever the device
        result = l1_coordinate_descent(X, Y, C, s.tol, s.max_iter, s.constant_feature, seed=s.seed())
        return result._replace(w=result.w.to(device), b=result.b.to(device)), "l1 coordinate descent"
    solver = choose_solver(X, s, Y.shape[1])
    if solver == "newton":
        return _newton(X, Y, C, **newton), "newton"
    if solver == "newton-cg":
        result = newton_cg_squared_hinge(X, Y, C, s.tol, s.max_iter, s.constant_feature, offset)
        return result._replace(w=result.w.to(device), b=result.b.to(device)), "newton-cg"
    # "auto" hands a problem to the Newton method where the Newton method runs as compiled code (its steps cost a
    # few sweeps) and coordinate descent, at the rate its gap has fallen, would not reach tol within max_iter
    # sweeps; or at max_iter. Elsewhere (the torch method: the hinge on mnist-10k costs ~1,500 sweeps' time a
    # problem, on sparse X with 5,000 features ~10,000) coordinate descent runs to tol or, as LIBLINEAR, to max_iter
    # and warns. A very small hinge problem runs its max_iter sweeps first: there a sweep costs microseconds and the
    # hinge's Newton method (smoothing stages) thousands of sweeps' time, while a gap that plateaus for 200 sweeps
    # often falls after (an unneeded hand-over multiplies such a fit's time: the 1,000-row hinge cases of
    # benchmarks/results/busy-cpu-2026-12-07 against -2).
    rows = X.shape[0] * Y.shape[1]
    finish = s.solver == "auto" and _host_newton(X, Y.shape[1])
    hand_over = finish and not (loss == "hinge" and rows <= _HINGE_SWEEPS_ROWS)
    window = _CHECK_EVERY_SMALL if rows <= _STALL_ROWS else _CHECK_EVERY
    if descend is None:
        result = dual_coordinate_descent(X, Y, C, loss, s.tol, s.max_iter, s.constant_feature,
                                         check_every=window, seed=s.seed(), offset=offset, hand_over=hand_over)
    else:
        result = descend(window, hand_over)
    result = result._replace(w=result.w.to(device), b=result.b.to(device))
    if result.info.converged or not finish:
        return result, "dcd"
    return _finish_by_newton(X, Y, C, result, newton), "dcd, then newton"


def _finish_by_newton(X: Matrix, Y: Tensor, C: Tensor, result: PrimalResult, newton: dict[str, Any]) -> PrimalResult:
    """The Newton method from coordinate descent's iterate, on the problems coordinate descent left open (the
    others keep their certified solutions: a wide X's Newton steps cost each problem dozens of sweeps)."""
    gaps = result.info.gaps
    open_ = torch.ones(Y.shape[1], dtype=torch.bool) if gaps is None else gaps.cpu() > newton["tol"]
    cols = open_.nonzero().squeeze(1).to(Y.device)
    offset = newton["offset"]
    polished = _newton(X, Y[:, cols], C[:, cols], W0=result.w[:, cols], b0=result.b[cols],
                       **{**newton, "offset": None if offset is None else offset[:, cols]})
    w, b = result.w.index_copy(1, cols, polished.w), result.b.index_copy(0, cols, polished.b)
    objective = result.info.objective.to(polished.info.objective).index_copy(0, cols, polished.info.objective)
    kept = [] if gaps is None else gaps[~open_].tolist()
    info = SolverInfo(polished.info.converged, result.info.n_iter + polished.info.n_iter,
                      max([polished.info.gap, *kept]), objective)
    return PrimalResult(w, b, info)


class BaseLinear(Constrained, BaseEstimator):
    """What :class:`LinearSVC` and :class:`LinearSVR` share: the bias's handling, the run of the solver
    (:func:`fit_primal` on the estimator's :class:`LinearSettings`), the fitted attributes (``coef_`` and
    ``intercept_`` are the model: prediction reads them, as scikit-learn's), the convergence warning,
    and the linear decision values."""

    _family = LINEAR
    _own_constraints = {"solver": [StrOptions({"auto", "newton", "dcd", "newton-cg"})]}

    def __init__(
        self,
        *,
        loss: str,
        dual: bool | str,
        tol: float,
        C: float,
        fit_intercept: bool,
        intercept_scaling: float,
        verbose: int,
        random_state: Any,
        max_iter: int,
        penalize_intercept: bool,
        solver: str,
        device: str,
    ) -> None:
        # The parameters both share; each subclass lists them in its own signature with its defaults.
        self.loss = loss
        self.dual = dual
        self.tol = tol
        self.C = C
        self.fit_intercept = fit_intercept
        self.intercept_scaling = intercept_scaling
        self.verbose = verbose
        self.random_state = random_state
        self.max_iter = max_iter
        self.penalize_intercept = penalize_intercept
        self.solver = solver
        self.device = device

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def _settings(self) -> LinearSettings:
        """The parameters as the solvers read them (a subclass adds its own)."""
        return LinearSettings(str(self.loss), self.dual, float(self.C), float(self.tol), int(self.max_iter),
                              str(self.solver), bool(self.fit_intercept), float(self.intercept_scaling),
                              bool(self.penalize_intercept), self.random_state)

    def _check_params(self) -> None:
        self._validate_params()
        check_settings(self._settings())

    def _fit_primal(self, X: Matrix, Y: Tensor, C: Tensor, offset: Tensor | None = None,
                    shards: Collectives = LOCAL, descend: Callable[[int, bool], PrimalResult] | None = None) -> None:
        """:func:`fit_primal`, then the fitted attributes and the verbose report."""
        start = time.perf_counter()
        result, solver = fit_primal(X, Y, C, self._settings(), offset, shards, descend)
        measure = "gradient norm" if solver == "newton" and self._settings().hinge != "hinge" else "duality gap"
        self._set_model(result, measure)
        report(self, f"{solver}: {result.info.n_iter} iterations, {measure} {result.info.gap:.3g} (tol={self.tol}), "
                     f"{time.perf_counter() - start:.3f} s")

    def _set_model(self, result: PrimalResult, measure: str) -> None:
        self.coef_ = result.w.t().cpu().numpy()
        self.intercept_ = result.b.cpu().numpy() if self.fit_intercept else 0.0  # scikit-learn's 0.0 without one
        self.n_iter_ = int(result.info.n_iter)
        self.objective_ = result.info.objective.cpu().numpy()
        self.duality_gap_ = result.info.gap
        self._device, self._dtype = result.w.device, result.w.dtype
        if not result.info.converged:
            warn_convergence(
                f"Liblinear failed to converge, increase the number of iterations. ({type(self).__name__}: "
                f"relative {measure} {result.info.gap:.2e} > tol={self.tol} after {result.info.n_iter} iterations "
                f"(max_iter={self.max_iter}); raise max_iter, loosen tol, or scale the features.)",
                stacklevel=4,
            )

    def to_module(self, output: str = "decision_function") -> LinearSVMModule:
        """The fitted model as a torch module (:class:`~torchsvm.svm.modules.LinearSVMModule`) on the model's
        device, in the model's dtype: ``forward(X)`` gives ``output`` (``"decision_function"`` or
        ``"predict"``) as this estimator does. It moves with ``.to``, composes, compiles and exports."""
        check_is_fitted(self, "coef_")
        coef = dense_array(self.coef_)  # CSR after sparsify()
        W = torch.as_tensor(np.atleast_2d(coef), dtype=self._dtype, device=self._device)
        b = torch.as_tensor(np.broadcast_to(np.asarray(self.intercept_, dtype=np.float64), (W.shape[0],)).copy(),
                            dtype=self._dtype, device=self._device)
        return LinearSVMModule(W, b, self._head(output)).to(self._device)

    def _head(self, output: str) -> DecisionHead:
        return DecisionHead("regressor", output)

    def _linear_decision(self, X: Any) -> Tensor:
        """``X coef_^T + intercept_`` ``(n_samples, K)`` on the model's device, from the fitted attributes."""
        check_is_fitted(self, "coef_")
        check_feature_names(self, X, reset=False)
        Xt = as_tensor_2d(X, "X", self._device, self._dtype)
        check_n_features(self, Xt)
        coef = dense_array(self.coef_)  # CSR after sparsify()
        W = torch.as_tensor(np.atleast_2d(coef), dtype=Xt.dtype, device=Xt.device)  # (K, D)
        b = torch.as_tensor(np.atleast_1d(self.intercept_), dtype=Xt.dtype, device=Xt.device)
        return addmm(b, Xt, W.t())


class LinearSVC(ClassifierMixin, BaseLinear):
    """Linear support vector classifier, scikit-learn's ``LinearSVC`` solved with torch (CPU or GPU).

    For each class k (one-vs-rest; one problem for two classes) it solves LIBLINEAR's problem

        minimize 1/2 ||w||^2 + 1/2 (b / B)^2 + sum_i C_i L(y_i (w . x_i + b)),   y_i in {-1, +1},

    with B = ``intercept_scaling`` (``penalize_intercept=False`` drops the b term: the textbook SVM,
    solved by the Newton method; ``fit_intercept=False`` fixes b = 0) and L the squared hinge
    (default) or the hinge. The costs are LIBLINEAR's: C_i = C * sample_weight_i, times
    class_weight[k] for the samples of class k in its own problem (of both classes for two).
    ``penalty="l1"`` replaces 1/2 ||w||^2 + 1/2 (b / B)^2 by ||[w, b / B]||_1 (squared hinge; sparse
    weights), and ``multi_class="crammer_singer"`` solves one joint problem over the classes
    (LIBLINEAR's, costs C_i = C * sample_weight_i * class_weight[y_i]): both by LIBLINEAR's coordinate
    descent methods (:mod:`torchsvm.solvers.l1_cd`, :mod:`torchsvm.solvers.crammer_singer_cd`), run on
    the CPU whatever ``device`` (the fitted model lives on ``device``), stopped on a certified duality gap.

    Solvers (``solver``): ``"dcd"``, dual coordinate descent (LIBLINEAR's dual method, compiled,
    classes in parallel threads, on the CPU; :func:`torchsvm.solvers.dcd.dual_coordinate_descent`);
    ``"newton-cg"``, the squared hinge's primal Newton method with conjugate gradients on compressed rows
    (as LIBLINEAR's primal method, compiled, on the CPU; :func:`torchsvm.solvers.newton_cg.newton_cg_squared_hinge`);
    ``"newton"``, a batched Newton method on the primal, all classes at once on one copy of X, on any
    device (:func:`torchsvm.solvers.primal.primal_newton`); ``"auto"``, coordinate descent on the
    CPU, finished by the Newton method where it would stop short of ``tol`` (large C) and the Newton
    method runs as compiled code (a small dense X; elsewhere coordinate descent runs to ``tol`` or, as
    LIBLINEAR, to ``max_iter`` and warns), the Newton method from the start on a dense X where
    C ||x||^2 is large, ``"newton-cg"`` for one squared-hinge problem (two classes) on a sparse X with more
    rows than features where C ||x||^2 is moderate, and the Newton method on a GPU. Every
    solver stops on a certificate: the hinge on the relative duality gap (the objective is within
    ``tol`` of the optimum), the squared hinge on the relative gradient norm (Newton) or duality
    gap (coordinate descent, Newton-CG).

    The parameters, defaults and checks are scikit-learn's (1.9), except: ``tol`` is the
    certificate above (LIBLINEAR's is its solver's own stopping rule), and ``dual`` is checked as
    scikit-learn checks it but the solver is ``solver``'s (the answer is the same).

    Args:
        penalty: ``"l2"`` or ``"l1"`` (with the squared hinge and ``dual=False``, as scikit-learn).
        loss: ``"squared_hinge"`` (default), ``"hinge"``, or torchsvm's ``"logistic"`` (Newton only).
        dual: ``"auto"``, True or False: checked against the loss and penalty as scikit-learn does.
        tol: the certificate's tolerance (see above).
        C: inverse regularization strength, > 0.
        multi_class: ``"ovr"`` or ``"crammer_singer"`` (``loss``, ``penalty`` and ``dual`` then ignored).
        fit_intercept: fit b (default) or fix it at 0.
        intercept_scaling: B, the constant feature's value (its weight b / B is penalized); a larger
            B penalizes the intercept less.
        class_weight: None, a dict ``{class: weight}``, or ``"balanced"`` (counts weighted by
            ``sample_weight``, as scikit-learn's).
        verbose: print one line about each fit.
        random_state: seeds coordinate descent's order (None: NumPy's global generator, as scikit-learn).
        max_iter: iterations: sweeps over the data (coordinate descent), Newton steps.
        penalize_intercept: False: the intercept is not penalized (the textbook SVM; Newton).
        solver: ``"auto"``, ``"dcd"``, ``"newton"`` or ``"newton-cg"`` (see above).
        device: ``"auto"`` (CUDA if available, except that X of at most 1,000 rows not already on CUDA is fitted
            on the CPU, where the compiled path takes milliseconds), ``"cpu"``, ``"cuda"``, ...
        distributed: fit over rows sharded across the ranks of an initialized ``torch.distributed``
            process group (data-parallel Newton: gradients, Hessian Gram parts and line-search sums
            are all-reduced); every rank calls ``fit`` with its own rows and ends with the same model.
            Every class must appear on every rank.
        process_group: the group for ``distributed`` (default: the default group).

    Attributes:
        coef_: ``(1, n_features)`` for two classes, else ``(n_classes, n_features)``; prediction reads it.
        intercept_: ``(1,)`` or ``(n_classes,)``; 0.0 with ``fit_intercept=False``; prediction reads it.
        classes_, class_weight_, n_features_in_: as scikit-learn's.
        n_iter_: the iterations of the slowest class.
        objective_: final primal objective per problem (one for Crammer-Singer).
        duality_gap_: the final certificate (relative duality gap or gradient norm), worst problem.
        bytes_sent_: ``distributed`` fits only: the bytes this rank handed to collectives during fit.
    """

    _own_constraints = {**BaseLinear._own_constraints, "loss": [StrOptions({"hinge", "squared_hinge", "logistic"})]}


    def __init__(
        self,
        penalty: Literal["l1", "l2"] = "l2",
        loss: Literal["hinge", "squared_hinge", "logistic"] = "squared_hinge",
        *,
        dual: bool | Literal["auto"] = "auto",
        tol: float = 1e-4,
        C: float = 1.0,
        multi_class: Literal["ovr", "crammer_singer"] = "ovr",
        fit_intercept: bool = True,
        intercept_scaling: float = 1.0,
        class_weight: dict | Literal["balanced"] | None = None,
        verbose: int = 0,
        random_state: int | np.random.RandomState | None = None,
        max_iter: int = 1000,
        penalize_intercept: bool = True,
        solver: Literal["auto", "newton", "dcd", "newton-cg"] = "auto",
        device: str = "auto",
        distributed: bool = False,
        process_group: Any = None,
    ) -> None:
        super().__init__(
            loss=loss, dual=dual, tol=tol, C=C, fit_intercept=fit_intercept, intercept_scaling=intercept_scaling,
            verbose=verbose, random_state=random_state, max_iter=max_iter, penalize_intercept=penalize_intercept,
            solver=solver, device=device,
        )
        self.penalty = penalty
        self.multi_class = multi_class
        self.class_weight = class_weight
        self.distributed = distributed
        self.process_group = process_group

    def _head(self, output: str) -> DecisionHead:
        return DecisionHead("classifier", output, self.classes_)

    def _settings(self) -> LinearSettings:
        return super()._settings()._replace(penalty=str(self.penalty), multi_class=str(self.multi_class),
                                            distributed=self.distributed is True)

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LinearSVC:
        """Fit on ``X`` ``(n_samples, n_features)`` (array-like or tensor) and labels ``y`` of any values;
        samples of zero or negative ``sample_weight`` leave the problem."""
        with small_fit_threads(X):
            return self._fit(X, y, sample_weight)

    def _fit(self, X: Any, y: Any, sample_weight: Any) -> LinearSVC:
        self._check_params()
        shards = shards_of(self)
        device = fit_device(self.device, X, self.distributed)
        check_feature_names(self, X, reset=True)
        Xt = solver_dtype(shard_inputs(shards, X, device))
        costs = classes_and_costs(self, Xt.shape[0], y, sample_weight, self.C, self.class_weight, shards,
                                  weighted_balance=True)
        self.classes_, self.class_weight_ = costs.classes, costs.class_weight
        self.n_features_in_ = Xt.shape[1]
        keep = costs.sample > 0
        y_t = torch.as_tensor(costs.y_idx[keep], device=device)
        if not keep.all():  # LIBLINEAR's samples without weight do nothing: leave them out
            Xt = Xt[torch.as_tensor(np.flatnonzero(keep), device=device)]
        n_classes = len(self.classes_)
        K = 1 if n_classes == 2 else n_classes
        columns = torch.arange(K, device=device) + (1 if K == 1 else 0)  # binary: +1 is classes_[1]
        Y = torch.where(y_t.unsqueeze(1) == columns, 1.0, -1.0).to(Xt.dtype)  # (N, K)
        sample = torch.as_tensor(costs.sample[keep], dtype=Xt.dtype, device=device).unsqueeze(1)
        weight = torch.as_tensor(costs.class_weight, dtype=Xt.dtype, device=device)
        if self.multi_class == "crammer_singer":
            self._fit_crammer_singer(Xt, y_t, sample[:, 0] * weight[y_t])
            return self
        # LIBLINEAR: two classes keep their own weights; in one-vs-rest only class k's samples are
        # weighted in problem k, the rest count C.
        C = sample * (weight[y_t].unsqueeze(1) if K == 1 else torch.where(Y > 0, weight, 1.0))
        sent = shards.bytes_sent
        self._fit_primal(Xt, Y, C, shards=shards)
        if self.distributed:
            self.bytes_sent_ = shards.bytes_sent - sent
        return self

    def _fit_crammer_singer(self, X: Matrix, y: Tensor, C: Tensor) -> None:
        """One joint problem over the classes (on the CPU whatever the device); for two classes
        scikit-learn keeps the difference of the two weight vectors, as here."""
        from torchsvm.solvers.crammer_singer_cd import crammer_singer_coordinate_descent  # numba: loaded on first use

        start = time.perf_counter()
        s = self._settings()
        result = crammer_singer_coordinate_descent(X, y, C, len(self.classes_), s.tol, s.max_iter, s.constant_feature,
                                                   seed=s.seed())
        if len(self.classes_) == 2:
            result = result._replace(w=result.w[:, 1:] - result.w[:, :1], b=result.b[1:] - result.b[:1])
        self._set_model(result._replace(w=result.w.to(X.device), b=result.b.to(X.device)), "duality gap")
        report(self, f"crammer-singer coordinate descent: {result.info.n_iter} sweeps, duality gap "
                     f"{result.info.gap:.3g} (tol={self.tol}), {time.perf_counter() - start:.3f} s")

    def densify(self) -> LinearSVC:
        """``coef_`` back to a dense array (scikit-learn's ``SparseCoefMixin``)."""
        check_is_fitted(self, "coef_")
        coef: Any = self.coef_
        if scipy.sparse.issparse(coef):
            self.coef_ = coef.toarray()
        return self

    def sparsify(self) -> LinearSVC:
        """``coef_`` as a scipy CSR matrix (worth it for ``penalty="l1"``'s mostly-zero weights)."""
        check_is_fitted(self, "coef_")
        self.coef_ = scipy.sparse.csr_matrix(self.coef_)
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
        scores = self._linear_decision(X)
        idx = (scores[:, 0] > 0).long() if scores.shape[1] == 1 else scores.argmax(dim=1)
        return self.classes_[idx.cpu().numpy()]


class LinearSVR(RegressorMixin, BaseLinear):
    """Linear support vector regression, scikit-learn's ``LinearSVR`` solved with torch (CPU or GPU).

        minimize 1/2 ||w||^2 + 1/2 (b / B)^2 + sum_i C_i L(y_i - (w . x_i + b))

    with the epsilon-insensitive loss L(r) = max(0, |r| - epsilon) (default) or its square, B =
    ``intercept_scaling`` and C_i = C * sample_weight_i (``penalize_intercept`` and
    ``fit_intercept`` as :class:`LinearSVC`). Each sample enters as two hinge terms,
    max(0, (y - epsilon) - f) and max(0, f - (y + epsilon)), and the solvers of :class:`LinearSVC`
    solve the result (see :func:`torchsvm.solvers.primal.primal_newton`'s ``offset``).

    Differences from scikit-learn: as :class:`LinearSVC`; ``epsilon`` must be >= 0 (scikit-learn
    accepts a negative tube).

    Args:
        epsilon: half width of the tube inside which deviations cost nothing, >= 0.
        tol, C, fit_intercept, intercept_scaling, dual, verbose: as :class:`LinearSVC`.
        random_state, max_iter, penalize_intercept, solver, device: as :class:`LinearSVC`.
        loss: ``"epsilon_insensitive"`` or ``"squared_epsilon_insensitive"``.

    Attributes:
        coef_: ``(n_features,)``. intercept_: ``(1,)`` (0.0 without an intercept). n_iter_,
        n_features_in_, objective_, duality_gap_: as :class:`LinearSVC`.
    """

    _own_constraints = {**BaseLinear._own_constraints,
                        "loss": [StrOptions({"epsilon_insensitive", "squared_epsilon_insensitive"})]}

    def __init__(
        self,
        *,
        epsilon: float = 0.0,
        tol: float = 1e-4,
        C: float = 1.0,
        loss: Literal["epsilon_insensitive", "squared_epsilon_insensitive"] = "epsilon_insensitive",
        fit_intercept: bool = True,
        intercept_scaling: float = 1.0,
        dual: bool | Literal["auto"] = "auto",
        verbose: int = 0,
        random_state: int | np.random.RandomState | None = None,
        max_iter: int = 1000,
        penalize_intercept: bool = True,
        solver: Literal["auto", "newton", "dcd", "newton-cg"] = "auto",
        device: str = "auto",
    ) -> None:
        super().__init__(
            loss=loss, dual=dual, tol=tol, C=C, fit_intercept=fit_intercept, intercept_scaling=intercept_scaling,
            verbose=verbose, random_state=random_state, max_iter=max_iter, penalize_intercept=penalize_intercept,
            solver=solver, device=device,
        )
        self.epsilon = epsilon

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LinearSVR:
        """Fit on ``X`` ``(n_samples, n_features)`` (array-like or tensor) and real targets ``y``."""
        with small_fit_threads(X):
            return self._fit(X, y, sample_weight)

    def _fit(self, X: Any, y: Any, sample_weight: Any) -> LinearSVR:
        self._check_params()
        device = fit_device(self.device, X)
        check_feature_names(self, X, reset=True)
        Xt = solver_dtype(as_tensor_2d(X, "X", device))
        N = Xt.shape[0]
        self.n_features_in_ = Xt.shape[1]
        y_np = float_targets(self, N, y)
        cost_np = sample_costs(self.C, N, sample_weight)
        keep = cost_np > 0
        if not keep.all():  # samples without weight do nothing: leave them out
            Xt = Xt[torch.as_tensor(np.flatnonzero(keep), device=device)]
        t = torch.tensor(y_np[keep], dtype=Xt.dtype, device=device)
        cost = torch.as_tensor(cost_np[keep], dtype=Xt.dtype, device=device)
        ones = torch.ones_like(t)
        # Two hinge rows per sample: y = +1 must reach f >= t - epsilon, y = -1 must reach -f >= -t - epsilon.
        X2, Y2 = vstack([Xt, Xt]), torch.cat([ones, -ones]).unsqueeze(1)
        offset = torch.cat([t - self.epsilon, -t - self.epsilon]).unsqueeze(1)

        def descend(check_every: int, hand_over: bool) -> PrimalResult:  # one variable per sample (LIBLINEAR's SVR)
            from torchsvm.solvers.svr_cd import svr_coordinate_descent  # numba: loaded on first use

            s = self._settings()
            return svr_coordinate_descent(Xt, t, cost, float(self.epsilon), s.loss == "squared_epsilon_insensitive",
                                          s.tol, s.max_iter, s.constant_feature, check_every=check_every,
                                          seed=s.seed(), hand_over=hand_over)

        self._fit_primal(X2, Y2, torch.cat([cost, cost]).unsqueeze(1), offset, descend=descend)
        self.coef_ = self.coef_[0]
        return self

    def predict(self, X: Any) -> np.ndarray | Tensor:
        """Predicted targets ``(n_samples,)``; a tensor input gives a tensor on the model's device."""
        f = self._linear_decision(X)[:, 0]
        return f if isinstance(X, Tensor) else f.cpu().numpy()
