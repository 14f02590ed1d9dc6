#!/usr/bin/env python
"""torchsvm against the fastest CPU SVM libraries, each in its own process: cold and warm fit and predict.

    python benchmarks/bench_cpu_anchors.py --anchors-python /work/anchors-venv/bin/python --repeats 3

The anchors that pin their own versions live in a separate virtual environment named by
``--anchors-python`` (``python -m venv anchors && anchors/bin/pip install scikit-learn-intelex snapml``):
Intel's oneDAL (``sklearnex.svm.SVC/SVR``) and Snap ML (``snapml.SupportVectorMachine``). LIBSVM and
LIBLINEAR are scikit-learn's, from this project's environment. Problems:

- ``svc-mnist``: SVC, RBF, C = 5, gamma = 0.05, 10 classes, ``mnist-10k`` (8,000 train / 2,000 test);
- ``svr-friedman``: SVR, RBF, C = 1, epsilon = 0.1, gamma = "scale", ``make_friedman1`` 20,000 + 5,000 rows;
- ``linear-mnist`` / ``linear-fashion``: LinearSVC with the libraries' defaults at ``--C`` (default 0.1; squared hinge,
  intercept penalized), ``mnist-10k`` and the first 20,000 Fashion-MNIST images; Snap ML with
  ``loss="squared_hinge", regularizer=1 / C, fit_intercept=True, n_jobs=2`` (its problem scales the
  regularizer as 1 / C; checked on accuracy, not on the objective).

Every (problem, library) runs in a fresh process per repeat (interleaved): the first fit ("cold",
imports done), a second fit ("warm", libraries that compile on first use only), predict twice, and the
test accuracy or R^2. Medians over the repeats. Results go to
benchmarks/results/cpu-anchors-<date>[-<tag>].{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _data import load_flat
from _record import add_record_arguments, device_name, save_record

CHILD = r"""
import json, sys, time
import numpy as np
problem, library, path, linear_C = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
data = np.load(path)
X, y, Xt, yt = data["X"], data["y"], data["Xt"], data["yt"]
C = linear_C if problem.startswith("linear") else (5.0 if problem == "svc-mnist" else 1.0)
if problem == "svc-mnist":
    params = dict(C=C, gamma=0.05)
elif problem == "svr-friedman":
    params = dict(C=C, epsilon=0.1)
else:
    params = dict(C=C)
kind = "SVR" if problem == "svr-friedman" else ("LinearSVC" if problem.startswith("linear") else "SVC")
# The estimator class is imported before any timing (torchsvm loads its estimators on first use).
if library == "torchsvm":
    import torchsvm
    cls = getattr(torchsvm, kind)
    make = lambda: cls(device="cpu", **params)
    compiles = True
elif library == "sklearn":
    import sklearn.svm
    cls = getattr(sklearn.svm, kind)
    make = lambda: cls(**params)
    compiles = False
elif library == "onedal":
    import sklearnex.svm
    cls = getattr(sklearnex.svm, kind)
    make = lambda: cls(**params)
    compiles = True
elif library == "snapml":
    from snapml import SupportVectorMachine
    make = lambda: SupportVectorMachine(loss="squared_hinge", regularizer=1.0 / C, fit_intercept=True, n_jobs=2)
    compiles = False
times = {}
s = time.perf_counter(); model = make().fit(X, y); times["fit_cold"] = time.perf_counter() - s
if compiles:
    s = time.perf_counter(); model = make().fit(X, y); times["fit_warm"] = time.perf_counter() - s
else:
    times["fit_warm"] = times["fit_cold"]
s = time.perf_counter(); pred = np.asarray(model.predict(Xt)); times["predict_cold"] = time.perf_counter() - s
s = time.perf_counter(); pred = np.asarray(model.predict(Xt)); times["predict_warm"] = time.perf_counter() - s
if kind == "SVR":
    score = 1 - ((pred - yt) ** 2).sum() / ((yt - yt.mean()) ** 2).sum()
else:
    score = float((pred == yt).mean())
