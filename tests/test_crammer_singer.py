import warnings

import cvxpy as cp
import numpy as np
import pytest
import torch

from torchsvm.functional import crammer_singer_dual
from torchsvm.solvers.multiclass import crammer_singer_objective, crammer_singer_solve, project_rows


def episode(N=12, M=3, D=5, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, D, generator=g, dtype=torch.float64)
    y = torch.arange(N) % M
    return X.to(device), y.to(device)


def cvxpy_cs(K: np.ndarray, y: np.ndarray, C: np.ndarray, M: int) -> tuple[np.ndarray, float]:
    """The same QP written out for cvxpy (the ridge only makes the Cholesky factor exist)."""
    N = len(y)
    A = cp.Variable((N, M))
    onehot = np.eye(M)[y]
    L = np.linalg.cholesky(K + 1e-10 * np.eye(N))
    objective = 0.5 * cp.sum_squares(L.T @ A) - cp.sum(cp.multiply(onehot, A))
    cp.Problem(cp.Minimize(objective), [A <= C[:, None] * onehot, cp.sum(A, axis=1) == 0]).solve()
    return A.value, 0.5 * float(np.sum(A.value * (K @ A.value))) - float(np.sum(onehot * A.value))


@pytest.mark.parametrize("N,M,D", [(12, 3, 5), (25, 5, 64), (10, 4, 2)])
def test_forward_matches_cvxpy(device, N, M, D):
    X, y = episode(N, M, D, device=device)
    C = torch.linspace(0.2, 2.0, N, dtype=torch.float64, device=device)
    K = X @ X.T
    alpha = crammer_singer_dual(K, y, C, tol=1e-10)
    assert alpha.shape == (N, M) and alpha.device == K.device
    a_ref, obj_ref = cvxpy_cs(K.cpu().numpy(), y.cpu().numpy(), C.cpu().numpy(), M)
    onehot = torch.nn.functional.one_hot(y, M).double()
    obj = float(crammer_singer_objective(K, onehot, alpha))
    assert obj <= obj_ref + 1e-7 * max(1.0, abs(obj_ref))  # at least as low as cvxpy's
    assert abs(obj - obj_ref) <= 1e-6 * max(1.0, abs(obj_ref))
    # Feasible: the bounds and every row summing to 0.
    assert float((alpha - C[:, None] * onehot).max()) <= 1e-10
    assert float(alpha.sum(1).abs().max()) <= 1e-10
    np.testing.assert_allclose(alpha.cpu().numpy(), a_ref, atol=1e-4)


def test_projection_matches_cvxpy():
    g = torch.Generator().manual_seed(1)
    V = torch.randn(20, 5, generator=g, dtype=torch.float64) * 2
    y = torch.randint(0, 5, (20,), generator=g)
    U = torch.nn.functional.one_hot(y, 5).double() * torch.rand(20, 1, generator=g, dtype=torch.float64)
    P, _ = project_rows(V, U)
    for r in range(20):
        a = cp.Variable(5)
        cp.Problem(cp.Minimize(cp.sum_squares(a - V[r].numpy())), [a <= U[r].numpy(), cp.sum(a) == 0]).solve()
        np.testing.assert_allclose(P[r].numpy(), a.value, atol=1e-6)


def _away_from_degenerate(alpha: torch.Tensor, U: torch.Tensor) -> None:
    """Finite differences hold only where no variable sits at a bound by a hair."""
    gap = (U - alpha).abs()
    assert bool(((gap < 1e-9) | (gap > 1e-4)).all())


def test_gradcheck_through_embeddings_and_costs():
    X, y = episode(N=9, M=3, D=4, seed=0)
    C = torch.full((9,), 0.5, dtype=torch.float64)
    onehot = torch.nn.functional.one_hot(y, 3).double()
    alpha = crammer_singer_dual(X @ X.T, y, C, tol=1e-12)
    _away_from_degenerate(alpha, C[:, None] * onehot)
    at_bound = ((C[:, None] * onehot - alpha).abs() < 1e-9) & (onehot > 0)
    assert at_bound.sum() >= 2 and (~at_bound & (onehot > 0)).sum() >= 2  # C's gradient is exercised

    def f(Xr, Cr):
        return crammer_singer_dual(Xr @ Xr.T, y, Cr, tol=1e-12)

    assert torch.autograd.gradcheck(f, (X.clone().requires_grad_(), C.clone().requires_grad_()), eps=1e-6,
                                    atol=1e-5, rtol=1e-4)


