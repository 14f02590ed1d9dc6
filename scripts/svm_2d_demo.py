#!/usr/bin/env python
"""Decision boundary and margins of a linear SVM on 2-D data: the effect of C and of asymmetric costs.

    python scripts/svm_2d_demo.py --output-dir outputs/svm_2d

Three panels on the same two overlapping Gaussian classes: a large C (hard-margin-like: few
violations, narrow margin), a small C (soft margin: wide margin, many violators), and the small
C with errors on the +1 class 10x costlier (C1 = 10 C0: the boundary moves towards -1). Solid
line f(x) = 0, dashed lines f(x) = +-1, support vectors (y f(x) <= 1) circled. Writes svm_2d.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from torchsvm import LinearSVC  # noqa: E402


def two_classes(n: int = 80, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal([-1.2, -0.8], 0.9, (n, 2)), rng.normal([1.2, 0.8], 0.9, (n, 2))])
    y = np.repeat([-1, 1], n)
    return X, y


def panel(ax, X: np.ndarray, y: np.ndarray, clf: LinearSVC, title: str) -> None:
    lo, hi = X.min(0) - 0.5, X.max(0) + 0.5
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 300), np.linspace(lo[1], hi[1], 300))
    f = clf.decision_function(np.c_[gx.ravel(), gy.ravel()]).reshape(gx.shape)
    ax.contourf(gx, gy, f, levels=[-1e9, 0, 1e9], colors=["#cfe2f3", "#f4cccc"], alpha=0.6)
    ax.contour(gx, gy, f, levels=[-1, 0, 1], colors="k", linestyles=["--", "-", "--"], linewidths=1)
    ax.scatter(*X[y < 0].T, c="tab:blue", s=14, label="y = -1")
    ax.scatter(*X[y > 0].T, c="tab:red", s=14, label="y = +1")
    sv = y * clf.decision_function(X) <= 1 + 1e-6
    ax.scatter(*X[sv].T, s=70, facecolors="none", edgecolors="k", linewidths=0.8, label="support vectors")
    errors = int((clf.predict(X) != y).sum())
    margin = 1 / np.linalg.norm(clf.coef_[0])
    ax.set_title(f"{title}\nmargin 1/||w|| = {margin:.2f}, {int(sv.sum())} SVs, {errors} errors", fontsize=9)
    ax.set_aspect("equal")


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description="Linear SVM on 2-D data: effect of C and asymmetric costs.")
    p.add_argument("--large-C", type=float, default=100.0)
    p.add_argument("--small-C", type=float, default=0.05)
    p.add_argument("--cost-ratio", type=float, default=10.0, help="C1 / C0 in the asymmetric panel")
    p.add_argument("--output-dir", default="outputs/svm_2d")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    X, y = two_classes(seed=args.seed)
    svm = dict(loss="hinge", penalize_intercept=False, device="cpu")  # the soft-margin SVM of the course: free bias
    fits = [
        (LinearSVC(C=args.large_C, max_iter=1000, **svm), f"C = {args.large_C:g} (hard-margin-like)"),
        (LinearSVC(C=args.small_C, **svm), f"C = {args.small_C:g} (soft margin)"),
        (LinearSVC(C=args.small_C, class_weight={-1: 1.0, 1: args.cost_ratio}, **svm),
         f"C0 = {args.small_C:g}, C1 = {args.cost_ratio * args.small_C:g} (asymmetric)"),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(15, 5))
    for ax, (clf, title) in zip(axes, fits, strict=True):
        panel(ax, X, y, clf.fit(X, y), title)
    axes[0].legend(loc="upper left", fontsize=8)
    fig.suptitle("Soft-margin linear SVM (hinge loss): solid f(x) = 0, dashed f(x) = +-1")
    fig.tight_layout(rect=(0, 0, 1, 0.93))  # leave room for the suptitle
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "svm_2d.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
