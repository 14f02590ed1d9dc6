"""The kernel estimators' host path: one Gram matrix of the training rows, every problem solved on it by compiled
CPU code (``smo_dual_host``) from the start to the bias. It must give the batched path's model (the same steps,
the same bias) and scikit-learn's."""

import numpy as np
import pytest
import sklearn.svm as sk
import torch
from sklearn.datasets import load_iris, make_classification, make_friedman1

import torchsvm as ts
import torchsvm.svm._base as base
import torchsvm.svm.problems as problems
from torchsvm.kernels import rbf_kernel
from torchsvm.solvers.smo import smo_dual, smo_dual_host
from torchsvm.solvers.stepped import DecompositionProblems
from torchsvm.svm._inputs import fill_bounds


def _binary(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5))
    y = np.where(X[:, 0] + 0.3 * rng.standard_normal(n) > 0, 1.0, -1.0)
    return X, y, rbf_kernel(torch.from_numpy(X), gamma=0.2).numpy()


def test_host_solver_equals_the_compiled_backend_step_for_step():
    X, y, K = _binary()
    ours = smo_dual_host(K, y[None], np.ones((1, len(y))), tol=1e-3)
    ref = smo_dual(torch.from_numpy(K), torch.from_numpy(y), 1.0, tol=1e-3, backend="numba")
    np.testing.assert_array_equal(ours.alpha.numpy(), ref.alpha.numpy())
    assert ours.info.problem_iters.tolist() == ref.info.problem_iters.tolist()
    np.testing.assert_allclose(ours.b.numpy(), ref.b.numpy(), rtol=1e-13)
    assert ours.r is None and ours.info.converged


def test_rows_of_a_larger_kernel_are_read_in_place():
    """Problems on some rows of K (one-vs-one pairs) equal the same problems on their gathered blocks."""
    X, y, K = _binary()
    rows = np.stack([np.arange(0, 60), np.arange(60, 120)[::-1]])
    ours = smo_dual_host(K, y[rows], np.full(rows.shape, 2.0), tol=1e-4, rows=rows)
    for k in range(2):
        block = torch.from_numpy(K[np.ix_(rows[k], rows[k])].copy())
        ref = smo_dual(block, torch.from_numpy(y[rows[k]]), 2.0, tol=1e-4, backend="numba")
        np.testing.assert_array_equal(ours.alpha[k].numpy(), ref.alpha[0].numpy())
        np.testing.assert_allclose(ours.b[k].numpy(), ref.b.numpy()[0], rtol=1e-13)


def test_nu_problem_from_a_start_equals_the_compiled_backend():
    X, y, K = _binary()
    pos = y > 0
    C = np.ones(len(y))
    half = 0.3 * len(y) / 2
    alpha0 = np.where(pos, fill_bounds(np.where(pos, C, 0.0), half), fill_bounds(np.where(pos, 0.0, C), half))[None]
    ours = smo_dual_host(K, y[None], C[None], p=np.zeros((1, len(y))), alpha0=alpha0, nu=True)
    ref = smo_dual(torch.from_numpy(K), torch.from_numpy(y[None]), torch.from_numpy(C[None]), p=torch.zeros(1, len(y),
                   dtype=torch.float64), alpha0=torch.from_numpy(alpha0), nu=True, backend="numba")
    np.testing.assert_allclose(ours.alpha.numpy(), ref.alpha.numpy(), atol=1e-12)
    np.testing.assert_allclose(ours.b.numpy(), ref.b.numpy(), atol=1e-12)
    np.testing.assert_allclose(ours.r.numpy(), ref.r.numpy(), atol=1e-12)
    assert ours.info.problem_iters.tolist() == ref.info.problem_iters.tolist()


@pytest.mark.slow
def test_parallel_and_serial_give_the_same_answers():
    X, y, K = _binary()
    rows = np.stack([np.arange(0, 60), np.arange(60, 120), np.arange(30, 90)])
    serial = smo_dual_host(K, y[rows], np.ones(rows.shape), rows=rows)
    parallel = smo_dual_host(K, y[rows], np.ones(rows.shape), rows=rows, parallel=True)
    np.testing.assert_array_equal(serial.alpha.numpy(), parallel.alpha.numpy())
    np.testing.assert_array_equal(serial.b.numpy(), parallel.b.numpy())


