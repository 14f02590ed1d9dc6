"""Decomposition solver: fit time against the working set size q (what ``working_set_size="auto"`` picks).

Two problems that the decomposition solver takes: ``SVR`` (RBF, C = 1, epsilon = 0.1, gamma "scale") on
``make_friedman1`` 20,000 rows (40,000 variables on 20,000 samples), and a binary ``SVC`` (RBF, C = 1,
gamma "scale", ``solver="decomposition"``) on ``make_classification`` 50,000 x 20. For each q: fit time
(median of ``--repeats`` interleaved runs, one warm-up fit first), outer iterations and the test score.

    .venv/bin/python benchmarks/bench_working_set.py [--device cuda] [--sizes 512 1024 2048 4096] [--repeats 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time

import numpy as np
from _record import add_record_arguments, device_name, device_sync, save_record


def problems() -> dict[str, tuple]:
    from sklearn.datasets import make_classification, make_friedman1

    X, y = make_friedman1(25_000, random_state=0)
    Xc, yc = make_classification(60_000, n_features=20, random_state=0)
    return {"svr-friedman-20k": (X[:20_000], y[:20_000], X[20_000:], y[20_000:]),
            "svc-classification-50k": (Xc[:50_000], yc[:50_000], Xc[50_000:], yc[50_000:])}


def make(name: str, q: int, device: str):
    from torchsvm import SVC, SVR

    if name.startswith("svr"):
        return SVR(working_set_size=q, device=device)
    return SVC(working_set_size=q, solver="decomposition", device=device)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048, 4096])
    p.add_argument("--repeats", type=int, default=2)
    add_record_arguments(p)
    args = p.parse_args(argv)
    sync = device_sync(args.device)
    data = problems()
    for name, (X, y, _, _) in data.items():  # warm-up: compilation and caches out of the timings
        make(name, 64, args.device).fit(X[:2000], y[:2000])
    times: dict[tuple[str, int], list[float]] = {}
    facts: dict[tuple[str, int], tuple[int, float]] = {}
    for _ in range(args.repeats):
        for name, (X, y, X_test, y_test) in data.items():
            for q in args.sizes:
                est = make(name, q, args.device)
                start = time.perf_counter()
                est.fit(X, y)
                sync()
                times.setdefault((name, q), []).append(time.perf_counter() - start)
                facts[(name, q)] = (int(np.max(est.n_iter_)), float(est.score(X_test, y_test)))
    rows = [{"problem": name, "q": q, "fit_s": statistics.median(times[(name, q)]), "outer_iterations": facts[(name, q)][0],
             "test_score": facts[(name, q)][1]} for (name, q) in times]
    for r in rows:
        print(f"  {r['problem']:24s} q {r['q']:5d}  fit {r['fit_s']:7.2f} s  outer iterations {r['outer_iterations']:4d}  "
              f"score {r['test_score']:.5f}")
    if args.no_save:
        return
    device = device_name(args.device)
    lines = [f"# bench_working_set: {device}, {dt.date.today()}", "",
             f"Decomposition solver, fit time against the working set size q; medians of {args.repeats} interleaved runs.",
             "", "| problem | q | fit (s) | outer iterations | test score |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['problem']} | {r['q']} | {r['fit_s']:.2f} | {r['outer_iterations']} | {r['test_score']:.5f} |"
              for r in rows]
    save_record(f"working-set-{'cuda' if args.device.startswith('cuda') else 'cpu'}-{dt.date.today()}",
                {"benchmark": "bench_working_set", "date": str(dt.date.today()), "device": device, "rows": rows},
                lines, args.tag)


if __name__ == "__main__":
    main()
