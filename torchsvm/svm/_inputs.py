"""What a fit's steps and the estimators share: devices, input conversion and checks, targets and costs, shards,
user kernels, and the problems' data (:class:`DualProblems`, :class:`Prepared`, :class:`Solution`).

Below :mod:`torchsvm.svm.problems` (the fit's steps) and the estimators, which import from here; this module
imports neither.
"""

from __future__ import annotations

import functools
import itertools
import warnings
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data
from torch import Tensor

from torchsvm._sparse import Matrix, SparseRows, as_sparse_rows, is_sparse
from torchsvm._threads import SMALL_ROWS, rows_of
from torchsvm.distributed import LOCAL, Collectives, ShardError, Shards, check_same
from torchsvm.kernels import KernelFn, kernel_row_blocks, psd_report
from torchsvm.solvers.dual import device_memory_guard
from torchsvm.svm.modules import ovr_from_pairs


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



# On the CPU one problem of more variables than this (binary SVC, epsilon-SVR's 2N) is solved from kernel rows
# (decomposition) rather than on the whole Gram matrix, whose N^2 D cost then exceeds the rows the solver reads
# (docs/benchmarks.md, "The thresholds in the code"). NuSVC, NuSVR and OneClassSVM keep the Gram matrix (their
# budget rule alone decides): they were faster in memory at every size run.
IN_MEMORY_VARIABLES = 8000

X_ADVICE = "Fit on fewer rows, on device='cpu', or sharded over several GPUs (distributed=True)."


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
    with device_memory_guard(f"{name} ({T.shape[0]} x {T.shape[1]}, {dtype}) on {device}", X_ADVICE):
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


def training_rows(X: Any, device: torch.device) -> Matrix:
    """X as :func:`as_tensor_2d` gives it, in a solver's dtype (:func:`solver_dtype`)."""
    return solver_dtype(as_tensor_2d(X, "X", device))


def solver_dtype(X: Matrix) -> Matrix:
    """X in float32 or float64 as it is (scikit-learn's float64 values of float32 are exact upcasts: nothing is
    lost by not copying it), any other floating dtype (float16, bfloat16) as float64: the compiled solvers read
    X through NumPy, which has no bfloat16, and half precision is too coarse for their sums."""
    return X if X.dtype in (torch.float32, torch.float64) else X.to(torch.float64)


def dense_if_narrow(X: Matrix) -> Matrix:
    """Sparse rows with no more features than rows as a dense tensor (no more memory than their Gram matrix):
    the Gram matrix and gamma='scale' are then the dense fit's to the last bit, so sparse and dense X give the
    same model, as in LIBSVM. Other X as it is."""
    return X.to_dense() if isinstance(X, SparseRows) and X.shape[1] <= X.shape[0] else X


def variance(X: Matrix, rows: int = 65536) -> float:
    """The variance of all entries of X in float64 (as scikit-learn's X.var() on its float64 copy), a block
    of rows at a time: a float32 X gets no whole float64 copy (:func:`dense_if_narrow`'s rows dense)."""
    X = dense_if_narrow(X)
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


def ovo_layout(n_classes: int, multi_class: str) -> bool:
    """Whether a classifier keeps LIBSVM's one-vs-one layout (k - 1 coefficients per support vector): one-vs-one
    over more than two classes."""
    return n_classes > 2 and multi_class == "ovo"


def pair_coefficients(dual_coef: np.ndarray, n_support: np.ndarray) -> np.ndarray:
    """LIBSVM's ``k - 1`` coefficients per support vector (``dual_coef_``, support vectors grouped by class,
    ``n_support`` per class) as one row per one-vs-one pair (i, j): ``dual_coef[j - 1]`` on class i's support
    vectors, ``dual_coef[i]`` on class j's, zero elsewhere. ``(k (k - 1) / 2, n_SV)``."""
    k = len(n_support)
    starts = np.concatenate([[0], np.cumsum(n_support)])
    out = np.zeros((k * (k - 1) // 2, dual_coef.shape[1]))
    for p, (i, j) in enumerate(ovo_pairs(k)):
        out[p, starts[i] : starts[i + 1]] = dual_coef[j - 1, starts[i] : starts[i + 1]]
        out[p, starts[j] : starts[j + 1]] = dual_coef[i, starts[j] : starts[j + 1]]
    return out


def ovr_from_ovo(dec: Tensor, n_classes: int) -> Tensor:
    """scikit-learn's one-vs-one -> one-vs-rest decision shape: votes plus confidences squashed to (-1/3, 1/3)."""
    return ovr_from_pairs(dec, ovo_pair_tensor(n_classes, dec.device), n_classes)


class CheckedKernel:
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

def raw_gram(est: BaseEstimator, X: Any) -> Tensor:
    """``kernel(X, X_fit)`` (X_fit = X during fit) for a callable kernel on non-numeric X, ``(n, n_fit)`` float64."""
    raw_fit = getattr(est, "_raw_fit", None)
    fit = X if raw_fit is None else raw_fit
    K = np.asarray(est.kernel(X, fit), dtype=np.float64)
    if K.shape != (len(X), len(fit)):
        raise ValueError(f"Expected the kernel callable to return shape ({len(X)}, {len(fit)}), got {K.shape}")
    Kt = as_tensor_2d(K, "kernel(X, X_fit)", resolve_device(est.device), torch.float64)
    assert isinstance(Kt, Tensor)  # a NumPy array in, a dense tensor out
    return Kt


def decision_values(kernel: KernelFn, X: Matrix, sv: Tensor, coef: Tensor, b: Tensor) -> Tensor:
    """``K(X, SV) coef + b`` ``(n, P)``: support vectors only, a block of rows of X at a time."""
    blocks = [K_rows @ coef for _, K_rows in kernel_row_blocks(kernel, X, sv, 4096)]
    return torch.cat(blocks) + b if blocks else coef.new_zeros(0, coef.shape[1])


