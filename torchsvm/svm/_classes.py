"""The LIBSVM family: SVC, NuSVC, SVR, NuSVR and OneClassSVM on the shared base :class:`BaseLibSVM`."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from sklearn.base import ClassifierMixin, OutlierMixin, RegressorMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state, deprecated
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted
from torch import Tensor

from torchsvm._sparse import Matrix, xt_mm
from torchsvm.distributed import Collectives
from torchsvm.kernels import Kernel, KernelFn
from torchsvm.svm import problems
from torchsvm.svm._base import BaseLibSVM
from torchsvm.svm._inputs import (
    IN_MEMORY_VARIABLES,
    Solution,
    ovo_layout,
    ovo_pair_array,
    ovo_pair_tensor,
    ovo_pairs,
    ovr_from_ovo,
    pair_coefficients,
    sample_costs,
    shards_of,
    targets_1d,
)
from torchsvm.svm._params import StrOptions
from torchsvm.svm._probability import class_probabilities, libsvm_signed, sigmoid_train
from torchsvm.svm.modules import DecisionHead

__all__ = ["NuSVC", "NuSVR", "OneClassSVM", "SVC", "SVR"]


class BaseSVC(ClassifierMixin, BaseLibSVM):
    """What :class:`SVC` and :class:`NuSVC` share: the one-vs-one / one-vs-rest decisions, ``break_ties`` and
    LIBSVM's probability estimates (the fit itself is :meth:`BaseLibSVM.fit`; the binary problems of the classes
    and LIBSVM's attributes from their solution are :mod:`torchsvm.svm.problems`')."""

    multi_class: str
    probability: bool | Literal["deprecated"]
    _problem_params: tuple[str, ...] = ("C", "class_weight")  # what GridSearchCV may vary within one batched solve

    def _check_params(self) -> None:
        """The parameters' checks; a ``probability`` passed at all warns as scikit-learn 1.9 does (deprecated)."""
        super()._check_params()
        if self.decision_function_shape == "ovo" and self.multi_class == "ovr":
            raise ValueError("decision_function_shape='ovo' needs multi_class='ovo'")
        if self.probability is True and self.multi_class == "ovr":
            raise ValueError("probability=True estimates LIBSVM's one-vs-one probabilities: it needs multi_class='ovo'")
        if self.probability != "deprecated":
            name = type(self).__name__
            warnings.warn(
                f"The `probability` parameter was deprecated in 1.9 and will be removed in version 1.11. Use "
                f"`CalibratedClassifierCV({name}(), ensemble=False)` instead of `{name}(probability=True)`",
                FutureWarning,
                stacklevel=4,
            )

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> BaseSVC:
        """Fit on ``X`` ``(n_samples, n_features)`` and ``y``; with ``probability=True`` also Platt's
        sigmoids from an internal 5-fold cross-validation (scikit-learn 1.9 deprecates it: a FutureWarning)."""
        super().fit(X, y, sample_weight)
        self._probA, self._probB = np.empty(0), np.empty(0)
        if self.probability is True:
            self._fit_probability(X, y, sample_weight)
        return self

    def to_solution(self) -> Solution:
        solution = super().to_solution()
        n_support = np.array(self.n_support_)
        coef = pair_coefficients(solution.coef, n_support) if self._one_vs_one_pairs() else solution.coef
        return solution._replace(coef=coef, classes=np.array(self.classes_), n_support=n_support,
                                 probA=np.array(self._probA), probB=np.array(self._probB))

    def _head(self, output: str) -> DecisionHead:
        if output == "predict" and self.break_ties and self.decision_function_shape == "ovo":
            raise ValueError("break_ties must be False when decision_function_shape is 'ovo'")
        fitted = self._probA.size > 0  # Platt's sigmoids: probability=True
        return DecisionHead("classifier", output, self.classes_, self._one_vs_one_pairs(),
                            ovr_shape=self.decision_function_shape == "ovr", break_ties=bool(self.break_ties),
                            prob_a=self._probA if fitted else None, prob_b=self._probB if fitted else None)

    def _set_support(self, sv: Matrix, solution: Solution, kernel: KernelFn | None) -> np.ndarray:
        assert solution.classes is not None and solution.n_support is not None  # a classifier's solution
        self.classes_ = np.asarray(solution.classes)
        self.class_weight_ = np.ones(len(self.classes_))
        y_sv = np.repeat(np.arange(len(self.classes_)), solution.n_support)
        kept = problems.store_classes(self, sv, y_sv, solution.coef, solution.intercept, kernel)
        self.n_iter_ = np.zeros(solution.coef.shape[0], dtype=np.int64)
        self._probA, self._probB = (np.empty(0) if v is None else np.asarray(v, dtype=np.float64)
                                    for v in (solution.probA, solution.probB))
        if self._probA.size:
            self.probability = True  # as fitted with it: predict_proba available
        return kept

    def _one_vs_one_pairs(self) -> bool:
        """One-vs-one over more than two classes: the model keeps LIBSVM's per-row layout."""
        return ovo_layout(len(self.classes_), self.multi_class)

    def _per_class_pairs(self, per_class: Tensor) -> Tensor:
        """``(m, P)`` pair values from per-class sums ``(m, k, k - 1)`` (class c's support vectors times
        their coefficient rows): pair (i, j) adds class i's column j - 1 and class j's column i."""
        m, k = per_class.shape[0], per_class.shape[1]
        pairs = ovo_pair_tensor(k, per_class.device)
        i, j = pairs[:, 0], pairs[:, 1]
        flat = per_class.reshape(m, k * (k - 1))  # columns of a flat index: whole rows copied, not 2-D gathers
        return flat.index_select(1, i * (k - 1) + j - 1) + flat.index_select(1, j * (k - 1) + i)

    def _pair_layout(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        if not self._one_vs_one_pairs():
            return None, None
        return np.cumsum(self.n_support_), ovo_pair_array(len(self.classes_))

    def _class_slices(self) -> list[slice]:
        ends = np.cumsum(self.n_support_)
        return [slice(int(e - n), int(e)) for e, n in zip(ends, self.n_support_, strict=True)]

    def _combine(self, K_rows: Tensor) -> Tensor:
        """One-vs-one: each support vector's kernel column times its k - 1 coefficients, summed per class
        (n x n_SV x (k - 1) work, not n x n_SV x P), then each pair from its two classes' sums."""
        if not self._one_vs_one_pairs():
            return super()._combine(K_rows)
        coef = self._coef.to(K_rows.dtype)
        return self._per_class_pairs(torch.stack([K_rows[:, s] @ coef[s] for s in self._class_slices()], 1))

    def _feature_weights(self) -> Tensor:
        if not self._one_vs_one_pairs():
            return super()._feature_weights()
        sv = self._sv
        assert sv is not None  # a linear kernel's fit
        per_class = torch.stack([xt_mm(sv[s], self._coef[s]) for s in self._class_slices()], 1)  # (D, k, k - 1)
        return self._per_class_pairs(per_class).T

    def decision_function(self, X: Any) -> np.ndarray | Tensor:
        """``(n_samples,)`` for two classes; else ``(n_samples, n_classes)`` (``"ovr"`` shape) or
        ``(n_samples, n_pairs)`` (``"ovo"``). A tensor input gives a tensor on the model's device."""
        dec = self._shaped_decision(self._decision(X))
        return dec if isinstance(X, Tensor) else dec.cpu().numpy()

    def _shaped_decision(self, dec: Tensor) -> Tensor:
        """The problems' decision values ``(n, P)`` in ``decision_function``'s shape."""
        n_classes = len(self.classes_)
        if n_classes == 2:
            return dec[:, 0]
        if self.multi_class == "ovo" and self.decision_function_shape == "ovr":
            return ovr_from_ovo(dec, n_classes)
        return dec

    def predict(self, X: Any) -> np.ndarray:
        """Class labels; one-vs-one predicts by LIBSVM's vote (ties to the first class), or with
        ``break_ties`` (``decision_function_shape="ovr"``, more than two classes) by the largest
        ``decision_function``, as scikit-learn."""
        if self.break_ties and self.decision_function_shape == "ovo":
            raise ValueError("break_ties must be False when decision_function_shape is 'ovo'")
        return np.concatenate([self._predict_from_decision(dec) for dec in self._decision_blocks(X)])

    def _predict_from_decision(self, dec: Tensor) -> np.ndarray:
        n_classes = len(self.classes_)
        if n_classes == 2:
            idx = (dec[:, 0] > 0).long()
        elif self.multi_class == "ovr" or self.break_ties:
            idx = self._shaped_decision(dec).argmax(1)
        else:
            pairs = ovo_pair_tensor(n_classes, dec.device)
            won = (dec > 0).to(torch.int32)  # pair (i, j): a vote for i if positive, else for j
            votes = torch.zeros(dec.shape[0], n_classes, dtype=torch.int32, device=dec.device)
            votes.index_add_(1, pairs[:, 0], won).index_add_(1, pairs[:, 1], 1 - won)
            idx = votes.argmax(1)  # first maximum on ties, as LIBSVM
        return self.classes_[idx.cpu().numpy()]

    # -- probability=True: LIBSVM's Platt scaling (scikit-learn 1.9 deprecates it) ---------------
    def _check_proba(self) -> bool:
        if self.probability == "deprecated" or not self.probability:
            raise AttributeError("predict_proba is not available when probability=False")
        return True

    def _fit_probability(self, X: Any, y: Any, sample_weight: Any) -> None:
        """``probA_``, ``probB_`` per pair: Platt's sigmoid on held-out decision values of a 5-fold
        cross-validation (LIBSVM's ``svm_binary_svc_probability``; one shuffled split of all rows, each
        pair using its own rows of it), shuffled by ``random_state``."""
        Xt = problems.prepare(self, X, checked=True).X  # the training rows as fit saw them (sets nothing new)
        y_idx = np.searchsorted(self.classes_, targets_1d(self, Xt.shape[0], y))
        weights = None if sample_weight is None else sample_costs(1.0, len(y_idx), sample_weight)
        n, n_classes = len(y_idx), len(self.classes_)
        pairs = ovo_pairs(n_classes)
        dec = np.zeros((n, len(pairs)))
        order = check_random_state(self.random_state).permutation(n)
        inner = clone(self).set_params(probability="deprecated", verbose=False)
        gram = self._kernel is None  # precomputed, or a callable kernel on raw X: Xt is the Gram matrix
        if gram:
            inner.set_params(kernel="precomputed")
        for f in range(5):
            test = order[f * n // 5 : (f + 1) * n // 5]
            train = np.setdiff1d(order, test)
            present = np.unique(y_idx[train])
            if len(present) >= 2:
                train_t, test_t = (torch.as_tensor(r, device=Xt.device) for r in (train, test))
                # A precomputed Gram matrix is cut in both directions: training columns for both parts.
                part_train, part_test = (Xt[r][:, train_t] if gram else Xt[r] for r in (train_t, test_t))
                sub = inner.fit(part_train, y_idx[train], None if weights is None else weights[train])
                sub_dec = libsvm_signed(sub._decision(part_test)).cpu().numpy()
                sub_pairs = {pair: p for p, pair in enumerate(ovo_pairs(len(present)))}
            for p, (i, j) in enumerate(pairs):
                has_i, has_j = i in present, j in present
                if has_i and has_j:  # both classes trained: that pair's held-out decision values
                    dec[test, p] = sub_dec[:, sub_pairs[(int(np.searchsorted(present, i)), int(np.searchsorted(present, j)))]]
                else:  # LIBSVM: +1 if only the first class was there, -1 if only the second, 0 if neither
                    dec[test, p] = 1.0 if has_i else (-1.0 if has_j else 0.0)
        probA, probB = np.zeros(len(pairs)), np.zeros(len(pairs))
        for p, (i, j) in enumerate(pairs):
            rows = (y_idx == i) | (y_idx == j)
            if weights is not None:
                rows &= weights > 0
            probA[p], probB[p] = sigmoid_train(dec[rows, p], y_idx[rows] == i)
        self._probA, self._probB = probA, probB

    @available_if(_check_proba)
    def predict_proba(self, X: Any) -> np.ndarray | Tensor:
        """Class probabilities ``(n_samples, n_classes)``, columns in ``classes_`` order: Platt's sigmoid
        of each pair's decision value, coupled over the pairs (Wu, Lin and Weng; LIBSVM's method). A
        tensor input gives a tensor on the model's device. May disagree with ``predict`` (the
        sigmoids come from a cross-validation)."""
        check_is_fitted(self, "_probA")
        if self._probA.size == 0:
            raise NotFittedError("predict_proba is not available when fitted with probability=False")
        dec = self._decision(X)
        k = len(self.classes_)
        proba = class_probabilities(dec, torch.as_tensor(self._probA), torch.as_tensor(self._probB), k,
                                    ovo_pair_tensor(k, dec.device) if k > 2 else None)
        return proba if isinstance(X, Tensor) else proba.cpu().numpy()

    @available_if(_check_proba)
    def predict_log_proba(self, X: Any) -> np.ndarray | Tensor:
        """``log(predict_proba(X))``."""
        proba = self.predict_proba(X)
        return torch.log(proba) if isinstance(proba, Tensor) else np.log(proba)

    # scikit-learn's own pattern for a deprecated attribute; mypy cannot type a decorated property.
    @deprecated(  # type: ignore[prop-decorator]
        "Attribute `probA_` was deprecated in version 1.9 and will be removed in 1.11 as the "
        "`probability=True` option for SVC and NuSVC was deprecated and will be removed in 1.11.")
    @property
    def probA_(self) -> np.ndarray:
        """Platt's A per one-vs-one pair (``probability=True``; empty otherwise)."""
        return self._probA

    # scikit-learn's own pattern for a deprecated attribute; mypy cannot type a decorated property.
    @deprecated(  # type: ignore[prop-decorator]
        "Attribute `probB_` was deprecated in version 1.9 and will be removed in 1.11 as the "
        "`probability=True` option for SVC and NuSVC was deprecated and will be removed in 1.11.")
    @property
    def probB_(self) -> np.ndarray:
        """Platt's B per one-vs-one pair (``probability=True``; empty otherwise)."""
        return self._probB


class SVC(BaseSVC):
    """Kernel support vector classifier, solved in the dual with torch (CPU or GPU).

    For each binary problem it solves

        maximize  sum_i a_i - 1/2 sum_ij a_i a_j y_i y_j K(x_i, x_j)
        subject to 0 <= a_i <= C_i,  sum_i a_i y_i = 0,   C_i = C * class_weight[class of i] * sample_weight_i

    and predicts with f(x) = sum over support vectors of a_i y_i K(x_i, x) + b. Multi-class is
    one-vs-one like LIBSVM (``multi_class="ovo"``, the default) or one-vs-rest (``"ovr"``); either
    way all binary problems are solved as one batched problem sharing the kernel computations. A
    Gram matrix within ``cache_size`` is computed once and solved in memory by SMO
    (:func:`torchsvm.solvers.dual.smo_dual`); a larger one is never formed: the decomposition
    solver (:func:`torchsvm.solvers.dual.decomposition_dual`) works from kernel rows.

    The parameters, their defaults and checks and the fitted attributes are scikit-learn's
    ``SVC``'s (1.9), with these differences: ``cache_size`` defaults to ``"auto"`` (a memory budget
    for in-memory Gram matrices, not LIBSVM's row cache), ``shrinking`` changes nothing (the
    solvers pick their own working sets; the answer is the same to ``tol``), and ``support_``
    indexes the rows of X as given also when sample weights drop some (scikit-learn's indexes the
    remaining rows).

    Args:
        C: cost of margin violations, > 0.
        kernel: ``"linear"``, ``"poly"``, ``"rbf"``, ``"sigmoid"``, ``"precomputed"`` (fit on a
            Gram matrix ``(N, N)``, predict on ``(M, N)``), a :class:`torchsvm.kernels.Kernel`,
            or a callable ``k(A, Z) -> (n_A, n_Z)``, called on what the model was fitted on: NumPy arrays
            for NumPy (as scikit-learn calls it), tensors for tensors, scipy CSR for sparse rows.
        degree, gamma, coef0: as scikit-learn; ``gamma="scale"`` is ``1 / (n_features * X.var())``,
            ``"auto"`` is ``1 / n_features``.
        shrinking: accepted for scikit-learn's API; no effect.
        probability: ``True`` fits LIBSVM's probability model (Platt scaling on an internal
            5-fold cross-validation, five extra fits) for ``predict_proba``; scikit-learn 1.9
            deprecates the parameter (a FutureWarning when it is passed) in favour of
            ``sklearn.calibration.CalibratedClassifierCV(SVC(), ensemble=False)``, which works
            with this SVC too.
        tol: stopping tolerance on the maximal KKT violation (LIBSVM's eps).
        cache_size: MB allowed for in-memory Gram matrices under ``solver="auto"``; ``"auto"``
            is half the free GPU memory on CUDA and 2048 MB on the CPU.
        class_weight: None, a dict ``{class: weight}``, or ``"balanced"``.
        verbose: print one line about each fit.
        max_iter: SMO steps (in memory) or outer iterations (decomposition); -1 for no limit.
        decision_function_shape: ``"ovr"`` (``(n_samples, n_classes)``) or ``"ovo"``
            (``(n_samples, n_pairs)``; only with ``multi_class="ovo"``).
        break_ties: with ``decision_function_shape="ovr"`` and more than two classes, predict the
            largest ``decision_function`` instead of the vote's winner.
        random_state: seeds the cross-validation of ``probability=True``.
        multi_class: ``"ovo"`` or ``"ovr"``: which binary problems are trained.
        solver: ``"auto"`` (in memory when the Gram matrix fits in ``cache_size``), ``"smo"``
            or ``"decomposition"``.
        working_set_size: variables per outer iteration of the decomposition solver; ``"auto"``: 2048 on
            the CPU where its kernel rows fit in ``cache_size`` (fewer outer iterations), else 1024 (and
            1024 on a GPU and for sharded fits).
        kernel_dtype: the dtype kernel values are computed and kept in during fit: ``"float64"``
            (exact), ``"float32"`` (half the memory and time; answers differ from float64's by about
            1e-3 relative in ``dual_coef_``) or ``"auto"`` (float64 on the CPU up to 4,096 training rows,
            float32 above and on a GPU). With ``"auto"`` on the CPU a Gram matrix held whole is kept as
            LIBSVM keeps it: computed in float64, stored rounded to float32, the diagonal in float64
            (scikit-learn's models then agree near hard margins). The solver's state (alpha, gradient)
            and prediction are float64 either way.
        device: ``"auto"`` (CUDA if available, except that X of at most 1,000 rows not already on CUDA is fitted
            on the CPU, where the compiled path takes milliseconds), ``"cpu"``, ``"cuda"``, ...
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
        coef_: ``kernel="linear"`` only: ``(n_pairs, n_features)`` weights (read-only).
        intercept_: ``(n_pairs,)`` biases, pairs ``(0, 1), (0, 2), ..., (1, 2), ...``; in pair
            ``(i, j)`` a positive decision is class i, except for two classes where it is
            ``classes_[1]`` (scikit-learn's convention).
        classes_, class_weight_, n_features_in_, shape_fit_; fit_status_: 0, or 1 when max_iter stopped
            a problem; n_iter_: per binary problem, its SMO steps (outer iterations where the
            decomposition solver ran it), counted apart in a batch.
        probA_, probB_: ``probability=True``: Platt's parameters per pair (deprecated by scikit-learn 1.9).
        bytes_sent_: ``distributed`` fits only: the bytes this rank handed to collectives during fit.
    """

    _own_constraints = {**BaseLibSVM._own_constraints, "multi_class": [StrOptions({"ovo", "ovr"})]}

    _impl = "c_svc"
    _in_memory_variables = IN_MEMORY_VARIABLES

    def __init__(
        self,
        C: float = 1.0,
        *,
        kernel: str | Kernel | Callable[[Any, Any], Any] = "rbf",
        degree: int = 3,
        gamma: float | Literal["scale", "auto"] = "scale",
        coef0: float = 0.0,
        shrinking: bool = True,
        probability: bool | Literal["deprecated"] = "deprecated",
        tol: float = 1e-3,
        cache_size: float | Literal["auto"] = "auto",
        class_weight: dict | Literal["balanced"] | None = None,
        verbose: bool = False,
        max_iter: int = -1,
        decision_function_shape: Literal["ovr", "ovo"] = "ovr",
        break_ties: bool = False,
        random_state: int | np.random.RandomState | None = None,
        multi_class: Literal["ovo", "ovr"] = "ovo",
        solver: Literal["auto", "smo", "decomposition"] = "auto",
        working_set_size: int | Literal["auto"] = "auto",
        kernel_dtype: Literal["auto", "float32", "float64"] = "auto",
        device: str = "auto",
        distributed: bool = False,
        process_group: Any = None,
    ) -> None:
        super().__init__(
            kernel=kernel, degree=degree, gamma=gamma, coef0=coef0, shrinking=shrinking, tol=tol,
            cache_size=cache_size, verbose=verbose, max_iter=max_iter, solver=solver,
            working_set_size=working_set_size, kernel_dtype=kernel_dtype, device=device,
        )
        self.C = C
        self.probability = probability
        self.class_weight = class_weight
        self.decision_function_shape = decision_function_shape
        self.break_ties = break_ties
        self.random_state = random_state
        self.multi_class = multi_class
        self.distributed = distributed
        self.process_group = process_group

    def _check_params(self) -> None:
        super()._check_params()
        if self.distributed and (self.kernel == "precomputed" or self.solver == "smo" or self.probability is True):
            raise ValueError("distributed=True computes kernel rows on each rank's shard: it needs the features "
                             f"(not kernel='precomputed'), the decomposition solver (not solver='smo') and "
                             f"probability=False, got kernel={self.kernel!r}, solver={self.solver!r}, "
                             f"probability={self.probability!r}")

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> SVC:
        """Fit on ``X`` ``(n_samples, n_features)`` and ``y``; with ``distributed=True``, on this rank's rows
        (every rank calls fit with its own shard and ends with the same model)."""
        return super().fit(X, y, sample_weight)

    def _shards(self) -> Collectives:
        return shards_of(self)


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
        kernel, degree, gamma, coef0, tol, max_iter, decision_function_shape: as :class:`SVC`.
        solver, cache_size, working_set_size, kernel_dtype, device: as :class:`SVC`.

        shrinking, probability, cache_size, verbose, break_ties, random_state: as :class:`SVC`.
        class_weight: accepted and ignored, as by LIBSVM's nu-SVC (scikit-learn sets
            ``class_weight_`` and its solution does not change); weight samples with ``sample_weight``.

    Attributes: as :class:`SVC` (``dual_coef_`` and ``intercept_`` after the 1/r rescaling).
    """

    multi_class = "ovo"  # LIBSVM's nu-SVC is one-vs-one; not a parameter
    _impl = "nu_svc"
    _problem_params: tuple[str, ...] = ("nu",)

    def __init__(
        self,
        *,
        nu: float = 0.5,
        kernel: str | Kernel | Callable[[Any, Any], Any] = "rbf",
        degree: int = 3,
        gamma: float | Literal["scale", "auto"] = "scale",
        coef0: float = 0.0,
        shrinking: bool = True,
        probability: bool | Literal["deprecated"] = "deprecated",
        tol: float = 1e-3,
        cache_size: float | Literal["auto"] = "auto",
        class_weight: dict | Literal["balanced"] | None = None,
        verbose: bool = False,
        max_iter: int = -1,
        decision_function_shape: Literal["ovr", "ovo"] = "ovr",
        break_ties: bool = False,
        random_state: int | np.random.RandomState | None = None,
        solver: Literal["auto", "smo", "decomposition"] = "auto",
        working_set_size: int | Literal["auto"] = "auto",
        kernel_dtype: Literal["auto", "float32", "float64"] = "auto",
        device: str = "auto",
    ) -> None:
        super().__init__(
            kernel=kernel, degree=degree, gamma=gamma, coef0=coef0, shrinking=shrinking, tol=tol,
            cache_size=cache_size, verbose=verbose, max_iter=max_iter, solver=solver,
            working_set_size=working_set_size, kernel_dtype=kernel_dtype, device=device,
        )
        self.nu = nu
        self.probability = probability
        self.class_weight = class_weight
        self.decision_function_shape = decision_function_shape
        self.break_ties = break_ties
        self.random_state = random_state


class BaseSVR(RegressorMixin, BaseLibSVM):
    """What :class:`SVR` and :class:`NuSVR` share: the prediction (their 2N-variable problem on the rows [X; X],
    labels +1 for a and -1 for a*, is :mod:`torchsvm.svm.problems`')."""

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
        kernel, degree, gamma, coef0, tol, shrinking, cache_size, verbose: as :class:`SVC`.
        max_iter, solver, working_set_size, kernel_dtype, device: as :class:`SVC`.
        C: cost of a deviation beyond epsilon, > 0 (``C_i = C * sample_weight_i``).
        epsilon: half width of the tube inside which deviations cost nothing, >= 0.

    Attributes:
        support_, support_vectors_, n_support_, dual_coef_, intercept_: as :class:`SVC`'s, with one
            problem: ``n_support_`` ``(1,)``, ``dual_coef_`` ``(1, n_SV)`` (a - a*), ``intercept_`` ``(1,)``.
        n_features_in_, shape_fit_: as :class:`SVC`'s.
        n_iter_: SMO steps or outer iterations.
    """

    def __init__(
        self,
        *,
        kernel: str | Kernel | Callable[[Any, Any], Any] = "rbf",
        degree: int = 3,
        gamma: float | Literal["scale", "auto"] = "scale",
        coef0: float = 0.0,
        tol: float = 1e-3,
        C: float = 1.0,
        epsilon: float = 0.1,
        shrinking: bool = True,
        cache_size: float | Literal["auto"] = "auto",
        verbose: bool = False,
        max_iter: int = -1,
        solver: Literal["auto", "smo", "decomposition"] = "auto",
        working_set_size: int | Literal["auto"] = "auto",
        kernel_dtype: Literal["auto", "float32", "float64"] = "auto",
        device: str = "auto",
    ) -> None:
        super().__init__(
            kernel=kernel, degree=degree, gamma=gamma, coef0=coef0, shrinking=shrinking, tol=tol,
            cache_size=cache_size, verbose=verbose, max_iter=max_iter, solver=solver,
            working_set_size=working_set_size, kernel_dtype=kernel_dtype, device=device,
        )
        self.C = C
        self.epsilon = epsilon

    _impl = "epsilon_svr"
    _problem_params = ("C", "epsilon")
    _in_memory_variables = IN_MEMORY_VARIABLES


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
        kernel, degree, gamma, coef0, tol, shrinking, cache_size, verbose: as :class:`SVC`.
        max_iter, solver, working_set_size, kernel_dtype, device: as :class:`SVC`.

    Attributes: as :class:`SVR`.
    """

    def __init__(
        self,
        *,
        nu: float = 0.5,
        C: float = 1.0,
        kernel: str | Kernel | Callable[[Any, Any], Any] = "rbf",
        degree: int = 3,
        gamma: float | Literal["scale", "auto"] = "scale",
        coef0: float = 0.0,
        shrinking: bool = True,
        tol: float = 1e-3,
        cache_size: float | Literal["auto"] = "auto",
        verbose: bool = False,
        max_iter: int = -1,
        solver: Literal["auto", "smo", "decomposition"] = "auto",
        working_set_size: int | Literal["auto"] = "auto",
        kernel_dtype: Literal["auto", "float32", "float64"] = "auto",
        device: str = "auto",
    ) -> None:
        super().__init__(
            kernel=kernel, degree=degree, gamma=gamma, coef0=coef0, shrinking=shrinking, tol=tol,
            cache_size=cache_size, verbose=verbose, max_iter=max_iter, solver=solver,
            working_set_size=working_set_size, kernel_dtype=kernel_dtype, device=device,
        )
        self.nu = nu
        self.C = C

    _impl = "nu_svr"
    _problem_params = ("C", "nu")


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
        kernel, degree, gamma, coef0, tol, shrinking, cache_size, verbose: as :class:`SVC`.
        max_iter, solver, working_set_size, kernel_dtype, device: as :class:`SVC`.

    Attributes:
        support_, support_vectors_, n_support_, n_features_in_, n_iter_: as :class:`SVC`'s.
        dual_coef_: ``(1, n_SV)``.
        intercept_: ``-rho``.
        offset_: ``rho`` (``decision_function = score_samples - offset_``).
    """

    _impl = "one_class"

    def __init__(
        self,
        *,
        kernel: str | Kernel | Callable[[Any, Any], Any] = "rbf",
        degree: int = 3,
        gamma: float | Literal["scale", "auto"] = "scale",
        coef0: float = 0.0,
        tol: float = 1e-3,
        nu: float = 0.5,
        shrinking: bool = True,
        cache_size: float | Literal["auto"] = "auto",
        verbose: bool = False,
        max_iter: int = -1,
        solver: Literal["auto", "smo", "decomposition"] = "auto",
        working_set_size: int | Literal["auto"] = "auto",
        kernel_dtype: Literal["auto", "float32", "float64"] = "auto",
        device: str = "auto",
    ) -> None:
        super().__init__(
            kernel=kernel, degree=degree, gamma=gamma, coef0=coef0, shrinking=shrinking, tol=tol,
            cache_size=cache_size, verbose=verbose, max_iter=max_iter, solver=solver,
            working_set_size=working_set_size, kernel_dtype=kernel_dtype, device=device,
        )
        self.nu = nu

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> OneClassSVM:
        """Fit on ``X`` ``(n_samples, n_features)``; ``y`` is ignored."""
        return super().fit(X, None, sample_weight)

    def _set_support(self, sv: Matrix, solution: Solution, kernel: KernelFn | None) -> np.ndarray:
        kept = super()._set_support(sv, solution, kernel)
        self.offset_ = -self.intercept_
        return kept

    def _head(self, output: str) -> DecisionHead:
        return DecisionHead("outlier", output, offset=float(self.offset_[0]))

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
