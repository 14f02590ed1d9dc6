"""The decomposition solver: working sets of ~1024 variables, their kernel rows by one matrix product, an
inner SMO on the small block (ThunderSVM / cuML's design); never forms the N x N Gram matrix."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from torchsvm._sparse import Matrix
from torchsvm._warnings import warn_convergence
from torchsvm.kernels import KernelFn, kernel_row_blocks
from torchsvm.solvers._dual_rules import (
    DualInfo,
    DualResult,
    device_memory_guard,
    dual_bias,
    dual_result,
    dual_start,
    index_sets,
)
from torchsvm.solvers.smo import extremes, smo_steps
from torchsvm.validation import check_positive_int

__all__ = ["DecompositionSolver", "decomposition_dual"]


def kept_columns(T: Tensor | None, keep: int) -> Tensor:
    """The first ``keep`` working-set entries of the last iteration's ``T`` (there is one after the first)."""
    assert T is not None, "kept rows come from an earlier iteration"
    return T[:, :keep]


class DecompositionSolver:
    """Decomposition solver for B SVM duals whose N x N kernel need not fit in memory.

    The ThunderSVM / cuML design on torch: each outer iteration picks, per problem, a working
    set W of q violators (half the largest -y_t G_t in I_up, half the smallest in I_low),
    computes their kernel rows K(X_W, X) ``(B, q, N)`` by one matrix product, solves the
    q-variable subproblem on ``K_WW`` by SMO (:func:`smo_steps`, to a local tolerance
    ``max(tol, gap / 10)``), then updates the gradient of all N variables by one batched
    matrix-vector product, ``G += y * (K_W^T (y_W * delta_W))``. Half of W (the newest half)
    and its kernel rows are kept for the next iteration, so each outer iteration computes q/2
    new rows. Memory is O(B q N), never O(N^2).

    Step it (``step()`` returns True when converged; the Lightning module logs each step) or
    call :func:`decomposition_dual`.

    Args:
        X: ``(N, D)`` samples, on the device the solver runs on.
        y: ``(B, N)`` labels in {-1, +1}.
        C: ``(B, N)`` non-negative costs (``C_i = 0`` leaves sample i out of problem b).
        kernel: ``kernel(A, Z) -> (n_A, n_Z)`` Gram block.
        working_set_size: q, the variables optimized per outer iteration (even, >= 2).
        tol: stopping tolerance on the maximal KKT violation ``m(a) - M(a)``.
        dtype: of the solver's state (alpha, the gradient); default X's, which the kernel rows have.
        p, alpha0, nu: linear term, feasible start and nu formulation, as in :func:`smo_dual` (nu:
            a quarter of each working set from each end of each sign).
        row_of: ``(N,)``: variable t sits on sample ``row_of[t]`` of X (epsilon-SVR's two variables per
            sample); X then holds each sample once, and the kernel rows are computed against the samples,
            not the variables (half the work for SVR). Default: variable t on row t.
    """

    def __init__(
        self,
        X: Matrix,
        y: Tensor,
        C: Tensor,
        kernel: KernelFn,
        working_set_size: int = 1024,
        tol: float = 1e-3,
        dtype: torch.dtype | None = None,
        p: Tensor | None = None,
        alpha0: Tensor | None = None,
        nu: bool = False,
        row_of: Tensor | None = None,
    ) -> None:
        check_positive_int("working_set_size", working_set_size, at_least=2)
        self.X, self.kernel, self.tol, self.nu, self.row_of = X, kernel, tol, nu, row_of
        dtype = X.dtype if dtype is None else dtype
        self.Y, self.C = y.to(dtype), C.to(dtype)
        B, N = self.Y.shape
        self.n_total = N  # variables of each problem (over all ranks, where they are sharded)
        self.q = min(working_set_size - working_set_size % 2, N - N % 2) if N >= 2 else 2
        self.p = -torch.ones(B, N, dtype=dtype, device=X.device) if p is None else p.to(dtype).expand(B, N).clone()

        def Kv(v: Tensor) -> Tensor:  # K v without forming K: a block of kernel rows at a time
            v = self._to_samples(v)
            return self._to_variables(
                torch.cat([v.to(rows.dtype) @ rows.T for _, rows in kernel_row_blocks(kernel, X, X, 1024)], 1))

        self.alpha, self.G = dual_start(Kv, self.Y, self.C, self.p, alpha0, dtype)
        self.gap = torch.full((B,), math.inf, dtype=dtype, device=X.device)
        self.n_iter = 0
        self.n_inner = 0
        self.problem_iters = torch.zeros(B, dtype=torch.long, device=X.device)  # outer iterations each problem needed
        self._W: Tensor | None = None  # (B, q) working set of the last iteration, newest half first
        self._movable: Tensor | None = None
        self._rows: Tensor | None = None  # (B, q, N) its kernel rows
        self._buffers: list[Tensor] | None = None  # where the base solver keeps them, in turn
        self._advice = (
            f"Pass a smaller working_set_size (now {working_set_size}), fewer samples, or run on the CPU "
            "(device='cpu')."
        )

    def _to_samples(self, v: Tensor) -> Tensor:
        """``(B, N)`` per variable -> ``(B, n_samples)``, summed over each sample's variables."""
        if self.row_of is None:
            return v
        return v.new_zeros(v.shape[0], self.X.shape[0]).index_add_(1, self.row_of, v)

    def _to_variables(self, u: Tensor) -> Tensor:
        """``(..., n_samples)`` per sample -> ``(..., N)`` per variable."""
        return u if self.row_of is None else u.index_select(-1, self.row_of)

    def _sample_of(self, W: Tensor) -> Tensor:
        """The samples (rows of X) of the variables ``W``."""
        return W if self.row_of is None else self.row_of[W]

    def _groups(self) -> list[Tensor | None]:
        """The variables whose violations are compared: all (None), or each sign apart (nu)."""
        pos = self.Y > 0
        return [pos, ~pos] if self.nu else [None]

    def kkt_violation(self) -> Tensor:
        """``m(a) - M(a)`` per problem ``(B,)`` (nu: the larger of the two signs'): 0 at the optimum,
        <= tol at convergence."""
        up, low = index_sets(self.alpha, self.Y > 0, self.C)
        score = -self.Y * self.G
        gaps = []
        for g in self._groups():
            m, _, M = extremes(score, up if g is None else up & g, low if g is None else low & g)
            gaps.append(m - M)
        return torch.stack(gaps).amax(0).nan_to_num(nan=-math.inf)

    def _select(self, n: int, exclude: Tensor | None) -> tuple[Tensor, Tensor]:
        """n new working-set indices per problem ``(B, n)`` and whether each is a real violator;
        the top violators from each end (nu: of each sign, so each sign's worst pair is in)."""
        B, N = self.Y.shape
        up, low = index_sets(self.alpha, self.Y > 0, self.C)
        if exclude is not None:
            up, low = up & ~exclude, low & ~exclude
        score = -self.Y * self.G
        groups = self._groups()
        sizes = [n // (2 * len(groups))] * (2 * len(groups))
        sizes[-1] += n - sum(sizes)
        taken = torch.zeros(B, N, dtype=torch.bool, device=score.device)
        index, ok = [], []
        ends = []  # (variables, what ranks them): I_up by largest score, I_low by smallest, per group
        for g in groups:
            for side, value in ((up, score), (low, -score)):
                ends.append((side if g is None else side & g, value))
        for k, (side, value) in enumerate(ends):
            v, i = torch.where(side & ~taken, value, -math.inf).topk(sizes[k], dim=-1)
            taken.scatter_(1, i, v > -math.inf)
            index.append(i)
            ok.append(v > -math.inf)
        # Placeholders (no violator left) may repeat an index; they are frozen in the subproblem.
        return torch.cat(index, 1), torch.cat(ok, 1)

    def _rows_of(self, W: Tensor) -> Tensor:
        B, n = W.shape
        with device_memory_guard(f"{B * n} kernel rows of length {self.X.shape[0]}", self._advice):
            return self.kernel(self.X[self._sample_of(W.reshape(-1))], self.X).reshape(B, n, -1)

    def _positions(self, W: Tensor) -> tuple[Tensor, Tensor]:
        """For working-set indices ``W``: which variables this process holds and their indices in its
        state (here: all of them, at ``W`` itself; sharded solvers hold a block)."""
        return torch.ones_like(W, dtype=torch.bool), W

    def _working_set(self) -> tuple[Tensor, Tensor, Tensor]:
        """``(W (B, q), W_new, movable)``: the new violators first (``W_new``), then the last
        iteration's newest half, kept."""
        if self._W is None or self._movable is None:
            W, movable = self._select(self.q, None)
            return W, W, movable
        B, N = self.Y.shape
        keep = self.q // 2
        W_old, mov_old = self._W[:, :keep], self._movable[:, :keep]
        # Kept real violators are not picked again; kept placeholders (frozen) do not count.
        held, local = self._positions(W_old)
        kept = torch.zeros(B, N, dtype=torch.int32, device=W_old.device).scatter_add_(1, local, (held & mov_old).int())
        W_new, mov_new = self._select(self.q - keep, kept > 0)
        return torch.cat([W_new, W_old], 1), W_new, torch.cat([mov_new, mov_old], 1)

    def _subproblem(self, W: Tensor, W_new: Tensor) -> tuple[Tensor, ...]:
        """``(rows, K_WW, y_W, C_W, alpha_W, G_W)``: the working set's kernel rows against this process's
        samples ``(B, q, n_samples)`` (new ones computed, the kept half's reused), its q x q block and state."""
        B, q = W.shape
        n_new = W_new.shape[1]
        new = self._rows_of(W_new)
        # Two buffers used in turn (new rows first, then the kept half of the other): fresh (B, q, N)
        # memory each iteration would cost its page faults, and a concatenation a second copy.
        if self._buffers is None or self._buffers[0].shape != (B, q, new.shape[2]) or self._buffers[0].dtype != new.dtype:
            self._buffers = [new.new_empty(B, q, new.shape[2]) for _ in range(2)]
        rows, previous = self._buffers[self.n_iter % 2], self._buffers[(self.n_iter + 1) % 2]
        rows[:, :n_new] = new
        if n_new < q:
            rows[:, n_new:] = previous[:, : q - n_new]  # the last iteration's newest rows, kept
        K_WW = rows.gather(2, self._sample_of(W).unsqueeze(1).expand(B, q, q))
        return (rows, K_WW, *(T.gather(1, W) for T in (self.Y, self.C, self.alpha, self.G)))

    def _agree(self, delta: Tensor) -> Tensor:
        """The subproblem's step as every process applies it (here: as solved)."""
        return delta

    def step(self) -> bool:
        """One outer iteration; returns True (without changing anything) once converged."""
        self.gap = self.kkt_violation()
        open_ = self.gap > self.tol
        if not bool(open_.any()):
            return True
        self.problem_iters += open_
        W, W_new, movable = self._working_set()
        rows, K_WW, Y_W, C_W, a_W, G_W = self._subproblem(W, W_new)
        a_new = a_W.clone()
        inner_tol = (0.1 * self.gap).clamp_min(self.tol)  # (B,): each problem to a tenth of its violation
        steps, _ = smo_steps(
            K_WW, Y_W, C_W, a_new, G_W, inner_tol, max_iter=5 * self.q, movable=movable, nu=self.nu
        )
        delta = self._agree(torch.where(movable, a_new - a_W, 0))  # (B, q)
        held, local = self._positions(W)
        self.alpha.scatter_add_(1, local, torch.where(held, delta, 0))
        self.alpha = torch.minimum(self.alpha.clamp_min(0), self.C)
        # G = Q a - 1 changes by Q_{:,W} delta_W = y * (K_{W,:}^T (y_W * delta_W)).
        self.G += self.Y * self._to_variables(torch.bmm((Y_W * delta).to(rows.dtype).unsqueeze(1), rows).squeeze(1))
        self._W, self._movable, self._rows = W, movable, rows
        self.n_iter += 1
        self.n_inner += steps
        return False

    # -- checkpoints: what continuing needs -------------------------------------------------------
    _STATE = ("alpha", "G", "gap", "problem_iters", "_W", "_movable")  # tensors; alpha and G per variable

    def state_dict(self) -> dict:
        """The iterate and what the next step reads: ``alpha``, ``G`` ``(B, N)``, the KKT violations, the
        counters and the last working set (its kernel rows are computed again on loading, not stored)."""
        state: dict = {name: getattr(self, name) for name in self._STATE}
        return {**state, "n_iter": self.n_iter, "n_inner": self.n_inner}

    def load_state_dict(self, state: dict) -> None:
        """Continue from :meth:`state_dict` of a solver of the same problems (shapes checked)."""
        for name in self._STATE:
            value, mine = state[name], getattr(self, name)
            if value is not None and mine is not None and value.shape != mine.shape:
                raise ValueError(f"Expected {name} of shape {tuple(mine.shape)} (the same problems), got "
                                 f"{tuple(value.shape)}")
            setattr(self, name, None if value is None else value.to(self.alpha.device))
        self.n_iter, self.n_inner = int(state["n_iter"]), int(state["n_inner"])
        self._restore_kept_rows()

    def _restore_kept_rows(self) -> None:
        """The last working set's kernel rows, which the next step keeps half of."""
        self._buffers = None
        if self._W is None:
            self._rows = None
            return
        rows = self._rows_of(self._W)
        self._buffers = [torch.empty_like(rows), torch.empty_like(rows)]
        self._buffers[(self.n_iter + 1) % 2].copy_(rows)  # where the next step looks for the previous rows
        self._rows = self._buffers[(self.n_iter + 1) % 2]

    def dual_objective(self) -> Tensor:
        """``-(1/2 a^T Q a + p^T a)`` per problem (``sum a - 1/2 a^T Q a`` for classification), from G
        (no kernel evaluations): ``(B,)``."""
        # G = Q a + p, so 1/2 a^T Q a + p^T a = 1/2 a^T (G + p).
        return -0.5 * (self.alpha * (self.G + self.p)).sum(-1)

    def bias(self) -> Tensor:
        """The biases ``(B,)`` of the current iterate (LIBSVM's rule, :func:`dual_bias`)."""
        return dual_bias(self.G, self.Y, self.alpha, self.C)

    def primal_objective(self, b: Tensor) -> Tensor:
        """The primal objective ``(B,)`` of the model the current alpha and biases ``b`` define, from G.

        The primal of LIBSVM's form is 1/2 ||w||^2 + sum_i C_i max(0, -p_i - y_i f(x_i)) (the hinge
        for p = -1; epsilon-SVR's two tube sides for its p). With (Q a)_i = y_i (f(x_i) - b) and
        G = Q a + p, y_i f(x_i) = G_i - p_i + y_i b, so each loss is max(0, -G_i - y_i b), and
        ||w||^2 = a^T Q a = a^T (G - p). The duality gap is this minus :meth:`dual_objective`.
        """
        loss = (self.C * (-self.G - self.Y * b.unsqueeze(-1)).clamp_min(0)).sum(-1)
        return 0.5 * (self.alpha * (self.G - self.p)).sum(-1) + loss

    def coefficients(self) -> Tensor:
        """``y * alpha`` ``(B, N)``: what the decision function multiplies the kernel rows by."""
        return self.alpha * self.Y

    def result(self) -> DualResult:
        converged = bool((self.gap <= self.tol).all())
        return dual_result(self.G, self.Y, self.alpha, self.C, DualInfo(converged, self.n_iter, self.gap, self.problem_iters),
                       self.nu)


def decomposition_dual(
    X: Matrix,
    y: Tensor,
    C: float | Tensor,
    kernel: KernelFn,
    *,
    working_set_size: int = 1024,
    tol: float = 1e-3,
    max_iter: int | None = None,
    dtype: torch.dtype | None = None,
    p: Tensor | None = None,
    alpha0: Tensor | None = None,
    nu: bool = False,
    row_of: Tensor | None = None,
) -> DualResult:
    """Solve B SVM duals on ``kernel(X, X)`` without forming it, by :class:`DecompositionSolver`.

    Args:
        X: ``(N, D)`` samples.
        y: ``(N,)`` or ``(B, N)`` labels in {-1, +1}.
        C: scalar, ``(N,)`` or ``(B, N)`` non-negative costs (0 leaves a sample out).
        kernel: ``kernel(A, Z) -> (n_A, n_Z)``.
        working_set_size: variables per outer iteration; memory is about ``B q N`` kernel values.
        tol: stopping tolerance on the KKT violation (LIBSVM's eps).
        max_iter: outer iterations (default ``max(1000, 20 N / q)``); running out warns.
        dtype: of the solver's state and results; default X's (see :func:`smo_dual`).
        p, alpha0, nu: linear term, feasible start, nu formulation (see :func:`smo_dual`).
        row_of: ``(N,)`` the sample of X each variable sits on (see :class:`DecompositionSolver`).

    Returns:
        ``DualResult(alpha (B, N), b (B,), info)``; ``info.n_iter`` counts outer iterations.

    Raises:
        MemoryError: the kernel rows of a working set do not fit, with advice.
    """
    Y = y if y.ndim == 2 else y.unsqueeze(0)
    B, N = Y.shape
    Cb = torch.as_tensor(C, dtype=X.dtype if dtype is None else dtype, device=X.device)
    Cb = Cb.expand(B, N) if Cb.ndim < 2 else Cb
    solver = DecompositionSolver(X, Y, Cb, kernel, working_set_size, tol, dtype, p, alpha0, nu, row_of)
    max_iter = max(1000, 20 * N // solver.q) if max_iter is None else max_iter
    for _ in range(max_iter):
        if solver.step():
            break
    else:
        solver.gap = solver.kkt_violation()
    result = solver.result()
    if not result.info.converged:
        warn_convergence(
            f"Decomposition did not converge in max_iter={max_iter} outer iterations (max KKT violation "
            f"{float(result.info.kkt_violation.max()):.3g} > tol={tol}). Increase max_iter or tol, "
            "or scale the data / kernel.",
            stacklevel=2,
        )
    return result
