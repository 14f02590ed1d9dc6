"""``torchsvm-train`` and ``torchsvm-predict``: LIBSVM's command line, on torchsvm's estimators.

    torchsvm-train [options] training_set_file [model_file]
    torchsvm-predict [options] test_file model_file output_file

The options, defaults, file formats and printed lines are LIBSVM's (``svm-train`` / ``svm-predict``),
so a script written for LIBSVM runs with the names changed, and the model files go both ways (a model
written here is read by LIBSVM's ``svm-predict``; a LIBSVM model by ``torchsvm-predict``). Beside
LIBSVM's options: ``--device`` (``auto``, ``cpu``, ``cuda``, ...).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["predict_main", "train_main"]

TRAIN_USAGE = """Usage: torchsvm-train [options] training_set_file [model_file]
options:
-s svm_type : set type of SVM (default 0)
	0 -- C-SVC		(multi-class classification)
	1 -- nu-SVC		(multi-class classification)
	2 -- one-class SVM
	3 -- epsilon-SVR	(regression)
	4 -- nu-SVR		(regression)
-t kernel_type : set type of kernel function (default 2)
	0 -- linear: u'*v
	1 -- polynomial: (gamma*u'*v + coef0)^degree
	2 -- radial basis function: exp(-gamma*|u-v|^2)
	3 -- sigmoid: tanh(gamma*u'*v + coef0)
	4 -- precomputed kernel (kernel values in training_set_file)
-d degree : set degree in kernel function (default 3)
-g gamma : set gamma in kernel function (default 1/num_features)
-r coef0 : set coef0 in kernel function (default 0)
-c cost : set the parameter C of C-SVC, epsilon-SVR, and nu-SVR (default 1)
-n nu : set the parameter nu of nu-SVC, one-class SVM, and nu-SVR (default 0.5)
-p epsilon : set the epsilon in loss function of epsilon-SVR (default 0.1)
-m cachesize : set cache memory size in MB (default: torchsvm's memory plan)
-e epsilon : set tolerance of termination criterion (default 0.001)
-h shrinking : whether to use the shrinking heuristics, 0 or 1 (default 1; no effect here)
-b probability_estimates : whether to train a SVC or SVR model for probability estimates, 0 or 1 (default 0)
-wi weight : set the parameter C of class i to weight*C, for C-SVC (default 1)
-v n : n-fold cross validation mode
-q : quiet mode (no outputs)
--device device : auto (default), cpu, cuda, cuda:1, ..."""

PREDICT_USAGE = """Usage: torchsvm-predict [options] test_file model_file output_file
options:
-b probability_estimates : whether to predict probability estimates, 0 or 1 (default 0)
-q : quiet mode (no outputs)
--device device : auto (default), cpu, cuda, cuda:1, ..."""

_VALUE_OPTIONS = {"-s", "-t", "-d", "-g", "-r", "-c", "-n", "-p", "-m", "-e", "-h", "-b", "-v", "--device"}


class UsageError(ValueError):
    """A command line LIBSVM would refuse: printed with the usage, exit status 1."""


def _parse(argv: list[str], n_files: tuple[int, int]) -> tuple[dict[str, str], dict[str, float], list[str]]:
    """``(options, class weights, files)`` from LIBSVM-style arguments."""
    options: dict[str, str] = {}
    weights: dict[str, float] = {}
    files: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-q",):
            options["-q"] = "1"
        elif arg.startswith("-w") and len(arg) > 2:
            if i + 1 >= len(argv):
                raise UsageError(f"Expected a weight after {arg}")
            weights[arg[2:]] = _float(arg, argv[i + 1])
            i += 1
        elif arg in _VALUE_OPTIONS:
            if i + 1 >= len(argv):
                raise UsageError(f"Expected a value after {arg}")
            options[arg] = argv[i + 1]
            i += 1
        elif arg.startswith("-") and arg != "-":
            raise UsageError(f"Unknown option: {arg}")
        else:
            files.append(arg)
        i += 1
    if not n_files[0] <= len(files) <= n_files[1]:
        raise UsageError(f"Expected {n_files[0]}{'-' + str(n_files[1]) if n_files[1] != n_files[0] else ''} file "
                         f"name(s), got {len(files)}: {files}")
    return options, weights, files


def _float(option: str, value: str) -> float:
    try:
        return float(value)
    except ValueError as err:
        raise UsageError(f"Expected a number after {option}, got {value!r}") from err


def _int(options: dict[str, str], key: str, default: int) -> int:
    value = _float(key, options.get(key, str(default)))
    if value != int(value):
        raise UsageError(f"Expected an integer after {key}, got {options[key]!r}")
    return int(value)


def _estimator(options: dict[str, str], weights: dict[str, float], y: np.ndarray) -> Any:
    """The estimator LIBSVM's options describe (LIBSVM's defaults: gamma 1/num_features, coef0 0)."""
    from torchsvm.svm import SVC, SVR, NuSVC, NuSVR, OneClassSVM

    svm_type, kernel_type = _int(options, "-s", 0), _int(options, "-t", 2)
    if svm_type not in range(5):
        raise UsageError(f"Expected -s svm_type 0-4, got {svm_type}")
    if kernel_type not in range(5):
        raise UsageError(f"Expected -t kernel_type 0-4, got {kernel_type}")
    kernel = ("linear", "poly", "rbf", "sigmoid", "precomputed")[kernel_type]
    common: dict[str, Any] = dict(
        kernel=kernel, degree=_int(options, "-d", 3), gamma=_float("-g", options["-g"]) if "-g" in options else "auto",
        coef0=_float("-r", options.get("-r", "0")), tol=_float("-e", options.get("-e", "0.001")),
        shrinking=bool(_int(options, "-h", 1)), device=options.get("--device", "auto"))
    if "-m" in options:
        common["cache_size"] = _float("-m", options["-m"])
    C, nu, eps = (_float(k, options.get(k, d)) for k, d in (("-c", "1"), ("-n", "0.5"), ("-p", "0.1")))
    probability = bool(_int(options, "-b", 0))
    if svm_type in (0, 1):
        labels = {str(_label(v)): v for v in np.unique(y)}
        unknown = sorted(set(weights) - set(labels))
        if unknown:
            raise UsageError(f"Expected -w<label> for labels of the training set {sorted(labels)}, got {unknown}")
        class_weight = {labels[k]: w for k, w in weights.items()} or None
        extra: dict[str, Any] = dict(probability=True, random_state=0) if probability else {}
        if svm_type == 0:
            return SVC(C=C, class_weight=class_weight, **extra, **common)
        return NuSVC(nu=nu, class_weight=class_weight, **extra, **common)
    if probability:
        raise UsageError("-b 1 is supported for C-SVC and nu-SVC (-s 0, 1) only")
    if svm_type == 2:
        return OneClassSVM(nu=nu, **common)
    if svm_type == 3:
        return SVR(C=C, epsilon=eps, **common)
    return NuSVR(C=C, nu=nu, **common)


def _label(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _say(options: dict[str, str], text: str) -> None:
    if "-q" not in options:
        print(text, flush=True)


def _run(name: str, usage: str, command: Any, argv: list[str] | None) -> int:
    """Run ``command(argv)``; a usage error prints the usage, a data or model error its message: exit status 1."""
    try:
        return command(sys.argv[1:] if argv is None else argv)
    except UsageError as err:
        print(f"{err}\n{usage}", file=sys.stderr)
    except (ValueError, FileNotFoundError) as err:
        print(f"{name}: {err}", file=sys.stderr)
    return 1


def train_main(argv: list[str] | None = None) -> int:
    """``torchsvm-train``; returns the exit status (LIBSVM's: 0, or 1 with a message)."""
    return _run("torchsvm-train", TRAIN_USAGE, _train, argv)


def _train(argv: list[str]) -> int:
    from torchsvm.libsvm_format import load_data, save_model

    options, weights, files = _parse(argv, (1, 2))
    X, y = load_data(files[0])
    est = _estimator(options, weights, y)
    serial = None
    if est.kernel == "precomputed":
        X, serial = _training_gram(X, files[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # scikit-learn 1.9's deprecation of probability
        if "-v" in options:
            return _cross_validate(est, X, y, _int(options, "-v", 0), options)
        est.fit(X, None if type(est).__name__ == "OneClassSVM" else y)
    save_model(est, files[1] if len(files) > 1 else Path(files[0]).name + ".model", serial_numbers=serial)
    _say(options, f"optimization finished, #iter = {int(np.max(est.n_iter_))}")
    _say(options, f"Total nSV = {len(est.support_)}")
    return 0


def _training_gram(X: Any, path: str) -> tuple[np.ndarray, np.ndarray]:
    """LIBSVM's precomputed-kernel file (``-t 4``): row i is ``label 0:ID_i 1:K(x_i, x_1) ... L:K(x_i, x_L)``;
    the Gram matrix of the training rows is ``K[i, j] = X[i, ID_j]``. Returns it (dense, n x n) and the IDs."""
    serial = X[:, 0].toarray().ravel()
    width = X.shape[1] - 1
    bad = np.flatnonzero((serial < 1) | (serial > width) | (serial != np.round(serial)))
    if len(bad):
        raise ValueError(f"{path}: line {bad[0] + 1}: expected 0:serial number in 1..{width} (a precomputed-kernel "
                         f"file, -t 4), got 0:{serial[bad[0]]:g}")
    serial = serial.astype(np.int64)
    return X[:, serial].toarray(), serial


def _cross_validate(est: Any, X: np.ndarray, y: np.ndarray, folds: int, options: dict[str, str]) -> int:
    """LIBSVM's -v: stratified folds for classification, the pooled held-out predictions scored."""
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict

    if folds < 2:
        raise UsageError(f"Expected -v n with n >= 2, got {folds}")
    classifier = type(est).__name__ in ("SVC", "NuSVC", "OneClassSVM")
    splitter = (StratifiedKFold if type(est).__name__ in ("SVC", "NuSVC") else KFold)(folds, shuffle=True,
                                                                                        random_state=0)
    pred = np.asarray(cross_val_predict(est, X, y, cv=splitter))
    if classifier:
        print(f"Cross Validation Accuracy = {100 * float(np.mean(pred == y)):g}%", flush=True)
    else:
        mse, r2 = _regression_scores(y, pred)
        print(f"Cross Validation Mean squared error = {mse:g}", flush=True)
        print(f"Cross Validation Squared correlation coefficient = {r2:g}", flush=True)
    return 0


def _regression_scores(y: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """LIBSVM's mean squared error and squared correlation coefficient."""
    mse = float(np.mean((pred - y) ** 2))
    n = len(y)
    sv, sy, svv, syy, svy = pred.sum(), y.sum(), (pred * pred).sum(), (y * y).sum(), (pred * y).sum()
    denominator = (n * svv - sv * sv) * (n * syy - sy * sy)
    r2 = float((n * svy - sv * sy) ** 2 / denominator) if denominator > 0 else float("nan")
    return mse, r2


def predict_main(argv: list[str] | None = None) -> int:
    """``torchsvm-predict``; returns the exit status."""
    return _run("torchsvm-predict", PREDICT_USAGE, _predict, argv)


def _predict(argv: list[str]) -> int:
    from torchsvm.libsvm_format import load_data, load_model

    options, weights, files = _parse(argv, (3, 3))
    if weights:
        raise UsageError("Unknown option: -w (a training option)")
    test_file, model_file, output_file = files
    X, y = load_data(test_file)
    device = options.get("--device", "auto")
    est = load_model(model_file, device=device)
    if est.kernel == "precomputed":  # 0:ID, then the kernel values against training serial numbers 1, 2, ...
        width = max(X.shape[1] - 1, est.n_features_in_)
        est = load_model(model_file, device=device, n_features=width)
        X = X[:, 1:].toarray()
        X = np.pad(X, ((0, 0), (0, width - X.shape[1])))
    elif X.shape[1] < est.n_features_in_:  # features past the test file's last index are zeros
        X.resize((X.shape[0], est.n_features_in_))
    elif X.shape[1] > est.n_features_in_:  # ... and past the model's, weights of zero
        est = load_model(model_file, device=device, n_features=X.shape[1])
    kind = type(est).__name__
    lines = []
    pred = est.predict(X)
    if bool(_int(options, "-b", 0)):
        probA = est.to_solution().probA  # Platt's sigmoids: a classifier fitted with probability estimates
        if probA is None or not probA.size:
            raise UsageError("Model doesn't support probability estimates (train it with -b 1)")
        lines.append("labels " + " ".join(_label(c) for c in est.classes_))
        lines += [f"{_label(p)} " + " ".join(f"{q:g}" for q in row)
                  for p, row in zip(pred, est.predict_proba(X), strict=True)]
    else:
        lines += [_label(p) if kind in ("SVC", "NuSVC", "OneClassSVM") else repr(float(p)) for p in pred]
    Path(output_file).write_text("\n".join(lines) + "\n")
    if kind in ("SVR", "NuSVR"):
        mse, r2 = _regression_scores(y, np.asarray(pred, dtype=np.float64))
        _say(options, f"Mean squared error = {mse:g} (regression)")
        _say(options, f"Squared correlation coefficient = {r2:g} (regression)")
    else:
        correct = int(np.sum(np.asarray(pred, dtype=np.float64) == y))
        _say(options, f"Accuracy = {100 * correct / len(y):g}% ({correct}/{len(y)}) (classification)")
    return 0


def train_entry() -> None:  # console script
    sys.exit(train_main())


def predict_entry() -> None:  # console script
    sys.exit(predict_main())
