#!/usr/bin/env python
"""What a short script pays in a fresh process: imports, the first fit, the second fit (torchsvm and scikit-learn).

    python benchmarks/bench_cold_start.py --repeats 5 [--python OTHER_VENV/bin/python]

Each repeat starts a new Python process per library (interleaved) that times the imports (torchsvm: first
``import torch, sklearn.svm``, its dependencies, then ``from torchsvm import <estimator>``; scikit-learn:
``import sklearn``, then ``sklearn.svm``) and three fits of the same estimator on the same data
one after the other: a 2,000 x 20 binary ``make_classification`` problem (SVC, RBF) and a 2,000 x 300
problem with 90% zeros (LinearSVC). "cold - warm" is the first fit's time minus the median of the
next two. Medians over the repeats.

The first fit after an installation is measured apart, once per estimator: a torchsvm process with
``NUMBA_CACHE_DIR`` pointing at an empty folder (numba finds no compiled loop, as after ``pip install``),
and ``python -m torchsvm.precompile`` timed on another empty folder, then a process on that folder (the
first fit after the README's setup). ``--python`` runs the torchsvm processes with another interpreter
(e.g. a fresh virtual environment's). Results go to benchmarks/results/cold-start-cpu-<date>[-<tag>].{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from _record import add_record_arguments, device_name, save_record

CHILD = r"""
import json, sys, time
library, name = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
if library == "torchsvm":
    import torch, sklearn.svm  # the estimators' dependencies, timed apart
    t1 = time.perf_counter()
    import torchsvm
    est = getattr(torchsvm, name)
    make = lambda: est(device="cpu")
else:
    import sklearn
    t1 = time.perf_counter()
    import sklearn.svm
    est = getattr(sklearn.svm, name)
    make = est
t2 = time.perf_counter()
import numpy as np
from sklearn.datasets import make_classification
if name == "SVC":
    X, y = make_classification(2000, 20, random_state=0)
else:
    rng = np.random.default_rng(0)
    X = rng.random((2000, 300))
    X[X < 0.9] = 0
    y = (X[:, :5].sum(1) > 0.5).astype(int)
fits = []
for _ in range(3):
    s = time.perf_counter()
    make().fit(X, y)
    fits.append(time.perf_counter() - s)
print(json.dumps({"import": t1 - t0, "estimators": t2 - t1, "fits": fits}))
"""


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--python", default=sys.executable, help="the interpreter of the torchsvm processes")
    add_record_arguments(p)
    args = p.parse_args(argv)
    python = {"torchsvm": args.python, "sklearn": sys.executable}
    cases = [(lib, name) for name in ("SVC", "LinearSVC") for lib in ("torchsvm", "sklearn")]
    runs: dict = {case: [] for case in cases}
    for _ in range(args.repeats):
        for lib, name in cases:
            out = subprocess.run([python[lib], "-c", CHILD, lib, name], capture_output=True, text=True, check=True)
            runs[(lib, name)].append(json.loads(out.stdout.strip().splitlines()[-1]))
    rows = []
    for (lib, name), rs in runs.items():
        med = lambda values: float(np.median(values))  # noqa: E731
        row = {"library": lib, "estimator": name, "import_s": med([r["import"] for r in rs]),
               "estimators_import_s": med([r["estimators"] for r in rs]), "first_fit_s": med([r["fits"][0] for r in rs]),
               "warm_fit_s": med([np.median(r["fits"][1:]) for r in rs]),
               "cold_minus_warm_s": med([r["fits"][0] - np.median(r["fits"][1:]) for r in rs]), "runs": rs}
        rows.append(row)
        print(f"{lib:>9} {name:10s} import {row['import_s']:.2f} s + estimators {row['estimators_import_s']:.2f} s, "
              f"first fit {row['first_fit_s']:.3f} s, warm {row['warm_fit_s']:.3f} s, cold - warm "
              f"{row['cold_minus_warm_s']:.3f} s", flush=True)
    installed = _after_installation(args.python)
    label = device_name("cpu")
    record = {"benchmark": "bench_cold_start", "date": dt.date.today().isoformat(), "device": label,
              "repeats": args.repeats, "rows": rows, "after_installation": installed, "torchsvm_python": args.python}
    if args.no_save:
        return
    lines = [f"# bench_cold_start: {label}, {record['date']}", "",
             f"A fresh process per library and repeat (interleaved), medians of {args.repeats}. torchsvm: `import` "
             "is `import torch, sklearn.svm` (its dependencies), `estimators` what `from torchsvm import <estimator>` "
             "adds; scikit-learn: `import sklearn`, then `sklearn.svm`. cold - warm is the first fit minus the "
             "median of the next two (numba's cache already built by an earlier run; the first fit after an "
             "installation is the second table). SVC: 2,000 x 20 binary, RBF; LinearSVC: "
             f"2,000 x 300, 90% zeros, binary. torchsvm's processes ran `{args.python}`.", "",
             "| library | estimator | import (s) | estimators (s) | first fit (s) | warm fit (s) | cold - warm (s) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['library']} | {r['estimator']} | {r['import_s']:.2f} | {r['estimators_import_s']:.2f} | "
              f"{r['first_fit_s']:.3f} | {r['warm_fit_s']:.3f} | {r['cold_minus_warm_s']:.3f} |" for r in rows]
    lines += ["", "The first fit after an installation (one process each, numba's cache empty; then "
              f"`python -m torchsvm.precompile` on an empty cache: {installed['precompile_s']:.1f} s, and a process "
              "on the cache it built):", "",
              "| estimator | first fit, empty cache (s) | later fits (s) | first fit after precompile (s) | later fits (s) |",
              "| --- | --- | --- | --- | --- |"]
    lines += [f"| {name} | {r['empty']['fits'][0]:.2f} | {np.median(r['empty']['fits'][1:]):.3f} | "
              f"{r['precompiled']['fits'][0]:.3f} | {np.median(r['precompiled']['fits'][1:]):.3f} |"
              for name, r in installed["estimators"].items()]
    save_record(f"cold-start-cpu-{record['date']}", record, lines, args.tag)


def _after_installation(python: str) -> dict:
    """The first fits with numba's cache empty, the precompile command's time, and the first fits after it."""
    out: dict = {"estimators": {}}
    with tempfile.TemporaryDirectory() as empty, tempfile.TemporaryDirectory() as built:
        start = time.perf_counter()
        subprocess.run([python, "-m", "torchsvm.precompile"], env={**os.environ, "NUMBA_CACHE_DIR": built},
                       capture_output=True, check=True)
        out["precompile_s"] = time.perf_counter() - start
        for name in ("SVC", "LinearSVC"):
            row = {}
            for key, cache in (("empty", empty), ("precompiled", built)):
                run = subprocess.run([python, "-c", CHILD, "torchsvm", name], capture_output=True, text=True,
                                     check=True, env={**os.environ, "NUMBA_CACHE_DIR": cache})
                row[key] = json.loads(run.stdout.strip().splitlines()[-1])
            out["estimators"][name] = row
            print(f"{name}: first fit with an empty cache {row['empty']['fits'][0]:.2f} s, after precompile "
                  f"{row['precompiled']['fits'][0]:.3f} s (later {np.median(row['precompiled']['fits'][1:]):.3f} s)",
                  flush=True)
    print(f"precompile {out['precompile_s']:.1f} s", flush=True)
    return out


if __name__ == "__main__":
    main()
