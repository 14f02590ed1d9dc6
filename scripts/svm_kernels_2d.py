#!/usr/bin/env python
"""Kernel SVM decision boundaries on 2-D data sets, and asymmetric costs beside symmetric ones.

    python scripts/svm_kernels_2d.py --output-dir outputs/svm_kernels_2d

Decision boundaries of kernel SVMs: three data sets (linearly separable blobs, moons, circles) by three
kernels (linear, polynomial of degree 3, RBF), each fitted with torchsvm.SVC on 70% of the points
and scored on the other 30% (test accuracy in each title). Solid line f(x) = 0, dashed
f(x) = +-1, support vectors circled. A second figure puts the symmetric RBF solution on
overlapping classes beside the asymmetric one where errors on class +1 cost --cost-ratio times
more (C1 = r C0): the boundary moves into class -1. Writes kernels_2d.png and asymmetric_2d.png
and prints the accuracies as a Markdown table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import make_blobs, make_circles, make_moons  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from torchsvm import SVC  # noqa: E402

KERNELS = {
    "linear": dict(kernel="linear"),
    "polynomial (degree 3)": dict(kernel="poly", degree=3, coef0=1.0, gamma="scale"),
    "RBF": dict(kernel="rbf", gamma=2.0),
}


def datasets(n: int, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    blobs = make_blobs(n, centers=[[-1.5, -1.0], [1.5, 1.0]], cluster_std=0.7, random_state=seed)
    return {
        "linearly separable": blobs,
        "moons": make_moons(n, noise=0.15, random_state=seed),
        "circles": make_circles(n, noise=0.08, factor=0.45, random_state=seed),
    }


Split = tuple[np.ndarray, np.ndarray]


def draw(ax, clf: SVC, train: Split, test: Split, title: str) -> float:
    """Filled decision regions, f = 0 and f = +-1, points, circled support vectors; returns test accuracy."""
    points = np.vstack([train[0], test[0]])
    lo, hi = points.min(0) - 0.4, points.max(0) + 0.4
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 250), np.linspace(lo[1], hi[1], 250))
    f = clf.decision_function(np.c_[gx.ravel(), gy.ravel()]).reshape(gx.shape)
    ax.contourf(gx, gy, f, levels=[-1e9, 0, 1e9], colors=["#cfe2f3", "#f4cccc"], alpha=0.6)
    ax.contour(gx, gy, f, levels=[-1, 0, 1], colors="k", linestyles=["--", "-", "--"], linewidths=1)
    for (X, y), marker in ((train, "o"), (test, "^")):
        ax.scatter(*X[y == clf.classes_[0]].T, c="tab:blue", s=12, marker=marker)
        ax.scatter(*X[y == clf.classes_[1]].T, c="tab:red", s=12, marker=marker)
    ax.scatter(*clf.support_vectors_.T, s=60, facecolors="none", edgecolors="k", linewidths=0.8)
    acc = clf.score(*test)
    ax.set_title(f"{title}\ntest acc {acc:.3f}, {len(clf.support_)} SVs", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return acc


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    p = argparse.ArgumentParser(description="Kernel SVM decision boundaries on 2-D data sets.")
    p.add_argument("--n", type=int, default=300, help="points per data set")
    p.add_argument("--C", type=float, default=1.0)
    p.add_argument("--cost-ratio", type=float, default=10.0, help="C1 / C0 in the asymmetric panel")
    p.add_argument("--output-dir", default="outputs/svm_kernels_2d")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)

    accuracies: dict[str, dict[str, float]] = {}
    fig, axes = plt.subplots(3, 3, figsize=(12, 12))
    for r, (name, (X, y)) in enumerate(datasets(args.n, args.seed).items()):
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=args.seed, stratify=y)
        accuracies[name] = {}
        for c, (kname, params) in enumerate(KERNELS.items()):
            clf = SVC(C=args.C, device=args.device, **params).fit(X_tr, y_tr)
            accuracies[name][kname] = draw(axes[r, c], clf, (X_tr, y_tr), (X_te, y_te), f"{name}, {kname}")
    fig.suptitle(f"SVC, C = {args.C:g}: solid f(x) = 0, dashed f(x) = +-1, circles: support vectors, "
                 "triangles: test points")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(out / "kernels_2d.png", dpi=100)
    plt.close(fig)

    # Asymmetric costs on overlapping classes: C0 for y = -1 (class 0), C1 = r C0 for y = +1.
    X, y = make_blobs(args.n, centers=[[-0.8, 0.0], [0.8, 0.0]], cluster_std=0.9, random_state=args.seed)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=args.seed, stratify=y)
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.5))
    for ax, weights, title in (
        (axes[0], None, f"symmetric: C0 = C1 = {args.C:g}"),
        (axes[1], {0: 1.0, 1: args.cost_ratio}, f"asymmetric: C0 = {args.C:g}, C1 = {args.C * args.cost_ratio:g}"),
    ):
        clf = SVC(C=args.C, kernel="rbf", gamma=1.0, class_weight=weights, device=args.device).fit(X_tr, y_tr)
        acc = draw(ax, clf, (X_tr, y_tr), (X_te, y_te), title)
        missed = float((clf.predict(X_te)[y_te == 1] != 1).mean())
        ax.set_title(ax.get_title() + f", class +1 missed: {missed:.1%}", fontsize=9)
        accuracies.setdefault("asymmetric blobs", {})[title.split(":")[0]] = acc
    fig.suptitle("RBF SVC on overlapping classes (blue: y = -1, red: y = +1)")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(out / "asymmetric_2d.png", dpi=100)
    plt.close(fig)

    kernel_names = list(KERNELS)
    print("| data | " + " | ".join(kernel_names) + " |")
    print("| --- |" + " --- |" * len(kernel_names))
    for name in list(accuracies)[:3]:
        print(f"| {name} | " + " | ".join(f"{accuracies[name][k]:.3f}" for k in kernel_names) + " |")
    print(f"wrote {out / 'kernels_2d.png'} and {out / 'asymmetric_2d.png'}")
    return accuracies


if __name__ == "__main__":
    main()