def _classes(n, k):
    X, y = make_classification(n, 8, n_informative=6, n_classes=k, n_clusters_per_class=1, random_state=0)
    return X, y


ESTIMATORS = [
    ("SVC", dict(C=3.0), 2),
    ("SVC", dict(C=3.0), 4),
    ("SVC", dict(kernel="poly", degree=2, coef0=1.0), 3),
    ("SVC", dict(multi_class="ovr"), 3),
    ("NuSVC", dict(nu=0.3), 3),
    ("SVR", dict(C=5.0, epsilon=0.2), 0),
    ("NuSVR", dict(nu=0.4), 0),
    ("OneClassSVM", dict(nu=0.2), 0),
]


@pytest.mark.parametrize("name,params,k", ESTIMATORS, ids=lambda v: str(v))
def test_host_path_fits_the_batched_paths_model_and_scikit_learns(name, params, k, monkeypatch):
    X, y = make_friedman1(150, random_state=0) if k == 0 else _classes(150, k)
    fit = lambda: getattr(ts, name)(tol=1e-6, device="cpu", **params).fit(X, y)  # noqa: E731
    calls = []
    original = problems.smo_dual_host
    monkeypatch.setattr(problems, "smo_dual_host", lambda *a, **kw: calls.append(kw["parallel"]) or original(*a, **kw))
    host = fit()
    assert calls == [False]  # 150 rows: the host path, on this thread
    monkeypatch.setattr(problems, "_on_host", lambda *a: False)
    batched = fit()
    # Problems on all rows see the same Gram matrix both ways: the same steps. One-vs-one pairs' blocks are
    # computed from the pair's rows in the batched path (the RBF centred on their mean), equal to the whole
    # Gram matrix's to rounding: the steps may part at a near tie, each answer within tol.
    exact = k <= 2 or params.get("multi_class") == "ovr"
    atol = 1e-9 if exact else 1e-4
    np.testing.assert_array_equal(host.support_, batched.support_)
    np.testing.assert_allclose(host.dual_coef_, batched.dual_coef_, atol=atol)
    np.testing.assert_allclose(host.intercept_, batched.intercept_, atol=atol)
    np.testing.assert_allclose(_outputs(host, X), _outputs(batched, X), atol=atol)
    if "multi_class" in params:  # scikit-learn's SVC is one-vs-one
        return
    ref = getattr(sk, name)(tol=1e-6, **params).fit(X, y)
    np.testing.assert_array_equal(host.support_, ref.support_)
    np.testing.assert_allclose(host.dual_coef_, ref.dual_coef_, atol=1e-4)  # LIBSVM's own stop, shrinking
    np.testing.assert_allclose(_outputs(host, X), _outputs(ref, X), atol=1e-4)


def _outputs(model, X):
    return model.decision_function(X) if hasattr(model, "decision_function") else model.predict(X)


def test_above_the_small_size_the_problems_run_in_threads(monkeypatch):
    X, y = _classes(problems.SMALL_ROWS + 10, 3)
    calls = []
    original = problems.smo_dual_host
    monkeypatch.setattr(problems, "smo_dual_host", lambda *a, **kw: calls.append(kw["parallel"]) or original(*a, **kw))
    ts.SVC(device="cpu").fit(X, y)
    assert calls == [True]


def test_decomposition_and_large_pair_blocks_keep_the_batched_path(monkeypatch):
    monkeypatch.setattr(problems, "smo_dual_host", lambda *a, **kw: pytest.fail("the host path ran"))
    X, y = _classes(200, 3)
    ts.SVC(solver="decomposition", device="cpu").fit(X, y)
    ts.SVC(cache_size=0.01, device="cpu").fit(X, y)  # the Gram matrix over the memory budget


