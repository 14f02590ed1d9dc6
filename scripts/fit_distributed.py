#!/usr/bin/env python
"""Fit SVC or LinearSVC on MNIST / Fashion-MNIST with the rows sharded over torchrun's processes.

    torchrun --nproc-per-node 2 scripts/fit_distributed.py --dataset fashion-mnist \\
        --data-dir ../shared/data/fashion-mnist --model svc --C 10 --n-train 20000

Every rank reads the images, keeps its contiguous block of a seeded shuffle of the first
--n-train training rows, and fits with ``distributed=True``; every rank ends with the same model.
Each rank then predicts its own block of the test set (prediction needs no other rank) and the
correct counts are summed. Rank 0 prints the fit time, the bytes this rank sent and the test
accuracy; the last line is ``test_acc=<value>``. NCCL with one GPU per rank where CUDA is there
(``LOCAL_RANK`` picks it), gloo on CPUs. Runs without torchrun too, as one process.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

from torchsvm import SVC, LinearSVC
from torchsvm.data import load_images
from torchsvm.distributed import block_of


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist")
    p.add_argument("--data-dir", default=None, help="root holding MNIST/raw or FashionMNIST/raw "
                   "(default: $TORCHSVM_DATA_DIR, else ./data)")
    p.add_argument("--download", action="store_true", help="download the dataset (rank 0 first) if missing")
    p.add_argument("--model", choices=["svc", "linear-svc"], default="svc")
    p.add_argument("--n-train", type=int, default=None, help="first N training images only (default: all)")
    p.add_argument("--C", type=float, default=1.0)
    p.add_argument("--kernel", choices=["rbf", "linear", "poly"], default="rbf")
    p.add_argument("--gamma", default="scale", help="'scale', 'auto' or a float")
    p.add_argument("--multi-class", choices=["ovo", "ovr"], default="ovo")
    p.add_argument("--tol", type=float, default=1e-3)
    p.add_argument("--working-set-size", type=int, default=1024)
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds a rank waits for a stopped peer before it fails")
    p.add_argument("--seed", type=int, default=0, help="of the shuffle before sharding")
    args = p.parse_args(argv)
    if args.gamma not in ("scale", "auto"):
        args.gamma = float(args.gamma)
    return args


def flat(images: torch.Tensor) -> torch.Tensor:
    return images.reshape(len(images), -1).to(torch.float32) / 255.0


def main(argv: list[str] | None = None) -> float:
    args = parse_args(argv)
    cuda = torch.cuda.is_available()
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    # Under torchrun the environment says where to meet; alone, a group of one meets in a temporary file.
    alone = {} if "RANK" in os.environ else dict(init_method=f"file://{tempfile.mkdtemp()}/rendezvous", rank=0,
                                                  world_size=1)
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(seconds=args.timeout), **alone)
    rank, world = dist.get_rank(), dist.get_world_size()
    try:
        if args.download and rank == 0:
            load_images(args.dataset, "train", args.data_dir, download=True)
            load_images(args.dataset, "test", args.data_dir, download=True)
        dist.barrier()
        X, y = load_images(args.dataset, "train", args.data_dir)
        X_test, y_test = load_images(args.dataset, "test", args.data_dir)
        order = torch.randperm(len(X), generator=torch.Generator().manual_seed(args.seed))[: args.n_train]
        mine = order[block_of(len(order), rank, world)]
        X_r, y_r = flat(X[mine]).to(device), y[mine]
        if args.model == "svc":
            model = SVC(C=args.C, kernel=args.kernel, gamma=args.gamma, multi_class=args.multi_class, tol=args.tol,
                        working_set_size=args.working_set_size, device=device, distributed=True)
        else:
            model = LinearSVC(C=args.C, tol=args.tol, device=device, distributed=True)
        start = time.perf_counter()
        model.fit(X_r, y_r)
        seconds = time.perf_counter() - start
        test = block_of(len(X_test), rank, world)
        correct = torch.tensor([float((model.predict(flat(X_test[test]).to(device)) == y_test[test].numpy()).sum())],
                               device=device)
        dist.all_reduce(correct)
        accuracy = float(correct) / len(X_test)
        if rank == 0:
            print(f"{args.model} on {len(order)} {args.dataset} rows over {world} process(es) ({device.type}): "
                  f"fit {seconds:.2f} s, {traffic(model, X_r.shape[1], args.working_set_size)}")
            print(f"test_acc={accuracy:.4f}")
        return accuracy
    finally:
        dist.destroy_process_group()


def traffic(model, n_features: int, q: int) -> str:
    """Rank 0's bytes sent, and per iteration, set against the cost model (docs/guide/distributed.md) where there is one."""
    sent = model.bytes_sent_
    if isinstance(model, SVC):  # each binary problem's outer iteration sends its own working set
        steps = int(np.sum(model.n_iter_))
        expected = 8 * (q * n_features / 2 + 6 * q + 2)
        return (f"{sent / 2**20:.1f} MiB sent by rank 0 over {steps} problem-iterations ({len(model.n_iter_)} binary "
                f"problems stepped together): {sent / max(steps, 1) / 2**20:.2f} MiB each, the cost model's "
                f"8 B (q D/2 + 6 q + 2) = {expected / 2**20:.2f} MiB at q = {q}, D = {n_features}")
    each = sent / max(model.n_iter_, 1) / 2**20
    return f"{sent / 2**20:.1f} MiB sent by rank 0 in {model.n_iter_} Newton steps ({each:.2f} MiB each)"


if __name__ == "__main__":
    main()
