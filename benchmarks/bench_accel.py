#!/usr/bin/env python
"""Zero code change, timed: one unchanged scikit-learn script, run plain and under ``python -m torchsvm.accel``.

    python benchmarks/bench_accel.py [--n-train 60000] [--skip-sklearn]

The script (written to a temporary file, shown in the record) loads Fashion-MNIST from ``--data-root``,
fits ``sklearn.svm.SVC()`` (scikit-learn's defaults: RBF, C = 1, gamma = "scale") on the first
``--n-train`` training images and scores the 10,000 test images; it prints its fit time, predict time and
accuracy. Each way runs in its own process, one after the other (nothing else running): plain
(scikit-learn's LIBSVM) and with the accelerator (torchsvm's SVC on the device "auto" picks). The record
has both processes' wall times, the script's own fit and predict times and accuracies, and the accelerated
run's fallbacks (none expected). Results go to benchmarks/results/accel-<device>-<date>[-<tag>].{json,md}.
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

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import add_data_arguments  # noqa: E402
from _record import device_name, save_record  # noqa: E402

SCRIPT = '''
import json, sys, time
sys.path.insert(0, {bench!r})
from _data import load_flat
from pathlib import Path
from sklearn.svm import SVC

X, y, Xt, yt = load_flat("fashion-mnist", Path({root!r}), {n_train})
start = time.perf_counter()
model = SVC().fit(X, y)
fit = time.perf_counter() - start
start = time.perf_counter()
accuracy = float((model.predict(Xt) == yt).mean())
predict = time.perf_counter() - start
fallbacks = __import__("torchsvm.accel").accel.fallbacks() if "torchsvm.accel" in sys.modules else None
print(json.dumps(dict(cls=type(model).__module__ + "." + type(model).__name__, fit_s=fit, predict_s=predict,
                      accuracy=accuracy, n_support=int(model.n_support_.sum()), fallbacks=fallbacks)))
'''


def run(command: list[str]) -> dict:
    start = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {**result, "process_s": time.perf_counter() - start}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(p, ["fashion-mnist"])
    p.add_argument("--skip-sklearn", action="store_true", help="only the accelerated run")
    p.add_argument("--tag", default="")
    args = p.parse_args()
    n_train = args.n_train or 60000
    script = SCRIPT.format(bench=str(Path(__file__).resolve().parent), root=args.data_root, n_train=n_train)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "user_script.py"
        path.write_text(script)
        runs = {"torchsvm.accel": run([sys.executable, "-m", "torchsvm.accel", str(path)])}
        print("accelerated:", runs["torchsvm.accel"], flush=True)
        if not args.skip_sklearn:
            runs["scikit-learn"] = run([sys.executable, str(path)])
            print("plain:", runs["scikit-learn"], flush=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    record = {"benchmark": "accel", "date": dt.date.today().isoformat(), "device": device_name(torch.device(device)),
              "n_train": n_train, "script": script, "runs": runs}
    lines = [f"# The unchanged script: sklearn.svm.SVC() on Fashion-MNIST ({n_train} rows), {record['device']}, "
             f"{record['date']}", "", "| run | class | fit (s) | predict 10,000 (s) | process (s) | accuracy | SVs |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in runs.items():
        lines.append(f"| {name} | `{r['cls']}` | {r['fit_s']:.1f} | {r['predict_s']:.1f} | {r['process_s']:.1f} | "
                     f"{r['accuracy']:.4f} | {r['n_support']} |")
    if "scikit-learn" in runs:
        a, s = runs["torchsvm.accel"], runs["scikit-learn"]
        lines += ["", f"scikit-learn's time over the accelerated one: fit {s['fit_s'] / a['fit_s']:.2f}x, predict "
                      f"{s['predict_s'] / a['predict_s']:.2f}x, the whole process {s['process_s'] / a['process_s']:.2f}x; "
                      f"fallbacks under the accelerator: {len(a['fallbacks'])}."]
    save_record(f"accel-{device}-{record['date']}", record, lines, args.tag)


if __name__ == "__main__":
    main()
