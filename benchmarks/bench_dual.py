#!/usr/bin/env python
"""Kernel SVM dual: torchsvm vs the dual as a generic cvxpy QP and vs scikit-learn's SVC (LIBSVM).

    python benchmarks/bench_dual.py --data-root ../shared/data --device cpu

One run each, same data and hyperparameters for all:

1. ``qp``: one binary RBF problem on N = 2,000 2-D points (two interleaved moons, noise 0.3,
   gamma = 0.5, C = 1): the generic route, cvxpy on the QP (P, q, G, h, A, b) with its default
   solver, against torchsvm from X (kernel + SMO, tol 1e-3 as LIBSVM; median of 5 runs after a
   warm-up). Objectives compared.
2. ``mnist-10k`` / ``fashion-mnist``: 10 classes, RBF, C = 5, gamma = 0.05, pixels / 255:
   sklearn SVC against torchsvm SVC (one-vs-one, and one-vs-rest), fit and predict times, test
   accuracy, agreement of predictions with LIBSVM and, for one-vs-one, the largest relative
   difference of the 45 pairwise dual objectives (each computed in float64 from dual_coef_).

3. ``--binary``: one binary RBF problem (scikit-learn's defaults: C = 1, gamma = "scale", tol 1e-3)
   on ``make_classification`` N = 2,000 / 5,000 / 50,000 (20 features) and ``make_moons``
   N = 5,000: LIBSVM's fit against ``torchsvm.SVC``'s (median of 3 after a warm-up), SMO steps,
   agreement of the training-set predictions; and ``svm_dual`` (the differentiable layer, default
   tol 1e-5) against cvxpy on the N = 2,000 problem's Gram matrix.

The torchsvm timings include moving the data to the device. Results go to
benchmarks/results/dual-<device>-<date>[-<tag>].{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
from pathlib import Path

import numpy as np
import torch
from _data import add_data_arguments, load_flat
from _record import add_record_arguments, device_name, device_sync, save_record, timed
from sklearn.datasets import make_classification, make_moons
from sklearn.svm import SVC as SkSVC

from torchsvm import SVC
from torchsvm.functional import svm_dual
from torchsvm.kernels import rbf_kernel
from torchsvm.solvers.dual import dual_objective, smo_dual
from torchsvm.solvers.reference import cvxpy_dual


def bench_qp(device: str, sync, n: int = 2000) -> dict:
    X, y01 = make_moons(n, noise=0.3, random_state=0)
    y = np.where(y01 == 1, 1.0, -1.0)
    gamma, C = 0.5, 1.0
    K = rbf_kernel(torch.from_numpy(X), gamma=gamma).numpy()
    (alpha_ref, _, obj_ref), t_ref = timed(lambda: cvxpy_dual(K, y, C), lambda: None)

    def ours():
        Xd, yd = torch.from_numpy(X).to(device), torch.from_numpy(y).to(device)
        return smo_dual(rbf_kernel(Xd, gamma=gamma), yd, C, tol=1e-3)

    ours()  # warm-up (CUDA context, kernels)
    runs = [timed(ours, sync) for _ in range(5)]
    res, t_ours = runs[0][0], float(np.median([t for _, t in runs]))
    Kt = torch.from_numpy(K)
    obj = float(dual_objective(Kt, torch.from_numpy(y)[None], res.alpha.cpu())[0])
    return {"n": n, "cvxpy_s": t_ref, "torchsvm_s": t_ours, "speedup": t_ref / t_ours,
            "cvxpy_objective": obj_ref, "torchsvm_objective": obj, "rel_diff": abs(obj - obj_ref) / abs(obj_ref)}


BINARY = {
    "classification-2000": lambda: make_classification(2000, 20, random_state=0),
    "classification-5000": lambda: make_classification(5000, 20, random_state=0),
    "moons-5000": lambda: make_moons(5000, noise=0.3, random_state=0),
    "classification-50000": lambda: make_classification(50000, 20, random_state=0),
}


def bench_binary(device: str, sync, names: list[str], repeats: int = 3) -> list[dict]:
    rows = []
    SVC(device=device).fit(*make_moons(200, random_state=0))  # warm-up (CUDA context, kernel build)
    for name in names:
        X, y = BINARY[name]()
        ref, t_ref = timed(lambda X=X, y=y: SkSVC().fit(X, y), lambda: None)
        runs = [timed(lambda X=X, y=y: SVC(device=device).fit(torch.from_numpy(X).to(device), y), sync)
                for _ in range(repeats)]
        model, t_ours = runs[0][0], float(np.median([t for _, t in runs]))
        rows.append({"problem": name, "n": len(y), "libsvm_s": t_ref, "torchsvm_s": t_ours, "ratio": t_ours / t_ref,
                     "libsvm_steps": int(ref.n_iter_[0]), "torchsvm_steps": int(model.n_iter_[0]),
                     "agree": float((model.predict(X) == ref.predict(X)).mean())})
        print(rows[-1], flush=True)
    return rows


def bench_svm_dual(device: str, sync, n: int = 2000) -> dict:
    """svm_dual's forward at its default tol against cvxpy on the same Gram matrix."""
    X, y01 = make_classification(n, 20, random_state=0)
    y = np.where(y01 == 1, 1.0, -1.0)
    K = rbf_kernel(torch.from_numpy(X), gamma=1 / (20 * X.var())).numpy()
    (_, _, obj_ref), t_ref = timed(lambda: cvxpy_dual(K, y, 1.0), lambda: None)
    Kd, yd = torch.from_numpy(K).to(device), torch.from_numpy(y).to(device)
    svm_dual(Kd, yd, 1.0)  # warm-up
    runs = [timed(lambda: svm_dual(Kd, yd, 1.0), sync) for _ in range(5)]
    alpha = runs[0][0][0]
    obj = float(dual_objective(torch.from_numpy(K), torch.from_numpy(y)[None], alpha.cpu()[None])[0])
    t = float(np.median([t for _, t in runs]))
    return {"n": n, "cvxpy_s": t_ref, "svm_dual_s": t, "speedup": t_ref / t, "rel_diff": abs(obj - obj_ref) / abs(obj_ref)}


