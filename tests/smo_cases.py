"""The SMO backends' conformance cases, one table for every backend (``tests/test_smo_backends.py``).

Each case builds its inputs from its own seed and runs :func:`smo_dual` (or :func:`smo_steps` from a
feasible start) with a given backend; a compiled backend must take the torch step's path: the same
steps per problem, the same solution. Importable on its own so that Triton's interpreter
(``TRITON_INTERPRET=1``, set before Triton is imported) can run the table in a fresh process.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from torchsvm.kernels import rbf_kernel
from torchsvm.solvers.dual import dual_objective, smo_dual, smo_steps

f64 = torch.float64


def _two_labelings(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    X = torch.randn(40, 3, dtype=f64, generator=g)
    Y = torch.stack([torch.where(X[:, 0] > 0, 1.0, -1.0), torch.where(X[:, 1] > 0.3, 1.0, -1.0)]).to(f64)
    return X, Y


def _batched_padded(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    K = torch.stack([rbf_kernel(torch.randn(33, 3, dtype=f64, generator=g), gamma=0.7) for _ in range(3)])
    Y = torch.where(torch.rand(3, 33, generator=g) > 0.5, 1.0, -1.0).to(f64)
    C = torch.rand(3, 33, generator=g).to(f64) + 0.1
    C[1, 20:] = 0.0  # padding: out of problem 1
    return K, Y, C


def _solve(backend: str, K, Y, C, **kw) -> dict[str, torch.Tensor]:
    res = smo_dual(K, Y, C, backend=backend, **kw)
    out = {"alpha": res.alpha, "b": res.b, "iters": res.info.problem_iters, "gap": res.info.kkt_violation,
           "n_iter": torch.tensor(res.info.n_iter), "tol": torch.tensor(kw["tol"])}
    out["balance"] = (res.alpha.double() * torch.as_tensor(Y).double()).sum(-1)  # y^T a, kept at 0 (start: 0)
    if "p" not in kw:  # the classification dual's objective, in float64 whatever the kernel's dtype
        K64 = K.double() if kw.get("kernel_index") is None else K.double()[kw["kernel_index"]]
        out["objective"] = dual_objective(K64, torch.as_tensor(Y).double(), res.alpha.double())
    if res.r is not None:
        out["r"] = res.r
    return out


def shared(backend: str, g: torch.Generator) -> dict[str, torch.Tensor]:
    X, Y = _two_labelings(g)
    return _solve(backend, rbf_kernel(X, gamma=0.5), Y, 2.0, tol=1e-6)


def batched_padded(backend: str, g: torch.Generator) -> dict[str, torch.Tensor]:
    return _solve(backend, *_batched_padded(g), tol=1e-6)


def float32_kernel(backend: str, g: torch.Generator) -> dict[str, torch.Tensor]:
    """float32 kernel values, float64 state (LIBSVM's arrangement)."""
    X, Y = _two_labelings(g)
    return _solve(backend, rbf_kernel(X.float(), gamma=0.5), Y, 1.0, tol=1e-5, dtype=f64)


def float32_state(backend: str, g: torch.Generator) -> dict[str, torch.Tensor]:
    X, Y = _two_labelings(g)
    return _solve(backend, rbf_kernel(X.float(), gamma=0.5), Y.float(), 1.0, tol=1e-3)


def nu(backend: str, g: torch.Generator) -> dict[str, torch.Tensor]:
    """LIBSVM's per-sign selection from a start with 10 per sign, p = 0."""
    X, Y = _two_labelings(g)
    a0 = torch.where(Y > 0, 10 / (Y > 0).sum(1, keepdim=True), 10 / (Y < 0).sum(1, keepdim=True)).to(f64)
    return _solve(backend, rbf_kernel(X, gamma=0.5), Y, 1.0, tol=1e-6, p=torch.zeros_like(Y), alpha0=a0, nu=True)


def nu_batched(backend: str, g: torch.Generator) -> dict[str, torch.Tensor]:
    K, Y, C = _batched_padded(g)
    a0 = torch.where(torch.rand(3, 33, generator=g) > 0.7, 0.05, 0.0).to(f64) * (C > 0)
    return _solve(backend, K, Y, C.clamp(max=1.0), tol=1e-6, p=torch.zeros_like(Y), nu=True, alpha0=a0)


def kernel_index(backend: str, g: torch.Generator) -> dict[str, torch.Tensor]:
    """Problem b on K[kernel_index[b]] (a pair at two C values)."""
    Ks = torch.stack([rbf_kernel(torch.randn(30, 3, dtype=f64, generator=g), gamma=0.7) for _ in range(2)])
    Y = torch.where(torch.rand(4, 30, generator=g) > 0.5, 1.0, -1.0).to(f64)
    C = torch.tensor([0.5, 0.5, 5.0, 5.0], dtype=f64).unsqueeze(1).expand(4, 30)
    return _solve(backend, Ks, Y, C, tol=1e-8, kernel_index=torch.tensor([0, 1, 0, 1]))


def frozen_per_problem_tol(backend: str, g: torch.Generator) -> dict[str, torch.Tensor]:
    """smo_steps from a feasible start with frozen variables and one tol per problem (the decomposition's
    subproblem)."""
    X, Y = _two_labelings(g)
    movable = torch.rand(2, 40, generator=g) > 0.3
    alpha, G = torch.zeros(2, 40, dtype=f64), -torch.ones(2, 40, dtype=f64)
    counts = torch.zeros(2, dtype=torch.long)
    n, gap = smo_steps(rbf_kernel(X, gamma=0.5), Y, torch.full((2, 40), 1.5, dtype=f64), alpha, G,
                       torch.tensor([1e-3, 1e-6], dtype=f64), 10_000, movable=movable, counts=counts, backend=backend)
    return {"alpha": alpha, "G": G, "iters": counts, "gap": gap, "n_iter": torch.tensor(n),
            "frozen_moved": (alpha[~movable] != 0).any()}


CASES: dict[str, Callable[[str, torch.Generator], dict[str, torch.Tensor]]] = {
    case.__name__: case
    for case in (shared, batched_padded, float32_kernel, float32_state, nu, nu_batched, kernel_index,
                 frozen_per_problem_tol)
}

# float32 kernel values or state: the torch step does its arithmetic in float32, the compiled loops
# partly in float64, so a near-tie can break elsewhere and the paths part by a few steps. These cases
# are held to the same optimum (objective, constraint, tol), not to the same path.
FLOAT32 = {"float32_kernel", "float32_state"}


def run(name: str, backend: str) -> dict[str, torch.Tensor]:
    return CASES[name](backend, torch.Generator().manual_seed(sorted(CASES).index(name)))


def run_table(backend: str) -> dict[str, dict[str, dict[str, torch.Tensor]]]:
    """Every case by the torch step and by ``backend``: ``{case: {"torch": out, backend: out}}``."""
    return {name: {"torch": run(name, "torch"), backend: run(name, backend)} for name in CASES}