def test_gradient_matches_finite_differences_of_resolved_qps(device):
    X, y = episode(N=15, M=3, D=6, seed=2, device=device)
    W = torch.randn(15, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3)).to(device)
    C = torch.full((15,), 0.8, dtype=torch.float64, device=device)

    def loss(Xr):
        return (W * crammer_singer_dual(Xr @ Xr.T, y, C, tol=1e-12)).sum()

    Xr = X.clone().requires_grad_()
    (grad,) = torch.autograd.grad(loss(Xr), Xr)
    assert type(crammer_singer_dual(torch.stack([Xr @ Xr.T]), y, C).grad_fn).__name__ == "CrammerSingerFunctionBackward"
    for i, j in [(0, 0), (4, 2), (11, 5)]:
        E = torch.zeros_like(X)
        E[i, j] = 1e-6
        with torch.no_grad():
            fd = float((loss(X + E) - loss(X - E)) / 2e-6)
        assert abs(float(grad[i, j]) - fd) <= 1e-4 * max(1.0, abs(fd))


def test_batched_equals_looped_and_no_grad(device):
    X = torch.randn(4, 10, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5)).to(device)
    y = torch.stack([torch.randperm(10, generator=torch.Generator().manual_seed(s)) % 3 for s in range(4)]).to(device)
    C = torch.rand(4, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(6)).to(device) + 0.2
    K = (X @ X.mT).requires_grad_()
    alpha = crammer_singer_dual(K, y, C, tol=1e-11)
    g_batched = torch.autograd.grad(alpha.square().sum(), K)[0]
    for b in range(4):
        a_b = crammer_singer_dual(K[b], y[b], C[b], tol=1e-11)
        torch.testing.assert_close(alpha[b], a_b, rtol=0, atol=1e-9)
        g_b = torch.autograd.grad(a_b.square().sum(), K)[0][b]
        torch.testing.assert_close(g_batched[b], g_b, rtol=1e-7, atol=1e-9)
    with torch.no_grad():
        assert crammer_singer_dual(K, y, C).grad_fn is None
    assert crammer_singer_dual(K.detach(), y, C).requires_grad is False


def test_degenerate_cases():
    # Duplicated samples: the KKT system is singular; the solution and gradient stay finite.
    X, y = episode(N=6, M=3, D=2)
    X = torch.cat([X, X])
    y = torch.cat([y, y])
    K = (X @ X.T).requires_grad_()
    alpha = crammer_singer_dual(K, y, 1.0, tol=1e-10)
    a_ref, obj_ref = cvxpy_cs(K.detach().numpy(), y.numpy(), np.ones(12), 3)
    onehot = torch.nn.functional.one_hot(y, 3).double()
    assert abs(float(crammer_singer_objective(K.detach(), onehot, alpha.detach())) - obj_ref) < 1e-6
    (g,) = torch.autograd.grad(alpha.sum() + alpha.square().sum(), K)
    assert bool(torch.isfinite(g).all())
    # Every sample at its bound: a tiny C caps every a_{i, y_i}.
    X, y = episode(N=12, M=3, D=5)
    alpha = crammer_singer_dual(X @ X.T, y, 1e-4, tol=1e-12)
    np.testing.assert_allclose(alpha.gather(1, y[:, None]).squeeze(1).numpy(), 1e-4, rtol=1e-9)
    # One class: sum_m a_im = a_i0 = 0.
    alpha = crammer_singer_dual(X @ X.T, torch.zeros(12, dtype=torch.long), 1.0)
    assert alpha.shape == (12, 1) and float(alpha.abs().max()) <= 1e-12


