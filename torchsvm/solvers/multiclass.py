"""The Crammer-Singer multi-class SVM dual, batched over problems (few-shot episodes).

    minimize_A  1/2 sum_m a_m^T K a_m - sum_i a_{i, y_i}
    subject to  a_im <= u_im = C_i [m = y_i],   sum_m a_im = 0   for every sample i,

with ``A`` ``(N, M)`` (column a_m per class). The Hessian is I_M (x) K, so the gradient is one
matrix product, ``K A - onehot(y)``. The solver runs accelerated projected gradient (FISTA with
adaptive restart; each row's projection onto {a <= u, sum a = 0} exact) while its rate says it will
get there within a budget: enough where K is well conditioned (it is not tried past a condition number
of 1e4 on K's range). The problems left (ill-conditioned or
singular K: near-duplicate embeddings) go to a primal-dual interior-point method (Mehrotra's
predictor-corrector; some 10-20 steps whatever K's conditioning or rank). Either way the active set
found is then solved exactly through the KKT equations, moving variables between the sets while a
bound or a multiplier sign is violated (primal-dual active set). No (N M)^2 system is factored: each
interior-point step and each polish round factors M class blocks of N x N and an N x N Schur
complement (:class:`ActiveSetSystem`), and the backward reuses the polish's factors.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from torchsvm._warnings import warn_convergence
from torchsvm.solvers._multiclass_common import PIVOT_RATIO, RATE_BOUNDS, RIDGES

__all__ = [
    "ActiveSetSystem",
    "CrammerSingerInfo",
    "CrammerSingerResult",
    "crammer_singer_objective",
    "crammer_singer_solve",
    "project_rows",
]

_POLISH_ROUNDS = 3  # primal-dual active-set rounds per polish (the guesses are close)
# Projected-gradient steps at most before the interior point takes the problems left: a step costs a
# tenth of an interior-point step; well-conditioned kernels need some 10-70, ill-conditioned ones hundreds
# (the steps stop early when the slowest problem's rate says it would not converge within them).
_PG_STEPS = 100
# The projected gradient's levels (on the gradient mapping): its active set is polished at the first; those the
# polish does not solve go on to the next from their iterate (against 1e-3 alone: faster on trained embeddings,
# slower on clustered ones; the figures: docs/benchmarks.md, "The thresholds in the code").
_PG_LEVELS = (1e-2, 1e-3)
# Kernels (rescaled to a unit diagonal) conditioned past this on their range go to the interior point without
# projected-gradient steps: on clustered embeddings of condition 1e4-1e6 it solved few problems in its
# _PG_STEPS (docs/benchmarks.md, "The thresholds in the code").
_PG_CONDITION = 1e4


class ActiveSetSystem:
    """The KKT equations of the dual on a fixed active set, solved class block by class block.

    With F the free variables ((i, m) with a_im < u_im) and the rest at their bound (a = u):
        sum_{j free in m} K_ij a_jm + beta_i = r_im    for (i, m) in F
        sum_{m: (i, m) in F} a_im = s_i                for every sample i
    (r, s: what the bound variables leave over). The Hessian I_M (x) K is block diagonal by
    class, so with H_m = K on the rows free in class m (identity elsewhere) and D_m = diag(free in m):
        a_m = H_m^-1 (r_m - D_m beta),   S beta = sum_m D_m H_m^-1 r_m - s,   S = sum_m D_m H_m^-1 D_m,
    M Cholesky factors of N x N and one of the N x N Schur complement S, instead of one LU of the
    whole (free + N)^2 system. Problems where a block or S is singular (or nearly: a Cholesky
    pivot below 1e-5 of the largest, i.e. conditioning past 1e10) - more free variables of a class
    than the kernel's rank, duplicated samples, a sample with no free variable - go to
    :class:`_CompactSystem`, which solves in the minimum-norm sense where needed.
    """

    def __init__(self, K: Tensor, active: Tensor) -> None:
        self.f = (~active).permute(0, 2, 1).to(K.dtype)  # (B, M, N): free in class m
        if K.device.type == "cpu" and K.dtype == torch.float64:  # compiled: small factors cost per call in torch
            from torchsvm.solvers._multiclass_numba import active_set_factors_cpu  # numba: loaded on first use

            self.L, self.Ls, ok = active_set_factors_cpu(K, self.f)
        else:
            self.L, self.Ls, ok = self._factors(K)
        self.fallback = (~ok).nonzero().squeeze(1)
        self.compact = _CompactSystem(K[self.fallback], active[self.fallback]) if self.fallback.numel() else None

    def _factors(self, K: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(L, Ls, ok)``: the class blocks' and the Schur complement's Cholesky factors (identity where
        one failed) and whether each problem's are usable."""
        f, N = self.f, K.shape[-1]
        H = K.unsqueeze(1) * f.unsqueeze(-1) * f.unsqueeze(-2)  # (B, M, N, N)
        H.diagonal(dim1=-2, dim2=-1).add_(1 - f)
        L, info = torch.linalg.cholesky_ex(H)
        eye = torch.eye(N, dtype=K.dtype, device=K.device)
        L = torch.where((info > 0)[..., None, None], eye, L)  # failed blocks: placeholders, solved below
        S = (f.unsqueeze(-1) * torch.cholesky_inverse(L) * f.unsqueeze(-2)).sum(1)  # (B, N, N)
        Ls, info_s = torch.linalg.cholesky_ex(S)
        Ls = torch.where((info_s > 0)[..., None, None], eye, Ls)
        return L, Ls, (info == 0).all(1) & (info_s == 0) & _well_conditioned(L).all(1) & _well_conditioned(Ls)

    def solve(self, R: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
        """``(A, beta)``: the free variables' values ``(B, N, M)`` (0 on the bound ones) and the
        multipliers ``(B, N)`` for right-hand sides ``R`` ``(B, N, M)`` (read on the free entries) and ``s`` ``(B, N)``."""
        r = R.permute(0, 2, 1) * self.f  # (B, M, N)
        Hr = torch.cholesky_solve(r.unsqueeze(-1), self.L).squeeze(-1)
        beta = torch.cholesky_solve(((self.f * Hr).sum(1) - s).unsqueeze(-1), self.Ls).squeeze(-1)  # (B, N)
        a = torch.cholesky_solve((r - self.f * beta.unsqueeze(1)).unsqueeze(-1), self.L).squeeze(-1) * self.f
        A = a.permute(0, 2, 1)
        if self.compact is not None:
            A_c, beta_c = self.compact.solve_full(R[self.fallback], s[self.fallback])
            A, beta = A.index_copy(0, self.fallback, A_c), beta.index_copy(0, self.fallback, beta_c)
        return A, beta

    @classmethod
    def from_factors(cls, f: Tensor, L: Tensor, Ls: Tensor) -> ActiveSetSystem:
        """The system of factors computed elsewhere (every problem's usable): ``f`` ``(B, M, N)``, ``L``, ``Ls``."""
        system = object.__new__(cls)
        system.f, system.L, system.Ls = f, L, Ls
        system.fallback, system.compact = torch.zeros(0, dtype=torch.long, device=f.device), None
        return system

    @classmethod
    def placeholder(cls, K: Tensor, M: int) -> ActiveSetSystem:
        """A system of ``K``'s shape with no factors yet (zeros), to take each problem's from :meth:`replace_`."""
        B, N, _ = K.shape
        return cls.from_factors(K.new_zeros(B, M, N), K.new_zeros(B, M, N, N), K.new_zeros(B, N, N))

    def replace_(self, index: Tensor, other: ActiveSetSystem) -> ActiveSetSystem | None:
        """This system with the problems ``index`` taken from ``other``, in place (their factors only: ``None``,
        and nothing changed, where either system solves a problem through :class:`_CompactSystem`, rare enough
        to refactor). In place: the factors are the largest tensors of a solve, and copying them costs more
        than the small solves around them."""
        if self.compact is not None or other.compact is not None:
            return None
        for mine, theirs in ((self.f, other.f), (self.L, other.L), (self.Ls, other.Ls)):
            mine.index_copy_(0, index, theirs)
        return self


def _well_conditioned(L: Tensor) -> Tensor:
    """Cholesky factors whose pivots stay within 1 / PIVOT_RATIO of each other (the matrix's conditioning within
    its square)."""
    d = L.diagonal(dim1=-2, dim2=-1).abs()
    return d.amin(-1) > PIVOT_RATIO * d.amax(-1)


class _CompactSystem:
    """The equations of :class:`ActiveSetSystem` as one matrix over the free variables: the route
    for problems whose class blocks or Schur complement are singular.

    S [a_F; beta] = [r_F; s] with the symmetric S = [[H_FF, E_F^T], [E_F, 0]], H = I_M (x) K
    (H_{(i,m),(j,m')} = K_ij [m = m']) and E_F the sample of each free variable. Each problem's
    free variables come first (a stable sort), padded to the batch's largest count with identity
    rows. S is factored once by LU; where it is singular (the free variables of one class
    outnumber the kernel's rank, duplicated samples: a pivot below 1e-10 of the largest) that
    problem is solved in the minimum-norm sense through its eigendecomposition instead.
    """

    def __init__(self, K: Tensor, active: Tensor) -> None:
        B, N, M = active.shape
        free = ~active.reshape(B, N * M)
        n_free = free.sum(1)
        n = int(n_free.max())
        self.shape, self.n = (B, N, M), n
        self.idx = torch.sort((~free).to(torch.int8), dim=1, stable=True).indices[:, :n]  # (B, n): i * M + m
        self.valid = torch.arange(n, device=K.device) < n_free.unsqueeze(1)
        i, m = self.idx // M, self.idx % M
        pair = self.valid.unsqueeze(2) & self.valid.unsqueeze(1) & (m.unsqueeze(2) == m.unsqueeze(1))
        K_FF = K.gather(1, i.unsqueeze(2).expand(B, n, N)).gather(2, i.unsqueeze(1).expand(B, n, n))  # K[i_p, i_q]
        S = K.new_zeros(B, n + N, n + N)
        S[:, :n, :n] = torch.where(pair, K_FF, 0)
        S[:, :n, :n].diagonal(dim1=1, dim2=2).add_((~self.valid).to(K.dtype))
        E = (i.unsqueeze(1) == torch.arange(N, device=K.device).view(1, N, 1)) & self.valid.unsqueeze(1)  # (B, N, n)
        S[:, n:, :n] = E.to(K.dtype)
        S[:, :n, n:] = E.mT.to(K.dtype)
        self.LU, self.pivots, info = torch.linalg.lu_factor_ex(S)
        pivot = self.LU.diagonal(dim1=1, dim2=2).abs()
        self.singular = ((info > 0) | (pivot.amin(1) <= 1e-10 * pivot.amax(1))).nonzero().squeeze(1)
        if self.singular.numel():
            lam, self.V = torch.linalg.eigh(S[self.singular])
            cutoff = lam.abs().amax(1, keepdim=True) * S.shape[-1] * torch.finfo(S.dtype).eps
            self.inv = torch.where(lam.abs() > cutoff, 1 / lam, 0)

    def gather(self, T: Tensor) -> Tensor:
        """The free entries of ``T`` ``(B, N, M)`` in the system's order, ``(B, n)`` (padding 0)."""
        B, N, M = self.shape
        return T.reshape(B, N * M).gather(1, self.idx) * self.valid

    def scatter(self, x: Tensor) -> Tensor:
        """``x`` ``(B, n)`` back to ``(B, N, M)``, zero off the free set."""
        B, N, M = self.shape
        return x.new_zeros(B, N * M).scatter_add_(1, self.idx, x * self.valid).reshape(B, N, M)

    def solve_full(self, R: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
        """As :meth:`ActiveSetSystem.solve`: ``R`` ``(B, N, M)`` read on the free entries."""
        x, beta = self.solve(self.gather(R), s)
        return self.scatter(x), beta

    def solve(self, rhs_free: Tensor, rhs_samples: Tensor) -> tuple[Tensor, Tensor]:
        """Minimum-norm solution of S [x; beta] = [rhs_free (B, n); rhs_samples (B, N)]."""
        rhs = torch.cat([rhs_free * self.valid, rhs_samples], 1).unsqueeze(2)
        sol = torch.linalg.lu_solve(self.LU, self.pivots, rhs)
        if self.singular.numel():
            r, V = rhs[self.singular], self.V
            sol = sol.index_copy(0, self.singular, V @ (self.inv.unsqueeze(2) * (V.mT @ r)))
        sol = sol.squeeze(2)
        return sol[:, : self.n], sol[:, self.n :]


class CrammerSingerInfo(NamedTuple):
    converged: bool
    n_iter: int  # interior-point steps of the batch
    kkt_violation: Tensor  # (B,) largest violation of the KKT conditions; <= tol at convergence
    active: Tensor  # (B, N, M) bool: the bound variables (a_im = u_im) of the returned solution
    beta: Tensor  # (B, N) multipliers of the equalities sum_m a_im = 0


class CrammerSingerResult(NamedTuple):
    alpha: Tensor  # (B, N, M)
    info: CrammerSingerInfo
    system: ActiveSetSystem | None  # the factored KKT system of the returned active set (the backward's)


def crammer_singer_objective(K: Tensor, onehot: Tensor, A: Tensor) -> Tensor:
    """``1/2 sum_m a_m^T K a_m - sum_i a_{i, y_i}`` per problem, ``(B,)``."""
    return 0.5 * (A * (K @ A)).sum((-2, -1)) - (onehot * A).sum((-2, -1))


def project_rows(V: Tensor, U: Tensor) -> tuple[Tensor, Tensor]:
    """Euclidean projection of each row of ``V`` onto ``{a <= u, sum a = 0}`` (``u >= 0``, sum u > 0).

    The projection is ``a = min(v - tau, u)`` with tau the root of the decreasing, piecewise
    linear phi(tau) = sum_m min(v_m - tau, u_m), whose breakpoints are b_m = v_m - u_m. Entry m
    is capped at u_m exactly when b_m >= tau, i.e. when phi(b_m) <= 0 (phi at the smallest
    breakpoint is sum u > 0, so at least one entry stays uncapped). With the capped entries
    known, sum_capped u + sum_others v - (M - k) tau = 0 gives tau. O(M^2) per row, no sort.
    Returns ``(a, tau)``, ``tau`` of V's shape without its last dimension.
    """
    M = V.shape[-1]
    Bk = V - U
    phi = torch.minimum(V.unsqueeze(-2) - Bk.unsqueeze(-1), U.unsqueeze(-2)).sum(-1)  # phi(b_c), (..., M)
    capped = phi <= 0
    tau = torch.where(capped, U, V).sum(-1, keepdim=True) / (M - capped.sum(-1, keepdim=True))
    return torch.minimum(V - tau, U), tau.squeeze(-1)


def _kkt(K: Tensor, onehot: Tensor, U: Tensor, A: Tensor, beta: Tensor, active: Tensor) -> Tensor:
    """Largest KKT violation per problem: bounds, equalities, stationarity on the free set, and the
    sign of the bound variables' multipliers mu = onehot - K A - beta (>= 0)."""
    mu = onehot - K @ A - beta.unsqueeze(-1)
    viol = torch.stack([
        (A - U).clamp_min(0).amax((1, 2)),
        A.sum(-1).abs().amax(1),
        torch.where(active, 0, mu.abs()).amax((1, 2)),
        torch.where(active, (-mu).clamp_min(0), 0).amax((1, 2)),
    ])
    return viol.amax(0)


class Candidate(NamedTuple):
    """A solution of each of B problems as the stages hand it on: the variables ``A`` ``(B, N, M)``, the
    multipliers ``beta`` ``(B, N)``, the ``active`` set ``(B, N, M)`` (variables at their bound), the KKT
    ``violation`` ``(B,)`` (NaN: not solved yet), and the factors of the active set's equations (the
    backward's), ``None`` where candidates were merged from systems that cannot be."""

    A: Tensor
    beta: Tensor
    active: Tensor
    violation: Tensor
    system: ActiveSetSystem | None


def _polish(K: Tensor, onehot: Tensor, U: Tensor, active: Tensor, tol: float, compact: bool = True) -> Candidate:
    """Exact solutions of the KKT equations from a guessed active set, re-partitioned while violated.

    Returns a :class:`Candidate` after up to ``_POLISH_ROUNDS`` rounds; the
    problems whose violation is <= tol are solved exactly (to the linear solve's precision). On the CPU
    (float64) the rounds run compiled (``polish_cpu``), each problem on its own; the problems a factor
    fails on there (the compact system's case) are solved by the torch rounds (:func:`_polish_torch`), or
    with ``compact=False`` left open (violation above tol, placeholder factors): for guesses the interior
    point is cheaper to follow than the compact system's (N M + N)^2 factors.
    """
    if K.device.type != "cpu" or K.dtype != torch.float64:
        return _polish_torch(K, onehot, U, active, tol)
    from torchsvm.solvers._multiclass_numba import polish_cpu  # numba: loaded on first use

    A, beta, act, viol, f, L, Ls, factored = polish_cpu(K, onehot, U, active, tol, _POLISH_ROUNDS)
    best = Candidate(A, beta, act, viol, ActiveSetSystem.from_factors(f, L, Ls))
    redo = (~factored).nonzero().squeeze(1)
    if redo.numel() and compact:
        best = _place(best, redo, _polish_torch(K[redo], onehot[redo], U[redo], active[redo], tol))
    return best


def _polish_torch(K: Tensor, onehot: Tensor, U: Tensor, active: Tensor, tol: float) -> Candidate:
    """:func:`_polish` as torch operations (CUDA's; on the CPU the problems the compiled rounds cannot
    factor). Each round after the first factors only the problems still open (the factorizations cost
    per problem)."""
    first = ActiveSetSystem(K, active)
    A, beta, viol = _solve_active_set(first, K, onehot, U, active)
    system: ActiveSetSystem | None = first
    open_ = (viol > tol).nonzero().squeeze(1)
    for _ in range(_POLISH_ROUNDS - 1):
        if not open_.numel():
            break
        # Primal-dual active-set rule: a free variable past its bound becomes bound; a bound one
        # whose multiplier is negative becomes free.
        Ko, oo, Uo, Ao, act = K[open_], onehot[open_], U[open_], A[open_], active[open_]
        mu = oo - Ko @ Ao - beta[open_].unsqueeze(-1)
        act = (act & (mu >= -tol)) | (~act & (Ao > Uo + tol))
        sub = ActiveSetSystem(Ko, act)
        Ao, beta_o, viol_o = _solve_active_set(sub, Ko, oo, Uo, act)
        A, beta, active, viol = (T.index_copy(0, open_, T_o) for T, T_o in
                                 ((A, Ao), (beta, beta_o), (active, act), (viol, viol_o)))
        system = system.replace_(open_, sub) if system is not None else None
        open_ = open_[viol_o > tol]
    return Candidate(A, beta, active, viol, system)


def _solve_active_set(system: ActiveSetSystem, K: Tensor, onehot: Tensor, U: Tensor,
                      active: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(A, beta, violation)``: the KKT equations of ``active`` solved (the bound variables at u)."""
    UA = torch.where(active, U, 0)
    X, beta = system.solve(onehot - K @ UA, -UA.sum(-1))
    A = torch.where(active, U, X)
    return A, beta, _kkt(K, onehot, U, A, beta, active)


def _projected_gradient(Ks: Tensor, lin: Tensor, Us: Tensor, L: Tensor, level: float, max_iter: int,
                        check_every: int = 10, start: Tensor | None = None) -> tuple[Tensor, int, Tensor, Tensor]:
    """Accelerated projected gradient (FISTA with adaptive restart, step 1 / lambda_max) on the rescaled
    problem (L: Ks's largest eigenvalues, ``(B,)``) until every problem's gradient mapping is <= level,
    or ``max_iter`` steps: the active set its last step's projection caps, ``(B, N, M)`` bool, the
    steps taken, which problems got there ``(B,)`` (at the last check) and the last iterate (``start``, a
    feasible iterate to go on from: the momentum restarts there). Each step is one product and
    an exact projection of every row: cheaper than an interior-point step by ten, and few are needed
    where K is well conditioned."""
    B, N, _ = Ks.shape
    L = L.clamp_min(torch.finfo(Ks.dtype).tiny).view(B, 1, 1)
    # The gradient step as one fused product: Z - (Ks Z - lin) / L = lin / L + (I - Ks / L) Z. Small
    # batched problems cost per operation, not per flop: a step is some 20 operations.
    P, c = torch.eye(N, dtype=Ks.dtype, device=Ks.device) - Ks / L, lin / L
    # Momentum (k - 1) / (k + 2) after k steps since the last restart (FISTA's t-sequence, asymptotically).
    k_max = torch.arange(max_iter + 2, dtype=Ks.dtype, device=Ks.device)
    momentum = ((k_max - 1) / (k_max + 2)).clamp_min(0)
    A = torch.zeros_like(lin) if start is None else start  # feasible: 0 <= u and every row sums to 0
    Z, k = A, torch.zeros(B, dtype=torch.long, device=Ks.device)
    n_iter, gap_before = 0, torch.full((B,), torch.inf, dtype=Ks.dtype, device=Ks.device)
    gap = gap_before
    for n_iter in range(1, max_iter + 1):
        A_new, _ = project_rows(torch.baddbmm(c, P, Z), Us)
        D = A_new - A
        # Adaptive restart (O'Donoghue & Candes): drop the momentum when it points uphill.
        k = torch.where(torch.linalg.vecdot((Z - A_new).flatten(1), D.flatten(1)) > 0, 1, k + 1)
        Z = torch.addcmul(A_new, momentum[k].view(B, 1, 1), D)
        A = A_new
        if n_iter % check_every == 0:
            P_A, _ = project_rows(torch.baddbmm(c, P, A), Us)
            gap = L.view(B) * (A - P_A).abs().amax((1, 2))  # the gradient mapping's size
            if bool((gap <= level).all()):
                break
            # Stop early when the slowest problem, at its rate since the last check, would not get there
            # within max_iter (ill-conditioned K: hundreds of steps; the interior point takes a dozen).
            rate = (gap / gap_before).clamp(*RATE_BOUNDS)
            needed = check_every * torch.log(level / gap) / torch.log(rate)
            if n_iter > check_every and float(torch.where(gap > level, needed, 0).amax()) > max_iter - n_iter:
                break
            gap_before = gap
    V = torch.baddbmm(c, P, A)
    _, tau = project_rows(V, Us)
    return (V - tau.unsqueeze(-1)) >= Us, n_iter, gap <= level, A


class _InteriorPoint:
    """Mehrotra's predictor-corrector interior-point method on the dual, batched over problems.

    With slacks s = u - a >= 0 and multipliers z >= 0 of the bounds, beta of the equalities, the
    Newton step of the perturbed KKT conditions
        K a_m - e_m + beta + z_m = 0,   sum_m a_m = 0,   a + s = u,   s z = sigma mu
    eliminates ds and dz and leaves, class by class, (K + diag(z_m / s_m)) da_m + dbeta = r_m
    with sum_m da_m fixed: the structure of :class:`ActiveSetSystem` with every variable free and a
    positive diagonal added, so M Cholesky factors of N x N and one of the N x N Schur complement a
    step, whatever K's rank or conditioning (the diagonal keeps every block definite). It runs on the
    problem rescaled by K's diagonal (unit diagonal; the equalities keep their form). Its iterates
    identify the active set (s_im < z_im: the bound variables), which the caller then solves exactly.
    """

    def __init__(self, Ks: Tensor, lin: Tensor, Us: Tensor) -> None:
        self.K, self.lin, self.U = Ks, lin, Us
        B, N, M = lin.shape
        self.A, self.S, self.Z = torch.zeros_like(lin), torch.ones_like(lin), torch.ones_like(lin)
        self.beta = lin.new_zeros(B, N)
        self.eye = torch.eye(N, dtype=Ks.dtype, device=Ks.device)
        self.n_iter = 0
        self.steps = torch.zeros(B, dtype=torch.long, device=Ks.device)  # per problem: compiled (CPU) runs only

    def residual(self) -> tuple[Tensor, Tensor]:
        """Largest residual of the KKT conditions and largest complementarity product, per problem
        ``(B,)``, and the stationarity residual ``K A - e + beta + Z`` ``(B, N, M)`` (the step's)."""
        A, S, Z = self.A, self.S, self.Z
        Rd = self.K @ A - self.lin + self.beta.unsqueeze(-1) + Z
        return torch.stack([Rd.abs().amax((1, 2)), A.sum(-1).abs().amax(1), (A + S - self.U).abs().amax((1, 2)),
                            (S * Z).amax((1, 2))]).amax(0), Rd

    def run(self, level: float, max_iter: int, patience: int = 5) -> None:
        """Iterate until every problem's :meth:`residual` is <= level, ``max_iter`` steps in all, or
        ``patience`` steps without the largest residual halving (rounding: a singular K). On the CPU
        the same steps as compiled code (``interior_point_cpu``), each problem stopping on its own."""
        if self.K.device.type == "cpu":
            from torchsvm.solvers._multiclass_numba import interior_point_cpu  # numba: loaded on first use

            interior_point_cpu(self.K, self.lin, self.U, self.A, self.S, self.Z, self.beta, self.steps, level,
                               max_iter, patience)
            self.n_iter = int(self.steps.max()) if self.steps.numel() else 0
        else:
            self.run_torch(level, max_iter, patience)

    def run_torch(self, level: float, max_iter: int, patience: int = 5) -> None:
        """:meth:`run` as torch operations, the batch stepping until its worst problem stops."""
        best, since = torch.inf, 0
        while self.n_iter < max_iter:
            residual, Rd = self.residual()
            worst = float(residual.amax())
            if worst <= level or since >= patience:
                return
            best, since = (worst, 0) if worst <= best / 2 else (best, since + 1)
            self.n_iter += 1
            self._step(Rd)

    def _factor(self, H: Tensor) -> Tensor:
        # K may be singular and rounded slightly indefinite: a failed factor gets a small ridge (the
        # step is then inexact Newton; the residuals are always computed exactly).
        L, info = torch.linalg.cholesky_ex(H)
        for ridge in RIDGES:
            if not bool((info > 0).any()):
                break
            L2, info = torch.linalg.cholesky_ex(H + ridge * self.eye)
            L = torch.where((info == 0)[..., None, None], L2, L)
        return L

    def _step(self, Rd: Tensor) -> None:
        A, S, Z, beta = self.A, self.S, self.Z, self.beta
        Re, Rp = A.sum(-1), A + S - self.U
        mu = (S * Z).mean((1, 2), keepdim=True)
        L = self._factor(self.K.unsqueeze(1) + torch.diag_embed((Z / S).mT))  # (B, M, N, N)
        Ls = self._factor(torch.cholesky_inverse(L).sum(1))  # the Schur complement sum_m H_m^-1

        def direction(Rc: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
            # da from H_m da_m = r_m - dbeta and sum_m da_m = -Re; then ds = -Rp - da, dz = (-Rc - z ds) / s.
            # Triangular solves, not products with explicit inverses: the bound variables' z / s grows
            # without limit, and the inverses' rounding then stalls the iteration (measured).
            r = (-Rd + (Rc - Z * Rp) / S).mT.unsqueeze(-1)  # (B, M, N, 1)
            Hr = torch.cholesky_solve(r, L).squeeze(-1)
            db = torch.cholesky_solve((Hr.sum(1) + Re).unsqueeze(-1), Ls).squeeze(-1)  # (B, N)
            dA = torch.cholesky_solve(r - db.unsqueeze(1).unsqueeze(-1), L).squeeze(-1).mT
            dS = -Rp - dA
            return dA, db, dS, (-Rc - Z * dS) / S

        def longest(dS: Tensor, dZ: Tensor) -> Tensor:  # the largest step in [0, 1] keeping s, z >= 0
            to_s = torch.where(dS < 0, -S / dS, torch.inf).amin((1, 2), keepdim=True)
            to_z = torch.where(dZ < 0, -Z / dZ, torch.inf).amin((1, 2), keepdim=True)
            return torch.minimum(to_s, to_z).clamp(max=1.0)

        dA, _, dS, dZ = direction(S * Z)  # predictor: the affine-scaling step
        t = longest(dS, dZ)
        sigma = (((S + t * dS) * (Z + t * dZ)).mean((1, 2), keepdim=True) / mu) ** 3  # Mehrotra's centering
        dA, db, dS, dZ = direction(S * Z + dS * dZ - sigma * mu)  # corrector
        t = 0.99 * longest(dS, dZ)
        self.A, self.S, self.Z = A + t * dA, S + t * dS, Z + t * dZ
        self.beta = beta + t.view(-1, 1) * db


def _better(new: Candidate, old: Candidate | None, tol: float) -> Candidate:
    """Per problem, the candidate to keep: ``new`` where it is within tol or below ``old``'s violation
    (the system only where one candidate wins every problem)."""
    if old is None:
        return new
    take = (new.violation <= tol) | (new.violation < old.violation)
    t3 = take.view(-1, 1, 1)
    system = new.system if bool(take.all()) else old.system if not bool(take.any()) else None
    return Candidate(torch.where(t3, new.A, old.A), torch.where(take.view(-1, 1), new.beta, old.beta),
                     torch.where(t3, new.active, old.active), torch.where(take, new.violation, old.violation), system)


def crammer_singer_solve(
    K: Tensor,
    onehot: Tensor,
    U: Tensor,
    tol: float = 1e-6,
    max_iter: int | None = None,
) -> CrammerSingerResult:
    """Solve B Crammer-Singer duals: ``K`` ``(B, N, N)``, ``onehot`` ``(B, N, M)`` (the labels),
    ``U`` ``(B, N, M)`` the upper bounds ``C_i [m = y_i]`` (positive on the label, 0 elsewhere).

    All arithmetic is in K's dtype (the Function passes float64), on the problem rescaled by K's
    diagonal (a = s a', s_i = K_ii^-1/2: a unit diagonal, the rows' constraints unchanged). Projected
    gradient (:func:`_projected_gradient`, compiled on the CPU: ``projected_gradient_cpu``; up to
    ``_PG_STEPS`` steps, fewer when its rate says they will not do; only where K's condition number is
    within ``_PG_CONDITION``) gives an active set that is solved exactly (:func:`_polish`) where it
    converged. The problems it did not try or gave up on and those left above ``tol`` (ill-conditioned
    or singular K: near-duplicate embeddings) go to the interior point
    (:func:`_interior_point_solve`, compiled on the CPU too: ``interior_point_cpu``), up to ``max_iter``
    of its steps (default 100); running out warns.
    """
    max_iter = 100 if max_iter is None else max_iter
    best, n_pg = _projected_gradient_stage(K, onehot, U, tol)
    n_ipm = 0
    if best is None:
        best, n_ipm = _interior_point_solve(K, onehot, U, tol, max_iter)
    else:
        hard = (~(best.violation <= tol)).nonzero().squeeze(1)  # NaN too: the problems the projected gradient left
        if hard.numel():
            part, n_ipm = _interior_point_solve(K[hard], onehot[hard], U[hard], tol, max_iter)
            best = _place(best, hard, part)
    A, beta, active, viol, system = best
    system = ActiveSetSystem(K, active) if system is None else system  # the backward's factors
    converged = bool((viol <= tol).all())
    if not converged:
        warn_convergence(
            f"The Crammer-Singer solver did not reach tol={tol} in {n_ipm} interior-point steps (largest "
            f"KKT violation {float(viol.max()):.3g}). Increase max_iter or tol, or scale the kernel.",
            stacklevel=3,
        )
    return CrammerSingerResult(A, CrammerSingerInfo(converged, n_pg + n_ipm, viol, active, beta), system)


def _projected_gradient_stage(K: Tensor, onehot: Tensor, U: Tensor, tol: float) -> tuple[Candidate | None, int]:
    """The projected gradient on the rescaled problems, and the polish of those it converged on (at each of
    ``_PG_LEVELS``): ``(best, steps)``, ``best`` as :func:`_polish`'s result, its violation above tol or NaN
    for the problems not solved here (``None`` where none was reached). Problems whose kernel's condition
    number (on its range) is past ``_PG_CONDITION`` are not tried: FISTA takes some sqrt(cond) steps per
    e-fold of its error, beyond its budget there."""
    B = K.shape[0]
    Ks, lin, Us, _ = _rescaled(K, onehot, U)
    eig = torch.linalg.eigvalsh(Ks)
    # the condition on K's range: a singular K's null space is held by the constraints (measured: FISTA solves
    # 64-d embeddings of 75 samples as fast as full-rank ones), and a float32 kernel's rounds to eigenvalues
    # ~1e-8 of the largest
    smallest = torch.where(eig > 1e-6 * eig[:, -1:], eig, torch.inf).amin(1)
    tried = (eig[:, -1] <= _PG_CONDITION * smallest).nonzero().squeeze(1)
    if not tried.numel():
        return None, 0
    from torchsvm.solvers._multiclass_numba import projected_gradient_cpu  # numba: loaded on first use

    projected_gradient = projected_gradient_cpu if Ks.device.type == "cpu" else _projected_gradient
    best, n_pg, start = None, 0, None
    for level in _PG_LEVELS:
        active, steps, done, A = projected_gradient(Ks[tried], lin[tried], Us[tried], eig[tried, -1], max(tol, level),
                                                    _PG_STEPS, start=start)
        n_pg += steps
        easy = tried[done]
        if not easy.numel():
            break
        part = _polish(K[easy], onehot[easy], U[easy], active[done], tol, compact=False)
        if easy.numel() == B:
            best = part
        else:
            if best is None:  # a placeholder for every problem (violation unknown: NaN), placed by the polishes
                best = Candidate(torch.zeros_like(onehot), torch.zeros_like(K[:, 0]),
                                 torch.zeros_like(onehot, dtype=torch.bool), torch.full_like(K[:, 0, 0], torch.nan),
                                 ActiveSetSystem.placeholder(K, onehot.shape[2]))
            best = _place(best, easy, part)
        # the next level goes on from the iterates whose active set the polish did not solve
        failed = ~(part.violation <= tol)
        tried, start = easy[failed], A[done][failed]
        if not tried.numel():
            break
    return best, n_pg


def _place(best: Candidate, index: Tensor, part: Candidate) -> Candidate:
    """``best`` with the problems ``index`` replaced by ``part`` (in place: ``best``'s tensors are the
    solver's own), systems merged where both have one."""
    if index.numel() == best.A.shape[0]:
        return part
    for mine, theirs in zip(best[:4], part[:4], strict=True):  # A, beta, active, violation
        mine.index_copy_(0, index, theirs)
    system = best.system.replace_(index, part.system) if best.system is not None and part.system is not None else None
    return best._replace(system=system)


def _rescaled(K: Tensor, onehot: Tensor, U: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The problem in a' = a / s, s_i = K_ii^-1/2 (Jacobi: a unit diagonal, the rows' constraints
    unchanged): ``(s K s, onehot s, U / s, s)``, s ``(B, N, 1)``."""
    s = K.diagonal(dim1=1, dim2=2).clamp_min(torch.finfo(K.dtype).tiny).rsqrt().unsqueeze(2)
    return s * K * s.mT, onehot * s, U / s, s


def _interior_point_solve(K: Tensor, onehot: Tensor, U: Tensor, tol: float, max_iter: int) -> tuple[Candidate, int]:
    """The interior-point stage of :func:`crammer_singer_solve` (its arguments), on the rescaled problem:
    steps until the residuals are 1e-3 tol; the active set the iterate shows is solved exactly, and per
    problem the exact solution within tol, else the better of it and the iterate itself (bound
    variables set to their bound: the answer where K is singular and the exact equations are not) is
    kept; problems still above ``tol`` go on with residuals a hundred times smaller. Returns
    ``(Candidate, steps)``."""
    Ks, lin, Us, s = _rescaled(K, onehot, U)
    ipm = _InteriorPoint(Ks, lin, Us)
    level, best = 1e-3 * tol, None
    while True:
        ipm.run(level, max_iter)
        active = ipm.S < ipm.Z
        A_ipm, beta_ipm = torch.where(active, U, ipm.A * s), ipm.beta / s.squeeze(2)
        best = _better(Candidate(A_ipm, beta_ipm, active, _kkt(K, onehot, U, A_ipm, beta_ipm, active), None), best, tol)
        best = _better(_polish(K, onehot, U, active, tol), best, tol)  # the exact solution where it is within tol
        if bool((best.violation <= tol).all()) or ipm.n_iter >= max_iter or level < 1e-6 * tol:
            return best, ipm.n_iter
        level /= 100
