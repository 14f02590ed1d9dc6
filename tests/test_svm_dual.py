import pytest
import torch

from torchsvm.functional import svm_dual
from torchsvm.functional.svm_dual import _free_set
from torchsvm.kernels import rbf_kernel
from torchsvm.solvers.reference import cvxpy_dual

SOLVE = dict(tol=1e-12, max_iter=10**6)  # the backward assumes the KKT conditions hold


def problem(N=40, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, 2, generator=g, dtype=torch.float64)
    y = torch.where(X[:, 0] + 0.5 * torch.randn(N, generator=g, dtype=torch.float64) > 0, 1.0, -1.0).double()
    w = torch.randn(N, generator=g, dtype=torch.float64)
    return X.to(device), y.to(device), w.to(device)


def loss(X, y, w, gamma, C):
    alpha, b = svm_dual(rbf_kernel(X, gamma=gamma), y, C, **SOLVE)
    return (w * alpha).sum() + 1.3 * b


def central(f, eps=1e-6):
    with torch.no_grad():
        return float((f(eps) - f(-eps)) / (2 * eps))


def test_forward_matches_cvxpy(device):
    X, y, _ = problem(device=device)
    K = rbf_kernel(X, gamma=0.7)
    alpha, b = svm_dual(K, y, 1.0, **SOLVE)
    assert alpha.device == K.device
    alpha_ref, b_ref, _ = cvxpy_dual(K.cpu().numpy(), y.cpu().numpy(), 1.0)
    torch.testing.assert_close(alpha.cpu(), torch.from_numpy(alpha_ref), atol=2e-5, rtol=0)
    assert abs(float(b) - b_ref) < 1e-4


def test_gradients_match_finite_differences_of_resolved_qps(device):
    X, y, w = problem(device=device)
    gamma = torch.tensor(0.7, dtype=torch.float64, device=device, requires_grad=True)
    C = torch.ones(40, dtype=torch.float64, device=device, requires_grad=True)
    Xr = X.clone().requires_grad_()
    alpha, _ = svm_dual(rbf_kernel(Xr, gamma=gamma), y, C, **SOLVE)
    free, upper = _free_set(alpha.detach(), C.detach())
    assert free.sum() >= 3 and upper.sum() >= 3  # a non-trivial active set
    assert type(alpha.grad_fn.next_functions[0][0]).__name__ == "SVMDualFunctionBackward"
    g_gamma, g_C, g_X = torch.autograd.grad(loss(Xr, y, w, gamma, C), (gamma, C, Xr))
    fd_gamma = central(lambda e: loss(X, y, w, gamma.detach() + e, C.detach()))
    assert abs(float(g_gamma) - fd_gamma) <= 1e-4 * max(1.0, abs(fd_gamma))
    i = int(upper.nonzero()[0])
    unit = torch.zeros(40, dtype=torch.float64, device=device)
    unit[i] = 1.0
    fd_C = central(lambda e: loss(X, y, w, gamma.detach(), C.detach() + e * unit))
    assert abs(float(g_C[i]) - fd_C) <= 1e-4 * max(1.0, abs(fd_C))
    j = int(free.nonzero()[0])
    assert float(g_C[j]) == 0.0  # a free SV's bound is not active
    E = torch.zeros_like(X)
    E[3, 1] = 1.0
    fd_X = central(lambda e: loss(X + e * E, y, w, gamma.detach(), C.detach()))
    assert abs(float(g_X[3, 1]) - fd_X) <= 1e-4 * max(1.0, abs(fd_X))


def test_batched_equals_looped_and_no_grad(device):
    X, y, _ = problem(N=30, seed=1, device=device)
    K = rbf_kernel(X, gamma=0.5)
    Kb = torch.stack([K, rbf_kernel(X, gamma=1.5)])
    Y = torch.stack([y, -y])
    alpha, b = svm_dual(Kb, Y, 1.0, **SOLVE)
    for k in range(2):
        a_k, b_k = svm_dual(Kb[k], Y[k], 1.0, **SOLVE)
        torch.testing.assert_close(alpha[k], a_k)
        torch.testing.assert_close(b[k], b_k)
    with torch.no_grad():
        a, _ = svm_dual(K.requires_grad_(), y, 1.0)
    assert a.grad_fn is None


def test_errors():
    X, y, _ = problem(N=10)
    K = rbf_kernel(X)
    with pytest.raises(ValueError, match="Expected a square K"):
        svm_dual(K[:, :5], y)
    with pytest.raises(ValueError, match="Expected a symmetric K, got max"):
        svm_dual(K + torch.triu(torch.ones_like(K), 1), y)
    with pytest.raises(ValueError, match=r"Expected y to hold only -1 and \+1"):
        svm_dual(K, (y > 0).double())
    with pytest.raises(ValueError, match="Expected C > 0"):
        svm_dual(K, y, -1.0)
    Kn = K.clone()
    Kn[0, 0] = float("nan")
    with pytest.raises(ValueError, match="Expected K to be finite"):
        svm_dual(Kn, y)


