"""What the estimators share: input conversion, costs, kernels, and the LIBSVM-like base class.

:class:`BaseLibSVM` is the base of :class:`~torchsvm.SVC`, :class:`~torchsvm.SVR` and
:class:`~torchsvm.OneClassSVM`, as scikit-learn's ``BaseLibSVM``: parameter checks, the kernel,
one dual solve path for a batch of binary-form problems (:meth:`BaseLibSVM._solve`), the
support-vector bookkeeping and the decision values.
"""

from __future__ import annotations

import functools
import itertools
import math
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import Tensor

from torchsvm._sparse import Matrix, SparseRows, as_sparse_rows, dense_array, is_sparse, xt_mm
from torchsvm._threads import SMALL_ROWS, one_thread_up_to, rows_of, small_fit_threads
from torchsvm._warnings import warn_convergence
from torchsvm.distributed import LOCAL, Collectives, ShardError, Shards, check_same, row_offsets
from torchsvm.kernels import (
    BUILTIN_KERNELS,
    Kernel,
    KernelFn,
    kernel_function,
    kernel_row_blocks,
    psd_report,
    rbf_centered,
)
from torchsvm.solvers.dual import DualResult, device_memory_guard, smo_dual
from torchsvm.solvers.smo import smo_dual_host
from torchsvm.solvers.stepped import DecompositionProblems
from torchsvm.svm._blocks import BlockSettings, by_segments, solve_blocks
from torchsvm.svm._params import LIBSVM, Constrained, StrOptions
from torchsvm.svm.modules import DecisionHead, SVMModule

__all__ = ["BaseLibSVM", "DualProblems", "Prepared", "ProblemArrays", "Solution", "fill_bounds", "ovo_pair_array",
           "ovo_pair_tensor", "ovo_pairs", "resolve_device"]



