"""Build torchsvm's compiled CPU loops ahead of their first use: ``python -m torchsvm.precompile``.

The first fit of each solver after an installation compiles its loops (numba, some seconds each) and
caches them for later processes. This runs every estimator's CPU paths once on small generated
problems, so that the cache holds the loops a fit takes, and says how many it built and how long it
took. The README's setup and the Dockerfile run it; running it again builds nothing.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import torch

__all__ = ["precompile"]


def _fits() -> None:
    """One fit (and a few-row predict) through every compiled path, on data shaped as the paths need."""
    import torchsvm as ts
    from torchsvm.functional import crammer_singer_dual
    from torchsvm.solvers import smo_dual

    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    y = np.arange(60) % 3
    X_many = rng.standard_normal((1200, 4))  # above the serial size: the threaded loops
    y_many = (X_many[:, 0] + 0.3 * rng.standard_normal(1200) > 0).astype(int)
    target = X @ rng.standard_normal(4)
    for model in (ts.SVC(), ts.NuSVC(nu=0.3), ts.SVC(kernel="linear")):
        model.fit(X, y).predict(X[:2])
    ts.SVC().fit(X_many, y_many)
    ts.SVR().fit(X, target).predict(X[:2])
    ts.NuSVR().fit(X, target)
    ts.OneClassSVM().fit(X).predict(X[:2])
    for params in ({}, {"loss": "hinge"}, {"penalty": "l1", "dual": False}, {"multi_class": "crammer_singer"}):
        ts.LinearSVC(**params).fit(X, y)
    # Coordinate descent (asked for: "auto" gives so narrow an X the compiled Newton method), threaded.
    ts.LinearSVC(solver="dcd").fit(X_many, y_many)
    ts.LinearSVC(solver="newton-cg").fit(X_many, y_many)  # "auto"'s on sparse rows at moderate C ||x||^2
    for loss in ("epsilon_insensitive", "squared_epsilon_insensitive"):
        ts.LinearSVR(loss=loss, solver="dcd").fit(X, target)  # its one-variable coordinate descent
    Xt = torch.from_numpy(X)
    for dtype in (torch.float64, torch.float32):  # the batched SMO backend, and the Crammer-Singer head
        K = (Xt @ Xt.T).to(dtype)
        smo_dual(K, torch.from_numpy(np.where(y == 0, 1.0, -1.0)).to(dtype), 1.0)
        crammer_singer_dual(K, torch.from_numpy(y), 1.0)


def precompile() -> tuple[int, float]:
    """Build (or load from numba's cache) every compiled loop the estimators use on the CPU. Returns how
    many loops were built in this call (0 when the cache held them all) and the seconds it took."""
    from torchsvm import _jit

    start = time.perf_counter()
    before = _jit.builds()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence on the small problems is not the point here
        _fits()
    return _jit.builds() - before, time.perf_counter() - start


def main() -> None:
    import logging

    logging.getLogger("torchsvm").setLevel(logging.ERROR)  # this command is the notice
    built, seconds = precompile()
    where = "numba's cache" if built else "numba's cache, already there"
    print(f"torchsvm: {built} compiled loops built in {seconds:.1f} s ({where}).")


if __name__ == "__main__":
    main()
