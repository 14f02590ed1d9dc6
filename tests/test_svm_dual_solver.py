import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import SVC

from torchsvm.kernels import polynomial_kernel, rbf_kernel
from torchsvm.solvers.dual import (
    DecompositionSolver,
    decomposition_dual,
    device_memory_guard,
    dual_objective,
    kernel_diagonal,
    smo_dual,
)
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


def test_steps_are_counted_per_problem():
    """In a batch each problem counts its own steps: those a lone solve of it takes."""
    X, y = problem(N=80, seed=2)
    K = rbf_kernel(X, gamma=0.7)
    Y = torch.stack([y, torch.where(X[:, 0] > 0, 1.0, -1.0)])  # a hard and an easy labelling
    batched = smo_dual(K, Y, 1.0, tol=1e-6)
    alone = [int(smo_dual(K, Y[k], 1.0, tol=1e-6).info.problem_iters[0]) for k in range(2)]
    assert batched.info.problem_iters.tolist() == alone
    assert alone[0] != alone[1] and batched.info.n_iter >= max(alone)
    decomposed = decomposition_dual(X, Y, 1.0, lambda A, Z: rbf_kernel(A, Z, gamma=0.7), working_set_size=8, tol=1e-6)
    iters = decomposed.info.problem_iters.tolist()
    assert max(iters) == decomposed.info.n_iter and min(iters) < max(iters)


@pytest.mark.parametrize("shared_K", [True, False])
def test_finished_problems_leave_the_batch_exactly(shared_K):
    """The torch loop drops finished problems from the working batch (their steps move nothing):
    every problem ends where a lone solve of it ends, step for step, with K shared or per problem."""
    X, y = problem(N=80, seed=2)
    K = rbf_kernel(X, gamma=0.7)
    Y = torch.stack([y, -y, torch.where(X[:, 0] > 0, 1.0, -1.0), torch.where(X[:, 1] > 0, 1.0, -1.0)] * 2)
    C = torch.tensor([0.1, 0.3, 1.0, 3.0, 10.0, 0.5, 2.0, 30.0], dtype=torch.float64).unsqueeze(1).expand(8, 80)
    batched = smo_dual(K if shared_K else K.expand(8, 80, 80).clone(), Y, C, tol=1e-6, check_every=4, backend="torch")
    for k in range(8):
        alone = smo_dual(K, Y[k], C[k], tol=1e-6, check_every=4, backend="torch")
        torch.testing.assert_close(batched.alpha[k], alone.alpha[0], rtol=0, atol=1e-12)
        torch.testing.assert_close(batched.b[k], alone.b[0], rtol=0, atol=1e-12)
        assert int(batched.info.problem_iters[k]) == int(alone.info.problem_iters[0])
        assert float(batched.info.kkt_violation[k]) == pytest.approx(float(alone.info.kkt_violation[0]), abs=1e-12)
    assert len(set(batched.info.problem_iters.tolist())) > 2  # they finish at different times


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


# --- decomposition solver: never forms N x N -----------------------------------------------


@pytest.mark.parametrize("q", [8, 64, 1024])
def test_decomposition_matches_smo_and_cvxpy(device, q):
    X, y = problem(N=300, seed=5, device=device)
    kernel = lambda A, Z: rbf_kernel(A, Z, gamma=0.5)  # noqa: E731
    K = kernel(X, X)
    result = decomposition_dual(X, y, 1.0, kernel, working_set_size=q, tol=1e-5)
    assert result.info.converged and float(result.info.kkt_violation[0]) <= 1e-5
    _, b_ref, obj_ref = cvxpy_dual(K.cpu().numpy(), y.cpu().numpy(), 1.0)
    obj = float(dual_objective(K, y[None], result.alpha)[0])
    assert abs(obj - obj_ref) / obj_ref < 1e-5
    assert abs(float(result.b[0]) - b_ref) < 1e-3
    a = result.alpha[0]
    assert abs(float(a @ y)) < 1e-9 and float(a.min()) >= 0 and float(a.max()) <= 1.0