def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` is CUDA when available, else CPU; anything else goes to ``torch.device``, and a CUDA
    device this machine does not have is an error naming the choices."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"Expected device to be 'auto', 'cpu', 'cuda' or 'cuda:<index>', got {device!r}") from err
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (resolved.index or 0) >= count:
            raise ValueError(f"Expected an available CUDA device, got device={device!r}, but this machine has "
                             f"{count} CUDA device(s) (torch.cuda.is_available() is {torch.cuda.is_available()}); "
                             "use device='auto' (CUDA when there is one) or device='cpu'")
    return resolved


def fit_device(device: str | torch.device, X: Any, distributed: bool = False) -> torch.device:
    """Where a fit on ``X`` runs: :func:`resolve_device`, except that ``"auto"`` keeps a small fit on the CPU
    even with a GPU: X of at most ``SMALL_ROWS`` rows not already on CUDA (there the CPU's compiled path
    solves in milliseconds, less than a GPU's transfers, launches and first-use start-up). A sharded fit
    resolves as its device says, so every rank lands on the same kind of device."""
    if str(device) == "auto" and not distributed and torch.cuda.is_available():
        on_cuda = isinstance(X, Tensor) and X.device.type == "cuda"
        if not on_cuda and rows_of(X) <= SMALL_ROWS:
            return torch.device("cpu")
    return resolve_device(device)


def report(est: BaseEstimator, text: str) -> None:
    """With the estimator's ``verbose`` set, one line on stdout about its fit (scikit-learn's ``verbose``
    prints LIBSVM's and LIBLINEAR's logs); nothing otherwise."""
    if est.verbose:
        print(f"[torchsvm {type(est).__name__}] {text}", flush=True)


# Decision values of at most this many multiply-adds (rows x support vectors x features) run on one torch thread.
_ONE_THREAD_DECISION_WORK = 1e8

# On the CPU one problem of more variables than this (binary SVC, epsilon-SVR's 2N) is solved from kernel rows
# (decomposition) rather than on the whole Gram matrix, whose N^2 D cost then exceeds the rows the solver reads
# (docs/benchmarks.md, "The thresholds in the code"). NuSVC, NuSVR and OneClassSVM keep the Gram matrix (their
# budget rule alone decides): they were faster in memory at every size run.
IN_MEMORY_VARIABLES = 8000

_X_ADVICE = "Fit on fewer rows, on device='cpu', or sharded over several GPUs (distributed=True)."


def as_tensor_2d(X: Any, name: str, device: torch.device, dtype: torch.dtype | None = None) -> Matrix:
    """X as a 2-D floating tensor on ``device``, with clear errors for bad shapes and NaN/inf; sparse X
    (scipy.sparse, a torch sparse tensor) as :class:`~torchsvm._sparse.SparseRows`, never densified."""
    if is_sparse(X):
        return as_sparse_rows(X, name, device, dtype)
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

        # check_array raises for a wrong dimension, no samples and NaN/inf, naming them; a plain finite float
        # array it would pass unchanged skips its probing (a large share of a small fit's time).
        arr = np.ascontiguousarray(X if _plain_array(X, 2) else check_array(X, dtype=(np.float64, np.float32)))
        # torch wants writable memory (a read-only memmap is copied, not shared).
        T = torch.from_numpy(arr if arr.flags.writeable else arr.copy())
    dtype = dtype or T.dtype
    with device_memory_guard(f"{name} ({T.shape[0]} x {T.shape[1]}, {dtype}) on {device}", _X_ADVICE):
        return T.to(device=device, dtype=dtype)


def _plain_array(A: Any, ndim: int) -> bool:
    """Whether A is a NumPy array check_array accepts unchanged: ``ndim``-D float64 or float32, not empty, finite
    (anything else goes through check_array, for its conversions and its error messages)."""
    return (type(A) is np.ndarray and A.dtype in (np.float64, np.float32) and A.ndim == ndim and A.size > 0
            and bool(np.isfinite(A).all()))


def float_targets(est: BaseEstimator, n_samples: int, y: Any) -> np.ndarray:
    """A regressor's ``y``: :func:`targets_1d` as finite float64 values (check_array's checks and messages)."""
    y_np = targets_1d(est, n_samples, y)
    if _plain_array(y_np, 1):  # check_array would pass it as it is, after its probing
        return y_np.astype(np.float64, copy=False)
    from sklearn.utils.validation import check_array

    return check_array(y_np, ensure_2d=False, dtype=np.float64, input_name="y")


def _training_rows(X: Any, device: torch.device) -> Matrix:
    """X as :func:`as_tensor_2d` gives it, float32 kept (scikit-learn's float64 values of it are exact
    upcasts: nothing is lost by not copying it), any other dtype as float64."""
    Xt = as_tensor_2d(X, "X", device)
    return Xt if Xt.dtype in (torch.float32, torch.float64) else Xt.to(torch.float64)


def _dense_if_narrow(X: Matrix) -> Matrix:
    """Sparse rows with no more features than rows as a dense tensor (no more memory than their Gram matrix):
    the Gram matrix and gamma='scale' are then the dense fit's to the last bit, so sparse and dense X give the
    same model, as in LIBSVM. Other X as it is."""
    return X.to_dense() if isinstance(X, SparseRows) and X.shape[1] <= X.shape[0] else X


def _variance(X: Matrix, rows: int = 65536) -> float:
    """The variance of all entries of X in float64 (as scikit-learn's X.var() on its float64 copy), a block
    of rows at a time: a float32 X gets no whole float64 copy (:func:`_dense_if_narrow`'s rows dense)."""
    X = _dense_if_narrow(X)
    if not isinstance(X, Tensor):
        return float(X.var())
    if X.dtype == torch.float64:
        return float(X.var(correction=0))
    def blocks() -> Iterator[Tensor]:  # made again for each pass, one at a time
        return (X[i : i + rows].to(torch.float64) for i in range(0, X.shape[0], rows))

    mean = sum(float(b.sum()) for b in blocks()) / X.numel()  # two passes: the deviations, not E[x^2] - E[x]^2
    return sum(float((b - mean).square().sum()) for b in blocks()) / X.numel()


def check_n_features(est: BaseEstimator, X: Matrix) -> None:
    """scikit-learn's message for a feature count other than fit's."""
    if X.shape[1] != est.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(est).__name__} is expecting {est.n_features_in_} features as input."
        )


def check_feature_names(est: BaseEstimator, X: Any, reset: bool) -> None:
    """scikit-learn's feature names: at fit (``reset``) ``feature_names_in_`` from a DataFrame's string columns
    (none otherwise); at predict its warning or error when X names other features than fit's, or only one has names.
    Called before X is converted (a DataFrame of other names is NaN where the names differ)."""
    if hasattr(X, "columns") or hasattr(est, "feature_names_in_"):  # no names on either side: nothing to check
        validate_data(est, X, reset=reset, skip_check_array=True)


def targets_1d(est: BaseEstimator, n_samples: int, y: Any) -> np.ndarray:
    """``y`` as a NumPy vector of ``n_samples`` entries; a column vector warns and is raveled, as in scikit-learn."""
    if y is None:
        raise ValueError(f"{type(est).__name__} requires y to be passed, but the target y is None")
    y_np = y.detach().cpu().numpy() if isinstance(y, Tensor) else np.asarray(y)
    if y_np.ndim == 2 and y_np.shape[1] == 1:
        warnings.warn(
            f"A column-vector y was passed when a 1d array was expected; got shape {y_np.shape}, using y.ravel()",
            DataConversionWarning,
            stacklevel=4,
        )
        y_np = y_np.ravel()
    if y_np.ndim != 1 or y_np.shape[0] != n_samples:
        raise ValueError(f"Expected y of shape ({n_samples},) to match X, got shape {y_np.shape}")
    return y_np


def sample_costs(C: float, n_samples: int, sample_weight: Any) -> np.ndarray:
    """``C * sample_weight`` ``(N,)`` with scikit-learn's (LIBSVM's) semantics: a sample of zero or
    negative weight leaves the problem (cost 0), and none left is an error in LIBSVM's words."""
    if sample_weight is None:
        return np.full(n_samples, float(C))
    sw = sample_weight.detach().cpu().numpy() if isinstance(sample_weight, Tensor) else sample_weight
    sw = np.asarray(sw, dtype=np.float64)
    if sw.ndim == 0:  # scikit-learn's scalar weight: the same for every sample
        sw = np.full(n_samples, float(sw))
    if sw.shape != (n_samples,):
        raise ValueError(f"Expected sample_weight of shape ({n_samples},) to match X, got shape {sw.shape}")
    if not np.all(np.isfinite(sw)):
        raise ValueError("Expected sample_weight to be finite, got NaN or infinity")
    if not np.any(sw > 0):
        raise ValueError("Invalid input - all samples have zero or negative weights.")
    return np.where(sw > 0, float(C) * sw, 0.0)


def _class_targets(est: BaseEstimator, n_samples: int, y: Any) -> np.ndarray:
    y_np = targets_1d(est, n_samples, y)
    if y_np.dtype.kind not in "iub":  # integer and boolean labels are classes as they are (type_of_target probes at length)
        check_classification_targets(y_np)
    return y_np


class ClassCosts(NamedTuple):
    """A classifier's labels and costs: the sorted classes (``classes_``), class indices ``(N,)``,
    ``C * sample weight`` ``(N,)`` (0 for the samples that leave the problem) and the class weights
    ``(n_classes,)`` (``class_weight_``)."""

    classes: np.ndarray
    y_idx: np.ndarray
    sample: np.ndarray
    class_weight: np.ndarray

    def per_sample(self) -> np.ndarray:
        """``C * class weight * sample weight`` ``(N,)``: LIBSVM's cost of each sample."""
        return self.sample * self.class_weight[self.y_idx]


def classes_and_costs(est: BaseEstimator, n_samples: int, y: Any, sample_weight: Any, C: float, class_weight: Any,
                      shards: Collectives = LOCAL, weighted_balance: bool = False) -> ClassCosts:
    """The classes, labels and costs of a classifier's fit (``est`` names itself in the errors);
    ``C`` and ``class_weight`` are its parameters (nu-SVC's C is 1).

    ``"balanced"`` weights are scikit-learn's n / (n_classes * count); with ``weighted_balance`` (its
    LinearSVC) the counts are sums of the sample weights. With ``shards`` (this rank's rows of a
    sharded fit) the classes are checked to agree across the ranks and the counts run over all ranks."""
    y_np = shards.agree("Checking y", lambda: _class_targets(est, n_samples, y))
    classes = shard_classes(shards, y_np)
    y_idx = np.searchsorted(classes, y_np)
    if len(classes) < 2:
        raise ValueError(f"Expected at least 2 classes in y, got 1 class: {classes.tolist()}")
    cost = shards.agree("Checking sample_weight", lambda: sample_costs(C, n_samples, sample_weight))
    if class_weight == "balanced":  # n / (n_classes * count), counted over every rank
        counted = cost if weighted_balance and sample_weight is not None else None
        counts = shards.sum(torch.as_tensor(np.bincount(y_idx, weights=counted, minlength=len(classes)),
                                            dtype=torch.float64, device="cpu"))
        weights = (counts.sum() / (len(classes) * counts)).numpy()
    elif class_weight is not None:
        weights = compute_class_weight(class_weight, classes=classes, y=y_np)
    else:
        weights = np.ones(len(classes))
    if np.any(weights < 0) or not np.all(np.isfinite(weights)):
        raise ValueError(f"Expected non-negative class weights, got {dict(zip(classes.tolist(), weights, strict=True))}")
    return ClassCosts(classes, y_idx, cost, weights)


def shard_classes(shards: Collectives, y_np: np.ndarray) -> np.ndarray:
    """The sorted classes of ``y``; across ranks, the labels' dtype and classes must agree (a class
    absent from one rank's shard is an error naming the rank: shards should be shuffled rows)."""
    classes = np.unique(y_np)
    if not shards.distributed:
        return classes
    meta = shards.all_gather_object((str(y_np.dtype), classes.tolist()))
    check_same([m[0] for m in meta], "Expected labels of one dtype on every rank")
    every = sorted(set().union(*(m[1] for m in meta)))
    missing = [(r, sorted(set(every) - set(m[1]))) for r, m in enumerate(meta)]
    missing = [(r, c) for r, c in missing if c]
    if missing:
        raise ShardError("Expected every class on every rank (shuffle the rows before sharding them), got "
                         + "; ".join(f"rank {r} without classes {c}" for r, c in missing))
    return np.asarray(every, dtype=y_np.dtype)


def sharded_variance(X: Tensor, shards: Collectives) -> Tensor:
    """NumPy's (biased) variance of all the ranks' X together (scikit-learn's ``gamma="scale"``), in two passes."""
    n, total = shards.sum(torch.stack([X.new_tensor(float(X.numel())), X.sum()]))
    return shards.sum(((X - total / n) ** 2).sum()) / n


def shards_of(est: BaseEstimator) -> Collectives:
    """The ranks an estimator's fit runs over: :class:`Shards` of its ``process_group`` when ``distributed``
    (a bool: the estimators' parameter validation checked it)."""
    return Shards(est.process_group) if est.distributed else LOCAL


def shard_inputs(shards: Collectives, X: Any, device: torch.device, dtype: torch.dtype | None = None) -> Matrix:
    """This rank's X as a tensor; across ranks, the feature counts and dtypes must agree, and a rank
    whose X is invalid (empty, NaN, wrong shape) makes every rank raise, naming it."""
    if shards.distributed and is_sparse(X):
        raise TypeError("Expected dense X for distributed=True (sharded fits take dense rows), got a sparse matrix")
    Xt = shards.agree("Checking X", lambda: as_tensor_2d(X, "X", device, dtype))
    if shards.distributed:
        meta = shards.all_gather_object((Xt.shape[1], str(Xt.dtype)))
        check_same([m[0] for m in meta], "Expected the same number of features on every rank")
        check_same([m[1] for m in meta], "Expected the same X dtype on every rank")
    return Xt


def fill_bounds(C: np.ndarray, total: np.ndarray | float) -> np.ndarray:
    """LIBSVM's start of the nu and one-class problems: a_i = C_i in order until the sum reaches
    ``total`` (the next one takes the rest, the others stay 0). ``C`` ``(..., N)``, ``total`` ``(...)``."""
    before = np.cumsum(C, -1) - C  # sum of the bounds before i
    return np.minimum(C, np.maximum(np.expand_dims(total, -1) - before, 0.0))


def ovo_pairs(n_classes: int) -> list[tuple[int, int]]:
    """LIBSVM's one-vs-one pairs ``(0, 1), (0, 2), ..., (1, 2), ...``: the one enumeration every part uses."""
    return list(itertools.combinations(range(n_classes), 2))


@functools.lru_cache(maxsize=16)
def ovo_pair_array(n_classes: int) -> np.ndarray:
    """:func:`ovo_pairs` as a ``(P, 2)`` NumPy array, in the same order (the upper triangle row by row), made
    without a Python list (1,000 classes have 499,500 pairs); read-only, made once per class count (each fit and
    predict of a one-vs-one model reads it)."""
    pairs = np.stack(np.triu_indices(n_classes, 1), 1)
    pairs.flags.writeable = False
    return pairs


def ovo_pair_tensor(n_classes: int, device: torch.device | str | None = None) -> Tensor:
    """:func:`ovo_pair_array` as a tensor on ``device``."""
    return torch.tensor(ovo_pair_array(n_classes), device=device)


class _CheckedKernel:
    """A user's kernel callable, its output made a tensor of the right shape (a class so it pickles).

    It is called on what the user fitted on: NumPy arrays for a model fitted on NumPy (or lists), as
    scikit-learn calls it, tensors for one fitted on tensors; sparse rows as scipy CSR matrices either way."""

    numpy = False  # models pickled before the attribute existed called it on tensors

    def __init__(self, fn: Callable[[Any, Any], Any], numpy: bool = False) -> None:
        self.fn = fn
        self.numpy = numpy

    def __call__(self, A: Matrix, Z: Matrix) -> Tensor:
        def given(T: Matrix) -> Any:
            if isinstance(T, SparseRows):
                return T.scipy()
            return T.detach().cpu().numpy() if self.numpy else T

        K = self.fn(given(A), given(Z))
        K = K.toarray() if scipy.sparse.issparse(K) else K
        K = torch.as_tensor(K, dtype=A.dtype, device=A.device)
        if K.shape != (A.shape[0], Z.shape[0]):
            raise ValueError(
                f"Expected the kernel callable to return shape ({A.shape[0]}, {Z.shape[0]}), got {tuple(K.shape)}"
            )
        return K


def warn_if_not_psd(K: Tensor, kernel: Any, n_check: int = 512) -> None:
    """Warn, naming the smallest eigenvalue, when (a sample of) the Gram matrix is not PSD."""
    n = min(K.shape[0], n_check)
    idx = torch.linspace(0, K.shape[0] - 1, n, device=K.device).long()
    ok, message = psd_report(K[idx][:, idx], None)
    if not ok:
        warnings.warn(
            f"The kernel {kernel!r} is not positive semidefinite on the training data ({message}); "
            "the dual is then not convex and the solution is a local one.",
            UserWarning,
            stacklevel=4,
        )


class DualProblems(NamedTuple):
    """P problems in LIBSVM's binary form over n variables: minimize 1/2 a^T Q a + p^T a,
    Q = y y^T * K, 0 <= a <= C, y^T a = 0 (and with ``nu``, e^T a fixed at its start's value);
    ``p`` defaults to -1 and ``alpha0`` to 0.

    The variables sit on rows of X: all of them in order by default; ``rows`` ``(n,)`` maps them
    (epsilon-SVR's 2N variables on N samples); ``row_index`` ``(P, n)`` gives each problem its own rows
    (one-vs-one pairs: the rows of its +1 class, then those of its -1 class, then padding of C = 0), so a pair costs its
    own size, not N, and the solution ``alpha`` is ``(P, n)`` over them too. :meth:`expanded` gives
    the same problems over every row, ``members`` listing each problem's (the decomposition solvers'
    form, with C = 0 off a problem's rows)."""

    Y: Tensor  # (P, n) in {-1, +1}
    C: Tensor  # (P, n)
    p: Tensor | None = None  # (P, n)
    alpha0: Tensor | None = None  # (P, n), feasible
    rows: Tensor | None = None  # (n,) indices into X
    members: list[Tensor] | None = None
    nu: bool = False
    row_index: Tensor | None = None  # (P, n) indices into X

    def expanded(self, n_rows: int) -> DualProblems:
        """The problems over all ``n_rows`` rows of X (C = 0 and y = -1 off each problem's rows), with
        ``members``; problems without ``row_index`` come back as they are."""
        if self.row_index is None:
            return self
        valid = self.C > 0
        at = (valid.nonzero()[:, 0], self.row_index[valid])  # (problem, row of X) of each variable

        def dense(T: Tensor, fill: float) -> Tensor:
            out = torch.full((T.shape[0], n_rows), fill, dtype=T.dtype, device=T.device)
            out[at] = T[valid]
            return out

        members = [self.row_index[q, valid[q]] for q in range(self.row_index.shape[0])]
        return DualProblems(dense(self.Y, -1.0), dense(self.C, 0.0), None if self.p is None else dense(self.p, 0.0),
                            None if self.alpha0 is None else dense(self.alpha0, 0.0), self.rows, members, self.nu)


class ProblemArrays(NamedTuple):
    """:class:`DualProblems` as the estimators build them: float64 NumPy arrays on the host (the same fields,
    ``rows`` and ``row_index`` as int64). :meth:`tensors` gives the solvers' tensors (shared, not copied, on
    the CPU)."""

    Y: np.ndarray
    C: np.ndarray
    p: np.ndarray | None = None
    alpha0: np.ndarray | None = None
    rows: np.ndarray | None = None
    nu: bool = False
    row_index: np.ndarray | None = None

    def tensors(self, device: torch.device) -> DualProblems:
        def to(a: np.ndarray | None) -> Tensor | None:
            return None if a is None else torch.as_tensor(a, device=device)

        Y, C = to(self.Y), to(self.C)
        assert Y is not None and C is not None
        return DualProblems(Y, C, to(self.p), to(self.alpha0), to(self.rows), None, self.nu, to(self.row_index))


class Prepared(NamedTuple):
    """A fit's input as the solve steps take it (:func:`torchsvm.svm.problems.prepare`)."""

    X: Matrix  # the training rows (float32 if X was, else float64; the Gram matrix when precomputed)
    kernel: KernelFn | None  # k(A, Z) with gamma resolved on X; None for a precomputed kernel
    X_kernel: Matrix  # X in the kernel's dtype (the solvers' input)
    gram: Tensor | None  # the Gram matrix when precomputed
    first_row: int = 0  # a sharded fit: this rank's first row in the concatenation of the shards


class Solution(NamedTuple):
    """A fitted kernel model as plain data (what a LIBSVM model file holds): the support vectors and, for each
    binary problem p, ``f_p(x) = sum_i coef[p, i] k(sv_i, x) + intercept[p]``. A classifier's problems are
    its one-vs-one pairs in scikit-learn's order, each positive for the pair's first class (one-vs-rest: one
    per class, positive for it), except that a two-class model's one problem is positive for ``classes[1]``;
    its support vectors come grouped by class, ``n_support[c]`` of class c. :meth:`BaseLibSVM.from_solution` builds
    the estimator."""

    support_vectors: np.ndarray | scipy.sparse.spmatrix  # (n_SV, n_features); no columns for "precomputed"
    coef: np.ndarray  # (P, n_SV)
    intercept: np.ndarray  # (P,)
    support: np.ndarray  # (n_SV,) the support vectors' training-row indices (serial numbers - 1 if precomputed)
    n_features: int
    gamma: float  # the kernel's, resolved (0 for kernels without one)
    shape_fit: tuple[int, int] | None = None  # default (n_SV, n_features)
    classes: np.ndarray | None = None  # classifiers: the sorted labels
    n_support: np.ndarray | None = None  # classifiers: support vectors per class
    probA: np.ndarray | None = None  # classifiers fitted with probability=True: Platt's sigmoid per pair
    probB: np.ndarray | None = None


# Decision values by compiled code (BaseLibSVM._host_decision) up to this many multiply-adds of kernel values
# (n rows x n_SV x D): there the arithmetic costs about what torch's operations per call cost.
_HOST_DECISION_WORK = 1e6

# kernel_dtype="auto": float64 kernel values on the CPU up to this many training rows (a float64 Gram
# matrix of 128 MB), float32 above.
_FLOAT64_ROWS = 4096


class BaseLibSVM(Constrained, BaseEstimator):
    """Shared machinery of the LIBSVM-like estimators (see the module docstring).

    Subclasses list their parameters in ``__init__`` as scikit-learn wants and pass the shared ones
    (``kernel, degree, gamma, coef0, tol, shrinking, cache_size, verbose, max_iter, solver,
    working_set_size, kernel_dtype, device``) to this class's; their constraints are scikit-learn's, see
    :mod:`torchsvm.svm._params`. They build their :class:`DualProblems` and read the solution.
    """

    _family = LIBSVM
    _own_constraints = {"solver": [StrOptions({"auto", "smo", "decomposition"})]}
    _problem_params: tuple[str, ...] = ()  # parameters that change only the problems, not the kernel
    _in_memory_variables = math.inf  # one problem of more variables goes to decomposition on the CPU (SVC, SVR)
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

    def _fit_problems(self, Xt: Matrix, y: Any, sample_weight: Any,
                      shards: Collectives = LOCAL) -> tuple[DualProblems, Any]:
        """The dual problems of a fit on ``Xt`` (float64; this rank's rows where ``shards`` holds them),
        and what :meth:`_set_solution` needs beside them."""
        raise NotImplementedError

    def _make_problems(self, Xt: Matrix, y: Any, sample_weight: Any,
                       shards: Collectives = LOCAL) -> tuple[DualProblems, Any]:
        """:meth:`_fit_problems`, over every row with ``members`` for a sharded fit (the sharded solvers' form)."""
        problems, context = self._fit_problems(Xt, y, sample_weight, shards)
        return (problems.expanded(Xt.shape[0]) if shards.distributed else problems), context

    def _set_solution(self, prepared: Prepared, res: DualResult, problems: DualProblems, context: Any,
                      shards: Collectives = LOCAL) -> None:
        """Set the fitted attributes from the solved problems (every rank the same model, for ``shards``)."""
        raise NotImplementedError

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
        self._set_support(rows, solution, kernel)
        self.support_ = np.asarray(solution.support, dtype=np.int32)
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
        ``forward(X)`` gives ``output`` (``"decision_function"``, ``"predict"``, ``"score_samples"`` for
        OneClassSVM) as this estimator does, in float64 (``.to(torch.float32)`` for float32). It moves with
        ``.to``, composes with other modules, compiles and exports (``torch.export``, ONNX).

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

    def _set_support(self, sv: Matrix, solution: Solution, kernel: KernelFn | None) -> None:
        """:meth:`from_solution`'s fitted attributes of the support vectors ``sv`` and their coefficients."""
        self._keep_support(sv, solution.coef, solution.intercept, kernel, np.arange(sv.shape[0]))
        self._set_dual_coef(solution.coef)
        self.n_support_ = np.array([sv.shape[0]], dtype=np.int32)
        self.n_iter_ = 0

    def _shards(self) -> Collectives:
        """The ranks this estimator's fit runs over (one process here; ``SVC(distributed=True)``: its group)."""
        return LOCAL

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> BaseLibSVM:
        """Fit on ``X`` ``(n_samples, n_features)`` (or a Gram matrix for ``"precomputed"``) and ``y``.

        The one fit path, in one process or sharded: the four steps :mod:`torchsvm.svm.problems` makes public
        (that module wraps these methods; this one does not import it)."""
        start = time.perf_counter()
        self._check_params()  # first: the parameters say whether the fit is sharded
        shards = self._shards()
        sent = shards.bytes_sent
        with small_fit_threads(X):
            prepared = self._prepare(X, shards)
            problems, context = self._make_problems(prepared.X, y, sample_weight, shards)
            res = self._solve(prepared.X_kernel, prepared.kernel, prepared.gram, problems, shards)
            self._finish(res)
            self._set_solution(prepared, res, problems, context, shards)
        if shards.distributed:
            self.bytes_sent_ = shards.bytes_sent - sent
        self._report(res, start)
        return self

    def _finish(self, res: DualResult, stacklevel: int = 3) -> None:
        """``fit_status_`` (0: every problem converged, 1: max_iter stopped one, as LIBSVM's) and its
        warning in scikit-learn's words."""
        # a non-finite kernel value (overflowing X) leaves a NaN violation and the solver's start
        if not all(bool(torch.isfinite(t).all()) for t in (res.alpha, res.b, res.info.kkt_violation)):
            raise ValueError(_NOT_FINITE)
        # LIBSVM's rule too: a problem that took max_iter steps stopped early, even if its last step met tol
        spent = self.max_iter != -1 and bool((res.info.problem_iters >= self.max_iter).any())
        self.fit_status_ = int(spent or bool((res.info.kkt_violation > self.tol).any()))
        if self.fit_status_:
            warn_convergence(
                f"Solver terminated early (max_iter={self.max_iter}).  Consider pre-processing your data with "
                f"StandardScaler or MinMaxScaler. ({type(self).__name__}: max KKT violation "
                f"{float(res.info.kkt_violation.max()):.3g} > tol={self.tol}; raise max_iter or tol.)",
                stacklevel=stacklevel,
            )

    def _report(self, res: DualResult, start: float) -> None:
        """With ``verbose``, one line on the fit (scikit-learn prints LIBSVM's log there)."""
        if not self.verbose:
            return
        report(self, f"{res.alpha.shape[0]} problem(s), max KKT violation {float(res.info.kkt_violation.max()):.3g} "
                     f"(tol={self.tol}), {int(res.info.problem_iters.max())} steps, {len(self.support_)} support "
                     f"vectors, {time.perf_counter() - start:.3f} s")

    def _kernel_dtype(self, device: torch.device, n_rows: int) -> torch.dtype:
        """``kernel_dtype``; ``"auto"`` is float64 on the CPU for up to ``_FLOAT64_ROWS`` training rows
        (scikit-learn's answers to its tests' tolerances, at little cost), float32 beyond (kernel rows
        cost half the time and memory) and on a GPU."""
        if self.kernel_dtype == "auto":
            small = n_rows <= _FLOAT64_ROWS
            return torch.float64 if device.type != "cuda" and small else torch.float32
        return getattr(torch, self.kernel_dtype)

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

    # -- data and kernel -------------------------------------------------------------------
    def _prepare(self, X: Any, shards: Collectives = LOCAL) -> Prepared:
        """``(Xt, kernel or None, Xk in kernel_dtype, K if precomputed)``; sets the input attributes. Xt is
        float32 for float32 X (no float64 copy beside the kernel's; support vectors are kept in float64,
        exactly), float64 otherwise; Xk is Xt itself when the dtypes agree.

        A callable kernel on X that is not numbers (strings, graphs, ...) gets X as it is, as scikit-learn
        does: its Gram matrix is then solved as a precomputed one, and X is kept for prediction.

        With ``shards``, X is this rank's rows (float64); ``shape_fit_`` and gamma are of all ranks' rows."""
        device = fit_device(self.device, X, shards.distributed)
        self._gamma = 0.0  # kernels without a gamma (callables, precomputed) keep this; _resolve_kernel sets the rest
        if shards.distributed:
            return self._prepare_shard(X, shards, device)
        self._raw_fit = X if _takes_raw(self.kernel, X) else None
        if self._raw_fit is None:
            check_feature_names(self, X, reset=True)
        Xt = self._raw_gram(X) if self._raw_fit is not None else _training_rows(X, device)
        self.n_features_in_ = Xt.shape[1]
        self.shape_fit_ = (int(Xt.shape[0]), int(Xt.shape[1]))
        kernel = None if self._raw_fit is not None else self._resolve_kernel(Xt, numpy=not isinstance(X, Tensor))
        if kernel is None:  # precomputed: the user's Gram matrix, as given
            if isinstance(Xt, SparseRows):
                raise TypeError("Sparse precomputed kernels are not supported.")  # scikit-learn's words
            if Xt.shape[0] != Xt.shape[1]:
                raise ValueError(f"Expected a square Gram matrix (N, N) for kernel='precomputed', got {tuple(Xt.shape)}")
            asym = float((Xt - Xt.T).abs().max())
            if asym > 1e-6 * max(1.0, float(Xt.abs().max())):
                # scikit-learn (LIBSVM) solves it as given, reading its rows; so does torchsvm, saying so
                warnings.warn(f"Expected a symmetric Gram matrix for kernel='precomputed', got max |K - K^T| = "
                              f"{asym:.3g}; solving with its rows as given, as LIBSVM does", UserWarning, stacklevel=4)
            return Prepared(Xt, None, Xt, Xt)
        kernel_dtype = self._kernel_dtype(device, Xt.shape[0])
        with device_memory_guard(f"X in kernel_dtype ({Xt.shape[0]} x {Xt.shape[1]}, {kernel_dtype}) on {device}", _X_ADVICE):
            return Prepared(Xt, kernel, Xt.to(kernel_dtype), None)

    def _prepare_shard(self, X: Any, shards: Collectives, device: torch.device) -> Prepared:
        """:meth:`_prepare` of this rank's rows of a sharded fit (features, not a Gram matrix)."""
        Xt = shard_inputs(shards, X, device, torch.float64)
        assert isinstance(Xt, Tensor)  # shard_inputs refuses sparse X for a sharded fit
        offsets = row_offsets(shards, Xt.shape[0], device)
        self._raw_fit = None
        self.n_features_in_, self.shape_fit_ = Xt.shape[1], (int(offsets[-1]), Xt.shape[1])
        kernel = self._resolve_kernel(Xt, shards)
        assert kernel is not None  # a precomputed kernel cannot be sharded (checked with the parameters)
        return Prepared(Xt, kernel, Xt.to(self._kernel_dtype(device, self.shape_fit_[0])), None,
                        int(offsets[shards.rank]))

    def _raw_gram(self, X: Any) -> Tensor:
        """``kernel(X, X_fit)`` (X_fit = X during fit) for a callable kernel on non-numeric X, ``(n, n_fit)`` float64."""
        raw_fit = getattr(self, "_raw_fit", None)
        fit = X if raw_fit is None else raw_fit
        K = np.asarray(self.kernel(X, fit), dtype=np.float64)
        if K.shape != (len(X), len(fit)):
            raise ValueError(f"Expected the kernel callable to return shape ({len(X)}, {len(fit)}), got {K.shape}")
        Kt = as_tensor_2d(K, "kernel(X, X_fit)", resolve_device(self.device), torch.float64)
        assert isinstance(Kt, Tensor)  # a NumPy array in, a dense tensor out
        return Kt

    def _resolve_kernel(self, X: Matrix, shards: Collectives = LOCAL, numpy: bool = False) -> KernelFn | None:
        """The kernel as ``k(A, Z) -> (n_A, n_Z)`` with gamma resolved on the training X (all ranks'
        rows for a sharded fit); None if precomputed. ``numpy``: a user's callable (not a torchsvm
        :class:`~torchsvm.kernels.Kernel`) is called on NumPy arrays, the training X having been NumPy."""
        kernel = self.kernel
        if not isinstance(kernel, str):
            return _CheckedKernel(kernel, numpy=numpy and not isinstance(kernel, Kernel))
        if kernel == "precomputed":
            return None
        gamma = self.gamma
        if gamma == "scale":
            var = float(sharded_variance(X, shards) if isinstance(X, Tensor) and shards.distributed  # dense rows
                        else _variance(X))
            gamma = 1.0 / (X.shape[1] * var) if var > 0 else 1.0
            if gamma == 0.0:  # scikit-learn's value too, a constant kernel: say why
                warnings.warn(f"gamma='scale' is 0.0 (a constant kernel): X.var() = {var:.3g} overflows or is too "
                              "large; scale the features (e.g. StandardScaler) or pass a gamma", UserWarning, stacklevel=4)
        elif gamma == "auto":
            gamma = 1.0 / X.shape[1]
        self._gamma = float(gamma)
        return kernel_function(kernel, self._gamma, self.degree, self.coef0)

    def _memory_budget(self, device: torch.device) -> float:
        """Bytes for in-memory Gram matrices: ``cache_size`` MB, or for ``"auto"`` half the free GPU memory (2 GiB on CPU)."""
        if self.solver == "smo":
            return math.inf
        if self.solver == "decomposition":
            return 0.0
        if self.cache_size != "auto":
            return float(self.cache_size) * 2**20
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            return 0.5 * free
        return 2048 * 2**20

    def _working_set_size(self, n_columns: int, itemsize: int, device: torch.device,
                          shards: Collectives = LOCAL) -> int:
        """``working_set_size``; ``"auto"`` is 2048 on the CPU while the two buffers of its kernel rows
        (``2 q n_columns`` values) fit in ``cache_size`` (2 GiB for ``"auto"``), else 1024, and 1024 on a GPU
        and for a sharded fit (whose cost model, in docs/guide/distributed.md, is for that q).
        On the CPU a larger working set means fewer outer iterations for the same kernel work (measured in
        benchmarks/results/working-set-*)."""
        if self.working_set_size != "auto":
            return int(self.working_set_size)
        if device.type == "cuda" or shards.distributed:
            return 1024
        budget = 2.0**31 if self.cache_size == "auto" else float(self.cache_size) * 2**20
        return 2048 if 2 * 2048 * n_columns * itemsize <= budget else 1024

    def _max_iter(self) -> int | None:
        return None if self.max_iter == -1 else self.max_iter

    # -- the one solve path ----------------------------------------------------------------
    def _solve(self, Xk: Matrix, kernel: KernelFn | None, K: Tensor | None, problems: DualProblems,
               shards: Collectives = LOCAL) -> DualResult:
        """Solve the P problems: ``alpha (P, n)``, ``b (P,)``, ``r`` (nu), per-problem steps and KKT
        violations in ``info``.

        Problems spanning every row share one kernel: in memory (SMO, batched) when its n x n
        values fit in the budget, else the decomposition solver works from kernel rows. One-vs-one
        problems (``row_index``) are solved on their own rows (:func:`~torchsvm.svm._blocks.solve_blocks`),
        each Gram block computed from its two classes' rows (half the work of the full Gram matrix, none of
        its memory). Sharded problems (``shards``) go to the decomposition solver over every rank's rows.
        """
        if shards.distributed:
            assert kernel is not None  # sharded fits take features (checked with the parameters)
            return self._stepped(Xk, kernel, problems, shards).run(self._max_iter())
        if K is not None and self._libsvm_rounding(K):  # a precomputed Gram matrix: LIBSVM caches it so too
            K = K.clone()
            _as_libsvm_keeps(K)
        budget = math.inf if K is not None else self._memory_budget(Xk.device)
        if (K is None and self.solver == "auto" and Xk.device.type == "cpu" and problems.row_index is None
                and problems.Y.shape[0] == 1 and problems.Y.shape[1] > self._in_memory_variables):
            budget = 0.0  # one large problem on the CPU: kernel rows cost less than the whole Gram matrix
        if self._on_host(Xk, problems, budget):
            return self._solve_on_host(Xk, kernel, K, problems)
        rows = problems.rows  # (one-vs-one problems name their rows by index instead)
        Xr = Xk if rows is None else Xk[rows]
        n = Xr.shape[0]
        full_bytes = n * n * Xk.element_size()
        if K is not None and rows is not None:
            K = K[rows][:, rows]
        elif K is None and problems.row_index is None and full_bytes <= budget:
            K = self._gram(kernel, Xr)
            budget -= full_bytes
        self._check_psd(Xr, kernel, K)
        if problems.row_index is not None:
            q = self._working_set_size(problems.row_index.shape[1], Xr.element_size(), Xr.device)
            settings = BlockSettings(self.tol, self._max_iter(), q, isinstance(self.kernel, str))
            return solve_blocks(Xr, K, problems, kernel, budget, settings)
        opts: dict[str, Any] = dict(tol=self.tol, max_iter=self._max_iter(), dtype=problems.Y.dtype, p=problems.p,
                    alpha0=problems.alpha0, nu=problems.nu)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # fit warns once, for the estimator
            if K is not None:
                return smo_dual(K, problems.Y, problems.C, **opts)
            assert kernel is not None
            return self._stepped(Xk, kernel, problems).run(self._max_iter())

    def _stepped(self, Xk: Matrix, kernel: KernelFn, problems: DualProblems,
                 shards: Collectives = LOCAL) -> DecompositionProblems:
        """The problems as the decomposition solver takes them, to be stepped (the one translation, used by
        fit, sharded fits and the kernel LightningModules): over every row of ``Xk`` (one-vs-one pairs
        list their rows as ``members``), several variables on one sample (epsilon-SVR's two) read that
        sample's kernel row (one process), and the working set is :meth:`_working_set_size`'s."""
        problems = problems.expanded(Xk.shape[0])
        rows = problems.rows
        shared = (rows is not None and problems.members is None and not shards.distributed
                  and rows.numel() > Xk.shape[0])
        X = Xk if rows is None or shared else Xk[rows]
        q = self._working_set_size(X.shape[0], X.element_size(), X.device, shards)
        return DecompositionProblems(X, problems.Y, problems.C, kernel, p=problems.p, alpha0=problems.alpha0,
                                     nu=problems.nu, members=problems.members, working_set_size=q, tol=self.tol,
                                     dtype=problems.Y.dtype, shards=shards, row_of=rows if shared else None)

    def _on_host(self, Xk: Matrix, problems: DualProblems, budget: float) -> bool:
        """Whether the problems are solved on one Gram matrix of the training rows by compiled CPU code
        (:meth:`_solve_on_host`): on the CPU, where the batched path would solve them in memory (not
        ``solver="decomposition"``), except one-vs-one pairs whose blocks are built from their classes'
        blocks (large pairs of many features: half the kernel work of the whole Gram matrix)."""
        # The budget is the batched path's: a Gram matrix over the variables (epsilon-SVR: 2N of them on N rows)
        # within it, else the decomposition solver (the host path would need only the rows' N x N).
        n = Xk.shape[0] if problems.row_index is not None else problems.Y.shape[1]
        if Xk.device.type != "cpu" or self.solver == "decomposition" or n * n * Xk.element_size() > budget:
            return False
        return problems.row_index is None or not by_segments(problems.row_index.shape[1], Xk.shape[1])

    def _solve_on_host(self, Xk: Matrix, kernel: KernelFn | None, K: Tensor | None,
                       problems: DualProblems) -> DualResult:
        """One Gram matrix of the training rows, then every problem solved by compiled code on its rows of it
        (:func:`~torchsvm.solvers.smo.smo_dual_host`: one-vs-one pairs and epsilon-SVR's two variables per
        sample read it in place), from the start to the bias: one thread up to ``SMALL_ROWS`` rows (where threads
        would cost more than the work, and a busy machine's other cores are left alone), numba's threads above
        (as many as torch may use)."""
        K = self._gram(kernel, Xk) if K is None else K
        self._check_psd(Xk, kernel, K)
        P, n = problems.Y.shape
        rows = problems.row_index if problems.rows is None else problems.rows.expand(P, n)
        host = lambda T: None if T is None else T.numpy()  # noqa: E731 (CPU tensors: shared, not copied)
        return smo_dual_host(K.contiguous().numpy(), problems.Y.numpy(), problems.C.numpy(), host(problems.p),
                             host(problems.alpha0), self.tol, self._max_iter(), problems.nu, host(rows),
                             parallel=Xk.shape[0] > SMALL_ROWS and torch.get_num_threads() > 1)

    def _gram(self, kernel: KernelFn | None, X: Matrix) -> Tensor:
        """The Gram matrix of the training rows (a built-in kernel's of :func:`_dense_if_narrow`'s rows; a user's
        callable gets sparse rows as they are)."""
        K = _gram(kernel, _dense_if_narrow(X) if isinstance(self.kernel, str) else X)
        if not math.isfinite(float(K.sum())):  # an overflowing X (one pass: a NaN or inf makes the sum one)
            raise ValueError(_NOT_FINITE + " (The kernel matrix has non-finite values.)")
        if self._libsvm_rounding(K):
            _as_libsvm_keeps(K)
        return K

    def _libsvm_rounding(self, K: Tensor) -> bool:
        """Whether the Gram matrix ``K`` is kept as LIBSVM keeps it (:func:`_as_libsvm_keeps`): float64 values on
        the CPU with ``kernel_dtype="auto"`` (``"float64"`` keeps them exact)."""
        return self.kernel_dtype == "auto" and K.dtype == torch.float64 and K.device.type == "cpu"

    def _check_psd(self, X: Matrix, kernel: KernelFn | None, K: Tensor | None) -> None:
        """Warn when the Gram matrix is not PSD. Skipped for the kernels PSD by construction (linear,
        RBF, polynomial with coef0 >= 0: Mercer kernels; a negative eigenvalue there is rounding),
        where the eigenvalues of a 512-sample block would cost more than a small fit."""
        if self.kernel in ("linear", "rbf") or (self.kernel == "poly" and self.coef0 >= 0):
            return
        if K is not None:
            warn_if_not_psd(K, self.kernel)
        elif kernel is not None:
            sample = torch.linspace(0, X.shape[0] - 1, min(X.shape[0], 512), device=X.device).long()
            with device_memory_guard(f"the {len(sample)} x {len(sample)} Gram matrix of sampled rows (a PSD check)",
                                     "Use solver='decomposition', a smaller cache_size, or device='cpu'."):
                warn_if_not_psd(kernel(X[sample], X[sample]), self.kernel)


    def _keep_support(self, Xt: Matrix, coef: np.ndarray, b: np.ndarray, kernel: KernelFn | None,
                      order: np.ndarray) -> np.ndarray:
        """Keep the rows with a nonzero coefficient in some problem, in ``order``; returns their indices.

        ``coef`` ``(m, N)`` holds each row's coefficients (for P problems: ``f = K(x, SV) coef_SV^T + b``;
        one-vs-one classifiers keep LIBSVM's k - 1 per row instead, see :meth:`_combine`).
        """
        is_sv = (coef != 0).any(0)
        support = order[is_sv[order]]
        self.support_ = support.astype(np.int32)
        self._coef = torch.as_tensor(coef.T[support], device=Xt.device)  # (n_SV, m)
        self._b = torch.as_tensor(b, device=Xt.device)
        self._kernel = kernel
        self._rbf_rows: tuple[Tensor, Tensor, Tensor] | None = None  # _decision_kernel's, made on first use
        sv_index = torch.as_tensor(support, device=Xt.device, dtype=torch.long)
        self._sv = sv = Xt[sv_index].to(torch.float64) if kernel is not None else None  # float32 rows: exact
        if sv is None:
            self.support_vectors_ = np.empty((0, 0))
        else:  # sparse when X was (scikit-learn's convention)
            self.support_vectors_ = sv.scipy() if isinstance(sv, SparseRows) else sv.cpu().numpy()
        self.intercept_ = np.array(b, dtype=np.float64)
        return support

    def _set_dual_coef(self, coef: np.ndarray) -> None:
        """``dual_coef_`` ``(m, n_SV)``: CSR after a sparse fit, as scikit-learn's (its support vectors are)."""
        self.dual_coef_ = scipy.sparse.csr_matrix(coef) if isinstance(self._sv, SparseRows) else coef

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
        Xt = self._raw_gram(X) if raw else as_tensor_2d(X, "X", device, torch.float64)
        n_sv, n_problems = self._coef.shape[0], self._b.shape[0]
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








_NOT_FINITE = ("The dual coefficients or intercepts are not finite. The input data may contain large values and need "
               "to be preprocessed.")  # scikit-learn's words


def _as_libsvm_keeps(K: Tensor) -> None:
    """Round the off-diagonal kernel values of a float64 Gram matrix to float32 in place, as LIBSVM's kernel cache
    keeps them (its Qfloat; the diagonal stays float64, as its QD): near-hard margins (C = 1e9, gamma = 1e-3 on
    standardized iris) turn on differences of kernel values near 1 that float32 rounds, and the models then
    agree with scikit-learn's, not only the objective (benchmarks/results/iris-grid-*)."""
    diagonal = K.diagonal().clone()
    K.copy_(K.to(torch.float32))
    K.diagonal().copy_(diagonal)


def _gram(kernel: KernelFn | None, X: Matrix) -> Tensor:
    """The Gram matrix of the training rows, an allocation failure made a clear error."""
    assert kernel is not None  # only a precomputed fit has none, and it has K
    with device_memory_guard(f"the {X.shape[0]} x {X.shape[0]} Gram matrix",
                             "Use solver='decomposition', a smaller cache_size, or device='cpu'."):
        return kernel(X, X)


def _takes_raw(kernel: Any, X: Any) -> bool:
    """Whether a user's callable kernel gets X as it is: X is not a tensor nor convertible to numbers."""
    if not callable(kernel) or isinstance(kernel, (str, Kernel)) or isinstance(X, Tensor) or is_sparse(X):
        return False
    try:
        np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        return True
    return False


def decision_values(kernel: KernelFn, X: Matrix, sv: Tensor, coef: Tensor, b: Tensor) -> Tensor:
    """``K(X, SV) coef + b`` ``(n, P)``: support vectors only, a block of rows of X at a time."""
    blocks = [K_rows @ coef for _, K_rows in kernel_row_blocks(kernel, X, sv, 4096)]
    return torch.cat(blocks) + b if blocks else coef.new_zeros(0, coef.shape[1])