def test_gradients_match_the_cvxpylayers_backend():
    X, y, w = problem(N=30, seed=3)
    gamma = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    C = torch.full((30,), 0.8, dtype=torch.float64, requires_grad=True)

    def grads(backend):
        options = SOLVE if backend == "smo" else {}
        alpha, b = svm_dual(rbf_kernel(X, gamma=gamma), y, C, backend=backend, **options)
        value = (w * alpha).sum() + 1.3 * b
        return (alpha.detach(), *torch.autograd.grad(value, (gamma, C)))

    alpha, g_gamma, g_C = grads("smo")
    alpha_ref, g_gamma_ref, g_C_ref = grads("cvxpylayers")
    free, upper = _free_set(alpha, C.detach())
    assert free.sum() >= 3 and upper.sum() >= 3
    torch.testing.assert_close(alpha, alpha_ref, atol=5e-5, rtol=0)  # an interior-point solve
    torch.testing.assert_close(g_gamma, g_gamma_ref, rtol=1e-3, atol=1e-5)
    torch.testing.assert_close(g_C, g_C_ref, rtol=1e-3, atol=1e-4)


def test_unknown_backend():
    X, y, _ = problem(N=10)
    with pytest.raises(ValueError, match="Expected backend to be 'smo' or 'cvxpylayers', got 'qpth'"):
        svm_dual(rbf_kernel(X), y, 1.0, backend="qpth")


def test_gradcheck_through_the_kernel():
    """float64 gradcheck of the implicit backward: d(alpha, b) / d(X, gamma, C) against central differences of re-solved QPs."""
    X, y, _ = problem(N=14, seed=4)
    gamma = torch.tensor(0.6, dtype=torch.float64, requires_grad=True)
    C = torch.full((14,), 0.7, dtype=torch.float64, requires_grad=True)
    alpha, _ = svm_dual(rbf_kernel(X, gamma=gamma), y, C, **SOLVE)
    free, upper = _free_set(alpha.detach(), C.detach())
    assert free.sum() >= 2 and upper.sum() >= 2
    # Away from degenerate points: every alpha clear of its bounds or at one with room to spare.
    gap = torch.minimum(alpha.detach(), C.detach() - alpha.detach())
    assert bool(((gap > 1e-3) | (gap < 1e-10)).all())

    def f(Xr, g, c):
        return svm_dual(rbf_kernel(Xr, gamma=g), y, c, **SOLVE)

    assert torch.autograd.gradcheck(f, (X.clone().requires_grad_(), gamma, C), eps=1e-6, atol=1e-5, rtol=1e-4)


def test_batched_backward_equals_looped(device):
    X, y, w = problem(N=30, seed=5, device=device)
    gammas = torch.tensor([0.3, 1.0, 3.0], dtype=torch.float64, device=device, requires_grad=True)
    C = torch.linspace(0.3, 2.0, 30, dtype=torch.float64, device=device).expand(3, 30).clone().requires_grad_()
    Y = torch.stack([y, -y, torch.where(X[:, 1] > 0, 1.0, -1.0).double()])
    Kb = torch.stack([rbf_kernel(X, gamma=g) for g in gammas])
    alpha, b = svm_dual(Kb, Y, C, **SOLVE)
    g_batched = torch.autograd.grad((w * alpha).sum() + b.sum(), (gammas, C))
    for k in range(3):
        a_k, b_k = svm_dual(rbf_kernel(X, gamma=gammas[k]), Y[k], C[k], **SOLVE)
        g_gamma, g_C = torch.autograd.grad((w * a_k).sum() + b_k, (gammas, C))
        torch.testing.assert_close(g_gamma[k], g_batched[0][k], rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(g_C[k], g_batched[1][k], rtol=1e-9, atol=1e-12)


def test_min_norm_solve_handles_singular_systems():
    """The KKT system is singular with more free SVs than the kernel's rank (here a linear kernel in 2-D)."""
    from torchsvm.functional.svm_dual import _min_norm_solve

    g = torch.Generator().manual_seed(0)
    Z = torch.randn(3, 6, 2, generator=g, dtype=torch.float64)
    M = Z @ Z.mT  # rank 2 of 6
    M[1] = M[1] + torch.eye(6, dtype=torch.float64)  # one regular system in the batch
    rhs = torch.randn(3, 6, generator=g, dtype=torch.float64)
    x = _min_norm_solve(M, rhs)
    reference = (torch.linalg.pinv(M) @ rhs.unsqueeze(2)).squeeze(2)  # SVD: an independent route
    torch.testing.assert_close(x, reference, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(x[1], torch.linalg.solve(M[1], rhs[1]))
