#!/usr/bin/env python
"""Sparse input: LinearSVC and SVC on a generated TF-IDF corpus, torchsvm against scikit-learn (LIBLINEAR, LIBSVM).

    python benchmarks/bench_sparse.py --device cpu --C 0.1 1 --repeats 3

Linear part: ``--docs`` documents (the last fifth held out) x ``--terms`` terms from the seeded
generator in ``_data.text_corpus`` (Zipfian vocabulary, topic words, sublinear TF-IDF rows of unit
norm, ``--topics`` classes), ``LinearSVC(C=C)`` with its defaults in both libraries (LIBLINEAR's
problem: squared hinge, intercept penalized), X passed as a scipy CSR matrix to both; fit time
(medians of ``--repeats`` interleaved runs; torchsvm's includes moving X to ``--device``), test
accuracy, and each model's objective computed here from its coef_ and intercept_.

Kernel part (``--kernel-docs`` documents x ``--kernel-terms`` terms, 4/5 for training): RBF and
linear ``SVC`` against scikit-learn's ``SVC`` on the same sparse rows: fit time, agreement of the
test predictions, and the peak resident memory the fit added (each fit in a fresh process, read from
its high-water mark, reset before the fit), beside the size the dense matrix would have. Records go to
benchmarks/results/sparse-<device>-<date>[-<tag>].{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import warnings

import numpy as np
import scipy.sparse
from _data import text_corpus
from _record import (
    add_record_arguments,
    device_name,
    device_sync,
    peak_memory_added,
    reset_peak_memory,
    save_record,
    timed,
)
from sklearn.exceptions import ConvergenceWarning


def objective(coef: np.ndarray, intercept: np.ndarray, X: scipy.sparse.csr_matrix, y: np.ndarray, C: float) -> float:
    """LIBLINEAR's one-vs-rest objective with the squared hinge and intercept_scaling 1, summed over classes."""
    Y = np.where(y[:, None] == np.arange(coef.shape[0]), 1.0, -1.0)
    b = np.broadcast_to(np.asarray(intercept, dtype=np.float64), (coef.shape[0],))
    xi = np.maximum(0, 1 - Y * (X @ coef.T.astype(np.float64) + b))
    return float(0.5 * (coef.astype(np.float64) ** 2).sum() + 0.5 * (b**2).sum() + C * (xi**2).sum())


def linear_runs(args: argparse.Namespace) -> list[dict]:
    from sklearn.svm import LinearSVC as SkLinearSVC

    import torchsvm

    X, y = text_corpus(args.docs, args.terms, n_topics=args.topics, seed=args.seed)
    n_train = args.docs * 4 // 5
    Xtr, ytr, Xte, yte = X[:n_train], y[:n_train], X[n_train:], y[n_train:]
    sync = device_sync(args.device)
    rows = []
    for C in args.C:
        makers = {"torchsvm LinearSVC": lambda C=C: torchsvm.LinearSVC(C=C, device=args.device),
                  "scikit-learn LinearSVC": lambda C=C: SkLinearSVC(C=C)}
        runs: dict[str, list[dict]] = {name: [] for name in makers}
        for _ in range(args.repeats):  # interleaved: drifts in the machine's speed hit both alike
            for name, make in makers.items():
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", ConvergenceWarning)
                    model, seconds = timed(lambda make=make: make().fit(Xtr, ytr), sync)
                runs[name].append({"fit_s": seconds, "model": model,
                                   "converged": not any(issubclass(w.category, ConvergenceWarning) for w in caught)})
        for name, done in runs.items():
            model = done[-1]["model"]
            rows.append({"part": "linear", "C": C, "method": name, "fit_s": float(np.median([r["fit_s"] for r in done])),
                         "fit_s_all": [r["fit_s"] for r in done],
                         "test_acc": float((np.asarray(model.predict(Xte)) == yte).mean()),
                         "objective": objective(np.asarray(model.coef_), np.asarray(model.intercept_), Xtr, ytr, C),
                         "converged": all(r["converged"] for r in done), "n_iter": int(np.max(model.n_iter_))})
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "fit_s_all"}), flush=True)
    return rows


