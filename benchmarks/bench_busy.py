#!/usr/bin/env python
"""A fit on a busy machine: each case of the benchmark matrix alone and beside 1 and 2 CPU-bound processes.

    python benchmarks/bench_busy.py                        # the matrix's quick cases
    python benchmarks/bench_busy.py --cases "n=5000" GridSearchCV --loads 0 1 2

For each case, and for each load in turn, N busy processes (a Python loop each: one core, normal priority)
are started, the case is measured as ``bench_matrix.py`` measures it (interleaved medians of torchsvm's
and scikit-learn's fits), and the processes are stopped. Reported per case and load: both libraries'
times, each as a multiple of its time alone, and torchsvm / scikit-learn under the same load. The issue's
bounds are flagged: torchsvm beside one process more than 2x its time alone, or slower than scikit-learn
beside the same processes. Records go to benchmarks/results/busy-cpu-<date>[-<tag>].{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import sys
import warnings

from _record import add_record_arguments, device_name, save_record
from bench_matrix import busy_loop, case_rows, cases, measure
from sklearn.exceptions import ConvergenceWarning


def _under_load(case, load: int, budget_scale: float) -> dict:
    busy = [multiprocessing.Process(target=busy_loop, daemon=True) for _ in range(load)]
    for proc in busy:
        proc.start()
    try:
        return measure(case, budget_scale)
    finally:
        for proc in busy:
            proc.terminate()
            proc.join()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", nargs="*", default=None, help="cases whose name contains one of these (default: quick)")
    p.add_argument("--loads", nargs="*", type=int, default=[0, 1, 2], help="busy processes beside each run")
    p.add_argument("--max-rows", type=int, default=None, help="skip generated cases with more training rows")
    p.add_argument("--budget-scale", type=float, default=0.5, help="scales each case's time budget")
    add_record_arguments(p)
    args = p.parse_args(argv)
    if 0 not in args.loads:
        p.error("--loads must include 0 (the time alone, which the others are divided by)")
    chosen = [c for c in cases() if (c.quick if args.cases is None else any(s in c.name for s in args.cases))
              and (args.max_rows is None or case_rows(c.name) <= args.max_rows)]
    rows, flagged = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for case in chosen:
            runs = {load: _under_load(case, load, args.budget_scale) for load in sorted(args.loads)}
            alone = runs[0]
            row = {"case": case.name, "loads": {}}
            for load, r in runs.items():
                entry = {"torchsvm_s": r["torchsvm_s"], "sklearn_s": r["sklearn_s"], "ratio": r["ratio"],
                         "torchsvm_x_alone": r["torchsvm_s"] / alone["torchsvm_s"],
                         "sklearn_x_alone": r["sklearn_s"] / alone["sklearn_s"]}
                entry["flags"] = [f for f, bad in (("over 2x alone", load == 1 and entry["torchsvm_x_alone"] > 2.0),
                                                   ("slower than scikit-learn", load > 0 and r["ratio"] > 1.0)) if bad]
                row["loads"][load] = entry
                if entry["flags"]:
                    flagged.append((case.name, load, entry["flags"]))
            rows.append(row)
            print(f"{case.name:44s} " + "  ".join(
                f"[{load}] {e['torchsvm_s'] * 1e3:8.2f} ms x{e['torchsvm_x_alone']:.2f} "
                f"(sk x{e['sklearn_x_alone']:.2f}, ratio {e['ratio']:.2f}){'!' if e['flags'] else ''}"
                for load, e in row["loads"].items()), flush=True)
    print(f"\n{len(flagged)} flagged (case, load): " + "; ".join(f"{c} [{load}] {', '.join(f)}" for c, load, f in flagged))
    if args.no_save:
        return 0
    device = device_name("cpu")
    date = dt.date.today().isoformat()
    record = {"benchmark": "bench_busy", "date": date, "device": device, "loads": args.loads, "cases": rows}
    header = " | ".join(f"beside {load}: torchsvm ms (x alone) | sk x alone | ratio" for load in sorted(args.loads))
    lines = [f"# bench_busy: {device}, {date}", "",
             "Each case measured as bench_matrix.py measures it (interleaved medians), alone and beside N CPU-bound "
             "processes (a Python loop each, normal priority). x alone: the time over the same library's time "
             "alone; ratio: torchsvm / scikit-learn under the same load; ! marks torchsvm beside one process over "
             "2x its time alone, or slower than scikit-learn beside the same processes.", "",
             f"| case | {header} |", "| --- |" + " --- | --- | --- |" * len(args.loads)]
    for row in rows:
        cells = " | ".join(f"{e['torchsvm_s'] * 1e3:.2f} (x{e['torchsvm_x_alone']:.2f}){' !' if e['flags'] else ''} | "
                           f"x{e['sklearn_x_alone']:.2f} | {e['ratio']:.2f}" for e in row["loads"].values())
        lines.append(f"| {row['case']} | {cells} |")
    lines += ["", f"{len(flagged)} flagged: " + ("; ".join(f"{c} beside {load}: {', '.join(f)}" for c, load, f in flagged)
                                                 or "none") + "."]
    save_record(f"busy-cpu-{date}", record, lines, args.tag)
    return 0


if __name__ == "__main__":
    sys.exit(main())
