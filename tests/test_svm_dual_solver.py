import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import SVC

from torchsvm.kernels import polynomial_kernel, rbf_kernel
from torchsvm.solvers.dual import dual_objective, smo_dual
from torchsvm.solvers.reference import cvxpy_dual


def problem(N=120, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, 2, generator=g, dtype=torch.float64)
    y = torch.where(X[:, 0] * X[:, 1] + 0.3 * torch.randn(N, generator=g, dtype=torch.float64) > 0, 1.0, -1.0).double()
    return X.to(device), y.to(device)


def libsvm_alpha(K, y, C):
    ref = SVC(C=C, kernel="precomputed", tol=1e-6).fit(K, y)
    alpha = np.zeros(len(y))
    alpha[ref.support_] = np.abs(ref.dual_coef_[0])
    return alpha, ref


def test_matches_cvxpy(device):
    X, y = problem(device=device)
    K = rbf_kernel(X, gamma=0.5)
    result = smo_dual(K, y, 1.0, tol=1e-6)
    assert result.info.converged
    _, b_ref, obj_ref = cvxpy_dual(K.cpu().numpy(), y.cpu().numpy(), 1.0)
    obj = float(dual_objective(K, y[None], result.alpha)[0])
    assert abs(obj - obj_ref) / obj_ref < 1e-5
    assert abs(float(result.b[0]) - b_ref) < 1e-3


@pytest.mark.parametrize("kernel", ["rbf", "poly"])
def test_matches_libsvm(kernel):
    X, y = problem(N=300, seed=1)
    K = rbf_kernel(X, gamma=1.0) if kernel == "rbf" else polynomial_kernel(X, degree=3, gamma=0.5, coef0=1.0)
    result = smo_dual(K, y, 2.0, tol=1e-6)
    alpha_ref, ref = libsvm_alpha(K.numpy(), y.numpy(), 2.0)
    a = result.alpha[0].numpy()
    Q = np.outer(y, y) * K.numpy()
    obj, obj_ref = a.sum() - 0.5 * a @ Q @ a, alpha_ref.sum() - 0.5 * alpha_ref @ Q @ alpha_ref
    assert abs(obj - obj_ref) / obj_ref < 1e-6
    f = K.numpy() @ (a * y.numpy()) + float(result.b[0])
    assert (np.sign(f) == ref.predict(K.numpy())).mean() >= 0.995
    assert abs(float(result.b[0]) - ref.intercept_[0]) < 1e-3
    assert abs(a @ y.numpy()) < 1e-9 and a.min() >= 0 and a.max() <= 2.0


def test_batched_equals_looped():
    X, y = problem(N=80, seed=2)
    K = rbf_kernel(X, gamma=0.7)
    Y = torch.stack([y, -y, torch.where(X[:, 0] > 0, 1.0, -1.0)])
    C = torch.tensor([0.5, 1.0, 3.0], dtype=torch.float64).unsqueeze(1).expand(3, 80)
    batched = smo_dual(K, Y, C, tol=1e-8)
    for k in range(3):
        single = smo_dual(K, Y[k], C[k], tol=1e-8)
        torch.testing.assert_close(dual_objective(K, Y[k : k + 1], batched.alpha[k : k + 1]),
                                   dual_objective(K, Y[k : k + 1], single.alpha), rtol=1e-9, atol=0)
    per_problem_K = smo_dual(K.expand(3, 80, 80), Y, C, tol=1e-8)
    torch.testing.assert_close(per_problem_K.alpha, batched.alpha)


def test_per_sample_costs_bound_alpha():
    X, y = problem(N=100, seed=4)
    K = rbf_kernel(X, gamma=0.5)
    C = torch.full_like(y, 0.2)  # asymmetric: C0 = 0.2 for y = -1 (float64, like y) ...
    C[y > 0] = 5.0  # ... and C1 = 5 for y = +1
    a = smo_dual(K, y, C, tol=1e-6).alpha[0]
    assert bool((a <= C + 1e-12).all()) and float(a[y < 0].max()) <= 0.2 + 1e-12
    _, _, obj_ref = cvxpy_dual(K.numpy(), y.numpy(), C.numpy())
    assert abs(float(dual_objective(K, y[None], a[None])[0]) - obj_ref) / obj_ref < 1e-5


def test_non_convergence_warns():
    X, y = problem()
    with pytest.warns(ConvergenceWarning, match="SMO did not converge in max_iter=3"):
        smo_dual(rbf_kernel(X), y, 1.0, max_iter=3)