def test_solver_reports_kkt_and_active_set():
    X, y = episode(N=20, M=4, D=3, seed=7)
    K = (X @ X.T).unsqueeze(0)
    onehot = torch.nn.functional.one_hot(y, 4).double().unsqueeze(0)
    res = crammer_singer_solve(K, onehot, 0.7 * onehot, tol=1e-9)
    assert res.info.converged and float(res.info.kkt_violation.max()) <= 1e-9
    # Bound variables sit exactly at u; the multipliers of the bounds are >= 0.
    U = 0.7 * onehot
    assert torch.equal(res.alpha[res.info.active], U[res.info.active])
    mu = onehot - K @ res.alpha - res.info.beta.unsqueeze(-1)
    assert float(mu[res.info.active].min()) >= -1e-9


def test_non_convergence_warns():
    from sklearn.exceptions import ConvergenceWarning

    X, y = episode(N=30, M=3, D=2, seed=8)
    with pytest.warns(ConvergenceWarning, match="did not reach tol"):
        crammer_singer_solve((X @ X.T)[None], torch.nn.functional.one_hot(y, 3).double()[None],
                             torch.nn.functional.one_hot(y, 3).double()[None], tol=1e-300, max_iter=2)


def clustered(B, shots, D=16, M=5, rank=2, noise=0.05, seed=0):
    """Trained-like embeddings: near-duplicate samples per class, K of rank M (1 + rank) < N possibly."""
    g = torch.Generator().manual_seed(seed)
    unit = torch.nn.functional.normalize
    centers = unit(0.7 * unit(torch.randn(B, 1, D, generator=g), dim=-1) + 0.3 * unit(torch.randn(B, M, D, generator=g),
                                                                                      dim=-1), dim=-1)
    moved = centers.unsqueeze(2) + noise * (torch.randn(B, M, D, rank, generator=g, dtype=torch.float32)
                                            @ torch.randn(B, M, rank, shots, generator=g)).mT / rank**0.5
    return unit(moved, dim=-1).reshape(B, M * shots, D).double(), torch.arange(M).repeat_interleave(shots).repeat(B, 1)


@pytest.mark.parametrize("rank,C", [(2, 0.1), (2, 1.0), (4, 1.0)])
def test_ill_conditioned_and_singular_kernels_solved_to_tol(rank, C):
    """Trained-like embeddings (K singular at rank 2: 15 < 25 samples; conditioning ~1e5 at rank 4):
    every problem meets tol and cvxpy's objective in a few interior-point steps (the projected-gradient
    solver before it ended rank 2 with KKT violations of 1e5 after 2,000 iterations)."""
    X, y = clustered(6, 5, rank=rank)
    K = X @ X.mT
    onehot = torch.nn.functional.one_hot(y, 5).double()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConvergenceWarning
        res = crammer_singer_solve(K, onehot, C * onehot, tol=1e-8)
    assert res.info.converged and float(res.info.kkt_violation.max()) <= 1e-8
    assert res.info.n_iter <= 120  # projected gradient's at most 100 steps (fewer: its rate), some 12-20 interior-point steps
    obj = crammer_singer_objective(K, onehot, res.alpha)
    for b in range(6):
        _, obj_ref = cvxpy_cs(K[b].numpy(), y[b].numpy(), np.full(25, C), 5)
        assert float(obj[b]) <= obj_ref + 1e-6 * max(1.0, abs(obj_ref))
    assert float((res.alpha - C * onehot).max()) <= 1e-12 and float(res.alpha.sum(-1).abs().max()) <= 1e-8
    # The factors kept for the backward (merged across the stages) are those of the returned active sets.
    from torchsvm.solvers.multiclass import ActiveSetSystem

    R = torch.randn(6, 25, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for got, want in zip(res.system.solve(R, R[..., 0]), ActiveSetSystem(K, res.info.active).solve(R, R[..., 0]),
                         strict=True):
        torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-10)


def test_interior_point_alone_reaches_the_kkt_point():
    """The interior-point iterate converges to the same solution as the exact active-set solve."""
    from torchsvm.solvers.multiclass import _InteriorPoint

    X, y = episode(N=15, M=3, D=4, seed=3)
    K = (X @ X.T)[None]
    onehot = torch.nn.functional.one_hot(y, 3).double()[None]
    ipm = _InteriorPoint(K, onehot, 0.5 * onehot)
    ipm.run(1e-11, 60)
    assert ipm.n_iter < 40 and float(ipm.residual()[0].max()) <= 1e-11
    exact = crammer_singer_solve(K, onehot, 0.5 * onehot, tol=1e-12)
    torch.testing.assert_close(ipm.A, exact.alpha, rtol=0, atol=1e-6)