print(json.dumps({**times, "score": float(score)}))
"""

PROBLEMS = ("svc-mnist", "svr-friedman", "linear-mnist", "linear-fashion")
LIBRARIES = {"svc-mnist": ("torchsvm", "sklearn", "onedal"), "svr-friedman": ("torchsvm", "sklearn", "onedal"),
             "linear-mnist": ("torchsvm", "sklearn", "snapml"), "linear-fashion": ("torchsvm", "sklearn", "snapml")}


def problem_data(name: str, root: Path) -> dict:
    if name == "svr-friedman":
        from sklearn.datasets import make_friedman1

        X, y = make_friedman1(25_000, random_state=0)
        return {"X": X[:20_000], "y": y[:20_000], "Xt": X[20_000:], "yt": y[20_000:]}
    dataset, n = ("mnist-10k", None) if name in ("svc-mnist", "linear-mnist") else ("fashion-mnist", 20_000)
    X, y, Xt, yt = load_flat(dataset, root, n)
    return {"X": X, "y": y, "Xt": Xt, "yt": yt}


def _c(C: float | None) -> str:
    return "" if C is None else f"{C:g}"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    p.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=PROBLEMS)
    p.add_argument("--anchors-python", default=None, help="the Python of the venv with sklearnex and snapml")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--C", type=float, nargs="+", default=[0.1], help="the linear problems' C values")
    p.add_argument("--libraries", nargs="+", default=None, help="only these (default: each problem's all)")
    add_record_arguments(p)
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for problem in args.problems:
            path = Path(tmp) / f"{problem}.npz"
            np.savez(path, **problem_data(problem, Path(args.data_root)))
            libraries = [lib for lib in LIBRARIES[problem] if (lib in ("torchsvm", "sklearn") or args.anchors_python)
                         and (args.libraries is None or lib in args.libraries)]
            for C in args.C if problem.startswith("linear") else [None]:
                runs: dict = {lib: [] for lib in libraries}
                for _ in range(args.repeats):
                    for lib in libraries:  # interleaved: this machine's speed drifts
                        python = args.anchors_python if lib in ("onedal", "snapml") else sys.executable
                        out = subprocess.run([python, "-c", CHILD, problem, lib, str(path), str(C or 0.1)],
                                             capture_output=True, text=True, check=True)
                        runs[lib].append(json.loads(out.stdout.strip().splitlines()[-1]))
                for lib, rs in runs.items():
                    row = {"problem": problem, "C": C, "library": lib, "runs": rs,
                           **{k: float(np.median([r[k] for r in rs])) for k in rs[0]}}
                    rows.append(row)
                    print(f"{problem:>14} {_c(C):6s} {lib:9s} fit cold {row['fit_cold']:7.2f} s "
                          f"warm {row['fit_warm']:7.2f} s  predict {row['predict_warm']:6.2f} s  score {row['score']:.4f}",
                          flush=True)
    record = {"benchmark": "bench_cpu_anchors", "date": dt.date.today().isoformat(), "device": device_name("cpu"),
              "repeats": args.repeats, "anchors_python": args.anchors_python, "rows": rows}
    if args.no_save:
        return
    lines = [f"# bench_cpu_anchors: {record['device']}, {record['date']}", "",
             f"Each (problem, library) in a fresh process per repeat, interleaved; medians of {args.repeats}. Cold: the "
             "first fit / predict in the process (imports done before); warm: the second (the same as cold for "
             "libraries that compile nothing). Score: test accuracy, R^2 for SVR. See the script's docstring for "
             "the problems and parameters.", "",
             "| problem | C | library | fit cold (s) | fit warm (s) | predict cold (s) | predict warm (s) | score |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['problem']} | {_c(r['C'])} | {r['library']} | {r['fit_cold']:.2f} | {r['fit_warm']:.2f} | "
              f"{r['predict_cold']:.2f} | {r['predict_warm']:.2f} | {r['score']:.4f} |" for r in rows]
    save_record(f"cpu-anchors-{record['date']}", record, lines, args.tag)


if __name__ == "__main__":
    main()
