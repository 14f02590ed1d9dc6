#!/usr/bin/env python
"""Learn the RBF kernel's gamma by gradient descent on a validation loss, through svm_dual's backward.

    python scripts/learn_rbf_gamma.py --data-dir ../shared/data/mnist-10k --digits 4 9

The reason the dual has a backward: the SVM's decision on held-out points,
f(x) = sum_i alpha_i(gamma) y_i K_gamma(x_i, x) + b(gamma), depends on gamma both directly and
through the solution (alpha, b) of the dual QP. Each step solves the dual on the training
points (torchsvm.functional.svm_dual), evaluates the mean squared hinge loss on validation
points, and takes an Adam step on log(gamma) with the gradient that flows through the
implicit-differentiation backward. Prints a Markdown table of gamma, validation loss and
accuracy per step, and the test accuracy before and after; writes learn_rbf_gamma.png.
``--dataset moons`` runs on 2-D moons (no data needed).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import make_moons  # noqa: E402

from torchsvm.data import load_images  # noqa: E402
from torchsvm.functional import svm_dual  # noqa: E402
from torchsvm.kernels import rbf_kernel  # noqa: E402

Split = tuple[torch.Tensor, torch.Tensor]


def digit_pair(data_dir: str | None, digits: tuple[int, int], n: int) -> tuple[Split, Split, Split]:
    """Train / validation (n each, from the training split) and test sets of two digits, labels +-1."""
    out = []
    for split in ("train", "test"):
        images, labels = load_images("mnist", split, data_dir)
        keep = (labels == digits[0]) | (labels == digits[1])
        X = images[keep].flatten(1).double() / 255.0
        y = torch.where(labels[keep] == digits[1], 1.0, -1.0).double()
        out.append((X, y))
    (X, y), test = out
    return (X[:n], y[:n]), (X[n : 2 * n], y[n : 2 * n]), test


def moons(n: int, seed: int) -> tuple[Split, Split, Split]:
    def draw(k: int, s: int) -> Split:
        X, y = make_moons(k, noise=0.25, random_state=s)
        return torch.from_numpy(X), torch.from_numpy(2.0 * y - 1.0)

    return draw(n, seed), draw(n, seed + 1), draw(1000, seed + 2)


def decision(train: Split, alpha: torch.Tensor, b: torch.Tensor, X: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    X_tr, y_tr = train
    return rbf_kernel(X, X_tr, gamma=gamma) @ (alpha * y_tr) + b


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description="Learn the RBF gamma through the SVM dual's backward.")
    p.add_argument("--dataset", choices=["mnist", "moons"], default="mnist")
    p.add_argument("--data-dir", default=None, help="root holding MNIST/raw (default: $TORCHSVM_DATA_DIR or ./data)")
    p.add_argument("--digits", type=int, nargs=2, default=[4, 9])
    p.add_argument("--n", type=int, default=400, help="training points (and as many validation points)")
    p.add_argument("--C", type=float, default=1.0)
    p.add_argument("--gamma0", type=float, default=None, help="initial gamma (default: 1e-3 on mnist, 50 on moons)")
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--lr", type=float, default=0.3, help="Adam step on log(gamma)")
    p.add_argument("--output-dir", default="outputs/learn_rbf_gamma")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)

    train, val, test = digit_pair(args.data_dir, tuple(args.digits), args.n) if args.dataset == "mnist" \
        else moons(args.n, args.seed)
    gamma0 = args.gamma0 if args.gamma0 is not None else (1e-3 if args.dataset == "mnist" else 50.0)
    log_gamma = torch.tensor(math.log(gamma0), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([log_gamma], lr=args.lr)

    def test_accuracy() -> float:
        with torch.no_grad():
            gamma = log_gamma.exp()
            alpha, b = svm_dual(rbf_kernel(train[0], gamma=gamma), train[1], args.C)
            return float((decision(train, alpha, b, test[0], gamma).sign() == test[1]).double().mean())

    acc_before = test_accuracy()
    history = []
    for step in range(args.steps + 1):
        gamma = log_gamma.exp()
        alpha, b = svm_dual(rbf_kernel(train[0], gamma=gamma), train[1], args.C)
        f_val = decision(train, alpha, b, val[0], gamma)
        loss = (1 - val[1] * f_val).clamp_min(0).pow(2).mean()  # squared hinge: smooth in f
        acc = float((f_val.sign() == val[1]).double().mean())
        history.append((step, float(gamma.detach()), float(loss.detach()), acc))
        if step == args.steps:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    acc_after = test_accuracy()

    print("| step | gamma | val loss | val acc |\n| --- | --- | --- | --- |")
    for step, g, loss_v, acc in history:
        print(f"| {step} | {g:.4g} | {loss_v:.4f} | {acc:.4f} |")
    print(f"test accuracy: {acc_before:.4f} at gamma = {gamma0:g} -> {acc_after:.4f} at gamma = {history[-1][1]:.4g}")

    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    steps = [h[0] for h in history]
    ax1.plot(steps, [h[2] for h in history], marker="o")
    ax1.set_xlabel("step")
    ax1.set_ylabel("validation squared hinge")
    ax2.semilogy(steps, [h[1] for h in history], marker="o")
    ax2.set_xlabel("step")
    ax2.set_ylabel("gamma")
    fig.suptitle(f"Learning the RBF gamma through svm_dual ({args.dataset}): test acc {acc_before:.3f} -> {acc_after:.3f}")
    fig.tight_layout()
    fig.savefig(out / "learn_rbf_gamma.png", dpi=100)
    plt.close(fig)
    return {"gamma0": gamma0, "gamma": history[-1][1], "val_loss0": history[0][2], "val_loss": history[-1][2],
            "test_acc0": acc_before, "test_acc": acc_after}


if __name__ == "__main__":
    main()
