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

from torchsvm.svm.problems import BaseLibSVM, Solution, pair_coefficients

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
    except ValueError as err:
        raise ValueError(f"{path}: {_first_malformed(path) or err}") from err
    if not np.all(np.isfinite(X.data)):
        raise ValueError(f"{path}: expected finite values, got NaN or infinity")
    return X, y


def _first_malformed(path: Path) -> str | None:
    with path.open() as f:
        for number, line in enumerate(f, 1):
            if line.strip() and not _LINE.match(line.rstrip("\n")):
                return f"line {number}: expected 'label index:value index:value ...', got {line.rstrip()[:80]!r}"
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
    coef = np.asarray(est.dual_coef_, dtype=np.float64)
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
    from torchsvm.svm import SVC, SVR, NuSVC, NuSVR, OneClassSVM

    model = _read_model(Path(path))
    kind, kernel, header = model.kind, model.kernel, model.header
    params = dict(kernel=kernel, degree=int(header.get("degree", ["3"])[0]),
                  coef0=float(header.get("coef0", ["0"])[0]), device=device)
    solution = _solution(model, n_features)
    params["gamma"] = solution.gamma
    classes: dict[str, type[BaseLibSVM]] = {"SVC": SVC, "NuSVC": NuSVC, "SVR": SVR, "NuSVR": NuSVR,
                                             "OneClassSVM": OneClassSVM}
    return classes[kind].from_solution(solution, **params)


class _ModelFile(NamedTuple):
    """A LIBSVM model file as read: its header, and per support vector its coefficients and features."""

    path: Path
    kind: str  # the estimator's name
    kernel: str
    header: dict[str, list[str]]
    coef: np.ndarray  # (n_coef, n_SV): LIBSVM's sv_coef
    rows: list[dict[int, float]]  # each support vector's index: value pairs


def _read_model(path: Path) -> _ModelFile:
    """Parse ``path``: header lines up to ``SV``, then one support vector per line."""
    if not path.is_file():
        raise FileNotFoundError(f"Expected a LIBSVM model file, got {str(path)!r}: no such file")
    text = path.read_text().splitlines()
    header: dict[str, list[str]] = {}
    for number, line in enumerate(text, 1):
        if line.strip() == "SV":
            body = text[number:]
            break
        key, *values = line.split()
        header[key] = values
    else:
        raise ValueError(f"{path}: expected LIBSVM's model format (a header, then 'SV'), found no 'SV' line")
    kinds = {v: k for k, v in _SVM_TYPES.items()}
    kind = kinds.get((header.get("svm_type") or ["?"])[0])
    kernel = {v: k for k, v in _KERNELS.items()}.get((header.get("kernel_type") or ["?"])[0])
    if kind is None or kernel is None:
        raise ValueError(f"{path}: expected svm_type one of {sorted(kinds)} and kernel_type one of "
                         f"{sorted(_KERNELS.values())}, got {header.get('svm_type')} / {header.get('kernel_type')}")
    n_coef = int(header["nr_class"][0]) - 1 if kind in ("SVC", "NuSVC") else 1
    rows: list[dict[int, float]] = []
    coefs = []
    for number, line in enumerate(body, len(text) - len(body) + 1):
        parts = line.split()
        if not parts:
            continue
        try:
            coefs.append([float(c) for c in parts[:n_coef]])
            rows.append({int(k): float(v) for k, v in (p.split(":") for p in parts[n_coef:])})
        except ValueError as err:
            raise ValueError(f"{path}, line {number}: expected {n_coef} coefficient(s) then index:value pairs, "
                             f"got {line[:80]!r}") from err
    coef = np.asarray(coefs, dtype=np.float64).T.reshape(n_coef, len(rows))
    return _ModelFile(path, kind, kernel, header, coef, rows)


def _support_vectors(model: _ModelFile, n_features: int | None) -> tuple[scipy.sparse.csr_matrix, np.ndarray | None]:
    """The support vectors as LIBSVM keeps them (sparse rows: a text model's are mostly zeros), ``n_features``
    wide (default: the largest index used), and a precomputed model's serial numbers."""
    path, rows, serial = model.path, model.rows, None
    if model.kernel == "precomputed":
        bad = [r for r in rows if list(r) != [0] or r[0] < 1 or r[0] != int(r[0])]
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
    header = model.header
    sv, serial = _support_vectors(model, n_features)
    n_sv_total, width = sv.shape
    rho = np.asarray([float(r) for r in header["rho"]])
    gamma = float(header["gamma"][0]) if "gamma" in header else 1.0
    support = np.arange(n_sv_total) if serial is None else serial - 1
    shape_fit = (width, width) if serial is not None else None  # precomputed: Gram matrices (n, width) come in
    if model.kind not in ("SVC", "NuSVC"):
        return Solution(sv, model.coef, -rho, support, width, gamma, shape_fit)
    labels = np.asarray([int(v) for v in header["label"]])
    n_sv = np.asarray([int(v) for v in header["nr_sv"]])
    n_class = len(labels)
    order = np.argsort(labels, kind="stable")  # ours are sorted: reorder classes, their SVs, the pairs
    rank = np.empty(n_class, dtype=int)
    rank[order] = np.arange(n_class)
    pairs = [(i, j) for i in range(n_class) for j in range(i + 1, n_class)]
    P = pair_coefficients(model.coef, n_sv)  # (P, n_SV) in LIBSVM's label order
    coef, b = np.zeros((len(pairs), n_sv_total)), np.zeros(len(pairs))
    probA, probB = (np.asarray([float(v) for v in header.get(key, [])]) for key in ("probA", "probB"))
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