def test_errors():
    X, y = episode(N=6, M=3, D=2)
    K = X @ X.T
    with pytest.raises(ValueError, match=r"Expected labels y in \[0, 1\]"):
        crammer_singer_dual(K, y, n_classes=2)
    with pytest.raises(ValueError, match="got none of class 3 in problem 0"):
        crammer_singer_dual(K, y, n_classes=4)
    with pytest.raises(ValueError, match="Expected a square K"):
        crammer_singer_dual(K[:, :5], y)
    with pytest.raises(ValueError, match="Expected a symmetric K"):
        crammer_singer_dual(K + torch.triu(torch.ones_like(K)), y)
    with pytest.raises(ValueError, match="Expected C > 0"):
        crammer_singer_dual(K, y, 0.0)
    with pytest.raises(ValueError, match="Expected C > 0 everywhere"):
        crammer_singer_dual(K, y, -torch.ones(6, dtype=torch.float64))
    with pytest.raises(ValueError, match="Expected K to be finite"):
        crammer_singer_dual(K * float("nan"), y)
    with pytest.raises(ValueError, match="Expected integer class labels"):
        crammer_singer_dual(K, y.double())
    with pytest.raises(ValueError, match=r"Expected y of shape \(6,\)"):
        crammer_singer_dual(K, y[:5])


