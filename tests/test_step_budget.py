"""Launch and sync budgets per solver step, counted on the CPU (see tests/op_count.py).

On CUDA each counted launch is a kernel launch and each sync stalls the queue: a regression in
either shows here without a GPU. Budgets are the counts measured when written, plus a margin.
"""

import torch

from tests.op_count import OpCounter
from torchsvm.kernels import rbf_kernel
from torchsvm.solvers.dual import smo_steps
from torchsvm.solvers.primal import primal_newton


def _smo_problem(N=300, B=2):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(N, 3, generator=g, dtype=torch.float64)
    Y = torch.where(torch.rand(B, N, generator=g) > 0.5, 1.0, -1.0).double()
    return rbf_kernel(X, gamma=0.5), Y, torch.ones(B, N, dtype=torch.float64)


def _count_smo(steps: int, check_every: int) -> OpCounter:
    K, Y, C = _smo_problem()
    alpha, G = torch.zeros_like(Y), -torch.ones_like(Y)
    with OpCounter() as c:
        n, _ = smo_steps(K, Y, C, alpha, G, 1e-12, steps, check_every=check_every, backend="torch")
    assert n == steps  # tol 1e-12 is not reached: every step ran
    return c


def test_torch_smo_step_launches_and_syncs():
    a, b = _count_smo(16, 16), _count_smo(48, 16)
    per_step = (b.n_launches - a.n_launches) / 32
    assert per_step <= 56, f"{per_step} launches per SMO step (budget 56; 53 when written)"
    # One sync per check_every steps (the convergence check), none inside a step.
    assert b.n_syncs - a.n_syncs == 2 and set(b.syncs) == {"_local_scalar_dense"}


def _count_newton(max_iter: int, loss: str) -> tuple[OpCounter, int]:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(3000, 20, generator=g, dtype=torch.float64)
    noise = 0.3 * torch.randn(3000, 4, generator=g, dtype=torch.float64)
    Y = torch.where(X[:, :4] + noise > 0, 1.0, -1.0).double()
    with OpCounter() as c:
        result = primal_newton(X, Y, torch.ones(3000, 4, dtype=torch.float64), loss=loss, max_iter=max_iter)
    return c, result.info.n_iter


def test_newton_step_launches_and_syncs():
    (a, n_a), (b, n_b) = _count_newton(3, "hinge"), _count_newton(6, "hinge")
    assert n_b - n_a == 3
    launches, syncs = (b.n_launches - a.n_launches) / 3, (b.n_syncs - a.n_syncs) / 3
    # Most launches are the exact line search's bisection (40 steps on the (N, K) margins).
    assert launches <= 1150, f"{launches} launches per hinge Newton step (budget 1150; 1005 when written)"
    assert syncs <= 27, f"{syncs} syncs per hinge Newton step (budget 27; 23 when written)"
