"""Device-clean code: with the default device set to "meta" and every input on the CPU, any tensor
created without the inputs' device lands on meta and the call fails. On a GPU the same tensor
would be a silent host/device copy or a device mismatch; this finds it without one."""

import numpy as np
import pytest
import torch

from torchsvm import SVC, LinearSVC
from torchsvm import functional as F
from torchsvm import kernels as k
from torchsvm._sparse import as_sparse_rows
from torchsvm.solvers import primal_gd, primal_newton, smo_dual
from torchsvm.solvers.dual import decomposition_dual


@pytest.fixture
def meta_default():
    torch.set_default_device("meta")
    assert torch.zeros(1).device.type == "meta"  # the premise of every test here
    try:
        yield
    finally:
        torch.set_default_device(None)


def _data(N=60, D=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, D, generator=g, dtype=torch.float64, device="cpu")
    y = torch.where(X[:, 0] + 0.3 * torch.randn(N, generator=g, dtype=torch.float64, device="cpu") > 0, 1.0, -1.0)
    return X, y.to(dtype=torch.float64, device="cpu")


def test_layers(meta_default):
    X = torch.randn(8, 5, dtype=torch.float64, device="cpu", requires_grad=True)
    W = torch.randn(3, 5, dtype=torch.float64, device="cpu", requires_grad=True)
    b = torch.zeros(3, dtype=torch.float64, device="cpu", requires_grad=True)
    target = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1], device="cpu")
    loss = F.cross_entropy(F.relu(F.linear(X, W, b)), target)
    loss.backward()
    assert X.grad.device.type == "cpu" and loss.device.type == "cpu"


def test_hinge_objective_and_primal_solvers(meta_default):
    X, y = _data()
    w = torch.zeros(4, dtype=torch.float64, device="cpu", requires_grad=True)
    F.hinge_objective(X, y, w, 0.0, 2.0).backward()
    assert w.grad.device.type == "cpu"
    w_gd, b_gd, _ = primal_gd(X, y, C=1.0, epochs=3)
    res = primal_newton(X, y[:, None], torch.ones(60, 1, dtype=torch.float64, device="cpu"), max_iter=50)
    assert {w_gd.device.type, res.w.device.type, res.info.objective.device.type} == {"cpu"}


def test_kernels_and_dual_solvers(meta_default):
    X, y = _data()
    K = k.rbf_kernel(X, gamma=0.5)
    res = smo_dual(K, y, 1.0, backend="torch")
    assert smo_dual(K, y, 1.0, backend="numba").alpha.device.type == "cpu"
    dec = decomposition_dual(X, y, 1.0, k.RBF(0.5), working_set_size=16)
    Kr = K.clone().requires_grad_(True)
    alpha, bias = F.svm_dual(Kr, y, 1.0)
    (alpha.sum() + bias).backward()
    assert {res.alpha.device.type, dec.alpha.device.type, Kr.grad.device.type} == {"cpu"}


def test_estimators(meta_default):
    X, y = _data()
    yl = y.numpy().astype(int)
    for est in (SVC(device="cpu"), SVC(device="cpu", solver="decomposition", working_set_size=16),
                SVC(device="cpu", multi_class="ovr"), LinearSVC(device="cpu"),
                LinearSVC(device="cpu", solver="dcd", class_weight="balanced")):
        est.fit(X, yl)
        assert np.asarray(est.predict(X)).shape == (60,)
        assert est.decision_function(X).device.type == "cpu"


def test_estimators_on_sparse_rows(meta_default):
    """Sparse X: row selection, kernels, Newton's conjugate gradients and the exact partition on SparseRows."""
    X, y = _data()
    X = torch.where(X.abs() > 0.5, X, 0.0)
    yl = y.numpy().astype(int)
    Xs = X.to_sparse_csr()
    for est in (SVC(device="cpu"), SVC(device="cpu", solver="decomposition", working_set_size=16),
                LinearSVC(device="cpu"), LinearSVC(device="cpu", solver="newton", loss="hinge")):
        est.fit(Xs, yl)
        assert est.decision_function(Xs).device.type == "cpu"
    res = primal_newton(as_sparse_rows(Xs, "X", torch.device("cpu")),
                        y[:, None], torch.ones(60, 1, dtype=torch.float64, device="cpu"), direct_max_features=0)
    assert res.w.device.type == "cpu"


def test_crammer_singer_head_both_stages(meta_default):
    """Projected gradient, the interior point (a singular K sends problems there) and the backward."""
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(2, 5, 1, 8, generator=g, dtype=torch.float64, device="cpu")
    X = (centers + 1e-3 * torch.randn(2, 5, 4, 8, generator=g, dtype=torch.float64, device="cpu")).reshape(2, 20, 8)
    X = torch.cat([X[:1], torch.randn(1, 20, 40, generator=g, dtype=torch.float64, device="cpu")[..., :8]])
    X.requires_grad_(True)
    y = torch.arange(5, device="cpu").repeat_interleave(4).repeat(2, 1)
    alpha = F.crammer_singer_dual(X @ X.mT, y, 1.0)
    alpha.square().sum().backward()
    assert alpha.device.type == "cpu" and X.grad.device.type == "cpu"
