"""LIBSVM's files: data in its text format, and its model file, read and written.

Data (``label index:value index:value ...``, one sample per line) is read with scikit-learn's
``load_svmlight_file`` (zero- or one-based indices); a malformed line is an error naming the file and
the line. Models are LIBSVM's text format (``svm_type``, ``kernel_type``, ``rho``, ``label``, ``nr_sv``,
then the support vectors with their coefficients), so a model written here is read by LIBSVM's own
``svm-predict`` and a LIBSVM model file gives a fitted :class:`~torchsvm.SVC` / :class:`~torchsvm.NuSVC` /
:class:`~torchsvm.SVR` / :class:`~torchsvm.NuSVR` / :class:`~torchsvm.OneClassSVM` here.

Signs: LIBSVM's decision of pair (i, j) is ``sum coef K - rho``, positive for the pair's first class; a
two-class model here is positive for ``classes_[1]`` (scikit-learn's convention), so its coefficients
and intercept change sign on the way, as scikit-learn's wrapper does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse

from torchsvm._sparse import dense_array
from torchsvm.svm import SVC, SVR, BaseLibSVM, NuSVC, NuSVR, OneClassSVM
from torchsvm.svm.problems import Solution, pair_coefficients

__all__ = ["load_data", "load_model", "save_model"]

_SVM_TYPES = {"SVC": "c_svc", "NuSVC": "nu_svc", "OneClassSVM": "one_class", "SVR": "epsilon_svr", "NuSVR": "nu_svr"}
_KERNELS = {"linear": "linear", "poly": "polynomial", "rbf": "rbf", "sigmoid": "sigmoid", "precomputed": "precomputed"}
_LINE = re.compile(r"^\s*[-+]?[0-9.eE+-]+(\s+qid:\S+)?(\s+-?[0-9]+:[-+]?[0-9.eE+-]+|\s+-?[0-9]+:[-+]?(nan|inf))*\s*(#.*)?$")


def load_data(path: str | Path, n_features: int | None = None) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
    """``(X, y)`` from a LIBSVM-format file, X a scipy CSR matrix (float64, ``(n, D)``), as the file stores
    it; ``n_features`` widens X to a model's width.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a malformed line (its number and text in the message), NaN or infinite values.
    """
    from sklearn.datasets import load_svmlight_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Expected a LIBSVM-format data file, got {str(path)!r}: no such file")
    try:
        X, y = load_svmlight_file(str(path), n_features=n_features, dtype=np.float64)
    except (ValueError, OverflowError) as err:  # OverflowError: an index past a C int
        raise ValueError(f"{path}: {_first_malformed(path) or err}") from err
    if not np.all(np.isfinite(X.data)):
        raise ValueError(f"{path}: expected finite values, got NaN or infinity")
    return X, y


def _first_malformed(path: Path) -> str | None:
    with path.open(errors="replace") as f:
        for number, line in enumerate(f, 1):
            malformed = line.strip() and not _LINE.match(line.rstrip("\n"))
            if malformed or any(int(j) > _MAX_INDEX for j in re.findall(r"\s(-?[0-9]+):", line)):
                return (f"line {number}: expected 'label index:value index:value ...' (indices up to {_MAX_INDEX}), "
                        f"got {line.rstrip()[:80]!r}")
    return None


def _number(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def save_model(est: BaseLibSVM, path: str | Path, serial_numbers: Any = None) -> None:
    """Write a fitted SVC / NuSVC / SVR / NuSVR / OneClassSVM in LIBSVM's model format.

    A ``kernel="precomputed"`` model is written as LIBSVM writes one (``-t 4``): each support vector as
    ``0:ID``, its training row's serial number, ``serial_numbers[i]`` for row i (default ``i + 1``).

    Raises:
        ValueError: a kernel LIBSVM has no name for (a callable), one-vs-rest problems, or class labels
            that are not integers (LIBSVM's labels are).
    """
    kind = type(est).__name__
    if kind not in _SVM_TYPES:
        raise ValueError(f"Expected an SVC, NuSVC, SVR, NuSVR or OneClassSVM, got {kind}")
    if not isinstance(est.kernel, str) or est.kernel not in _KERNELS:
        raise ValueError(f"Expected a kernel LIBSVM names ({sorted(_KERNELS)}), got {est.kernel!r}")
    if est.get_params().get("multi_class", "ovo") != "ovo":  # SVC's parameter; NuSVC is one-vs-one
        raise ValueError("LIBSVM's models are one-vs-one: fit with multi_class='ovo'")
    solution = est.to_solution()
    precomputed = est.kernel == "precomputed"
    if precomputed:  # a support vector is its training row's serial number
        ids = np.arange(1, est.shape_fit_[0] + 1) if serial_numbers is None else np.asarray(serial_numbers)
        sv = scipy.sparse.csr_matrix((ids[est.support_].astype(np.float64), np.zeros(len(est.support_), dtype=np.int64),
                                      np.arange(len(est.support_) + 1)), shape=(len(est.support_), 1))
    else:
        sv = scipy.sparse.csr_matrix(est.support_vectors_, dtype=np.float64)  # dense or sparse: the stored entries
    coef = np.asarray(dense_array(est.dual_coef_), dtype=np.float64)  # CSR after a sparse fit
    intercept = np.asarray(est.intercept_, dtype=np.float64)
    classifier = kind in ("SVC", "NuSVC")
    binary = classifier and len(est.classes_) == 2
    if binary:  # LIBSVM's pair is positive for its first class; ours for classes_[1]
        coef, rho = -coef, intercept
    else:
        rho = -intercept
    lines = [f"svm_type {_SVM_TYPES[kind]}", f"kernel_type {_KERNELS[est.kernel]}"]
    if est.kernel == "poly":
        lines.append(f"degree {int(est.degree)}")
    if est.kernel in ("poly", "rbf", "sigmoid"):
        lines.append(f"gamma {solution.gamma!r}")
    if est.kernel in ("poly", "sigmoid"):
        lines.append(f"coef0 {float(est.coef0)!r}")
    lines += [f"nr_class {len(est.classes_) if classifier else 2}", f"total_sv {sv.shape[0]}",
              "rho " + " ".join(repr(float(r)) for r in rho)]
    if classifier:
        labels = np.asarray(est.classes_)
        if not (np.issubdtype(labels.dtype, np.number) and np.all(labels == np.round(labels))):
            raise ValueError(f"Expected integer class labels for a LIBSVM model, got {labels.tolist()[:6]}")
        lines.append("label " + " ".join(str(int(c)) for c in labels))
        probA, probB = solution.probA, solution.probB
        if probA is not None and probB is not None and probA.size:  # Platt's sigmoids, on LIBSVM's sign already
            lines += ["probA " + " ".join(repr(float(a)) for a in probA),
                      "probB " + " ".join(repr(float(b)) for b in probB)]
        lines.append("nr_sv " + " ".join(str(int(n)) for n in est.n_support_))
    lines.append("SV")
    for k in range(sv.shape[0]):
        start, end = sv.indptr[k], sv.indptr[k + 1]
        if precomputed:
            features = f"0:{int(sv.data[start])}"
        else:
            features = " ".join(f"{j + 1}:{float(v)!r}" for j, v in zip(sv.indices[start:end], sv.data[start:end],
                                                                     strict=True) if v != 0)
        lines.append(" ".join(repr(float(c)) for c in coef[:, k]) + (" " + features if features else ""))
    Path(path).write_text("\n".join(lines) + "\n")


def load_model(path: str | Path, device: str = "auto", n_features: int | None = None) -> Any:
    """A fitted torchsvm estimator from a LIBSVM model file (``support_`` is 0..n_SV-1: a model file keeps
    no training indices). A model file does not say how many features the data had, only the largest
    index its support vectors use: ``n_features`` (e.g. the test data's width) sets ``n_features_in_``.
    A precomputed-kernel model (``-t 4``) predicts from kernel values against the training rows by serial
    number: ``support_`` is each support vector's serial number - 1, and ``predict`` takes ``(n, L)``
    values, column j - 1 for serial number j (L: ``n_features``, at least the largest serial number).

    The file is read into a plain :class:`~torchsvm.svm._base.Solution`, which the estimator's own
    :meth:`~torchsvm.svm._base.BaseLibSVM.from_solution` turns into a fitted estimator.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a file that is not a LIBSVM model, or a model of a kind not supported here, with the
            offending line.
    """
    model = _read_model(Path(path))
    solution = _solution(model, n_features)
    classes: dict[str, type[BaseLibSVM]] = {"SVC": SVC, "NuSVC": NuSVC, "SVR": SVR, "NuSVR": NuSVR,
                                             "OneClassSVM": OneClassSVM}
    try:  # the estimator's own checks of its parameters (a negative gamma, say), with the file named
        return classes[model.kind].from_solution(solution, kernel=model.kernel, gamma=model.gamma, degree=model.degree,
                                                 coef0=model.coef0, device=device)
    except ValueError as err:
        raise ValueError(f"{model.path}: {err}") from err


_MAX_INDEX = 2**31 - 1  # LIBSVM's feature indices and counts are C ints


class _ModelFile(NamedTuple):
    """A LIBSVM model file as read and checked: its parameters, and per support vector its coefficients and
    features."""

    path: Path
    kind: str  # the estimator's name
    kernel: str
    gamma: float
    degree: int
    coef0: float
    rho: np.ndarray  # (P,)
    labels: np.ndarray | None  # classifiers: LIBSVM's label order
    n_sv: np.ndarray | None  # classifiers: support vectors per label
    probA: np.ndarray
    probB: np.ndarray
    coef: np.ndarray  # (n_coef, n_SV): LIBSVM's sv_coef
    rows: list[dict[int, float]]  # each support vector's index: value pairs


class _Header:
    """The header lines up to ``SV``, each key's values with its line number, read with checks that name
    the file and the line."""

    def __init__(self, path: Path, lines: list[tuple[int, str]]) -> None:
        self.path = path
        self.lines: dict[str, tuple[int, list[str]]] = {}
        for number, line in lines:
            key, *values = line.split() or [""]
            if key:
                self.lines[key] = (number, values)

    def word(self, key: str, choices: dict[str, str]) -> str:
        """The one value of ``key``, one of ``choices`` (file word -> ours)."""
        number, values = self._line(key)
        if len(values) != 1 or values[0] not in choices:
            raise ValueError(f"{self.path}, line {number}: expected {key} one of {sorted(choices)}, got {values}")
        return choices[values[0]]

    def numbers(self, key: str, kind: type, count: int | None = None, default: list | None = None) -> np.ndarray:
        """``count`` finite numbers of ``kind`` (int or float) after ``key`` (``default`` when the line is absent)."""
        if key not in self.lines and default is not None:
            return np.asarray(default, dtype=kind)
        number, values = self._line(key)
        try:
            out = np.asarray([kind(v) for v in values], dtype=np.float64)
        except (ValueError, OverflowError):
            out = np.asarray([np.nan])
        if not np.all(np.isfinite(out)) or (kind is int and np.any(np.abs(out) > _MAX_INDEX)) or (
                count is not None and len(out) != count):
            expected = f"{count} " if count is not None else ""
            raise ValueError(f"{self.path}, line {number}: expected {key} followed by {expected}finite "
                             f"{'integers' if kind is int else 'numbers'}, got {values[:8]}")
        return out.astype(np.int64 if kind is int else np.float64)

    def _line(self, key: str) -> tuple[int, list[str]]:
        if key not in self.lines:
            raise ValueError(f"{self.path}: expected a '{key}' line in the model's header, found none")
        return self.lines[key]


def _read_model(path: Path) -> _ModelFile:
    """Parse ``path``: header lines up to ``SV``, then one support vector per line; every count and value
    is checked against the others before anything is built (a count with no lines behind it allocates nothing)."""
    if not path.is_file():
        raise FileNotFoundError(f"Expected a LIBSVM model file, got {str(path)!r}: no such file")
    try:
        text = path.read_text().splitlines()
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: expected a LIBSVM model file (text), got bytes that are not text") from err
    cut = next((i for i, line in enumerate(text) if line.strip() == "SV"), None)
    if cut is None:
        raise ValueError(f"{path}: expected LIBSVM's model format (a header, then 'SV'), found no 'SV' line")
    header = _Header(path, list(enumerate(text[:cut], 1)))
    kind = header.word("svm_type", {v: k for k, v in _SVM_TYPES.items()})
    kernel = header.word("kernel_type", {v: k for k, v in _KERNELS.items()})
    classifier = kind in ("SVC", "NuSVC")
    labels = n_sv = None
    if classifier:
        n_class = int(header.numbers("nr_class", int, 1)[0])
        if not 2 <= n_class <= 65536:
            raise ValueError(f"{path}, line {header.lines['nr_class'][0]}: expected nr_class of 2 to 65536, "
                             f"got {n_class}")
        labels = header.numbers("label", int, n_class)
        n_sv = header.numbers("nr_sv", int, n_class)
        if np.any(n_sv < 0) or len(np.unique(labels)) != n_class:
            raise ValueError(f"{path}: expected distinct labels and non-negative nr_sv, got labels {labels.tolist()} "
                             f"and nr_sv {n_sv.tolist()}")
    n_pairs = n_class * (n_class - 1) // 2 if classifier else 1
    rho = header.numbers("rho", float, n_pairs)
    probA = header.numbers("probA", float, n_pairs if classifier else None, default=[])
    probB = header.numbers("probB", float, n_pairs if classifier else None, default=[])
    if classifier and (probA.size == 0) != (probB.size == 0):
        raise ValueError(f"{path}: expected both probA and probB or neither")
    n_coef = n_class - 1 if classifier else 1
    coef, rows = _support_vector_lines(path, text, cut + 1, n_coef, kernel == "precomputed")
    total = header.numbers("total_sv", int, 1, default=[len(rows)])[0]
    if total != len(rows) or (n_sv is not None and n_sv.sum() != len(rows)):
        raise ValueError(f"{path}: expected total_sv and nr_sv to count the {len(rows)} support vector lines after "
                         f"'SV', got total_sv {total}" + ("" if n_sv is None else f" and nr_sv {n_sv.tolist()}"))
    # LIBSVM writes each of these where its kernel uses it; there a missing one is a malformed file (LIBSVM's
    # own reader would go on with whatever its memory held).
    gamma = float(header.numbers("gamma", float, 1, default=None if kernel in ("poly", "rbf", "sigmoid") else [1.0])[0])
    degree = int(header.numbers("degree", int, 1, default=None if kernel == "poly" else [3])[0])
    coef0 = float(header.numbers("coef0", float, 1, default=None if kernel in ("poly", "sigmoid") else [0.0])[0])
    return _ModelFile(path, kind, kernel, gamma, degree, coef0, rho, labels, n_sv,
                      probA if classifier else np.empty(0), probB if classifier else np.empty(0), coef, rows)


def _support_vector_lines(path: Path, text: list[str], first: int, n_coef: int,
                          precomputed: bool) -> tuple[np.ndarray, list[dict[int, float]]]:
    """The support vectors after ``SV``: ``n_coef`` finite coefficients then ``index:value`` pairs (indices from
    1, or ``0:serial number`` for a precomputed kernel), as ``(coef (n_coef, n_SV), rows)``."""
    rows: list[dict[int, float]] = []
    coefs = []
    for number, line in enumerate(text[first:], first + 1):
        parts = line.split()
        if not parts:
            continue
        try:
            if len(parts) < n_coef:
                raise ValueError
            coefs.append([float(c) for c in parts[:n_coef]])
            row = {}
            for pair in parts[n_coef:]:
                index, value = pair.split(":")
                row[int(index)] = float(value)
            if not (np.all(np.isfinite(coefs[-1])) and np.all(np.isfinite(list(row.values())))):
                raise ValueError
            lowest = 0 if precomputed else 1
            if any(not lowest <= j <= _MAX_INDEX for j in row):
                raise ValueError
        except ValueError as err:
            raise ValueError(f"{path}, line {number}: expected {n_coef} finite coefficient(s) then index:value pairs "
                             f"(finite values, indices from {0 if precomputed else 1} to {_MAX_INDEX}), "
                             f"got {line[:80]!r}") from err
        rows.append(row)
    return np.asarray(coefs, dtype=np.float64).reshape(len(rows), n_coef).T, rows


def _support_vectors(model: _ModelFile, n_features: int | None) -> tuple[scipy.sparse.csr_matrix, np.ndarray | None]:
    """The support vectors as LIBSVM keeps them (sparse rows: a text model's are mostly zeros), ``n_features``
    wide (default: the largest index used), and a precomputed model's serial numbers."""
    path, rows, serial = model.path, model.rows, None
    if model.kernel == "precomputed":
        bad = [r for r in rows if list(r) != [0] or not 1 <= r[0] <= _MAX_INDEX or r[0] != int(r[0])]
        if bad:
            raise ValueError(f"{path}: expected each support vector of a precomputed-kernel model as 0:serial number, "
                             f"got {bad[0]}")
        serial = np.asarray([int(r[0]) for r in rows], dtype=np.int64)
        rows = [{} for _ in rows]  # no features: the kernel values come with the data
        used = int(serial.max(initial=0))
    elif any(min(r) < 1 for r in rows if r):
        raise ValueError(f"{path}: expected feature indices from 1, as LIBSVM writes them, got index "
                         f"{min(min(r) for r in rows if r)}")
    else:
        used = max((max(r) for r in rows if r), default=0)
    if n_features is not None and n_features < used:
        raise ValueError(f"{path}: its support vectors use feature {used}, more than n_features={n_features}")
    width = used if n_features is None else n_features
    sv = scipy.sparse.csr_matrix((np.asarray([v for r in rows for v in r.values()], dtype=np.float64),
                                  np.asarray([j - 1 for r in rows for j in r], dtype=np.int64),
                                  np.concatenate([[0], np.cumsum([len(r) for r in rows])])), shape=(len(rows), width))
    return sv, serial


def _solution(model: _ModelFile, n_features: int | None) -> Solution:
    """The model in the estimators' layout (classes sorted, a two-class model positive for ``classes_[1]``)."""
    sv, serial = _support_vectors(model, n_features)
    n_sv_total, width = sv.shape
    rho, gamma = model.rho, model.gamma
    support = np.arange(n_sv_total) if serial is None else serial - 1
    shape_fit = (width, width) if serial is not None else None  # precomputed: Gram matrices (n, width) come in
    if model.labels is None or model.n_sv is None:  # a regressor or one-class model
        return Solution(sv, model.coef, -rho, support, width, gamma, shape_fit)
    labels, n_sv = model.labels, model.n_sv
    n_class = len(labels)
    order = np.argsort(labels, kind="stable")  # ours are sorted: reorder classes, their SVs, the pairs
    rank = np.empty(n_class, dtype=int)
    rank[order] = np.arange(n_class)
    pairs = [(i, j) for i in range(n_class) for j in range(i + 1, n_class)]
    P = pair_coefficients(model.coef, n_sv)  # (P, n_SV) in LIBSVM's label order
    coef, b = np.zeros((len(pairs), n_sv_total)), np.zeros(len(pairs))
    probA, probB = model.probA, model.probB
    probA_new, probB_new = probA.copy(), probB.copy()
    for p, (i, j) in enumerate(pairs):
        a, c = rank[i], rank[j]
        q = pairs.index((min(a, c), max(a, c)))
        sign = 1.0 if a < c else -1.0  # the pair's first class flips when the order does
        coef[q], b[q] = sign * P[p], sign * -rho[p]
        if probA.size:  # P(first | f) = 1 / (1 + exp(A f + B)): a flipped pair keeps A and negates B
            probA_new[q], probB_new[q] = probA[p], sign * probB[p]
    starts = np.concatenate([[0], np.cumsum(n_sv)])
    sv_order = np.concatenate([np.arange(starts[k], starts[k + 1]) for k in order])
    if n_class == 2:  # ours: positive for classes_[1]
        coef, b = -coef, -b
    return Solution(sv[sv_order], coef[:, sv_order], b, support[sv_order], width, gamma, shape_fit,
                    labels[order], n_sv[order], probA_new, probB_new)