def test_block_solve_equals_the_whole_system():
    """The class-block / Schur-complement solve and the one-matrix solve of the same KKT equations agree."""
    from torchsvm.solvers.multiclass import ActiveSetSystem, _CompactSystem

    g = torch.Generator().manual_seed(9)
    X = torch.randn(3, 12, 20, generator=g, dtype=torch.float64)
    K = X @ X.mT
    active = torch.rand(3, 12, 4, generator=g) > 0.6
    active[:, :, 0] = False  # every sample keeps a free variable (else S is singular)
    R, s = torch.randn(3, 12, 4, generator=g, dtype=torch.float64), torch.randn(3, 12, generator=g, dtype=torch.float64)
    blocks = ActiveSetSystem(K, active)
    assert blocks.compact is None  # full-rank blocks: the Cholesky route for every problem
    A, beta = blocks.solve(R, s)
    A_ref, beta_ref = _CompactSystem(K, active).solve_full(R, s)
    torch.testing.assert_close(A, A_ref, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(beta, beta_ref, rtol=1e-8, atol=1e-10)
    assert bool((A[active] == 0).all())


def test_polish_rounds_on_the_open_problems_keep_the_backward_factors(monkeypatch):
    """The torch polish's rounds after the first refactor only the problems still open; the merged system
    is the one of the final active sets (what the backward solves with), problem by problem."""
    from torchsvm.solvers import multiclass
    from torchsvm.solvers.multiclass import ActiveSetSystem
    from torchsvm.solvers.multiclass import _polish_torch as _polish

    monkeypatch.setattr(multiclass, "_POLISH_ROUNDS", 10)

    g = torch.Generator().manual_seed(4)
    X = torch.randn(6, 15, 30, generator=g, dtype=torch.float64)
    K = X @ X.mT
    y = torch.arange(15).remainder(3).repeat(6, 1)
    onehot = torch.nn.functional.one_hot(y, 3).double()
    U = 0.3 * onehot
    exact = crammer_singer_solve(K, onehot, U, tol=1e-10)
    guess = exact.info.active.clone()
    for b, count in ((1, 3), (4, 1)):  # two problems start with bound variables taken as free
        guess[b].view(-1)[guess[b].view(-1).nonzero()[:count, 0]] = False
    sizes, init = [], ActiveSetSystem.__init__
    monkeypatch.setattr(ActiveSetSystem, "__init__", lambda self, K, active: (sizes.append(len(K)), init(self, K, active))[1])
    A, beta, active, viol, system = _polish(K, onehot, U, guess, 1e-10)
    assert sizes[0] == 6 and sizes[1] == 2  # the second round factors the two open problems only
    assert float(viol.max()) <= 1e-10 and torch.equal(active, exact.info.active)
    torch.testing.assert_close(A, exact.alpha, rtol=0, atol=1e-10)
    R, s = torch.randn(6, 15, 3, generator=g, dtype=torch.float64), torch.randn(6, 15, generator=g, dtype=torch.float64)
    for got, want in zip(system.solve(R, s), ActiveSetSystem(K, active).solve(R, s), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", ["random", "clustered", "singular"])
def test_compiled_polish_equals_the_torch_one(kind):
    """On the CPU the polish runs compiled, each problem on its own rounds: the same active sets, solution,
    violation and backward factors as the torch rounds (CUDA's). ``singular`` (K of rank 3): the problems whose
    blocks are singular are handed to the torch rounds (the compact system)."""
    from torchsvm.solvers._multiclass_numba import polish_cpu
    from torchsvm.solvers.multiclass import _POLISH_ROUNDS, ActiveSetSystem, _polish, _polish_torch

    g = torch.Generator().manual_seed(8)
    if kind == "clustered":
        X, y = clustered(6, 5, rank=4)
    else:
        X = torch.randn(6, 20, 30 if kind == "random" else 3, dtype=torch.float64, generator=g)
        y = torch.arange(20).remainder(4).repeat(6, 1)
    K = X @ X.mT
    onehot = torch.nn.functional.one_hot(y).double()
    U = 0.5 * onehot
    guess = crammer_singer_solve(K, onehot, U, tol=1e-9).info.active.clone()
    flip = torch.rand(guess.shape, generator=g) < 0.05  # wrong guesses: some problems need several rounds
    guess ^= flip
    factored = polish_cpu(K, onehot, U, guess, 1e-8, _POLISH_ROUNDS)[-1]
    if kind != "clustered":  # (clustered: K of rank 16 < 25, singular blocks for some guesses)
        assert bool(factored.all()) == (kind == "random")
    A, beta, active, viol, system = _polish(K, onehot, U, guess, 1e-8)
    A_t, beta_t, active_t, viol_t, system_t = _polish_torch(K, onehot, U, guess, 1e-8)
    assert torch.equal(active, active_t)
    torch.testing.assert_close(A, A_t, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(beta, beta_t, rtol=1e-7, atol=1e-9)
    assert torch.equal(viol <= 1e-8, viol_t <= 1e-8)
    torch.testing.assert_close(viol, viol_t, rtol=1e-3, atol=1e-9)
    R = torch.randn(6, 20 if kind != "clustered" else 25, onehot.shape[2], dtype=torch.float64, generator=g)
    mine, want = (found if found is not None else ActiveSetSystem(K, active) for found in (system, system_t))
    for got, expected in zip(mine.solve(R, R[..., 0]), want.solve(R, R[..., 0]), strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-7, atol=1e-9)
    # compact=False (the projected-gradient stage's guesses): the problems a factor failed on are left open
    A_o, _, _, viol_o, _ = _polish(K, onehot, U, guess, 1e-8, compact=False)
    assert not bool((viol_o[~factored] <= 1e-8).any())
    torch.testing.assert_close(A_o[factored], A[factored], rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["random", "clustered"])
def test_compiled_projected_gradient_equals_the_torch_one(kind):
    """The CPU's compiled projected-gradient stage iterates as the torch one (which CUDA runs), problem
    by problem: the same steps and the same active set, also where it gives up (ill-conditioned K)."""
    from torchsvm.solvers._multiclass_numba import projected_gradient_cpu
    from torchsvm.solvers.multiclass import _projected_gradient, _rescaled

    if kind == "random":
        X = torch.randn(4, 20, 30, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
        y = torch.arange(20).remainder(4).repeat(4, 1)
    else:
        X, y = clustered(4, 5, rank=4)
    onehot = torch.nn.functional.one_hot(y).double()
    Ks, lin, Us, _ = _rescaled(X @ X.mT, onehot, 0.5 * onehot)
    L = torch.linalg.eigvalsh(Ks)[:, -1]
    active, steps, converged, A = projected_gradient_cpu(Ks, lin, Us, L, 1e-3, 100)
    each = [_projected_gradient(Ks[b : b + 1], lin[b : b + 1], Us[b : b + 1], L[b : b + 1], 1e-3, 100) for b in range(4)]
    assert torch.equal(active, torch.cat([a for a, _, _, _ in each]))
    assert steps == max(n for _, n, _, _ in each)
    assert torch.equal(converged, torch.cat([c for _, _, c, _ in each]))
    torch.testing.assert_close(A, torch.cat([a for _, _, _, a in each]), rtol=1e-9, atol=1e-12)
    # going on from a start: the same in both versions, and the start left as it was
    start = A.clone()
    active2, _, _, A2 = projected_gradient_cpu(Ks, lin, Us, L, 1e-4, 50, start=start)
    assert torch.equal(start, A)
    for b in range(4):
        active_b, _, _, A_b = _projected_gradient(Ks[b : b + 1], lin[b : b + 1], Us[b : b + 1], L[b : b + 1], 1e-4, 50,
                                                  start=start[b : b + 1])
        assert torch.equal(active2[b], active_b[0])
        torch.testing.assert_close(A2[b], A_b[0], rtol=1e-9, atol=1e-12)
    assert bool(converged.all()) == (kind == "random")  # the clustered problems are given up on


@pytest.mark.parametrize("kind", ["random", "clustered", "singular"])
def test_compiled_interior_point_equals_the_torch_one(kind):
    """On the CPU the interior point runs compiled, each problem stopping on its own; it takes the steps the
    torch iteration (which CUDA runs) takes on that problem alone, to the same iterate. ``singular``: more
    samples than dimensions (a singular K)."""
    from torchsvm.solvers.multiclass import _InteriorPoint, _rescaled

    if kind == "random":
        X = torch.randn(4, 20, 30, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
        y = torch.arange(20).remainder(4).repeat(4, 1)
    elif kind == "clustered":
        X, y = clustered(4, 5, rank=4)
    else:
        X = torch.randn(4, 30, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
        y = torch.arange(30).remainder(5).repeat(4, 1)
    onehot = torch.nn.functional.one_hot(y).double()
    Ks, lin, Us, _ = _rescaled(X @ X.mT, onehot, 0.5 * onehot)
    compiled = _InteriorPoint(Ks, lin, Us)
    compiled.run(1e-9, 60)
    for b in range(4):
        alone = _InteriorPoint(Ks[b : b + 1], lin[b : b + 1], Us[b : b + 1])
        alone.run_torch(1e-9, 60)
        assert alone.n_iter == int(compiled.steps[b])
        for mine, theirs in ((compiled.A, alone.A), (compiled.S, alone.S), (compiled.Z, alone.Z), (compiled.beta, alone.beta)):
            torch.testing.assert_close(mine[b], theirs[0], rtol=1e-6, atol=1e-8)
    assert compiled.n_iter == int(compiled.steps.max())


def test_compiled_factor_adds_the_ridge_the_torch_one_adds():
    """A factor that fails (a singular matrix: a zero pivot) is retried with the same ridge in both versions."""
    from torchsvm.solvers._multiclass_numba import _factor
    from torchsvm.solvers.multiclass import _InteriorPoint

    H = torch.ones(1, 5, 5, dtype=torch.float64)  # rank one: the second pivot is 0
    assert int(torch.linalg.cholesky_ex(H)[1]) > 0
    ipm = _InteriorPoint(torch.eye(5, dtype=torch.float64)[None], torch.zeros(1, 5, 2, dtype=torch.float64),
                         torch.ones(1, 5, 2, dtype=torch.float64))
    want = ipm._factor(H)[0]
    got = np.zeros((5, 5))
    _factor(H[0].numpy(), got)
    for L in (got, want.numpy()):  # the same ridge (the factors' small pivots differ by rounding)
        np.testing.assert_allclose(L @ L.T, H[0].numpy() + 1e-12 * np.eye(5), rtol=0, atol=1e-15)


def test_batch_of_easy_and_hard_problems_solves_each_as_alone():
    """Problems the projected gradient converges on are polished; those it gives up on go to the interior
    point directly. In one batch each is solved as it is alone, and the backward's factors are those of the
    returned active sets."""
    from torchsvm.solvers.multiclass import ActiveSetSystem

    hard, y = clustered(3, 5, rank=4)
    easy = torch.randn(3, 25, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    X = torch.cat([easy, hard])[[0, 3, 1, 4, 5, 2]]  # interleaved
    K = X @ X.mT
    onehot = torch.nn.functional.one_hot(y[0], 5).double().expand(6, 25, 5)
    U = 0.5 * onehot
    res = crammer_singer_solve(K, onehot, U, tol=1e-8)
    assert res.info.converged and float(res.info.kkt_violation.max()) <= 1e-8
    for b in range(6):
        alone = crammer_singer_solve(K[b : b + 1], onehot[b : b + 1], U[b : b + 1], tol=1e-8)
        torch.testing.assert_close(crammer_singer_objective(K[b : b + 1], onehot[b : b + 1], res.alpha[b : b + 1]),
                                   crammer_singer_objective(K[b : b + 1], onehot[b : b + 1], alone.alpha), rtol=1e-9,
                                   atol=1e-12)
    R = torch.randn(6, 25, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for got, want in zip(res.system.solve(R, R[..., 0]), ActiveSetSystem(K, res.info.active).solve(R, R[..., 0]),
                         strict=True):
        torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("kind", ["random", "singular"])
def test_compiled_active_set_factors_equal_the_torch_ones(kind):
    """On the CPU the active-set system's factors are compiled; they equal the torch ones (which CUDA
    computes), and the same problems go to the compact system (``singular``: more free variables of a class
    than K's rank)."""
    from torchsvm.solvers._multiclass_numba import active_set_factors_cpu
    from torchsvm.solvers.multiclass import ActiveSetSystem

    g = torch.Generator().manual_seed(6)
    X = torch.randn(5, 20, 30 if kind == "random" else 3, dtype=torch.float64, generator=g)
    K = X @ X.mT
    active = torch.rand(5, 20, 4, generator=g) < 0.6
    active[..., 0] = False  # every sample has a free variable (else the Schur complement is singular)
    system = ActiveSetSystem(K, active)
    L, Ls, ok = active_set_factors_cpu(K, system.f)
    L_t, Ls_t, ok_t = system._factors(K)
    assert torch.equal(ok, ok_t)
    assert bool(ok.all()) == (kind == "random")
    torch.testing.assert_close(L[ok], L_t[ok], rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(Ls[ok], Ls_t[ok], rtol=1e-9, atol=1e-12)


def test_projected_gradient_levels_go_on_from_their_iterates(monkeypatch):
    """Problems whose active set at the first level the polish does not solve go on to the next level from
    their iterate (not from 0), and end as solved as with the finer level alone."""
    from torchsvm.solvers import multiclass

    X = torch.randn(6, 40, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(12))  # K singular
    y = torch.arange(40).remainder(4).repeat(6, 1)
    K, onehot = X @ X.mT, torch.nn.functional.one_hot(y).double()
    U = 0.5 * onehot
    monkeypatch.setattr(multiclass, "_PG_LEVELS", (1e-3,))
    finer = crammer_singer_solve(K, onehot, U, tol=1e-9)
    from torchsvm.solvers import _multiclass_numba

    calls, compiled = [], _multiclass_numba.projected_gradient_cpu
    monkeypatch.setattr(_multiclass_numba, "projected_gradient_cpu",
                        lambda *args, start=None: (calls.append(start), compiled(*args, start=start))[1])
    monkeypatch.setattr(multiclass, "_PG_LEVELS", (0.3, 1e-3))  # coarse: the polishes fail there
    laddered = crammer_singer_solve(K, onehot, U, tol=1e-9)
    assert len(calls) == 2 and calls[0] is None and len(calls[1]) > 0 and bool(calls[1].abs().sum() > 0)
    assert laddered.info.converged and laddered.info.n_iter > 0
    torch.testing.assert_close(laddered.alpha, finer.alpha, rtol=0, atol=1e-8)
