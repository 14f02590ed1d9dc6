#!/usr/bin/env python
"""Many classes: one-vs-one RBF SVC with 100-1,000 classes, torchsvm against scikit-learn's SVC (LIBSVM).

    python benchmarks/bench_many_classes.py --classes 100 1000 --rows 20000 --device cpu

Data: ``make_classification`` with ``--rows`` training rows (and 2,000 test rows), 40 features (30
informative), one cluster per class, standardized; ``SVC()`` with its defaults (RBF, gamma="scale",
C = 1) in both libraries. Each (classes, library) fit runs in a fresh process: fit and predict time,
test accuracy, support vectors, and the peak resident memory the fit added (the high-water mark reset
before it); the two libraries' test predictions are compared. ``--skip-sklearn`` leaves LIBSVM out
(its fits take minutes at 1,000 classes). Records go to
benchmarks/results/many-classes-<device>-<date>[-<tag>].{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys

import numpy as np
from _record import add_record_arguments, device_name, device_sync, save_record, timed_fit_predict


def data(n_classes: int, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification
    from sklearn.preprocessing import StandardScaler

    X, y = make_classification(rows + 2000, 40, n_informative=30, n_redundant=0, n_classes=n_classes,
                               n_clusters_per_class=1, class_sep=2.0, random_state=seed)
    X = StandardScaler().fit_transform(X)
    return X[:rows], y[:rows], X[rows:], y[rows:]


def child(args: argparse.Namespace) -> None:
    """One fit in this fresh process; prints its JSON line and saves the test predictions."""
    Xtr, ytr, Xte, yte = data(args.child_classes, args.rows, args.seed)
    if args.library == "torchsvm":
        import torchsvm

        make = lambda: torchsvm.SVC(device=args.device)  # noqa: E731
        make().fit(Xtr[:300], ytr[:300] % 3)  # numba's first call and torch's lazy set-up out of the timed fit
    else:
        from sklearn.svm import SVC

        make = SVC
    model, pred, out = timed_fit_predict(lambda: make().fit(Xtr, ytr), Xte, device_sync(args.device))
    np.save(args.predictions, pred)
    print(json.dumps({**out, "test_acc": float((pred == yte).mean()), "n_support": int(len(model.support_))}),
          flush=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--classes", type=int, nargs="+", default=[100])
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-sklearn", action="store_true")
    p.add_argument("--child-classes", type=int, help=argparse.SUPPRESS)
    p.add_argument("--library", choices=["torchsvm", "scikit-learn"], help=argparse.SUPPRESS)
    p.add_argument("--predictions", help=argparse.SUPPRESS)
    add_record_arguments(p)
    args = p.parse_args(argv)
    if args.child_classes:
        child(args)
        return
    rows = []
    for k in args.classes:
        predictions = {}
        for library in ["torchsvm"] + ([] if args.skip_sklearn else ["scikit-learn"]):
            out = f"/tmp/bench_many_classes_{k}_{library}.npy"
            cmd = [sys.executable, __file__, "--child-classes", str(k), "--library", library, "--predictions", out,
                   "--rows", str(args.rows), "--device", args.device, "--seed", str(args.seed)]
            result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
            predictions[library] = np.load(out)
            rows.append({"classes": k, "pairs": k * (k - 1) // 2, "rows": args.rows, "method": f"{library} SVC", **result})
        if len(predictions) == 2:
            agree = float((predictions["torchsvm"] == predictions["scikit-learn"]).mean())
            for row in rows[-2:]:
                row["prediction_agreement"] = agree
        for row in rows[-len(predictions):]:
            print(json.dumps(row), flush=True)
    record = {"benchmark": "many-classes", "device": device_name(args.device), "date": dt.date.today().isoformat(),
              "argv": sys.argv[1:], "rows": rows}
    lines = [f"# Many classes, one-vs-one RBF SVC: {device_name(args.device)}, {record['date']}", "",
             f"`make_classification`, {args.rows} training rows, 40 features; `SVC()` defaults; one fit per process.", "",
             "| classes | pairs | method | fit s | predict s | test acc | agreement | n_SV | peak MiB added |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['classes']} | {r['pairs']} | {r['method']} | {r['fit_s']:.2f} | {r['predict_s']:.2f} | "
                     f"{r['test_acc']:.4f} | {r.get('prediction_agreement', float('nan')):.4f} | {r['n_support']} | "
                     f"{r['peak_added_mib']:.0f} |")
    if not args.no_save:
        print(save_record(f"many-classes-{args.device}-{record['date']}", record, lines, args.tag))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
