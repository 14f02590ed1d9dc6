"""SVC and LinearSVC with distributed=True: two gloo processes on the CPU, each with its own rows.

Each test spawns its two ranks once and does several checks there (a spawn costs seconds).
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification

from torchsvm import SVC, LinearSVC
from torchsvm.distributed import LOCAL, Shards, run_local

CUT = 170  # rank 0 holds rows [0, CUT), rank 1 the rest: uneven shards


def _data(n_classes: int = 3, n: int = 300):
    X, y = make_classification(n + 100, 6, n_informative=4, n_classes=n_classes, random_state=0)
    return X[:n], y[:n], X[n:]


def _shard(rank: int, *arrays):
    rows = slice(0, CUT) if rank == 0 else slice(CUT, None)
    return [a[rows] for a in arrays]


def _fit_sharded(rank, world, X, y, X_test, svc_params, linear_params):
    X_r, y_r = _shard(rank, X, y)
    svc = SVC(device="cpu", distributed=True, **svc_params).fit(X_r, y_r)
    lin = LinearSVC(device="cpu", distributed=True, **linear_params).fit(torch.as_tensor(X_r), y_r)
    return {
        "svc": (svc.predict(X_test), svc.decision_function(X_test), svc.support_, svc.support_vectors_,
                svc.dual_coef_, svc.intercept_, svc.n_iter_, svc.bytes_sent_, svc.shape_fit_),
        "linear": (lin.predict(X_test), lin.coef_, lin.intercept_, lin.objective_),
    }


@pytest.mark.slow
@pytest.mark.parametrize("n_classes, multi_class", [(2, "ovo"), (3, "ovo"), (3, "ovr")])
def test_sharded_fits_equal_the_single_process_fit(n_classes, multi_class):
    X, y, X_test = _data(n_classes)
    svc_params = dict(C=1.0, tol=1e-5, working_set_size=16, multi_class=multi_class, class_weight="balanced")
    linear_params = dict(C=1.0, tol=1e-5, class_weight="balanced")
    ranks = run_local(_fit_sharded, X, y, X_test, svc_params, linear_params)
    # The decomposition solver on all rows at once: the same algorithm in one process.
    ref = SVC(device="cpu", solver="decomposition", **svc_params).fit(X, y)
    lin = LinearSVC(device="cpu", **linear_params).fit(X, y)
    for out in ranks:
        pred, dec, support, sv, dual_coef, b, n_iter, sent, shape = out["svc"]
        np.testing.assert_array_equal(pred, ref.predict(X_test))
        # Two runs to tol = 1e-5 whose iterates part at rounding (sums in another order): alpha
        # agrees to ~1e-4 of C, the decisions closer.
        np.testing.assert_allclose(dec, ref.decision_function(X_test), atol=1e-4)
        np.testing.assert_array_equal(support, ref.support_)  # indices into the shards' concatenation
        np.testing.assert_array_equal(sv, X[ref.support_])
        np.testing.assert_allclose(dual_coef, ref.dual_coef_, atol=1e-3)
        np.testing.assert_allclose(b, ref.intercept_, atol=1e-4)
        assert shape == X.shape and sent > 0
        np.testing.assert_array_equal(pred, ranks[0]["svc"][0])  # every rank holds the same model
        np.testing.assert_array_equal(dual_coef, ranks[0]["svc"][4])
        pred, coef, intercept, objective = out["linear"]
        np.testing.assert_array_equal(pred, lin.predict(X_test))
        np.testing.assert_allclose(objective, lin.objective_, rtol=2e-5)  # both within tol of the optimum
        np.testing.assert_allclose(coef, lin.coef_, atol=5e-3)
        np.testing.assert_array_equal(coef, ranks[0]["linear"][1])
    # And the default (in-memory) fit, a different solver to the same tol: the same classifier.
    assert (ranks[0]["svc"][0] == SVC(device="cpu", **svc_params).fit(X, y).predict(X_test)).mean() >= 0.99


def _bad_inputs(rank, world, X, y):
    """Each case raises on both ranks (so none waits for the other); returns the messages."""
    X_r, y_r = _shard(rank, X, y)
    cases = {
        "features": lambda: (X_r if rank == 0 else X_r[:, :-1], y_r),
        "empty": lambda: (X_r if rank == 0 else X_r[:0], y_r if rank == 0 else y_r[:0]),
        "class": lambda: (X_r, y_r) if rank == 0 else (X_r[y_r != 2], y_r[y_r != 2]),
        "label dtype": lambda: (X_r, y_r if rank == 0 else y_r.astype(np.float64)),
        "nan": lambda: (X_r, y_r) if rank == 0 else (np.where(np.arange(X_r.size).reshape(X_r.shape) == 3, np.nan, X_r), y_r),
    }
    messages = {}
    for name, make in cases.items():
        for est in (SVC(device="cpu", distributed=True), LinearSVC(device="cpu", distributed=True)):
            Xc, yc = make()
            try:
                est.fit(Xc, yc)
            except ValueError as err:
                messages[name, type(est).__name__] = str(err)
            else:
                messages[name, type(est).__name__] = None
    return messages


def test_bad_shards_raise_on_every_rank_naming_the_rank():
    X, y, _ = _data(3)
    ranks = run_local(_bad_inputs, X, y)
    assert ranks[0] == ranks[1]  # the same error everywhere
    m = ranks[0]
    for est in ("SVC", "LinearSVC"):
        assert "number of features" in m["features", est] and "rank 0: 6, rank 1: 5" in m["features", est]
        assert "rank 1: ValueError: Found array with 0 sample(s)" in m["empty", est]
        assert "rank 1 without classes [2]" in m["class", est]
        assert "labels of one dtype" in m["label dtype", est] and "rank 1: float64" in m["label dtype", est]
        assert "rank 1" in m["nan", est] and "NaN" in m["nan", est]


def _one_rank_dies(rank, world, X, y):
    from torchsvm.solvers.sharded import ShardedDecompositionSolver

    X_r, y_r = _shard(rank, X, y)
    if rank == 1:
        step = ShardedDecompositionSolver.step

        def dying_step(self):
            if self.n_iter == 3:
                os._exit(3)  # a crash mid-fit: no exception, no goodbye
            return step(self)

        ShardedDecompositionSolver.step = dying_step
    start = time.monotonic()
    try:
        SVC(device="cpu", distributed=True, working_set_size=8, tol=1e-6).fit(X_r, y_r)
    except RuntimeError as err:
        return str(err), time.monotonic() - start
    return None, time.monotonic() - start


@pytest.mark.slow
def test_a_rank_that_dies_makes_the_others_fail_fast():
    X, y, _ = _data(2)
    ranks = run_local(_one_rank_dies, X, y, timeout_s=20)
    assert ranks[1] is None  # it exited
    message, seconds = ranks[0]
    assert message is not None and "rank 0 of 2" in message and "another rank has stopped" in message
    assert seconds < 20  # well within the group's timeout, not a hang


def test_local_collectives_are_the_identity_and_shards_need_a_group():
    t = torch.arange(3.0)
    assert LOCAL.sum(t) is t and LOCAL.all_gather(t).shape == (1, 3) and LOCAL.agree("x", lambda: 5) == 5
    with pytest.raises(RuntimeError, match="needs an initialized process group"):
        Shards()
    with pytest.raises(RuntimeError, match="needs an initialized process group"):
        LinearSVC(distributed=True, device="cpu").fit(np.eye(4), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="needs the features"):
        SVC(distributed=True, kernel="precomputed").fit(np.eye(4), [0, 1, 0, 1])
    with pytest.raises(TypeError, match="The 'distributed' parameter of LinearSVC must be an instance of 'bool'"):
        LinearSVC(distributed="yes", device="cpu").fit(np.eye(4), [0, 1, 0, 1])


def test_fit_distributed_script_runs_alone(tmp_path):
    """scripts/fit_distributed.py without torchrun: a group of one, both models, on a small IDX data set."""
    from tests.conftest import load_script
    from tests.idx import write_dataset

    root = write_dataset(tmp_path / "data", n_train=200, n_test=60)
    script = load_script("fit_distributed")
    for model in ("svc", "linear-svc"):
        accuracy = script.main(["--data-dir", str(root), "--n-train", "150", "--model", model, "--gamma", "0.02"])
        assert accuracy >= 0.9  # the class is a bright stripe: easy
    from torchsvm.data import DatasetNotFoundError

    with pytest.raises(DatasetNotFoundError, match="--download for scripts/fit_distributed.py"):  # its own flag named
        script.main(["--data-dir", str(tmp_path / "empty"), "--model", "linear-svc"])
