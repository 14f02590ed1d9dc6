"""The LIBSVM-like base class of the kernel estimators.

:class:`BaseLibSVM` is the base of :class:`~torchsvm.SVC`, :class:`~torchsvm.SVR` and
:class:`~torchsvm.OneClassSVM`, as scikit-learn's ``BaseLibSVM``: the shared parameters and their checks, the fit
as the four steps of :mod:`torchsvm.svm.problems`, models from and to plain data (:class:`Solution`), torch
modules, and the decision values.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from torch import Tensor

from torchsvm._sparse import Matrix, SparseRows, as_sparse_rows, dense_array, is_sparse, xt_mm
from torchsvm._threads import one_thread_up_to, small_fit_threads
from torchsvm.distributed import LOCAL, Collectives
from torchsvm.kernels import BUILTIN_KERNELS, KernelFn, kernel_function, kernel_row_blocks, rbf_centered
from torchsvm.solvers.dual import DualResult
from torchsvm.svm import problems
from torchsvm.svm._inputs import (
    Solution,
    as_tensor_2d,
    check_feature_names,
    check_n_features,
    raw_gram,
    report,
    resolve_device,
)
from torchsvm.svm._params import LIBSVM, Constrained, StrOptions
from torchsvm.svm.modules import DecisionHead, SVMModule

__all__ = ["BaseLibSVM"]

# Decision values of at most this many multiply-adds (rows x support vectors x features) run on one torch thread.
_ONE_THREAD_DECISION_WORK = 1e8

# Decision values by compiled code (BaseLibSVM._host_decision) up to this many multiply-adds of kernel values
# (n rows x n_SV x D): there the arithmetic costs about what torch's operations per call cost.
_HOST_DECISION_WORK = 1e6


class BaseLibSVM(Constrained, BaseEstimator):
    """Shared machinery of the LIBSVM-like estimators (see the module docstring).

    Subclasses list their parameters in ``__init__`` as scikit-learn wants and pass the shared ones
    (``kernel, degree, gamma, coef0, tol, shrinking, cache_size, verbose, max_iter, solver,
    working_set_size, kernel_dtype, device``) to this class's; their constraints are scikit-learn's, see
    :mod:`torchsvm.svm._params`. Their kind is LIBSVM's ``svm_type`` (``_impl``, as scikit-learn's), which picks
    the problems' form and how a solution is read (:mod:`torchsvm.svm.problems`).
    """

    _family = LIBSVM
    _impl: str  # "c_svc", "nu_svc", "epsilon_svr", "nu_svr" or "one_class"
    _own_constraints = {"solver": [StrOptions({"auto", "smo", "decomposition"})]}
    _problem_params: tuple[str, ...] = ()  # parameters that change only the problems, not the kernel
    _in_memory_variables = math.inf  # one problem of more variables goes to decomposition on the CPU (SVC, SVR)
    _rbf_rows: tuple[Tensor, Tensor, Tensor] | None  # _decision_kernel's prepared support vectors, made on first use
    # Fitted, by the fit steps (torchsvm.svm.problems.set_solution) or from_solution:
    _coef: Tensor  # (n_SV, m) the support vectors' coefficients, dual_coef_ transposed
    _b: Tensor  # (P,) the intercepts
    _n_support: np.ndarray  # support vectors per class (n_support_)
    intercept_: np.ndarray
    n_iter_: int | np.ndarray  # fitted: steps per problem (an array for the classifiers' several problems)

    def __init__(
        self,
        *,
        kernel: Any,
        degree: int,
        gamma: Any,
        coef0: float,
        shrinking: bool,
        tol: float,
        cache_size: Any,
        verbose: bool,
        max_iter: int,
        solver: str,
        working_set_size: int | str,
        kernel_dtype: str,
        device: str,
    ) -> None:
        # The parameters every LIBSVM-family estimator shares; each subclass lists them in its own
        # signature with its defaults (scikit-learn reads the parameters from it) and passes them here.
        self.kernel = kernel
        self.degree = degree
        self.gamma = gamma
        self.coef0 = coef0
        self.shrinking = shrinking
        self.tol = tol
        self.cache_size = cache_size
        self.verbose = verbose
        self.max_iter = max_iter
        self.solver = solver
        self.working_set_size = working_set_size
        self.kernel_dtype = kernel_dtype
        self.device = device

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.pairwise = self.kernel == "precomputed"  # cross-validation then cuts rows and columns
        tags.input_tags.sparse = self.kernel != "precomputed"  # scikit-learn's sparse X (not Gram matrices)
        return tags

    def _check_params(self) -> None:
        """scikit-learn's parameter validation, then the combinations of parameters."""
        self._validate_params()
        if self.kernel == "precomputed" and self.solver == "decomposition":
            raise ValueError("kernel='precomputed' is solved in memory; use solver='auto' or 'smo'")

    @classmethod
    def from_solution(cls, solution: Solution, **params: Any) -> BaseLibSVM:
        """A fitted estimator from ``solution``, made with the constructor's ``params`` (kernel, degree,
        coef0, device, ...: the kernel's must be those the solution was found with). The fitted
        attributes are those fit sets (``n_iter_`` 0, ``fit_status_`` 0); the one way a model that was
        not fitted here (a LIBSVM model file: :func:`torchsvm.libsvm_format.load_model`) becomes an estimator."""
        est = cls(**params)
        est._set_fitted(solution)
        return est

    def _set_fitted(self, solution: Solution) -> None:
        """:meth:`from_solution`'s fitted attributes."""
        device = resolve_device(self.device)
        sv = solution.support_vectors
        if scipy.sparse.issparse(sv):
            rows: Matrix = as_sparse_rows(sv, "support vectors", device)
        elif sv.shape[1] == 0:  # a precomputed kernel's model: the rows have no features
            rows = torch.zeros(sv.shape, dtype=torch.float64, device=device)
        else:
            rows = as_tensor_2d(sv, "support vectors", device, torch.float64)
        precomputed = self.kernel == "precomputed"
        kernel = None if precomputed else kernel_function(self.kernel, float(solution.gamma), self.degree, self.coef0)
        self._gamma, self._raw_fit, self.fit_status_ = float(solution.gamma), None, 0
        kept = self._set_support(rows, solution, kernel)
        self.support_ = np.asarray(solution.support, dtype=np.int32)[kept]
        self.n_features_in_ = solution.n_features
        self.shape_fit_ = solution.shape_fit or (len(self.support_), solution.n_features)

    def to_solution(self) -> Solution:
        """The fitted model as plain data, :meth:`from_solution`'s inverse (``from_solution(est.to_solution(),
        **est.get_params())`` decides as ``est`` does)."""
        check_is_fitted(self, "_coef")
        n_sv = len(self.support_)
        sv = self.support_vectors_ if self._kernel is not None else np.zeros((n_sv, 0))  # precomputed: no features
        rows, columns = self.shape_fit_
        return Solution(sv, np.array(dense_array(self.dual_coef_), dtype=np.float64), np.array(self.intercept_, dtype=np.float64),
                        np.array(self.support_), int(self.n_features_in_), float(self._gamma), (int(rows), int(columns)))

    def to_module(self, output: str = "decision_function") -> SVMModule:
        """The fitted model as a torch module (:class:`~torchsvm.svm.modules.SVMModule`) on the model's device:
        ``forward(X)`` gives ``output`` (``"decision_function"``, ``"predict"``, ``"predict_proba"`` for a
        classifier fitted with ``probability=True``, ``"score_samples"`` for OneClassSVM) as this estimator
        does, in float64 (``.to(torch.float32)`` for float32). It moves with ``.to``, composes with other
        modules, compiles and exports (``torch.export``, ONNX).

        Raises:
            ValueError: a precomputed or callable kernel (the module computes kernel values from the support
                vectors with a built-in kernel), or an ``output`` this estimator does not give.
        """
        check_is_fitted(self, "_coef")
        if not isinstance(self.kernel, str) or self.kernel not in BUILTIN_KERNELS:
            raise ValueError(f"Expected a built-in kernel {BUILTIN_KERNELS} for to_module (the module computes kernel "
                             f"values from the support vectors), got kernel={self.kernel!r}")
        solution = self.to_solution()
        sv: Any = solution.support_vectors
        dense = np.asarray(dense_array(sv), dtype=np.float64)
        device = self._coef.device

        def tensor(a: np.ndarray) -> Tensor:
            return torch.as_tensor(np.asarray(a, dtype=np.float64), device=device)

        return SVMModule(tensor(dense), tensor(solution.coef), tensor(solution.intercept), kernel=self.kernel,
                         gamma=solution.gamma, degree=self.degree, coef0=self.coef0, head=self._head(output)).to(device)

    def _head(self, output: str) -> DecisionHead:
        """How :meth:`to_module`'s problems become its output (a regressor's here)."""
        return DecisionHead("regressor", output)

    def _set_support(self, sv: Matrix, solution: Solution, kernel: KernelFn | None) -> np.ndarray:
        """:meth:`from_solution`'s fitted attributes of the support vectors ``sv`` and their coefficients; returns
        the rows of ``sv`` kept (rows of coefficient 0, which a model file may hold, are dropped)."""
        support = problems.keep_support(self, sv, solution.coef, solution.intercept, kernel, np.arange(sv.shape[0]))
        problems.set_dual_coef(self, solution.coef[:, support])
        self._n_support = np.array([len(support)], dtype=np.int32)
        self.n_iter_ = 0
        return support

    def _shards(self) -> Collectives:
        """The ranks this estimator's fit runs over (one process here; ``SVC(distributed=True)``: its group)."""
        return LOCAL

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> BaseLibSVM:
        """Fit on ``X`` ``(n_samples, n_features)`` (or a Gram matrix for ``"precomputed"``) and ``y``.

        The one fit path, in one process or sharded: the four steps of :mod:`torchsvm.svm.problems`."""
        start = time.perf_counter()
        problems.check_params(self)  # first: the parameters say whether the fit is sharded
        shards = self._shards()
        sent = shards.bytes_sent
        with small_fit_threads(X):
            prepared = problems.prepare(self, X, shards, checked=True)
            dual, context = problems.make_problems(self, prepared.X, y, sample_weight, shards)
            res = problems.solve(self, prepared, dual, shards)
            problems.set_solution(self, prepared, res, dual, context, shards)
        if shards.distributed:
            self.bytes_sent_ = shards.bytes_sent - sent
        self._report(res, start)
        return self

    def _report(self, res: DualResult, start: float) -> None:
        """With ``verbose``, one line on the fit (scikit-learn prints LIBSVM's log there)."""
        if not self.verbose:
            return
        report(self, f"{res.alpha.shape[0]} problem(s), max KKT violation {float(res.info.kkt_violation.max()):.3g} "
                     f"(tol={self.tol}), {int(res.info.problem_iters.max())} steps, {len(self.support_)} support "
                     f"vectors, {time.perf_counter() - start:.3f} s")

    @property
    def n_support_(self) -> np.ndarray:
        """Support vectors per class ``(n_classes,)`` (one count for the regressors and OneClassSVM): the model's
        own array, as scikit-learn's (its ``_n_support``), so that altering it in place is seen at predict."""
        check_is_fitted(self, "_n_support")
        return self._n_support

    # scikit-learn's internal representation, which its predict reads: LIBSVM's signs (a two-class model's
    # decision positive for classes_[0], the public attributes' negation). Setting it changes the model, as there.
    @property
    def _dual_coef_(self) -> np.ndarray | scipy.sparse.spmatrix:
        check_is_fitted(self, "_coef")
        return -self.dual_coef_ if self._libsvm_signs_flipped() else self.dual_coef_

    @_dual_coef_.setter
    def _dual_coef_(self, value: Any) -> None:
        coef = np.array(dense_array(value), dtype=np.float64)
        if coef.shape != (self._coef.shape[1], self._coef.shape[0]):
            raise ValueError(f"Expected _dual_coef_ of shape {(self._coef.shape[1], self._coef.shape[0])}, got {coef.shape}")
        coef = -coef if self._libsvm_signs_flipped() else coef
        self._coef = torch.as_tensor(coef.T.copy(), device=self._coef.device, dtype=self._coef.dtype)
        problems.set_dual_coef(self, coef)

    @property
    def _intercept_(self) -> np.ndarray:
        check_is_fitted(self, "_coef")
        return -self.intercept_ if self._libsvm_signs_flipped() else self.intercept_

    @_intercept_.setter
    def _intercept_(self, value: Any) -> None:
        b = np.array(value, dtype=np.float64).reshape(self.intercept_.shape)
        self.intercept_ = -b if self._libsvm_signs_flipped() else b
        self._b = torch.as_tensor(self.intercept_, device=self._b.device, dtype=self._b.dtype)

    def _libsvm_signs_flipped(self) -> bool:
        """Whether the public attributes are LIBSVM's negated: a two-class classifier (scikit-learn's sign)."""
        return len(getattr(self, "classes_", ())) == 2

    @property
    def coef_(self) -> np.ndarray:
        """Feature weights of the linear kernel ``(n_problems, n_features)``: ``dual_coef_`` times the
        support vectors, per problem (scikit-learn's read-only ``coef_``; other kernels have none)."""
        if self.kernel != "linear":
            raise AttributeError("coef_ is only available when using a linear kernel")
        check_is_fitted(self, "_coef")
        coef = self._feature_weights().cpu().numpy()  # (P, D): each problem's w = sum_i coef_i x_i
        if isinstance(self._sv, SparseRows):  # scikit-learn's coef_ of a sparse fit is sparse
            return scipy.sparse.csr_matrix(coef)
        coef.flags.writeable = False  # read-only, as scikit-learn's
        return coef

    def _decision(self, X: Any) -> Tensor:
        """``(n_samples, P)`` decision values of the P problems."""
        return torch.cat(list(self._decision_blocks(X)))

    def _decision_blocks(self, X: Any) -> Iterator[Tensor]:
        """The decision values ``(n_b, P)`` a block of rows at a time, each block's values (with the kernel
        rows behind them) within about 256 MB: 1,000 classes make P = 499,500 values per sample."""
        check_is_fitted(self, "_coef")
        if is_sparse(X) and not isinstance(self._sv, SparseRows) and not callable(self.kernel):
            raise ValueError(f"cannot use sparse input in {type(self).__name__!r} trained on dense data")  # scikit-learn's
        device = self._coef.device
        raw = getattr(self, "_raw_fit", None) is not None
        if not raw:
            check_feature_names(self, X, reset=False)
        Xt = raw_gram(self, X) if raw else as_tensor_2d(X, "X", device, torch.float64)
        n_sv, n_problems = self._coef.shape[0], self._b.shape[0]
        if int(np.sum(self._n_support)) != n_sv:  # scikit-learn's check (its CVE-2020-28975): the layout reads it
            raise ValueError(f"The internal representation of {type(self).__name__} was altered")
        rows = max(1, min(4096, 2**25 // (n_sv + 3 * n_problems)))
        if self._kernel is None:
            if isinstance(Xt, SparseRows):
                raise TypeError("Sparse precomputed kernels are not supported.")
            if Xt.shape[1] != self.shape_fit_[0]:
                raise ValueError(
                    f"X has {Xt.shape[1]} features, but {type(self).__name__} is expecting {self.shape_fit_[0]} "
                    f"features as input. (kernel='precomputed': a Gram matrix (n_samples, {self.shape_fit_[0]}) "
                    "against the training set)"
                )
            support = torch.as_tensor(self.support_, device=device, dtype=torch.long)
            for start in range(0, Xt.shape[0], rows):
                yield self._combine(Xt[start : start + rows][:, support]) + self._b
            return
        check_n_features(self, Xt)
        if self._decides_on_host(Xt):
            yield self._host_decision(Xt)
            return
        # A few blocks of work on one thread: on a busy machine each of torch's parallel regions waits for a
        # descheduled thread (benchmarks/results/busy-cpu-2026-12-07 against -2).
        with one_thread_up_to(Xt.shape[0] * n_sv * Xt.shape[1], _ONE_THREAD_DECISION_WORK):
            for _, K_rows in kernel_row_blocks(self._decision_kernel(Xt), Xt, self._sv, rows):
                yield self._combine(K_rows) + self._b

    def _decision_kernel(self, Xt: Matrix) -> KernelFn:
        """The kernel against the support vectors for decision values. RBF on dense rows: the support vectors
        centred on their mean once, kept with their squared norms (rbf_kernel prepares them again for every
        call: passes over all of them, the most of a few rows' predict)."""
        sv = self._sv
        assert self._kernel is not None  # a precomputed kernel's decisions read the Gram matrix
        if self.kernel != "rbf" or not isinstance(Xt, Tensor) or not isinstance(sv, Tensor):
            return self._kernel
        if self._rbf_rows is None:
            center = sv.mean(0, keepdim=True)
            centered = sv - center
            self._rbf_rows = (center, centered, (centered * centered).sum(1).unsqueeze(0))
        center, centered, sq_norms = self._rbf_rows
        gamma = self._gamma
        return lambda A, _: rbf_centered(A - center, centered, sq_norms, gamma)

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_rbf_rows", None)  # a cache, made again on the first predict
        return state

    def __setstate__(self, state: dict) -> None:
        if "n_support_" in state:  # pickled before n_support_ became scikit-learn's view of _n_support
            state["_n_support"] = state.pop("n_support_")
        super().__setstate__(state)
        if "_coef" in state:
            self._rbf_rows = None

    def _decides_on_host(self, Xt: Matrix) -> bool:
        """Whether the decision values of ``Xt`` are computed by compiled code (:meth:`_host_decision`): a built-in
        kernel, dense rows and support vectors on the CPU, and at most ``_HOST_DECISION_WORK`` multiply-adds of
        kernel values (a few rows: there torch's operations cost more than the arithmetic)."""
        sv = self._sv
        return (isinstance(self.kernel, str) and self.kernel in BUILTIN_KERNELS and isinstance(Xt, Tensor)
                and isinstance(sv, Tensor) and Xt.device.type == "cpu" and sv.device.type == "cpu"
                and Xt.shape[0] * sv.shape[0] * Xt.shape[1] <= _HOST_DECISION_WORK)

    def _host_decision(self, Xt: Matrix) -> Tensor:
        """The problems' decision values ``(n, P)`` of dense CPU rows by one compiled loop (the built-in kernel's
        values against the support vectors, times their coefficients, plus the intercepts)."""
        from torchsvm.svm._decision_numba import host_decision_values  # numba loads on first use, not at import

        assert isinstance(Xt, Tensor) and isinstance(self._sv, Tensor)  # _decides_on_host checked them
        ends, pairs = self._pair_layout()
        values = host_decision_values(Xt.numpy(), self._sv.numpy(), self.kernel, self._gamma, self.coef0, self.degree,
                                      self._coef.numpy(), self._b.numpy(), ends, pairs)
        return torch.from_numpy(values)

    def _pair_layout(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """For a model with LIBSVM's one-vs-one layout, the end of each class's support vectors and the pairs
        ``(P, 2)``; ``(None, None)`` where each problem has its own column of coefficients."""
        return None, None

    def _feature_weights(self) -> Tensor:
        """``(P, D)``: each problem's w = sum over the support vectors of coef x (the linear kernel's)."""
        assert self._sv is not None, "a precomputed kernel has no support vectors in feature space"
        return xt_mm(self._sv, self._coef).T

    def _combine(self, K_rows: Tensor) -> Tensor:
        """The problems' kernel expansions ``(n, P)`` from kernel values against the support vectors
        ``(n, n_SV)``: ``K_rows coef`` (one-vs-one classifiers override it)."""
        return K_rows @ self._coef