def kernel_child(args: argparse.Namespace) -> None:
    """One kernel fit in this (fresh) process; prints its JSON line."""
    from sklearn.svm import SVC as SkSVC

    import torchsvm

    X, y = text_corpus(args.kernel_docs, args.kernel_terms, n_topics=args.topics, seed=args.seed)
    n_train = args.kernel_docs * 4 // 5
    Xtr, ytr, Xte = X[:n_train], y[:n_train], X[n_train:]
    params = dict(kernel=args.child, C=10.0, gamma=1.0) if args.child == "rbf" else dict(kernel="linear", C=1.0)
    model = torchsvm.SVC(device=args.device, **params) if args.library == "torchsvm" else SkSVC(**params)
    if args.library == "torchsvm":  # numba's first call and torch's lazy set-up out of the timed fit
        model.fit(Xtr[:50], ytr[:50])
        model = torchsvm.SVC(device=args.device, **params)
    # The peak resident size the fit adds (the data generation's own peak does not count).
    baseline = reset_peak_memory()
    model, seconds = timed(lambda: model.fit(Xtr, ytr), device_sync(args.device))
    added = peak_memory_added(baseline)
    np.save(args.predictions, np.asarray(model.predict(Xte)))
    print(json.dumps({"fit_s": seconds, "peak_added_mib": added, "n_support": int(len(model.support_))}), flush=True)


def kernel_runs(args: argparse.Namespace) -> list[dict]:
    rows = []
    n_train = args.kernel_docs * 4 // 5
    dense_mib = n_train * args.kernel_terms * 8 / 2**20
    for kernel in ("rbf", "linear"):
        predictions = {}
        for library in ("torchsvm", "scikit-learn"):
            out = f"/tmp/bench_sparse_{kernel}_{library}.npy"
            cmd = [sys.executable, __file__, "--child", kernel, "--library", library, "--predictions", out,
                   "--device", args.device, "--kernel-docs", str(args.kernel_docs), "--kernel-terms", str(args.kernel_terms),
                   "--topics", str(args.topics), "--seed", str(args.seed)]
            result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
            predictions[library] = np.load(out)
            rows.append({"part": "kernel", "kernel": kernel, "method": f"{library} SVC", **result,
                         "dense_X_mib": dense_mib})
        agree = float((predictions["torchsvm"] == predictions["scikit-learn"]).mean())
        for row in rows[-2:]:
            row["prediction_agreement"] = agree
            print(json.dumps(row), flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--C", type=float, nargs="+", default=[0.1, 1.0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--docs", type=int, default=50_000, help="linear part: documents (4/5 train)")
    p.add_argument("--terms", type=int, default=100_000, help="linear part: vocabulary size")
    p.add_argument("--topics", type=int, default=20, help="classes")
    p.add_argument("--kernel-docs", type=int, default=5_000, help="kernel part: documents (4/5 train)")
    p.add_argument("--kernel-terms", type=int, default=400_000, help="kernel part: vocabulary size")
    p.add_argument("--parts", nargs="+", default=["linear", "kernel"], choices=["linear", "kernel"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--child", choices=["rbf", "linear"], help=argparse.SUPPRESS)
    p.add_argument("--library", choices=["torchsvm", "scikit-learn"], help=argparse.SUPPRESS)
    p.add_argument("--predictions", help=argparse.SUPPRESS)
    add_record_arguments(p)
    args = p.parse_args(argv)
    if args.child:
        kernel_child(args)
        return
    rows = (linear_runs(args) if "linear" in args.parts else []) + (kernel_runs(args) if "kernel" in args.parts else [])
    for row in rows:
        row.pop("model", None)
    record = {"benchmark": "sparse", "device": device_name(args.device), "date": dt.date.today().isoformat(),
              "argv": sys.argv[1:], "args": {k: v for k, v in vars(args).items() if k not in ("child", "library", "predictions")},
              "rows": rows}
    lines = [f"# Sparse input: {device_name(args.device)}, {record['date']}", "",
             f"Linear: generated TF-IDF corpus, {args.docs * 4 // 5} training x {args.terms} terms, {args.topics} classes, "
             f"medians of {args.repeats}. Kernel: {args.kernel_docs * 4 // 5} x {args.kernel_terms}, one fit per process.", "",
             "| part | C / kernel | method | fit s | test acc / agreement | objective / peak MiB added (dense X MiB) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        if r["part"] == "linear":
            lines.append(f"| linear | C={r['C']} | {r['method']} | {r['fit_s']:.2f} | {r['test_acc']:.4f} | "
                         f"{r['objective']:.2f} |")
        else:
            lines.append(f"| kernel | {r['kernel']} | {r['method']} | {r['fit_s']:.2f} | {r['prediction_agreement']:.4f} | "
                         f"{r['peak_added_mib']:.0f} ({r['dense_X_mib']:.0f}) |")
    if not args.no_save:
        print(save_record(f"sparse-{args.device}-{record['date']}", record, lines, args.tag))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