@pytest.mark.filterwarnings("ignore:The kernel 'sigmoid' is not positive semidefinite")
@pytest.mark.parametrize("kernel", ["linear", "poly", "rbf", "sigmoid"])
@pytest.mark.parametrize("name,params,k", [("SVC", {}, 2), ("SVC", {}, 4), ("SVC", {"multi_class": "ovr"}, 3),
                                           ("NuSVC", {"nu": 0.3}, 3), ("SVR", {}, 0), ("OneClassSVM", {}, 0)],
                         ids=lambda v: str(v))
def test_host_decision_values_equal_the_torch_path(name, params, k, kernel, monkeypatch):
    """A few rows' decision values by compiled code equal the torch path's (kernel values against the support
    vectors, one-vs-one sums per class, every built-in kernel), and so do the predictions."""
    X, y = make_friedman1(120, random_state=0) if k == 0 else _classes(120, k)
    model = getattr(ts, name)(kernel=kernel, gamma=0.1, coef0=0.5, degree=3, device="cpu", **params).fit(X, y)
    rows = X[:7]
    calls = []
    from torchsvm.svm import _decision_numba

    original = _decision_numba.host_decision_values
    monkeypatch.setattr(_decision_numba, "host_decision_values", lambda *a, **kw: calls.append(1) or original(*a, **kw))
    host = (model._decision(rows).numpy(), model.predict(rows))
    assert calls
    monkeypatch.setattr(base, "_HOST_DECISION_WORK", 0)
    calls.clear()
    batched = (model._decision(rows).numpy(), model.predict(rows))
    assert not calls
    np.testing.assert_allclose(host[0], batched[0], rtol=1e-9, atol=1e-9)  # rounding: no BLAS in the loop
    if k == 0:
        np.testing.assert_allclose(host[1], batched[1], rtol=1e-9, atol=1e-9)
    else:
        np.testing.assert_array_equal(host[1], batched[1])


def test_a_small_fit_runs_torch_on_one_thread_and_restores_the_setting(monkeypatch):
    """torch's threads are held at one during a small fit (a busy machine's cores would stall its tiny parallel
    regions) and given back after; a larger fit keeps them."""
    import torchsvm._threads as threads

    if torch.get_num_threads() < 2:
        pytest.skip("one torch thread on this machine")
    before = torch.get_num_threads()
    seen = []
    original = problems.smo_dual_host
    monkeypatch.setattr(problems, "smo_dual_host", lambda *a, **kw: seen.append(torch.get_num_threads()) or original(*a, **kw))
    X, y = _classes(200, 3)
    ts.SVC(device="cpu").fit(X, y)
    monkeypatch.setattr(threads, "SMALL_ROWS", 100)
    ts.SVC(device="cpu").fit(X, y)
    assert seen == [1, before] and torch.get_num_threads() == before


def test_import_does_not_load_numba():
    """Importing the package and its estimators loads no compiled-loop module (numba costs ~0.2 s at import;
    the first fit loads it)."""
    import subprocess
    import sys

    code = ("import sys, torchsvm, torchsvm.model_selection; torchsvm.SVC; torchsvm.LinearSVC; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'numba' or m.startswith('torchsvm') "
            "and m.endswith('_numba')))")  # pandas (loaded by scikit-learn where installed) has its own _numba
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_auto_device_keeps_small_fits_on_the_cpu(monkeypatch):
    """With a GPU, device="auto" fits X of at most SMALL_ROWS rows (not already on CUDA) on the CPU and larger X
    on CUDA; a sharded fit and an explicit device are as they say. CUDA's availability is mocked."""
    from torchsvm._threads import SMALL_ROWS
    from torchsvm.svm._inputs import fit_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    small, large = np.zeros((SMALL_ROWS, 3)), np.zeros((SMALL_ROWS + 1, 3))
    assert fit_device("auto", small).type == "cpu"
    assert fit_device("auto", [[0.0]] * 10).type == "cpu"
    assert fit_device("auto", large).type == "cuda"
    assert fit_device("auto", small, distributed=True).type == "cuda"
    assert fit_device("cpu", large).type == "cpu"
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert fit_device("cuda", small).type == "cuda"
    # The estimators fit a small problem on the CPU (no CUDA call is made here: there is none to make).
    X, y = load_iris(return_X_y=True)
    for model in (ts.SVC(), ts.LinearSVC(), ts.SVR()):
        model.fit(X, y)
        assert model.predict(X[:2]).shape == (2,)
    assert ts.SVC().fit(X, y)._sv.device.type == "cpu"
    assert ts.LinearSVC().fit(X, y)._device.type == "cpu"