def test_decomposition_batched_with_costs_and_left_out_samples():
    X, y = problem(N=200, seed=6)
    kernel = lambda A, Z: polynomial_kernel(A, Z, degree=2, gamma=0.5, coef0=1.0)  # noqa: E731
    K = kernel(X, X)
    Y = torch.stack([y, torch.where(X[:, 0] > 0, 1.0, -1.0).double()])
    C = torch.where(Y > 0, 2.0, 0.5)  # asymmetric costs per problem
    C[1, 100:] = 0.0  # problem 1 only sees the first 100 samples (how one-vs-one is expressed)
    result = decomposition_dual(X, Y, C, kernel, working_set_size=32, tol=1e-6)
    reference = smo_dual(K, Y, C, tol=1e-6)
    torch.testing.assert_close(dual_objective(K, Y, result.alpha), dual_objective(K, Y, reference.alpha), rtol=1e-6, atol=0)
    torch.testing.assert_close(result.b, reference.b, rtol=0, atol=1e-3)
    assert float(result.alpha[1, 100:].abs().max()) == 0.0
    subset = smo_dual(K[:100, :100], Y[1, :100], C[1, :100], tol=1e-6)
    torch.testing.assert_close(result.b[1], subset.b[0], rtol=0, atol=1e-3)


def test_decomposition_steps_and_objective_from_gradient():
    X, y = problem(N=150, seed=7)
    kernel = lambda A, Z: rbf_kernel(A, Z, gamma=1.0)  # noqa: E731
    solver = DecompositionSolver(X, y[None], torch.ones(1, 150, dtype=torch.float64), kernel, working_set_size=16)
    objectives = []
    while not solver.step():
        objectives.append(float(solver.dual_objective()[0]))
    assert len(objectives) == solver.n_iter >= 2
    assert all(b >= a - 1e-12 for a, b in zip(objectives, objectives[1:], strict=False))  # the dual only increases
    K = kernel(X, X)
    assert objectives[-1] == pytest.approx(float(dual_objective(K, y[None], solver.alpha)[0]), rel=1e-12)


def test_decomposition_non_convergence_warns():
    X, y = problem(N=200)
    kernel = lambda A, Z: rbf_kernel(A, Z, gamma=0.5)  # noqa: E731
    with pytest.warns(ConvergenceWarning, match="Decomposition did not converge in max_iter=1"):
        result = decomposition_dual(X, y, 10.0, kernel, working_set_size=4, max_iter=1)
    assert not result.info.converged


def test_kernel_diagonal_matches():
    X, _ = problem(N=70)
    kernel = lambda A, Z: polynomial_kernel(A, Z, degree=3, gamma=0.3)  # noqa: E731
    torch.testing.assert_close(kernel_diagonal(kernel, X, block_size=16), kernel(X, X).diagonal())


def test_out_of_memory_becomes_memory_error_with_advice():
    X, y = problem(N=50)

    def kernel(A, Z):
        if A.shape[0] == 32:  # the working set's 32 rows, not the diagonal block of 50
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 14.40 GiB")
        return rbf_kernel(A, Z)

    with pytest.raises(MemoryError, match="32 kernel rows of length 50. Pass a smaller working_set_size \\(now 32\\)"):
        decomposition_dual(X, y, 1.0, kernel, working_set_size=32)
    with pytest.raises(RuntimeError, match="unrelated"), device_memory_guard("x", "y"):
        raise RuntimeError("unrelated")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the compiled Triton kernel needs a GPU")
