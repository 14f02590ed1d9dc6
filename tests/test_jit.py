"""The compiled loops' first build: one notice with its time, and ``precompile`` covering the estimators' loops."""

import logging

import numba
import numpy as np
import pytest
from sklearn.datasets import load_iris, make_classification, make_regression

import torchsvm as ts
from torchsvm import _jit
from torchsvm.precompile import precompile


def _new_loop(name):
    """A loop that no cache holds, defined as if in a torchsvm module (the notice reads the module)."""

    def loop(x):
        return x + 1.0

    loop.__module__ = "torchsvm._test_loops"
    loop.__qualname__ = name
    return numba.njit(loop)


def test_first_build_is_told_once_with_its_time(caplog):
    from numba.core import event

    notice = _jit._BuildNotice()  # a fresh one in place of the process's (which may have told already)
    event.unregister("numba:compile", _jit._notice)
    event.register("numba:compile", notice)
    try:
        with caplog.at_level(logging.WARNING, logger="torchsvm"):
            _new_loop("first")(1.0)
            _new_loop("second")(1.0)
            numba.njit(lambda x: x * 2.0)(1.0)  # not torchsvm's: not counted
    finally:
        event.unregister("numba:compile", notice)
        event.register("numba:compile", _jit._notice)
    messages = [r.getMessage() for r in caplog.records if r.name == "torchsvm"]
    assert len(messages) == 2 and "precompile" in messages[0]
    assert messages[1].startswith("torchsvm: compiled in ") and messages[1].endswith(" s.")
    assert notice.count == 2


@pytest.mark.slow
def test_precompile_covers_the_estimators_loops():
    """After precompile (which builds or loads every loop), common fits and predictions build nothing more."""
    precompile()
    before = _jit.builds()
    X, y = load_iris(return_X_y=True)
    Xb, yb = make_classification(1500, 20, random_state=0)
    Xr, yr = make_regression(200, 8, random_state=0)
    for model in (ts.SVC(), ts.SVC(kernel="poly", C=10), ts.NuSVC(), ts.LinearSVC(), ts.LinearSVC(loss="hinge"),
                  ts.LinearSVC(loss="hinge", C=0.01), ts.LinearSVC(multi_class="crammer_singer"),
                  ts.LinearSVC(penalty="l1", dual=False)):
        model.fit(X, y).predict(X[:3])
    for model in (ts.SVC(), ts.LinearSVC(C=100), ts.LinearSVC(solver="newton-cg")):
        model.fit(Xb, yb).predict(Xb)
    for model in (ts.SVR(), ts.NuSVR(), ts.LinearSVR(), ts.LinearSVR(loss="squared_epsilon_insensitive"),
                  ts.LinearSVR(C=0.01)):
        model.fit(Xr, yr).predict(Xr[:3])
    ts.OneClassSVM().fit(X).score_samples(X[:3])
    assert _jit.builds() == before
    assert np.isfinite(precompile()[1])
