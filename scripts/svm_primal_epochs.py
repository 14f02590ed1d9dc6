#!/usr/bin/env python
"""Batch subgradient descent on the SVM primal for NumEpochs in [1, 3, 10, 30, 100].

    python scripts/svm_primal_epochs.py --data-dir ../shared/data/mnist-10k --digits 3 8

A binary MNIST task (one digit as -1, the other as +1, pixels / 255), C = 5, lr = 1e-3, w = 0 and
b = 0 at the start of each of the five runs. For each run it reports ||w||, the first entries of
w, b, the final primal objective and the test accuracy, as a Markdown table (printed and written
to svm_primal_epochs.md) and a plot (svm_primal_epochs.png) under --output-dir.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from torchsvm.data import load_images  # noqa: E402
from torchsvm.solvers.primal import primal_gd  # noqa: E402


def binary_split(dataset: str, split: str, data_dir: str | None, digits: tuple[int, int], download: bool):
    """Images of the two digits as float64 rows in [0, 1] and labels -1 (first) / +1 (second)."""
    images, labels = load_images(dataset, split, data_dir, download)
    keep = (labels == digits[0]) | (labels == digits[1])
    X = images[keep].reshape(int(keep.sum()), -1).to(torch.float64) / 255.0
    y = torch.where(labels[keep] == digits[1], 1.0, -1.0).to(torch.float64)
    return X, y


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description="Batch GD on the SVM primal for several epoch counts.")
    p.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--no-download", action="store_true")
    p.add_argument("--digits", type=int, nargs=2, default=(3, 8), metavar=("NEG", "POS"))
    p.add_argument("--C", type=float, default=5.0)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--epochs", type=int, nargs="+", default=[1, 3, 10, 30, 100])
    p.add_argument("--output-dir", default="outputs/svm_primal_epochs")
    args = p.parse_args(argv)
    if args.digits[0] == args.digits[1]:
        p.error(f"--digits needs two different classes, got {args.digits}")

    X, y = binary_split(args.dataset, "train", args.data_dir, tuple(args.digits), not args.no_download)
    Xt, yt = binary_split(args.dataset, "test", args.data_dir, tuple(args.digits), not args.no_download)
    rows, curves = [], {}
    for epochs in args.epochs:
        w, b, objectives = primal_gd(X, y, C=args.C, lr=args.lr, epochs=epochs)
        acc = float((torch.where(Xt @ w + b > 0, 1.0, -1.0) == yt).double().mean())
        rows.append({"epochs": epochs, "w_norm": float(w.norm()), "w_head": w[:5].tolist(), "w_max": float(w.abs().max()),
                     "b": float(b),
                     "objective": objectives[-1], "test_acc": acc})
        curves[epochs] = objectives

    lines = [f"Batch GD, {args.dataset} {args.digits[0]} (-1) vs {args.digits[1]} (+1): {len(y)} train, "
             f"{len(yt)} test, C = {args.C}, lr = {args.lr}", "",
             "| NumEpochs | \\|\\|w\\|\\| | w[:5] | max \\|w_j\\| | b | objective | test accuracy |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        head = ", ".join(f"{v:.3g}" for v in r["w_head"])
        lines.append(f"| {r['epochs']} | {r['w_norm']:.4f} | [{head}] | {r['w_max']:.4f} | {r['b']:.4f} | {r['objective']:.2f} "
                     f"| {r['test_acc']:.4f} |")
    table = "\n".join(lines)
    print(table)

    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "svm_primal_epochs.md").write_text(table + "\n")
    fig, (ax_acc, ax_obj) = plt.subplots(1, 2, figsize=(10, 4))
    ax_acc.plot([r["epochs"] for r in rows], [r["test_acc"] for r in rows], marker="o")
    ax_acc.set(xscale="log", xlabel="NumEpochs", ylabel="test accuracy", title="test accuracy after NumEpochs")
    longest = max(curves)
    ax_obj.plot(range(len(curves[longest])), curves[longest])
    ax_obj.set(yscale="log", xlabel="epoch", ylabel="primal objective E(w, b)",
               title=f"objective during the {longest}-epoch run")
    for ax in (ax_acc, ax_obj):
        ax.grid(alpha=0.3)
    fig.suptitle(f"SVM primal by batch GD: digits {args.digits[0]} vs {args.digits[1]}, C={args.C}, lr={args.lr}")
    fig.tight_layout()
    fig.savefig(out / "svm_primal_epochs.png", dpi=120)
    plt.close(fig)
    print(f"\nwrote {out / 'svm_primal_epochs.md'} and {out / 'svm_primal_epochs.png'}")
    return rows


if __name__ == "__main__":
    main()
