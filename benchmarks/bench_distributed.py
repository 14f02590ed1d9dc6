#!/usr/bin/env python
"""Sharded fits over 1, 2, ... processes on the same data: fit time, bytes sent per iteration, accuracy.

    python benchmarks/bench_distributed.py --data-root ../shared/data --ranks 1 2 --n-train 5000

For each model (``SVC``: RBF, C = 10, one-vs-one, working set 1024; ``LinearSVC``: hinge, C = 0.1)
and each number of ranks R, R processes of one process group (gloo on the CPU; NCCL with one GPU
per rank where R GPUs are there) each take a contiguous block of the first --n-train rows of a
seeded shuffle of Fashion-MNIST (or --dataset) and fit with ``distributed=True``; each then
predicts its block of the test set. Reported: the slowest rank's fit time, rank 0's bytes handed
to collectives in all and per outer iteration (SVC: decomposition iterations summed over pairs;
LinearSVC: Newton steps), the SVC cost model's prediction of the bytes per iteration, test
accuracy, and, beside them, the plain single-process fit (``distributed=False``) of the same rows.
On one machine's CPU cores the point is correctness and the communication volume; the speed-up
needs devices that do not share cores. Results go to
benchmarks/results/distributed-<device>-<date>[-<tag>].{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

import numpy as np
import torch
from _data import add_data_arguments, load_flat
from _record import add_record_arguments, device_name, save_record

from torchsvm import SVC, LinearSVC
from torchsvm.distributed import block_of, run_local

MODELS = {
    "svc": (SVC, dict(C=10.0, kernel="rbf", gamma="scale", working_set_size=1024)),
    "linear-svc": (LinearSVC, dict(C=0.1)),
}


def _fit_rank(rank: int, world: int, data: tuple, model: str, device_type: str) -> dict:
    X, y, X_test, y_test = data
    device = torch.device("cuda", rank) if device_type == "cuda" else torch.device("cpu")
    rows, test = block_of(len(X), rank, world), block_of(len(X_test), rank, world)
    cls, params = MODELS[model]
    est = cls(device=device, distributed=True, **params)
    X_r = torch.as_tensor(X[rows], device=device)
    if device_type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    est.fit(X_r, y[rows])
    if device_type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    iterations = int(np.sum(est.n_iter_))
    return dict(seconds=seconds, bytes=int(est.bytes_sent_), iterations=iterations,
                correct=int((est.predict(X_test[test]) == y_test[test]).sum()))


def svc_bytes_per_iteration(q: int, D: int) -> float:
    """The cost model of one pair's outer iteration (B = 1), steady state: 8 (q D / 2 + 6 q + 2) bytes."""
    return 8 * (q * D / 2 + 6 * q + 2)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(p, ["fashion-mnist"])
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--seed", type=int, default=0)
    add_record_arguments(p)
    args = p.parse_args(argv)
    if args.n_train is None:
        args.n_train = 5000
    device_type = "cuda" if torch.cuda.is_available() and torch.cuda.device_count() >= max(args.ranks) else "cpu"
    backend = "nccl" if device_type == "cuda" else "gloo"
    (name,) = args.datasets
    X, y, X_test, y_test = load_flat(name, Path(args.data_root), None)
    order = np.random.default_rng(args.seed).permutation(len(X))[: args.n_train]
    data = (X[order], y[order], X_test, y_test)
    rows, lines = [], [f"# Sharded fits, {name} ({args.n_train} training rows), "
                       f"{device_name('cuda' if device_type == 'cuda' else 'cpu')}, {backend}, {dt.date.today()}", "",
                       "| model | ranks | fit (s) | MiB sent by rank 0 | iterations | bytes / iteration | "
                       "model's bytes / iteration | test acc |", "|---|---|---|---|---|---|---|---|"]
    for model in args.models:
        cls, params = MODELS[model]
        device = "cuda" if device_type == "cuda" else "cpu"
        start = time.perf_counter()
        plain = cls(device=device, **params).fit(torch.as_tensor(data[0], device=device), data[1])
        if device_type == "cuda":
            torch.cuda.synchronize()
        plain_seconds = time.perf_counter() - start
        plain_acc = float((plain.predict(X_test) == y_test).mean())
        rows.append(dict(model=model, ranks=0, seconds=plain_seconds, test_acc=plain_acc))
        lines.append(f"| {model} | 1, not sharded | {plain_seconds:.2f} | - | - | - | - | {plain_acc:.4f} |")
        for world in args.ranks:
            out = run_local(_fit_rank, data, model, device_type, world_size=world, backend=backend, timeout_s=1800)
            seconds = max(o["seconds"] for o in out)
            acc = sum(o["correct"] for o in out) / len(y_test)
            per_iter = out[0]["bytes"] / max(1, out[0]["iterations"])
            predicted = svc_bytes_per_iteration(params["working_set_size"], X.shape[1]) if model == "svc" else None
            rows.append(dict(model=model, ranks=world, seconds=seconds, bytes=out[0]["bytes"],
                             iterations=out[0]["iterations"], bytes_per_iteration=per_iter,
                             predicted_bytes_per_iteration=predicted, test_acc=acc))
            lines.append(f"| {model} | {world} | {seconds:.2f} | {out[0]['bytes'] / 2**20:.1f} | {out[0]['iterations']} | "
                         f"{per_iter:,.0f} | {'-' if predicted is None else f'{predicted:,.0f}'} | {acc:.4f} |")
            print(lines[-1], flush=True)
    record = dict(dataset=name, n_train=args.n_train, device=device_name(device_type), backend=backend,
                  date=str(dt.date.today()), rows=rows)
    print("\n".join(lines))
    if not args.no_save:
        save_record(f"distributed-{device_type}-{dt.date.today()}", record, lines, args.tag)


if __name__ == "__main__":
    main()
