#!/usr/bin/env python
"""Cost of one SMO step: the torch step (~50 small ops) against the Triton kernel (all steps in one launch).

    python benchmarks/bench_smo_steps.py --device cuda

For each size, B random RBF problems (20 features, gamma 0.05, C = 1, random labels) are solved
to tol 1e-3 by ``smo_dual`` with each backend, in float32 kernel values and float64 state (SVC's
arrangement); time per step = median wall time of --repeats solves / the steps of the longest problem.
The Triton backend needs CUDA (on the CPU only the torch step is timed). Results go to
benchmarks/results/smo-steps-<device>-<date>[-<tag>].{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
import warnings

import numpy as np
import torch
from _record import add_record_arguments, device_name, device_sync, save_record
from sklearn.exceptions import ConvergenceWarning

from torchsvm.kernels import rbf_kernel
from torchsvm.solvers.dual import smo_dual


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--sizes", default="1000x1,2000x1,12000x1,1600x45,12000x45", help="N x B, comma-separated")
    p.add_argument("--repeats", type=int, default=3)
    add_record_arguments(p)
    args = p.parse_args(argv)
    device, sync = torch.device(args.device), device_sync(args.device)
    backends = ["torch", "triton"] if device.type == "cuda" else ["torch"]
    rows = []
    for size in args.sizes.split(","):
        N, B = (int(v) for v in size.split("x"))
        g = torch.Generator().manual_seed(0)
        X = torch.randn(B, N, 20, generator=g).to(device)
        K = rbf_kernel(X, gamma=0.05) if B > 1 else rbf_kernel(X[0], gamma=0.05)
        Y = torch.where(torch.rand(B, N, generator=g) > 0.5, 1.0, -1.0).double().to(device)
        row = {"N": N, "B": B}
        for backend in backends:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                smo_dual(K, Y, 1.0, dtype=torch.float64, backend=backend, max_iter=50)  # warm-up / build
            times, steps = [], 0
            for _ in range(args.repeats):
                sync()
                t0 = time.perf_counter()
                res = smo_dual(K, Y, 1.0, tol=1e-3, dtype=torch.float64, backend=backend)
                sync()
                times.append(time.perf_counter() - t0)
                steps = int(res.info.problem_iters.max())
            t = float(np.median(times))
            row[backend] = {"solve_s": t, "steps": steps, "ms_per_step": 1e3 * t / steps}
        if len(backends) == 2:
            row["speedup"] = row["torch"]["solve_s"] / row["triton"]["solve_s"]
        rows.append(row)
        print(row, flush=True)
    record = {"benchmark": "bench_smo_steps", "date": dt.date.today().isoformat(), "device": device_name(device),
              "torch": torch.__version__, "rows": rows}
    if args.no_save:
        return
    lines = [f"# bench_smo_steps: {record['device']}, {record['date']}", "",
             "B random RBF problems of N samples solved to tol 1e-3 (float32 kernel, float64 state); "
             f"median of {args.repeats} solves; per step = solve time / steps of the longest problem.", "",
             "| N | B | " + " | ".join(f"{b} solve (s) | {b} steps | {b} ms/step" for b in backends)
             + (" | speedup |" if len(backends) == 2 else " |"),
             "| --- | --- | " + " | ".join("--- | --- | ---" for _ in backends) + (" | --- |" if len(backends) == 2 else " |")]
    for r in rows:
        cells = " | ".join(f"{r[b]['solve_s']:.3f} | {r[b]['steps']} | {r[b]['ms_per_step']:.4f}" for b in backends)
        lines.append(f"| {r['N']} | {r['B']} | {cells}" + (f" | {r['speedup']:.1f}x |" if "speedup" in r else " |"))
    save_record(f"smo-steps-{device.type}-{record['date']}", record, lines, args.tag)


if __name__ == "__main__":
    main()