def pair_objectives(model, K_sv: np.ndarray) -> np.ndarray:
    """The 45 pairwise dual objectives from LIBSVM's dual_coef_ layout (any fitted OvO model)."""
    sv_class = np.repeat(np.arange(len(model.classes_)), model.n_support_)
    out = []
    for i, j in itertools.combinations(range(len(model.classes_)), 2):
        coef = np.zeros(len(sv_class))
        coef[sv_class == i] = model.dual_coef_[j - 1, sv_class == i]
        coef[sv_class == j] = model.dual_coef_[i, sv_class == j]
        out.append(np.abs(coef).sum() - 0.5 * coef @ K_sv @ coef)
    return np.array(out)


def objectives_of(model, gamma: float) -> np.ndarray:
    sv = torch.from_numpy(np.asarray(model.support_vectors_, dtype=np.float64))
    return pair_objectives(model, rbf_kernel(sv, gamma=gamma).numpy())


def bench_images(name: str, root: Path, n_train: int | None, device: str, sync, C: float, gamma: float,
                 skip_sklearn: bool, strategies: list[str]) -> list[dict]:
    X, y, Xt, yt = load_flat(name, root, n_train, torch.float64)
    rows = []
    ref_pred = ref_obj = None
    if not skip_sklearn:
        ref, t_fit = timed(lambda: SkSVC(C=C, gamma=gamma).fit(X, y), lambda: None)
        ref_pred, t_pred = timed(lambda: ref.predict(Xt), lambda: None)
        ref_obj = objectives_of(ref, gamma)
        rows.append({"dataset": name, "n_train": len(y), "method": "sklearn SVC (LIBSVM)", "fit_s": t_fit,
                     "predict_s": t_pred, "test_acc": float((ref_pred == yt).mean()), "n_sv": int(len(ref.support_))})
        print(rows[-1], flush=True)
    for multi_class in strategies:
        def fit(multi_class=multi_class):
            model = SVC(C=C, gamma=gamma, multi_class=multi_class, device=device)
            return model.fit(torch.from_numpy(X).to(device), torch.from_numpy(y))

        model, t_fit = timed(fit, sync)
        pred, t_pred = timed(lambda model=model: model.predict(torch.from_numpy(Xt).to(device)), sync)
        method = f"torchsvm SVC ({multi_class})"
        row = {"dataset": name, "n_train": len(y), "method": method, "fit_s": t_fit,
               "predict_s": t_pred, "test_acc": float((pred == yt).mean()), "n_sv": int(len(model.support_)),
               "smo_steps": int(model.n_iter_.max())}
        if ref_pred is not None:
            row["agree_with_libsvm"] = float((pred == ref_pred).mean())
        if ref_obj is not None and multi_class == "ovo":
            ours = objectives_of(model, gamma)
            row["max_rel_objective_diff"] = float(np.max(np.abs(ours - ref_obj) / np.abs(ref_obj)))
        rows.append(row)
        print(row, flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(p, ["mnist-10k"], allow_none=True)
    p.add_argument("--C", type=float, default=5.0)
    p.add_argument("--gamma", type=float, default=0.05)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--skip-qp", action="store_true")
    p.add_argument("--skip-sklearn", action="store_true")
    p.add_argument("--multi-class", nargs="+", default=["ovo", "ovr"], choices=["ovo", "ovr"],
                   help="torchsvm strategies to time (one-vs-rest on 60k runs the decomposition solver)")
    p.add_argument("--binary", nargs="*", default=None, choices=sorted(BINARY),
                   help="time binary problems against LIBSVM (all four when given without names)")
    add_record_arguments(p)
    args = p.parse_args(argv)
    sync = device_sync(args.device)
    device_label = device_name(args.device)

    qp = None if args.skip_qp else bench_qp(args.device, sync)
    if qp:
        print(qp, flush=True)
    rows = []
    for ds in args.datasets:
        rows += bench_images(ds, Path(args.data_root), args.n_train, args.device, sync, args.C, args.gamma,
                             args.skip_sklearn, args.multi_class)
    binary = dual_layer = None
    if args.binary is not None:
        dual_layer = bench_svm_dual(args.device, sync)
        print(dual_layer, flush=True)
        binary = bench_binary(args.device, sync, args.binary or list(BINARY))

    record = {"benchmark": "bench_dual", "date": dt.date.today().isoformat(), "device": device_label,
              "torch": torch.__version__, "qp": qp, "C": args.C, "gamma": args.gamma,
              "kernel_dtype": SVC().kernel_dtype, "rows": rows,
              "binary": binary, "svm_dual": dual_layer}
    if args.no_save:
        return
    lines = [f"# bench_dual: {device_label}, {record['date']}", ""]
    if qp:
        lines += ["## vs the dual as a generic cvxpy QP (binary RBF, N = 2,000 moons, gamma 0.5, C 1)", "",
                  "| cvxpy (s) | torchsvm (s) | speedup | cvxpy objective | torchsvm objective | rel. diff |",
                  "| --- | --- | --- | --- | --- | --- |",
                  f"| {qp['cvxpy_s']:.2f} | {qp['torchsvm_s']:.3f} | {qp['speedup']:.0f}x | "
                  f"{qp['cvxpy_objective']:.4f} | {qp['torchsvm_objective']:.4f} | {qp['rel_diff']:.1e} |", ""]
    if rows:
        lines += [f"## 10-class RBF SVC, C = {args.C}, gamma = {args.gamma}, pixels / 255, torchsvm kernel values "
                  f"{SVC().kernel_dtype}", "",
                  "| data | N train | method | fit (s) | predict (s) | test acc | n SV | agree w/ LIBSVM | "
                  "max rel. obj. diff |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in rows:
            agree = f"{r['agree_with_libsvm']:.4f}" if "agree_with_libsvm" in r else ""
            obj = f"{r['max_rel_objective_diff']:.1e}" if "max_rel_objective_diff" in r else ""
            lines.append(f"| {r['dataset']} | {r['n_train']} | {r['method']} | {r['fit_s']:.1f} | "
                         f"{r['predict_s']:.2f} | {r['test_acc']:.4f} | {r['n_sv']} | {agree} | {obj} |")
    if binary:
        lines += ["", "## One binary RBF problem (C = 1, gamma = 'scale', tol 1e-3), fit from X", "",
                  "| problem | N | LIBSVM (s) | torchsvm SVC (s) | torchsvm / LIBSVM | steps LIBSVM / torchsvm | "
                  "agreement |", "| --- | --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {r['problem']} | {r['n']} | {r['libsvm_s']:.3f} | {r['torchsvm_s']:.3f} | {r['ratio']:.2f} | "
                  f"{r['libsvm_steps']} / {r['torchsvm_steps']} | {r['agree']:.4f} |" for r in binary]
        d = dual_layer
        lines += ["", f"svm_dual (tol 1e-5) on the N = {d['n']} problem's Gram matrix: {d['svm_dual_s']:.3f} s, "
                  f"cvxpy {d['cvxpy_s']:.2f} s ({d['speedup']:.0f}x), objectives within {d['rel_diff']:.1e}."]
    save_record(f"dual-{args.device.split(':')[0]}-{record['date']}", record, lines, args.tag)


if __name__ == "__main__":
    main()
