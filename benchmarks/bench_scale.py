#!/usr/bin/env python
"""Scale: RBF SVC fit time, peak memory and accuracy against N, on deformed digits (InfiMNIST's recipe).

    python benchmarks/bench_scale.py --rows 10000 20000 40000 80000 --device cpu \
        --anchors-python /work/anchors-venv/bin/python

Data: ``torchsvm.deform.deformed_images`` of the first 8,000 ``mnist-10k`` digits (seed 0), N rows of
784 pixels / 255 (float32); the test set is the 2,000 real digits held out of ``mnist-10k`` (never a
source of the training rows). Problem: 10 classes, one-vs-one, RBF, C = 5, gamma = 0.05 (the anchors'
``svc-mnist`` setting), tol 1e-3, every library its defaults otherwise. Libraries: torchsvm (``--device``),
scikit-learn's SVC (LIBSVM) and, with ``--anchors-python``, Intel's oneDAL (``sklearnex.svm.SVC``, the
fastest CPU SVM measured here). Each (N, library) fit runs in a fresh process: fit time (torchsvm after a
300-row warm-up fit, which compiles its numba loops), predict time on the test set, test accuracy,
support vectors, the peak resident memory the fit added, and on CUDA the peak device memory. A fit's
process is killed after ``--max-seconds`` (its data loading, warm-up, fit and predict together); a
library killed or slower than that is not run at larger N. Records go
to benchmarks/results/scale-<device>-<date>[-<tag>].{json,md}, with the log-log plot of fit time
against N beside them (.png, not committed: ``--plot RECORD.json`` draws it again from a record).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _record import add_record_arguments, device_name, device_sync, save_record, timed_fit_predict

PARAMS = dict(C=5.0, gamma=0.05, tol=1e-3)


def make_data(rows: int, data_root: Path, device: str) -> dict[str, np.ndarray]:
    import torch

    from torchsvm.data import load_images
    from torchsvm.deform import deformed_images

    images, labels = load_images("mnist", "train", data_root / "mnist-10k")
    test_images, test_labels = load_images("mnist", "test", data_root / "mnist-10k")
    X, y = deformed_images(images, labels, rows, seed=0, device=device)
    flat = lambda t: (t.flatten(1).float() / 255).cpu().numpy()  # noqa: E731
    torch.cuda.empty_cache() if torch.cuda.is_available() else None
    return {"X": flat(X), "y": y.cpu().numpy(), "Xt": flat(test_images), "yt": test_labels.numpy()}


def child(args: argparse.Namespace) -> None:
    """One fit in this fresh process; prints its JSON line."""
    with np.load(args.child_data) as d:
        X, y, Xt, yt = d["X"], d["y"], d["Xt"], d["yt"]
    cuda = False
    if args.library == "torchsvm":
        import torch

        import torchsvm

        make = lambda: torchsvm.SVC(device=args.device, **PARAMS)  # noqa: E731
        make().fit(X[:300], y[:300])  # numba's first call and torch's lazy set-up out of the timed fit
        cuda = torch.device(args.device).type == "cuda"
        if cuda:
            torch.cuda.reset_peak_memory_stats()
    elif args.library == "libsvm":
        from sklearn.svm import SVC as make
    else:
        from sklearnex.svm import SVC as make
    sync = device_sync(args.device) if args.library == "torchsvm" else (lambda: None)
    fit = (lambda: make().fit(X, y)) if args.library == "torchsvm" else (lambda: make(**PARAMS).fit(X, y))
    model, pred, out = timed_fit_predict(fit, Xt, sync)
    out.update(test_acc=float((pred == yt).mean()), n_support=int(len(model.support_)))
    if cuda:
        import torch

        out["peak_device_mib"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(out), flush=True)


def plot(rows: list[dict], path: Path, device: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for lib in dict.fromkeys(r["library"] for r in rows):
        pts = [(r["rows"], r["fit_s"]) for r in rows if r["library"] == lib and r.get("fit_s") is not None]
        if pts:
            ax.loglog(*zip(*pts, strict=True), "o-", label=lib)
    ax.set_xlabel("training rows N (deformed digits, 784 features, 10 classes)")
    ax.set_ylabel("fit time (s)")
    ax.set_title(f"RBF SVC, C = 5, gamma = 0.05 ({device})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, nargs="+", default=[10_000, 20_000, 40_000])
    p.add_argument("--device", default="cpu")
    p.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    p.add_argument("--libraries", nargs="+", default=["torchsvm", "onedal", "libsvm"],
                   choices=["torchsvm", "onedal", "libsvm"])
    p.add_argument("--anchors-python", default=None, help="the Python of the venv with scikit-learn-intelex")
    p.add_argument("--max-seconds", type=float, default=900.0, help="a slower child is killed; larger N skipped")
    p.add_argument("--plot", metavar="RECORD.json", help="only draw the plot of a saved record (beside it, .png)")
    p.add_argument("--library", help=argparse.SUPPRESS)
    p.add_argument("--child-data", help=argparse.SUPPRESS)
    add_record_arguments(p)
    args = p.parse_args(argv)
    if args.child_data:
        child(args)
        return
    if args.plot:  # plots are not committed: they are drawn from the records
        record = json.loads(Path(args.plot).read_text())
        plot(record["rows"], Path(args.plot).with_suffix(".png"), record["device"])
        return
    libraries = [lib for lib in args.libraries if lib != "onedal" or args.anchors_python]
    here = Path(__file__).resolve()
    rows, dropped = [], set()
    with tempfile.TemporaryDirectory() as tmp:
        for n in sorted(args.rows):
            start = time.perf_counter()
            path = Path(tmp) / f"rows-{n}.npz"
            np.savez(path, **make_data(n, Path(args.data_root), args.device))
            print(f"N = {n}: data made in {time.perf_counter() - start:.1f} s", flush=True)
            for lib in libraries:
                if lib in dropped:
                    note = "skipped: slower than the limit at a smaller N"
                    rows.append({"rows": n, "library": lib, "fit_s": None, "note": note})
                    continue
                python = args.anchors_python if lib == "onedal" else sys.executable
                cmd = [python, str(here), "--library", lib, "--child-data", str(path), "--device", args.device]
                try:
                    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.max_seconds, cwd=here.parent)
                except subprocess.TimeoutExpired:
                    dropped.add(lib)
                    note = f"killed after {args.max_seconds:.0f} s (loading, warm-up, fit and predict)"
                    rows.append({"rows": n, "library": lib, "fit_s": None, "note": note})
                    print(f"N = {n} {lib}: killed", flush=True)
                    continue
                if out.returncode != 0:
                    tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
                    rows.append({"rows": n, "library": lib, "fit_s": None, "note": "failed: " + " | ".join(tail)})
                    print(f"N = {n} {lib}: failed\n{out.stderr[-2000:]}", flush=True)
                    dropped.add(lib)
                    continue
                r = {"rows": n, "library": lib, **json.loads(out.stdout.strip().splitlines()[-1])}
                rows.append(r)
                if r["fit_s"] > args.max_seconds:
                    dropped.add(lib)
                print(f"N = {n:>8} {lib:9s} fit {r['fit_s']:8.2f} s  predict {r['predict_s']:6.2f} s  "
                      f"acc {r['test_acc']:.4f}  SVs {r['n_support']:>7}  peak +{r['peak_added_mib']:.0f} MiB", flush=True)
    device = device_name(args.device)
    record = {"benchmark": "bench_scale", "date": dt.date.today().isoformat(), "device": device, "params": PARAMS,
              "anchors_python": args.anchors_python, "rows": rows}
    if args.no_save:
        return
    kind = "cuda" if args.device.startswith("cuda") else "cpu"
    lines = [f"# bench_scale: {device}, {record['date']}", "",
             "RBF SVC (10 classes, one-vs-one, C = 5, gamma = 0.05, tol 1e-3) on N deformed digits "
             "(torchsvm.deform, sources: the first 8,000 mnist-10k digits), tested on the 2,000 held-out real "
             "digits. One fresh process per fit; peak: resident memory the fit added (device memory on CUDA). "
             "See the script's docstring.", "",
             "| N | library | fit (s) | predict (s) | test acc | SVs | peak added (MiB) | note |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if r.get("fit_s") is None:
            lines.append(f"| {r['rows']} | {r['library']} | | | | | | {r['note']} |")
            continue
        peak = f"{r['peak_added_mib']:.0f}" + (f" (device {r['peak_device_mib']:.0f})" if "peak_device_mib" in r else "")
        lines.append(f"| {r['rows']} | {r['library']} | {r['fit_s']:.2f} | {r['predict_s']:.2f} | {r['test_acc']:.4f} | "
                     f"{r['n_support']} | {peak} | |")
    path = save_record(f"scale-{kind}-{record['date']}", record, lines, args.tag)
    plot(rows, path.with_suffix(".png"), device)
    print(f"wrote {path}.png")


if __name__ == "__main__":
    main()
