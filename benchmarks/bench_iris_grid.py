#!/usr/bin/env python
"""scikit-learn's RBF-parameters example, both ways: the same grid search with scikit-learn's SVC and torchsvm's.

    python benchmarks/bench_iris_grid.py [--kernel-dtype auto]

The example (scikit-learn's ``plot_rbf_parameters``): standardized iris, ``GridSearchCV`` over 13 values of
C (1e-2 to 1e10) by 13 of gamma (1e-9 to 1e3), ``StratifiedShuffleSplit(5, test_size=0.2, random_state=42)``.
Each library's search runs once in this process (scikit-learn first); the record has the wall times, the
ConvergenceWarnings each raised, and per cell the mean test score of both and their difference: the cells
more than 0.02 apart, overall and with gamma >= 1e-5. Results go to
benchmarks/results/iris-grid-cpu-<date>[-<tag>].{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, StratifiedShuffleSplit
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC as SklearnSVC

import torchsvm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import device_name, save_record  # noqa: E402


def search(estimator, X: np.ndarray, y: np.ndarray) -> dict:
    grid = {"gamma": np.logspace(-9, 3, 13), "C": np.logspace(-2, 10, 13)}
    cv = StratifiedShuffleSplit(n_splits=5, test_size=0.2, random_state=42)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        start = time.perf_counter()
        result = GridSearchCV(estimator, grid, cv=cv).fit(X, y)
        seconds = time.perf_counter() - start
    messages = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    return {"seconds": seconds, "warnings": messages, "params": [{k: float(v) for k, v in p.items()}
            for p in result.cv_results_["params"]], "scores": result.cv_results_["mean_test_score"].tolist()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kernel-dtype", default="auto", choices=["auto", "float64", "float32"])
    p.add_argument("--tag", default="")
    args = p.parse_args()
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    libsvm = search(SklearnSVC(), X, y)
    mine = search(torchsvm.SVC(device="cpu", kernel_dtype=args.kernel_dtype), X, y)
    gap = np.abs(np.array(libsvm["scores"]) - np.array(mine["scores"]))
    gamma = np.array([c["gamma"] for c in mine["params"]])
    cells = zip(mine["params"], libsvm["scores"], mine["scores"], gap, strict=True)
    off = [{**c, "libsvm": a, "torchsvm": b} for c, a, b, d in cells if d > 0.02]
    record = {"benchmark": "iris-grid", "date": dt.date.today().isoformat(), "device": device_name(torch.device("cpu")),
              "kernel_dtype": args.kernel_dtype, "scikit-learn": libsvm, "torchsvm": mine,
              "cells_off_0.02": len(off), "cells_off_0.02_gamma_ge_1e-5": int(((gap > 0.02) & (gamma >= 1e-5)).sum()),
              "max_gap": float(gap.max()), "max_gap_gamma_ge_1e-5": float(gap[gamma >= 1e-5].max()), "off": off}
    lines = [f"# scikit-learn's RBF-parameters grid on iris (169 cells x 5 splits), {record['device']}, {record['date']}",
             "", f"torchsvm's `kernel_dtype={args.kernel_dtype!r}`.", "",
             "| library | search (s) | ConvergenceWarnings |", "| --- | --- | --- |",
             f"| scikit-learn (LIBSVM) | {libsvm['seconds']:.2f} | {len(libsvm['warnings'])} |",
             f"| torchsvm | {mine['seconds']:.2f} | {len(mine['warnings'])} |", "",
             f"Cells whose mean test scores differ by more than 0.02: {len(off)} of 169 "
             f"({record['cells_off_0.02_gamma_ge_1e-5']} with gamma >= 1e-5); largest difference "
             f"{record['max_gap']:.3f} ({record['max_gap_gamma_ge_1e-5']:.3f} with gamma >= 1e-5)."]
    lines += [f"- gamma {c['gamma']:.0e}, C {c['C']:.0e}: LIBSVM {c['libsvm']:.3f}, torchsvm {c['torchsvm']:.3f}" for c in off]
    save_record(f"iris-grid-cpu-{record['date']}", record, lines, args.tag)


if __name__ == "__main__":
    main()
