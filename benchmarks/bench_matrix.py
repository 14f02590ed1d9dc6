#!/usr/bin/env python
"""The benchmark matrix: every estimator, sizes from 50 rows up, typical settings, against scikit-learn.

    python benchmarks/bench_matrix.py --quick             # under 90 s: compares with the baseline, saves nothing
    python benchmarks/bench_matrix.py                     # the full matrix, recorded in benchmarks/results/
    python benchmarks/bench_matrix.py --save-baseline     # the full matrix, also written as the new baseline
    python benchmarks/bench_matrix.py --load 1            # the same beside 1 (or more) CPU-bound processes

Each case fits torchsvm's estimator and scikit-learn's on the same data, interleaved (one fit of each per
round, after one untimed fit of each), for a number of rounds that fills the case's time budget (at least
three; one where a fit takes over 5 s); the figure
is the ratio of the medians, torchsvm / scikit-learn (below 1: torchsvm faster). Both models' test scores
are printed beside it (the same models, not only the same speed). Prediction cases time ``predict`` on a few
rows and on a block of rows of fitted models; ``search`` cases time scikit-learn's ``GridSearchCV`` wrapping
each library's estimator.

The baseline (``benchmarks/matrix_baseline.json``) holds the ratio of every case; ``--quick`` runs the small
cases and prints each ratio more than 25% worse than its baseline (exit status 1 if any). Run it alone on
the machine before a commit that touches a solver or an estimator. ``--load N`` starts N busy processes (one
core each, normal priority) for the run: a fit on a shared machine. Records go to
benchmarks/results/matrix-<device>-<date>[-<tag>].{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse
import sklearn
import sklearn.svm as sk
from _record import add_record_arguments, device_name, save_record
from sklearn import datasets
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.preprocessing import StandardScaler

import torchsvm

BASELINE = Path(__file__).resolve().parent / "matrix_baseline.json"
WORSE = 1.25  # --quick flags a ratio this much above its baseline
LONG = 5.0  # seconds: a case whose untimed run takes longer is timed over one round


@dataclass
class Case:
    """One cell: ``name`` identifies it in the baseline; ``data()`` gives (X_train, y_train, X_test, y_test)."""

    name: str
    estimator: str
    params: dict
    data: Callable[[], tuple]
    quick: bool = False
    kind: str = "fit"  # "fit", "predict" (rows in params["rows"]) or "search"
    budget: float = 2.0  # seconds of timed runs per library


# -- data: generated with fixed seeds, or scikit-learn's bundled sets ------------------------------------------
def _split(X: Any, y: Any, seed: int = 0) -> tuple:
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=seed)
    return X_train, y_train, X_test, y_test


def classification(n: int, classes: int = 2, features: int = 20) -> Callable[[], tuple]:
    def make() -> tuple:
        X, y = datasets.make_classification(int(n / 0.75), features, n_informative=min(features - 2, max(10, classes)),
                                            n_classes=classes, n_clusters_per_class=1, random_state=0)
        return _split(StandardScaler().fit_transform(X), y)
    return make


def regression(n: int) -> Callable[[], tuple]:
    def make() -> tuple:
        X, y = datasets.make_friedman1(int(n / 0.75), noise=1.0, random_state=0)
        return _split(X, y)
    return make


def outliers(n: int) -> Callable[[], tuple]:
    def make() -> tuple:
        X, _ = datasets.make_blobs(int(n / 0.75), 10, centers=1, random_state=0)
        X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)
        return X_train, None, X_test, None
    return make


def sparse_text(n: int, classes: int = 2) -> Callable[[], tuple]:
    """A random sparse set: ``n`` rows of 5,000 features, 1% nonzeros, labels from a sparse linear rule."""
    def make() -> tuple:
        rng = np.random.default_rng(0)
        X = scipy.sparse.random(int(n / 0.75), 5000, density=0.01, format="csr", random_state=0)
        scores = X @ rng.standard_normal((5000, classes))
        y = scores.argmax(1) if classes > 2 else (scores[:, 0] > np.median(scores[:, 0])).astype(int)
        return _split(X, y)
    return make


def bundled(name: str, scale: bool = False) -> Callable[[], tuple]:
    def make() -> tuple:
        X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
        return _split(StandardScaler().fit_transform(X) if scale else X, y)
    return make


def cases() -> list[Case]:
    out: list[Case] = []
    add = out.append
    # Scikit-learn's bundled sets, as its users' examples fit them.
    add(Case("SVC iris", "SVC", {}, bundled("iris"), quick=True))
    add(Case("SVC iris C=1e4 gamma=1", "SVC", {"C": 1e4, "gamma": 1.0}, bundled("iris"), quick=True))
    add(Case("SVC digits", "SVC", {}, bundled("digits"), quick=True))
    add(Case("SVC breast_cancer scaled", "SVC", {}, bundled("breast_cancer", True), quick=True))
    add(Case("SVC wine scaled linear", "SVC", {"kernel": "linear"}, bundled("wine", True), quick=True))
    add(Case("SVR diabetes", "SVR", {}, bundled("diabetes"), quick=True))
    add(Case("LinearSVC iris scaled", "LinearSVC", {}, bundled("iris", True), quick=True))
    add(Case("LinearSVC breast_cancer scaled", "LinearSVC", {}, bundled("breast_cancer", True), quick=True))
    add(Case("LinearSVC digits hinge", "LinearSVC", {"loss": "hinge"}, bundled("digits"), quick=True))
    # Generated sets across sizes.
    for n in (50, 200, 1000, 5000, 20000):
        q = n <= 1000
        add(Case(f"SVC rbf 2 classes n={n}", "SVC", {}, classification(n), quick=q))
        add(Case(f"SVR rbf n={n}", "SVR", {}, regression(n), quick=q))
        add(Case(f"NuSVC rbf 2 classes n={n}", "NuSVC", {"nu": 0.3}, classification(n), quick=n <= 200))
        add(Case(f"NuSVR rbf n={n}", "NuSVR", {}, regression(n), quick=n <= 200))
        add(Case(f"OneClassSVM rbf n={n}", "OneClassSVM", {"nu": 0.1}, outliers(n), quick=n <= 200))
    for n in (200, 1000, 5000, 20000):
        add(Case(f"SVC rbf 10 classes n={n}", "SVC", {}, classification(n, 10), quick=n <= 1000))
        add(Case(f"SVC rbf C=100 10 classes n={n}", "SVC", {"C": 100.0}, classification(n, 10), quick=n == 200))
        add(Case(f"SVC poly 2 classes n={n}", "SVC", {"kernel": "poly"}, classification(n), quick=n == 200))
        if n <= 5000:  # LIBSVM takes minutes beyond (bench_sparse.py has the large sparse sets)
            add(Case(f"SVC rbf sparse n={n}", "SVC", {}, sparse_text(n), quick=n == 200))
    for n in (2000, 10000):
        add(Case(f"SVC rbf 100 classes n={n}", "SVC", {}, classification(n, 100, 40), quick=False))
    for n in (50, 1000, 20000, 100000):
        q = n <= 1000
        for loss in ("squared_hinge", "hinge"):
            for C in (0.01, 1.0, 100.0):
                add(Case(f"LinearSVC {loss} C={C:g} n={n}", "LinearSVC", {"loss": loss, "C": C}, classification(n),
                         quick=q and C == 1.0))
        add(Case(f"LinearSVC l1 n={n}", "LinearSVC", {"penalty": "l1", "dual": False}, classification(n), quick=n == 50))
        add(Case(f"LinearSVC crammer_singer 10 classes n={n}", "LinearSVC", {"multi_class": "crammer_singer"},
                 classification(n, 10), quick=n == 50))
        add(Case(f"LinearSVC no intercept 10 classes n={n}", "LinearSVC", {"fit_intercept": False},
                 classification(n, 10), quick=n == 50))
        add(Case(f"LinearSVR n={n}", "LinearSVR", {}, regression(n), quick=q))
        add(Case(f"LinearSVR squared n={n}", "LinearSVR", {"loss": "squared_epsilon_insensitive"}, regression(n),
                 quick=n == 50))
    for n in (1000, 20000):
        add(Case(f"LinearSVC sparse n={n}", "LinearSVC", {}, sparse_text(n), quick=n == 1000))
        add(Case(f"LinearSVC sparse 10 classes n={n}", "LinearSVC", {}, sparse_text(n, 10), quick=False))
    # Prediction of fitted models.
    for rows in (1, 1000):
        add(Case(f"SVC digits predict {rows} rows", "SVC", {"rows": rows}, bundled("digits"), quick=True, kind="predict"))
        add(Case(f"LinearSVC digits predict {rows} rows", "LinearSVC", {"rows": rows}, bundled("digits"), quick=True,
                 kind="predict"))
    # Many fits: scikit-learn's search wrapping each library's estimator (its RBF-parameters example, smaller grid).
    add(Case("GridSearchCV SVC iris 5x5 grid 5 splits", "SVC",
             {"grid": {"C": np.logspace(-2, 10, 5).tolist(), "gamma": np.logspace(-9, 3, 5).tolist()}},
             bundled("iris", True), quick=True, kind="search", budget=3.0))
    add(Case("GridSearchCV SVC iris 13x13 grid 5 splits", "SVC",
             {"grid": {"C": np.logspace(-2, 10, 13).tolist(), "gamma": np.logspace(-9, 3, 13).tolist()}},
             bundled("iris", True), kind="search", budget=10.0))
    return out


# -- timing ---------------------------------------------------------------------------------------------------
def _make(library: str, case: Case) -> Any:
    params = {k: v for k, v in case.params.items() if k not in ("rows", "grid")}
    cls = getattr(torchsvm if library == "torchsvm" else sk, case.estimator)
    return cls(**params)


def _job(library: str, case: Case, data: tuple) -> Callable[[], Any]:
    X, y, X_test, _ = data
    if case.kind == "fit":
        return lambda: _make(library, case).fit(X, y)
    if case.kind == "search":
        return lambda: GridSearchCV(_make(library, case), case.params["grid"], cv=5).fit(X, y)
    model = _make(library, case).fit(X, y)
    rows = np.resize(X_test, (case.params["rows"], X_test.shape[1]))
    return lambda: model.predict(rows)


def _score(model: Any, data: tuple) -> float:
    _, _, X_test, y_test = data
    if hasattr(model, "best_score_"):
        return float(model.best_score_)
    if y_test is None:  # one-class: the inlier fraction
        return float(np.mean(model.predict(X_test) == 1))
    return float(model.score(X_test, y_test))


def measure(case: Case, budget_scale: float) -> dict:
    data = case.data()
    jobs = {lib: _job(lib, case, data) for lib in ("torchsvm", "sklearn")}
    times: dict[str, list[float]] = {lib: [] for lib in jobs}
    scores = {}
    first = {}
    for lib, job in jobs.items():  # one untimed run each: first-call costs are bench_cold_start's subject
        t0 = time.perf_counter()
        out = job()
        first[lib] = time.perf_counter() - t0
        scores[lib] = None if case.kind == "predict" else _score(out, data)
    budget = case.budget * budget_scale
    # At least three rounds, one where a run takes over LONG seconds (minutes of fits at 20,000 rows).
    least = 1 if max(first.values()) > LONG else 3
    start = time.perf_counter()
    while True:
        for lib, job in jobs.items():
            t0 = time.perf_counter()
            job()
            times[lib].append(time.perf_counter() - t0)
        rounds = len(times["torchsvm"])
        if rounds >= least and (time.perf_counter() - start > budget or rounds >= 200):
            break
    med = {lib: float(np.median(t)) for lib, t in times.items()}
    return {"case": case.name, "kind": case.kind, "estimator": case.estimator, "rounds": rounds,
            "torchsvm_s": med["torchsvm"], "sklearn_s": med["sklearn"], "ratio": med["torchsvm"] / med["sklearn"],
            "torchsvm_score": scores["torchsvm"], "sklearn_score": scores["sklearn"]}


def busy_loop() -> None:
    """A CPU-bound process's work (--load here, bench_busy.py's loads)."""
    while True:
        pass


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="the small cases only, compared with the baseline; no record")
    p.add_argument("--cases", nargs="*", default=None, help="only the cases whose name contains one of these")
    p.add_argument("--max-rows", type=int, default=None, help="skip generated cases with more training rows")
    p.add_argument("--budget-scale", type=float, default=1.0, help="scales each case's time budget")
    p.add_argument("--load", type=int, default=0, help="CPU-bound processes running beside the matrix")
    p.add_argument("--save-baseline", action="store_true",
                   help="write the measured ratios into the baseline (cases not run keep theirs)")
    add_record_arguments(p)
    args = p.parse_args(argv)
    chosen = [c for c in cases() if (c.quick or not args.quick)
              and (args.cases is None or any(s in c.name for s in args.cases))
              and (args.max_rows is None or case_rows(c.name) <= args.max_rows)]
    baseline = json.loads(BASELINE.read_text())["ratios"] if BASELINE.exists() else {}
    busy = [multiprocessing.Process(target=busy_loop, daemon=True) for _ in range(args.load)]
    for proc in busy:
        proc.start()
    rows, worse = [], []
    budget_scale = args.budget_scale * (0.35 if args.quick else 1.0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # both libraries stop at max_iter at extreme C alike
            for case in chosen:
                row = measure(case, budget_scale)
                base = baseline.get(case.name)
                row["baseline_ratio"] = base
                flag = base is not None and row["ratio"] > WORSE * base and args.load == 0
                if flag:
                    worse.append(row)
                rows.append(row)
                print(f"{case.name:48s} torchsvm {row['torchsvm_s'] * 1e3:10.2f} ms  scikit-learn "
                      f"{row['sklearn_s'] * 1e3:10.2f} ms  ratio {row['ratio']:6.2f}"
                      + (f" (baseline {base:.2f}){' WORSE' if flag else ''}" if base is not None else "")
                      + _scores(row), flush=True)
    finally:
        for proc in busy:
            proc.terminate()
    if worse:
        print(f"\n{len(worse)} case(s) more than {int(round((WORSE - 1) * 100))}% worse than the baseline:")
        for row in worse:
            print(f"  {row['case']}: {row['ratio']:.2f} against {row['baseline_ratio']:.2f}")
    elif baseline:
        print(f"\nno case more than {int(round((WORSE - 1) * 100))}% worse than the baseline")
    if args.save_baseline:  # the measured cases' ratios replace theirs; the others are kept
        ratios = {**baseline, **{r["case"]: round(r["ratio"], 4) for r in rows}}
        BASELINE.write_text(json.dumps({"date": dt.date.today().isoformat(), "device": device_name("cpu"),
                                        "ratios": ratios}, indent=1) + "\n")
        print(f"wrote {BASELINE}")
    if not args.quick and not args.no_save:
        _save(rows, args)
    return 1 if worse else 0


def case_rows(name: str) -> int:
    """The training rows a generated case names (``n=...``); 0 for the bundled sets."""
    for part in name.split():
        if part.startswith("n="):
            return int(part[2:])
    return 0


def _scores(row: dict) -> str:
    if row["torchsvm_score"] is None:
        return ""
    return f"  scores {row['torchsvm_score']:.4f} / {row['sklearn_score']:.4f}"


def _save(rows: list[dict], args: argparse.Namespace) -> None:
    device = device_name("cpu")
    date = dt.date.today().isoformat()
    record = {"benchmark": "bench_matrix", "date": date, "device": device, "load": args.load,
              "sklearn": sklearn.__version__, "python": sys.version.split()[0], "cases": rows}
    lines = [f"# bench_matrix: {device}, {date}" + (f", beside {args.load} CPU-bound process(es)" if args.load else ""),
             "", "Medians of interleaved fits (after one untimed fit of each); ratio = torchsvm / scikit-learn "
             f"{sklearn.__version__}; scores on a held-out quarter (search: best mean CV score).", "",
             "| case | rounds | torchsvm (ms) | scikit-learn (ms) | ratio | scores |", "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        scores = "" if r["torchsvm_score"] is None else f"{r['torchsvm_score']:.4f} / {r['sklearn_score']:.4f}"
        lines.append(f"| {r['case']} | {r['rounds']} | {r['torchsvm_s'] * 1e3:.2f} | {r['sklearn_s'] * 1e3:.2f} | "
                     f"{r['ratio']:.2f} | {scores} |")
    ratios = np.array([r["ratio"] for r in rows])
    lines += ["", f"{len(rows)} cases; ratio <= 1 in {int((ratios <= 1).sum())}; worst {ratios.max():.2f} "
              f"({rows[int(ratios.argmax())]['case']})."]
    save_record(f"matrix-cpu-{date}" + (f"-load{args.load}" if args.load else ""), record, lines, args.tag)


if __name__ == "__main__":
    sys.exit(main())