@pytest.mark.parametrize("kernel_dtype", [torch.float64, torch.float32])
def test_triton_kernel_matches_torch_on_cuda(kernel_dtype):
    """Same optimum as the torch step. Not the same path: CUDA's argmax breaks ties (all scores are
    equal at the first step) at another index than the kernel's first-index rule."""
    X, y = problem(N=300, seed=3)
    X = X.cuda()
    K = rbf_kernel(X, gamma=0.7).to(kernel_dtype)
    Y = torch.stack([y.cuda(), torch.where(X[:, 0] > 0.2, 1.0, -1.0)])
    ref = smo_dual(K, Y, 2.0, tol=1e-8, dtype=torch.float64, backend="torch")
    out = smo_dual(K, Y, 2.0, tol=1e-8, dtype=torch.float64, backend="triton")
    assert out.info.converged and float(out.info.kkt_violation.max()) <= 1e-8
    K64 = K.double()
    torch.testing.assert_close(dual_objective(K64, Y, out.alpha), dual_objective(K64, Y, ref.alpha), rtol=1e-10, atol=0)
    torch.testing.assert_close(out.alpha, ref.alpha, rtol=0, atol=1e-5)
    torch.testing.assert_close(out.b, ref.b, rtol=0, atol=1e-5)


def test_decomposition_on_samples_shared_by_variables():
    """row_of: epsilon-SVR's two variables per sample, kernel rows against the N samples only: the same
    solution as on the 2N duplicated rows (paths a few iterations apart: the kernel values of a pair
    can differ in the last bit between matrix products of other shapes)."""
    g = torch.Generator().manual_seed(5)
    X = torch.randn(70, 3, dtype=torch.float64, generator=g)
    target = X[:, 0] - 0.5 * X[:, 1]
    row_of = torch.arange(70).repeat(2)
    y = torch.cat([torch.ones(70), -torch.ones(70)]).double()
    p = torch.cat([0.1 - target, 0.1 + target]).unsqueeze(0)  # epsilon-SVR's linear term
    kernel = lambda A, Z: rbf_kernel(A, Z, gamma=0.5)  # noqa: E731
    shared = decomposition_dual(X, y, 2.0, kernel, working_set_size=16, tol=1e-8, p=p, row_of=row_of)
    copied = decomposition_dual(X[row_of], y, 2.0, kernel, working_set_size=16, tol=1e-8, p=p)
    assert shared.info.converged and abs(shared.info.n_iter - copied.info.n_iter) <= 0.1 * copied.info.n_iter
    torch.testing.assert_close(shared.alpha, copied.alpha, rtol=0, atol=1e-6)
    torch.testing.assert_close(shared.b, copied.b, rtol=0, atol=1e-7)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the compiled Triton kernel needs a GPU")
def test_triton_kernel_with_float32_state_on_cuda():
    """float32 kernel values and state (what a float32 Gram matrix gets by default): the same optimum as
    the torch step and y^T a kept at 0 (the kernel once tracked its scores unrounded and drifted)."""
    X, y = problem(N=300, seed=3)
    X = X.cuda()
    K = rbf_kernel(X, gamma=0.7).float()
    Y = torch.stack([y.cuda(), torch.where(X[:, 0] > 0.2, 1.0, -1.0)]).float()
    ref = smo_dual(K, Y, 2.0, tol=1e-3, backend="torch")
    out = smo_dual(K, Y, 2.0, tol=1e-3, backend="triton")
    K64, Y64 = K.double(), Y.double()
    torch.testing.assert_close(dual_objective(K64, Y64, out.alpha.double()), dual_objective(K64, Y64, ref.alpha.double()),
                               rtol=1e-5, atol=0)
    assert float((out.alpha.double() * Y64).sum(1).abs().max()) <= 1e-4


def test_stepped_problems_take_shared_samples_in_one_process_only():
    from torchsvm.solvers.stepped import DecompositionProblems

    X = torch.randn(6, 2, dtype=torch.float64)
    Y, C = torch.ones(1, 12, dtype=torch.float64), torch.ones(1, 12, dtype=torch.float64)
    row_of = torch.arange(6).repeat(2)
    DecompositionProblems(X, Y, C, rbf_kernel, row_of=row_of, working_set_size=4)  # accepted
    with pytest.raises(ValueError, match="Expected row_of only for one process and problems over every row"):
        DecompositionProblems(X, Y, C, rbf_kernel, row_of=row_of, members=[torch.arange(12)])