def test_one_large_problem_goes_to_decomposition_on_the_cpu(monkeypatch):
    """Binary SVC and SVR over more variables than ``_in_memory_variables`` are solved from kernel rows
    (decomposition) on the CPU, to the same model; OneClassSVM and a multi-class SVC keep the Gram matrix."""
    X, y = _classes(300, 2)
    ran = []
    original = DecompositionProblems.run
    monkeypatch.setattr(DecompositionProblems, "run", lambda *a, **kw: ran.append(1) or original(*a, **kw))
    in_memory = ts.SVC(tol=1e-6, device="cpu").fit(X, y)
    assert not ran
    monkeypatch.setattr(ts.SVC, "_in_memory_variables", 100)
    monkeypatch.setattr(ts.SVR, "_in_memory_variables", 100)
    by_rows = ts.SVC(tol=1e-6, device="cpu").fit(X, y)
    assert ran
    np.testing.assert_array_equal(by_rows.support_, in_memory.support_)
    np.testing.assert_allclose(by_rows.dual_coef_, in_memory.dual_coef_, atol=1e-4)
    np.testing.assert_allclose(by_rows.decision_function(X), in_memory.decision_function(X), atol=1e-4)
    ran.clear()
    Xr, yr = make_friedman1(120, random_state=0)
    ts.SVR(device="cpu").fit(Xr, yr)  # 240 variables
    assert ran
    ran.clear()
    ts.OneClassSVM(device="cpu").fit(X)
    ts.SVC(device="cpu").fit(*_classes(300, 3))
    assert not ran


def test_small_torch_work_in_predict_and_newton_runs_on_one_thread(monkeypatch):
    """Decision values of a few blocks of kernel rows and the torch Newton method on a small problem run on one
    torch thread (restored after); above their work limits they keep torch's threads."""
    import torchsvm._threads as threads
    import torchsvm.svm._linear as linear

    if torch.get_num_threads() < 2:
        pytest.skip("one torch thread on this machine")
    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "SMALL_ROWS", 10)  # the fits themselves keep torch's threads
    X, y = _classes(200, 3)
    model = ts.SVC(device="cpu").fit(X, y)
    seen = []
    blocks = base.kernel_row_blocks
    monkeypatch.setattr(base, "kernel_row_blocks",
                        lambda *a, **kw: (seen.append(torch.get_num_threads()), blocks(*a, **kw))[1])
    monkeypatch.setattr(base, "_HOST_DECISION_WORK", 0)  # the torch path, not the compiled few-row loop
    model.predict(X)
    monkeypatch.setattr(base, "_ONE_THREAD_DECISION_WORK", 0)
    model.predict(X)
    assert seen == [1, before] and torch.get_num_threads() == before
    seen.clear()
    newton = linear.primal_newton
    monkeypatch.setattr(linear, "primal_newton", lambda *a, **kw: seen.append(torch.get_num_threads()) or newton(*a, **kw))
    monkeypatch.setattr(linear, "_HOST_NEWTON_WORK", 0)  # the torch method, not its compiled twin
    ts.LinearSVC(loss="hinge", solver="newton", device="cpu").fit(X, y)
    monkeypatch.setattr(linear, "_ONE_THREAD_NEWTON_WORK", 0)
    ts.LinearSVC(loss="hinge", solver="newton", device="cpu").fit(X, y)
    assert seen == [1, before] and torch.get_num_threads() == before
