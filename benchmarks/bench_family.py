#!/usr/bin/env python
"""The SVM family and batched model selection against scikit-learn, same data, one run each.

    python benchmarks/bench_family.py --data-root ../shared/data --device cpu

1. ``GridSearchCV``: SVC, grid C in {1, 5, 10, 50} x gamma in {0.01, 0.05} (8 points), 3 folds, the
   first ``--grid-n`` (4,000) mnist-10k training digits: torchsvm's batched search against
   scikit-learn's GridSearchCV(SVC(), n_jobs=2); time, best parameters, largest difference of
   the mean test scores.
2. ``SVR``: RBF, C = 1, epsilon = 0.1, on ``make_friedman1`` with ``--svr-n`` (20,000) rows:
   fit time, test R^2, largest difference of the predictions.
3. ``OneClassSVM``: RBF, nu = 0.1, gamma = 0.05, trained on one mnist-10k digit (0): fit time,
   agreement of the test-set predictions, largest decision difference, inlier rate per class.
4. ``NuSVC``: RBF, nu = 0.1, gamma = 0.02, one-vs-one on the mnist-10k training digits (8,000):
   fit time, test accuracy, agreement of the test-set predictions.
5. ``LinearSVR``: epsilon = 0.1, C = 1, on ``make_regression`` with ``--svr-n`` rows and 100
   features, against ``SVR(kernel="linear")`` (LIBSVM; the same problem) and LIBLINEAR's
   ``LinearSVR`` (which penalizes the bias): fit time, test R^2, largest prediction difference.
Results go to benchmarks/results/family-<device>-<date>[-<tag>].{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np
import torch
from _data import load_flat
from _record import add_record_arguments, device_name, device_sync, save_record, timed
from sklearn.datasets import make_friedman1, make_regression
from sklearn.model_selection import GridSearchCV as SkGridSearchCV
from sklearn.svm import SVC as SkSVC
from sklearn.svm import SVR as SkSVR
from sklearn.svm import LinearSVR as SkLinearSVR
from sklearn.svm import NuSVC as SkNuSVC
from sklearn.svm import OneClassSVM as SkOneClassSVM

from torchsvm import SVC, SVR, LinearSVR, NuSVC, OneClassSVM
from torchsvm.model_selection import GridSearchCV


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--grid-n", type=int, default=4000)
    p.add_argument("--svr-n", type=int, default=20000)
    p.add_argument("--repeats", type=int, default=3, help="interleaved runs of each search (medians reported)")
    p.add_argument("--skip", nargs="*", default=[], choices=["grid", "svr", "one-class", "nu-svc", "linear-svr"])
    add_record_arguments(p)
    args = p.parse_args(argv)
    sync, dev = device_sync(args.device), args.device
    root = Path(args.data_root)
    record = {"benchmark": "bench_family", "date": dt.date.today().isoformat(), "device": device_name(dev),
              "torch": torch.__version__}
    lines = [f"# bench_family: {record['device']}, {record['date']}", ""]
    if "grid" not in args.skip:
        X, y, _, _ = load_flat("mnist-10k", root, args.grid_n, torch.float64)
        grid = {"C": [1.0, 5.0, 10.0, 50.0], "gamma": [0.01, 0.05]}
        times_ours, times_ref = [], []
        for _ in range(args.repeats):  # interleaved: this machine's speed drifts between runs
            ours, t = timed(lambda: GridSearchCV(SVC(device=dev), grid, cv=3).fit(X, y), sync)
            times_ours.append(t)
            ref, t = timed(lambda: SkGridSearchCV(SkSVC(), grid, cv=3, n_jobs=2).fit(X, y), lambda: None)
            times_ref.append(t)
        t_ours, t_ref = float(np.median(times_ours)), float(np.median(times_ref))
        diff = float(np.abs(ours.cv_results_["mean_test_score"] - ref.cv_results_["mean_test_score"]).max())
        record["grid"] = {"n": len(y), "grid": grid, "folds": 3, "torchsvm_s": t_ours, "sklearn_n_jobs2_s": t_ref,
                          "torchsvm_runs_s": times_ours, "sklearn_runs_s": times_ref,
                          "speedup": t_ref / t_ours, "best_torchsvm": ours.best_params_, "best_sklearn": ref.best_params_,
                          "max_mean_score_diff": diff, "best_score": ours.best_score_}
        print(record["grid"], flush=True)
        g = record["grid"]
        lines += [f"## GridSearchCV, SVC, 8 grid points x 3 folds, {g['n']} mnist-10k digits (refit included; "
                  f"medians of {args.repeats} interleaved runs)", "",
                  "| torchsvm (s) | scikit-learn, n_jobs=2 (s) | speedup | best params (torchsvm / scikit-learn) | "
                  "max mean-score diff |", "| --- | --- | --- | --- | --- |",
                  f"| {t_ours:.1f} | {t_ref:.1f} | {g['speedup']:.1f}x | {ours.best_params_} / {ref.best_params_} | "
                  f"{diff:.1e} |", ""]
    if "svr" not in args.skip:
        X, y = make_friedman1(args.svr_n + 2000, n_features=10, noise=0.5, random_state=0)
        X, Xt, y, yt = X[: args.svr_n], X[args.svr_n :], y[: args.svr_n], y[args.svr_n :]
        ours, t_ours = timed(lambda: SVR(C=1.0, epsilon=0.1, device=dev).fit(torch.from_numpy(X).to(dev), y), sync)
        ref, t_ref = timed(lambda: SkSVR(C=1.0, epsilon=0.1).fit(X, y), lambda: None)
        pred = ours.predict(Xt)
        record["svr"] = {"n": args.svr_n, "torchsvm_s": t_ours, "sklearn_s": t_ref, "ratio": t_ours / t_ref,
                         "r2_torchsvm": float(ours.score(Xt, yt)), "r2_sklearn": float(ref.score(Xt, yt)),
                         "max_pred_diff": float(np.abs(pred - ref.predict(Xt)).max()),
                         "n_sv": [int(ours.n_support_[0]), int(ref.n_support_[0])]}
        print(record["svr"], flush=True)
        s = record["svr"]
        lines += [f"## SVR, RBF, C = 1, epsilon = 0.1, make_friedman1 with {s['n']} rows (2,000 test rows)", "",
                  "| torchsvm (s) | LIBSVM (s) | torchsvm / LIBSVM | test R^2 (torchsvm / LIBSVM) | max pred. diff | n SV |",
                  "| --- | --- | --- | --- | --- | --- |",
                  f"| {t_ours:.1f} | {t_ref:.1f} | {s['ratio']:.2f} | {s['r2_torchsvm']:.4f} / {s['r2_sklearn']:.4f} | "
                  f"{s['max_pred_diff']:.1e} | {s['n_sv'][0]} / {s['n_sv'][1]} |", ""]
    if "one-class" not in args.skip:
        X, y, Xt, yt = load_flat("mnist-10k", root, None, torch.float64)
        X0 = X[y == 0]
        ours, t_ours = timed(lambda: OneClassSVM(nu=0.1, gamma=0.05, device=dev).fit(torch.from_numpy(X0).to(dev)), sync)
        ref, t_ref = timed(lambda: SkOneClassSVM(nu=0.1, gamma=0.05).fit(X0), lambda: None)
        po, pr = ours.predict(Xt), ref.predict(Xt)
        inliers = {int(c): float((po[yt == c] == 1).mean()) for c in range(10)}
        record["one_class"] = {"n": len(X0), "torchsvm_s": t_ours, "sklearn_s": t_ref, "agreement": float((po == pr).mean()),
                               "max_decision_diff": float(np.abs(ours.decision_function(Xt) - ref.decision_function(Xt)).max()),
                               "inlier_rate_by_digit": inliers}
        print(record["one_class"], flush=True)
        o = record["one_class"]
        lines += [f"## OneClassSVM, RBF, nu = 0.1, gamma = 0.05, trained on the {o['n']} zeros of mnist-10k", "",
                  "| torchsvm (s) | LIBSVM (s) | test agreement | max decision diff | inlier rate: zeros / other digits |",
                  "| --- | --- | --- | --- | --- |",
                  f"| {t_ours:.2f} | {t_ref:.2f} | {o['agreement']:.4f} | {o['max_decision_diff']:.1e} | {inliers[0]:.3f} / "
                  f"{np.mean([v for k, v in inliers.items() if k != 0]):.3f} |", ""]
    if "nu-svc" not in args.skip:
        X, y, Xt, yt = load_flat("mnist-10k", root, None, torch.float64)
        ours, t_ours = timed(lambda: NuSVC(nu=0.1, gamma=0.02, device=dev).fit(torch.from_numpy(X).to(dev), y), sync)
        ref, t_ref = timed(lambda: SkNuSVC(nu=0.1, gamma=0.02).fit(X, y), lambda: None)
        po, pr = ours.predict(Xt), ref.predict(Xt)
        record["nu_svc"] = {"n": len(y), "torchsvm_s": t_ours, "sklearn_s": t_ref, "ratio": t_ours / t_ref,
                            "acc_torchsvm": float((po == yt).mean()), "acc_sklearn": float((pr == yt).mean()),
                            "agreement": float((po == pr).mean()), "n_sv": [len(ours.support_), len(ref.support_)]}
        print(record["nu_svc"], flush=True)
        n = record["nu_svc"]
        lines += [f"## NuSVC, RBF, nu = 0.1, gamma = 0.02, one-vs-one on the {n['n']} mnist-10k training digits", "",
                  "| torchsvm (s) | LIBSVM (s) | torchsvm / LIBSVM | test acc. (torchsvm / LIBSVM) | agreement | n SV |",
                  "| --- | --- | --- | --- | --- | --- |",
                  f"| {t_ours:.2f} | {t_ref:.2f} | {n['ratio']:.2f} | {n['acc_torchsvm']:.4f} / {n['acc_sklearn']:.4f} | "
                  f"{n['agreement']:.4f} | {n['n_sv'][0]} / {n['n_sv'][1]} |", ""]
    if "linear-svr" not in args.skip:
        X, y = make_regression(args.svr_n + 2000, 100, n_informative=50, noise=10.0, bias=5.0, random_state=0)
        X, Xt, y, yt = X[: args.svr_n], X[args.svr_n :], y[: args.svr_n], y[args.svr_n :]
        ours, t_ours = timed(lambda: LinearSVR(epsilon=0.1, C=1.0, device=dev).fit(torch.from_numpy(X).to(dev), y), sync)
        kernel, t_kernel = timed(lambda: SkSVR(kernel="linear", epsilon=0.1, C=1.0).fit(X, y), lambda: None)
        liblinear, t_liblinear = timed(lambda: SkLinearSVR(epsilon=0.1, C=1.0, dual=True, max_iter=10_000).fit(X, y),
                                       lambda: None)
        pred = ours.predict(Xt)
        record["linear_svr"] = {"n": args.svr_n, "torchsvm_s": t_ours, "libsvm_linear_s": t_kernel,
                                "liblinear_s": t_liblinear, "r2": [float(m.score(Xt, yt)) for m in (ours, kernel, liblinear)],
                                "max_pred_diff_libsvm": float(np.abs(pred - kernel.predict(Xt)).max()),
                                "max_pred_diff_liblinear": float(np.abs(pred - liblinear.predict(Xt)).max())}
        print(record["linear_svr"], flush=True)
        r = record["linear_svr"]
        lines += [f"## LinearSVR, epsilon = 0.1, C = 1, make_regression with {r['n']} rows x 100 features (2,000 test rows)", "",
                  "| torchsvm (s) | LIBSVM linear SVR (s) | LIBLINEAR (s) | test R^2 (torchsvm / LIBSVM / LIBLINEAR) | "
                  "max pred. diff vs LIBSVM / LIBLINEAR |", "| --- | --- | --- | --- | --- |",
                  f"| {t_ours:.2f} | {t_kernel:.2f} | {t_liblinear:.2f} | {' / '.join(f'{v:.4f}' for v in r['r2'])} | "
                  f"{r['max_pred_diff_libsvm']:.1e} / {r['max_pred_diff_liblinear']:.1e} |", ""]
    if not args.no_save:
        save_record(f"family-{args.device.split(':')[0]}-{record['date']}", record, lines, args.tag)


if __name__ == "__main__":
    main()
