#!/usr/bin/env python
"""The linear hinges' routes across C and sizes: what ``solver="auto"`` picks against each route and LIBLINEAR.

    python benchmarks/bench_linear_routes.py [--sizes 50 1000 20000] [--C 0.01 1 100] [--repeats 5] [--tag T]
    python benchmarks/bench_linear_routes.py --sparse --sizes 20000 --C 0.1 1 3 10 100 --tag sparse

For ``LinearSVC(loss="hinge")`` on the benchmark matrix's generated classification sets (20 standardized
features) and on scikit-learn's digits (unscaled, 10 classes), and for ``LinearSVR()`` (epsilon-insensitive) on
its regression sets, each C: scikit-learn's estimator (LIBLINEAR) and torchsvm's with ``solver="auto"``,
``"dcd"`` (coordinate descent alone, up to max_iter sweeps) and ``"newton"``, fits interleaved in a rotating order (one
untimed fit of each first), medians of ``--repeats``. The record has each route's time, iterations and test score, and the
route "auto" took (read from the verbose line). ``--sparse``: ``LinearSVC()`` (the squared hinge) on the matrix's
sparse sets (5,000 features, 1% nonzeros; binary and 10 classes) and a binary TF-IDF corpus instead, its routes
``"dcd"`` and ``"newton-cg"``. Results go to
benchmarks/results/linear-routes-cpu-<date>[-<tag>].{json,md}; the thresholds they back are listed in
docs/benchmarks.md ("The thresholds in the code").
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn import svm as sk

import torchsvm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import text_corpus  # noqa: E402
from _record import add_record_arguments, device_name, save_record  # noqa: E402
from bench_matrix import _split, bundled, classification, regression, sparse_text  # noqa: E402

ROUTES = ("auto", "dcd", "newton", "newton-cg")


def tfidf(n: int) -> Callable[[], tuple]:
    """``n`` training rows of a two-topic TF-IDF corpus (5,000 terms, unit-norm rows: C ||x||^2 = 2C with the bias)."""
    def make() -> tuple:
        X, topics = text_corpus(int(n / 0.75), 5000, n_topics=2)
        return _split(X, topics)
    return make


def route_taken(make) -> str:
    """The solver "auto" ran, from the estimator's verbose line ("[torchsvm LinearSVC] dcd, then newton: ...")."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        make(verbose=1)
    line = next((x for x in out.getvalue().splitlines() if x.startswith("[torchsvm")), "")
    return line.split("] ", 1)[-1].split(":", 1)[0]


def run_case(name: str, estimator: str, data, C: float, repeats: int, params: dict, routes: tuple[str, ...]) -> dict:
    X_train, y_train, X_test, y_test = data()
    ours = getattr(torchsvm, estimator)
    theirs = getattr(sk, estimator)
    fits = {"scikit-learn": lambda: theirs(C=C, random_state=0, **params)}
    for route in routes:
        fits[route] = lambda route=route: ours(C=C, solver=route, device="cpu", **params)
    times: dict[str, list[float]] = {lib: [] for lib in fits}
    models = {lib: make().fit(X_train, y_train) for lib, make in fits.items()}  # untimed: compiled loops, caches
    order = list(fits)
    for r in range(repeats):
        for lib in order[r % len(order):] + order[:r % len(order)]:  # rotated: no route always follows the same one
            make = fits[lib]
            start = time.perf_counter()
            models[lib] = make().fit(X_train, y_train)
            times[lib].append(time.perf_counter() - start)
    taken = route_taken(lambda verbose: ours(C=C, device="cpu", verbose=verbose, **params).fit(X_train, y_train))
    row = {"case": name, "estimator": estimator, "C": C, "rows": len(y_train), "auto_took": taken}
    for lib, model in models.items():
        row[lib] = {"fit_s": float(np.median(times[lib])), "n_iter": int(np.max(model.n_iter_)),
                    "score": float(model.score(X_test, y_test))}
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[50, 1000, 20000])
    p.add_argument("--C", type=float, nargs="+", default=[0.01, 1.0, 100.0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--sparse", action="store_true", help="the squared hinge on the sparse sets instead")
    p.add_argument("--cases", nargs="+", help="only the cases whose name contains one of these")
    add_record_arguments(p)
    args = p.parse_args()
    warnings.simplefilter("ignore")  # LIBLINEAR's and coordinate descent's ConvergenceWarnings: the iterations say it
    # On the sparse sets "auto" never takes the torch Newton method (25 s a fit at 10 classes, C = 10): left out.
    hinge, squared = ({"loss": "hinge"}, ("auto", "dcd", "newton")), ({}, ("auto", "dcd", "newton-cg"))
    cases = [] if args.sparse else [("LinearSVC hinge digits", "LinearSVC", bundled("digits"), 1.0, *hinge)]
    for n in args.sizes:
        for C in args.C:
            if args.sparse:
                cases.append((f"LinearSVC sparse n={n}", "LinearSVC", sparse_text(n), C, *squared))
                cases.append((f"LinearSVC sparse 10 classes n={n}", "LinearSVC", sparse_text(n, 10), C, *squared))
                cases.append((f"LinearSVC tfidf n={n}", "LinearSVC", tfidf(n), C, *squared))
            else:
                cases.append((f"LinearSVC hinge n={n}", "LinearSVC", classification(n), C, *hinge))
                cases.append((f"LinearSVR n={n}", "LinearSVR", regression(n), C, {}, ("auto", "dcd", "newton")))
    cases = [c for c in cases if not args.cases or any(part in c[0] for part in args.cases)]
    rows = []
    head = "| case | C | scikit-learn | auto | dcd | newton | newton-cg | auto took | test scores (sklearn / auto) |"
    lines = [head, "|" + "---|" * 9]
    for name, estimator, data, C, params, routes in cases:
        row = run_case(name, estimator, data, C, args.repeats, params, routes)
        rows.append(row)

        cells = " | ".join(f"{1e3 * row[lib]['fit_s']:.2f} ms ({row[lib]['n_iter']})" if lib in row else "-"
                           for lib in ("scikit-learn", *ROUTES))
        lines.append(f"| {name} | {C:g} | {cells} | {row['auto_took']} | "
                     f"{row['scikit-learn']['score']:.4f} / {row['auto']['score']:.4f} |")
        print(lines[-1], flush=True)
    record = {"date": dt.date.today().isoformat(), "device": device_name("cpu"), "repeats": args.repeats, "rows": rows}
    md = [f"# The linear hinges' routes, {record['date']}, {record['device']}", "",
          "Medians of interleaved fits in a rotating order (after one untimed fit of each); in parentheses the "
          "iterations (LIBLINEAR's and coordinate descent's sweeps, Newton's steps; max_iter = 1,000 sweeps: "
          "unconverged).", "", *lines]
    if not args.no_save:
        save_record(f"linear-routes-cpu-{record['date']}", record, md, args.tag)


if __name__ == "__main__":
    main()
