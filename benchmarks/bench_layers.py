#!/usr/bin/env python
"""Forward+backward time of the hand-written layers against torch's own, on the same net.

    python benchmarks/bench_layers.py --device cpu --repeats 30

Net: FC(in -> hidden) -> ReLU -> FC(hidden -> classes) -> softmax cross-entropy, one training
step's forward and backward (parameter gradients, as in training). The two nets share weights,
inputs and targets; their timings are interleaved so that drift hits both alike. Reports the
median of the repeats and the ratio hand-written / torch (median of the paired per-repeat ratios), and writes them to
benchmarks/results/layers-<device>-<date>[-<tag>].{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time

import torch
import torch.nn.functional as TF
from _record import add_record_arguments, device_name, device_sync, save_record

from torchsvm import functional as F
from torchsvm.nn import TwoLayerNet


def make_step(net: TwoLayerNet, X: torch.Tensor, y: torch.Tensor, hand_written: bool):
    fc1, fc2 = net.fc1, net.fc2

    def step() -> None:
        for p in (fc1.weight, fc1.bias, fc2.weight, fc2.bias):
            p.grad = None
        if hand_written:
            # validate=False: the targets were made in range; a training loop checks its labels once.
            logits = F.linear(F.relu(F.linear(X, fc1.weight, fc1.bias)), fc2.weight, fc2.bias)
            loss = F.cross_entropy(logits, y, validate=False)
        else:
            loss = TF.cross_entropy(TF.linear(TF.relu(TF.linear(X, fc1.weight, fc1.bias)), fc2.weight, fc2.bias), y)
        loss.backward()

    return step


def time_pair(steps: dict, device: torch.device, repeats: int, warmup: int) -> dict[str, list[float]]:
    sync = device_sync(device)
    for step in steps.values():
        for _ in range(warmup):
            step()
    sync()
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(repeats):
        for name, step in steps.items():  # interleaved
            sync()
            t0 = time.perf_counter()
            step()
            sync()
            times[name].append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Hand-written layers vs torch: forward+backward time.")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--configs", default="512x784x1024x10,512x784x4096x10,2048x784x4096x10",
                   help="comma-separated batch x in x hidden x classes")
    add_record_arguments(p)
    args = p.parse_args(argv)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)

    rows = []
    for cfg in args.configs.split(","):
        B, D, H, C = (int(v) for v in cfg.split("x"))
        torch.manual_seed(0)
        net = TwoLayerNet(D, H, C).to(device=device, dtype=dtype)
        X = torch.randn(B, D, device=device, dtype=dtype)
        y = torch.randint(0, C, (B,), device=device)
        steps = {"torch": make_step(net, X, y, False), "torchsvm": make_step(net, X, y, True)}
        times = time_pair(steps, device, args.repeats, args.warmup)
        med = {k: statistics.median(v) for k, v in times.items()}
        # Paired estimate: each repeat times both back to back, so the median of the per-repeat
        # ratios cancels the drift that moves both medians (seen at +-5% on a 2-core VM).
        paired = statistics.median(a / b for a, b in zip(times["torchsvm"], times["torch"], strict=True))
        row = {"config": cfg, "batch": B, "in": D, "hidden": H, "classes": C,
               "torch_ms": med["torch"] * 1e3, "torchsvm_ms": med["torchsvm"] * 1e3,
               "ratio_of_medians": med["torchsvm"] / med["torch"], "ratio": paired}
        rows.append(row)
        print(f"{cfg:>20}: torch {row['torch_ms']:8.3f} ms  torchsvm {row['torchsvm_ms']:8.3f} ms  "
              f"ratio {row['ratio']:.3f} (of medians {row['ratio_of_medians']:.3f})")

    record = {
        "benchmark": "bench_layers", "date": dt.date.today().isoformat(), "device": device_name(device),
        "device_type": device.type, "dtype": args.dtype, "torch": torch.__version__,
        "repeats": args.repeats, "statistic": "median", "rows": rows,
    }
    if args.no_save:
        return
    lines = [f"# bench_layers: {record['device']}, {record['date']}", "",
             f"torch {record['torch']}, {args.dtype}, median of {args.repeats} interleaved repeats, "
             "forward+backward of FC-ReLU-FC-cross-entropy. ratio = median of per-repeat torchsvm/torch ratios.", "",
             "| batch x in x hidden x classes | torch (ms) | torchsvm (ms) | ratio | ratio of medians |",
             "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['config']} | {r['torch_ms']:.3f} | {r['torchsvm_ms']:.3f} | {r['ratio']:.3f} "
              f"| {r['ratio_of_medians']:.3f} |" for r in rows]
    save_record(f"layers-{device.type}-{record['date']}", record, lines, args.tag)


if __name__ == "__main__":
    main()
