import math
import re

import numpy as np
import pytest
import torch
from sklearn.metrics import pairwise

from torchsvm import kernels as k
from torchsvm.solvers.dual import decomposition_dual
from torchsvm.solvers.reference import cvxpy_dual, dual_intercept


def data(device, N=12, M=7, D=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(N, D, generator=g, dtype=torch.float64).to(device),
            torch.randn(M, D, generator=g, dtype=torch.float64).to(device))


@pytest.mark.parametrize("name,kwargs", [
    ("linear", {}),
    ("polynomial", {}), ("polynomial", {"degree": 2, "gamma": 0.3, "coef0": 0.5}),
    ("rbf", {}), ("rbf", {"gamma": 0.7}),
    ("sigmoid", {}), ("sigmoid", {"gamma": 0.1, "coef0": -0.2}),
])
def test_functions_match_sklearn(device, name, kwargs):
    X, Z = data(device)
    ours = getattr(k, f"{name}_kernel")(X, Z, **kwargs)
    ref = getattr(pairwise, f"{name}_kernel")(X.cpu().numpy(), Z.cpu().numpy(), **kwargs)
    np.testing.assert_allclose(ours.cpu().numpy(), ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(getattr(k, f"{name}_kernel")(X, **kwargs).cpu().numpy(),
                               getattr(pairwise, f"{name}_kernel")(X.cpu().numpy(), **kwargs), rtol=1e-10, atol=1e-12)


def test_batched_and_blocks(device):
    X, Z = data(device)
    batch = torch.stack([X, 2 * X])  # (2, N, D)
    Kb = k.rbf_kernel(batch, gamma=0.2)
    torch.testing.assert_close(Kb[1], k.rbf_kernel(2 * X, gamma=0.2))
    full = k.rbf_kernel(X, Z, gamma=0.3)
    stitched = torch.cat([blk for _, blk in k.kernel_row_blocks(lambda a, b: k.rbf_kernel(a, b, gamma=0.3), X, Z, 5)])
    torch.testing.assert_close(stitched, full)


def test_differentiable_in_X_and_gamma():
    X, _ = data("cpu", N=6, D=3)
    gamma = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    X.requires_grad_()
    assert torch.autograd.gradcheck(lambda X, g: k.rbf_kernel(X, gamma=g), (X, gamma))


def test_closure_rules_and_validity():
    X, _ = data("cpu", N=20, D=3)
    k1, k2 = k.RBF(gamma=0.5), k.Polynomial(degree=2, coef0=1.0)
    for valid in (k1 + k2, k1 * k2, 3.0 * k1, k1 ** 3, k2.polynomial([1.0, 0.5, 2.0]),
                  k.FeatureMap(lambda x: x ** 2, k1)):
        assert valid.is_valid
        k.check_kernel(valid, X)  # does not raise
    torch.testing.assert_close((k1 + k2)(X), k1(X) + k2(X))
    torch.testing.assert_close((k1 * k2)(X), k1(X) * k2(X))
    torch.testing.assert_close(k2.polynomial([1.0, 0.5, 2.0])(X), 1 + 0.5 * k2(X) + 2 * k2(X) ** 2)
    for invalid in (k1 - 2.0 * k2, -1.0 * k1, k.Linear() - k.RBF(gamma=0.1)):
        assert not invalid.is_valid
        with pytest.raises(ValueError, match="Expected a positive semidefinite Gram matrix, got smallest eigenvalue -"):
            k.check_kernel(invalid, X)


def test_is_psd_and_errors():
    X, _ = data("cpu", N=10)
    assert k.is_psd(k.rbf_kernel(X))
    assert not k.is_psd(-k.rbf_kernel(X))
    A = torch.randn(5, 5, dtype=torch.float64)
    assert not k.is_psd(A + 10 * torch.eye(5, dtype=torch.float64) + torch.triu(A, 1))  # asymmetric
    with pytest.raises(ValueError, match="Expected a symmetric Gram matrix"):
        k.check_kernel(lambda a, b: a @ b.T + torch.triu(torch.ones(len(a), len(b), dtype=a.dtype), 1), X)
    with pytest.raises(ValueError, match="Expected gamma >= 0, got -1"):  # 0 is a constant kernel, as scikit-learn's
        k.rbf_kernel(X, gamma=-1.0)
    with pytest.raises(ValueError, match="same D"):
        k.linear_kernel(X, torch.randn(3, 2, dtype=torch.float64))


@pytest.mark.parametrize("D,degree,coef0", [(2, 2, 1.0), (3, 3, 0.5), (5, 2, 0.0)])
def test_polynomial_feature_map(D, degree, coef0):
    X, Z = data("cpu", N=6, M=4, D=D)
    phi_x, phi_z = k.polynomial_feature_map(X, degree, coef0), k.polynomial_feature_map(Z, degree, coef0)
    assert phi_x.shape[1] == math.comb(D + degree, degree)
    torch.testing.assert_close(phi_x @ phi_z.T, (X @ Z.T + coef0) ** degree)


def test_random_fourier_features_approximate_rbf():
    X, _ = data("cpu", N=30, D=4)
    rff = k.RandomFourierFeatures(4, n_components=20000, gamma=0.3, seed=1)
    Zx = rff(X)
    err = (Zx @ Zx.T - k.rbf_kernel(X, gamma=0.3)).abs().max()
    assert err < 0.05


def test_cvxpy_dual_is_the_seed_qp():
    g = torch.Generator().manual_seed(3)
    X = torch.randn(40, 2, generator=g, dtype=torch.float64)
    y = torch.where(X[:, 0] + 0.3 * torch.randn(40, generator=g, dtype=torch.float64) > 0, 1.0, -1.0).numpy()
    K = k.rbf_kernel(X, gamma=0.5).numpy()
    alpha, b, dual = cvxpy_dual(K, y, 1.0)
    assert np.all(alpha >= 0) and np.all(alpha <= 1.0 + 1e-9) and abs(alpha @ y) < 1e-6
    np.testing.assert_allclose(dual, alpha.sum() - 0.5 * alpha @ (np.outer(y, y) * K) @ alpha, rtol=1e-6)
    # Agrees with LIBSVM (sklearn's SVC with the same precomputed kernel).
    from sklearn.svm import SVC

    ref = SVC(C=1.0, kernel="precomputed", tol=1e-8).fit(K, y)
    ref_alpha = np.zeros(40)
    ref_alpha[ref.support_] = np.abs(ref.dual_coef_[0])
    ref_dual = ref_alpha.sum() - 0.5 * ref_alpha @ (np.outer(y, y) * K) @ ref_alpha
    assert abs(dual - ref_dual) / ref_dual < 1e-4
    assert abs(b - ref.intercept_[0]) < 1e-3
    assert abs(dual_intercept(K, y, ref_alpha, 1.0, tol=1e-6) - ref.intercept_[0]) < 1e-5


@pytest.mark.parametrize("call,message", [
    (lambda X: k.polynomial_kernel(X, degree=0), "Expected degree to be a positive int, got 0"),
    (lambda X: k.polynomial_kernel(X, degree=2.0), "Expected degree to be a positive int, got 2.0"),
    (lambda X: k.polynomial_kernel(X, degree=True), "Expected degree to be a positive int, got True"),
    (lambda X: k.RBF(0.5) ** 0, "Expected power to be a positive int, got 0"),
    (lambda X: k.RandomFourierFeatures(2, n_components=0), "Expected n_components to be a positive int, got 0"),
    (lambda X: decomposition_dual(X, torch.ones(4), 1.0, k.RBF(0.5), working_set_size=1),
     "Expected working_set_size to be an int >= 2, got 1"),
])
def test_integer_parameters_are_checked_alike(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call(torch.randn(4, 2, dtype=torch.float64))
