"""Several dual problems advanced one decomposition iteration at a time, in one process or sharded.

What a training loop that steps a kernel SVM (the Lightning modules) and the sharded estimators
read: one :meth:`DecompositionProblems.step` advances every problem by one outer iteration, and
the objectives, biases, coefficients and KKT violations of all problems come back in problem order,
whatever the solvers behind them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from torchsvm._sparse import Matrix
from torchsvm.distributed import LOCAL, Collectives
from torchsvm.solvers.dual import DecompositionSolver, DualInfo, DualResult, KernelFn
from torchsvm.solvers.sharded import ShardedDecompositionSolver

__all__ = ["DecompositionProblems"]


class DecompositionProblems:
    """P problems in LIBSVM's binary form (min 1/2 a^T Q a + p^T a, 0 <= a <= C, y^T a = 0) on the
    rows of X, each advanced by a decomposition solver.

    Problems over every row share one solver (one batch: binary, one-vs-rest, epsilon-SVR); problems
    with their own rows (``members``: one-vs-one pairs) get one solver each, on those rows only.
    With ``shards`` the rows are this rank's and the solvers are sharded
    (:class:`~torchsvm.solvers.sharded.ShardedDecompositionSolver`); everything reported but the
    coefficients is then global.

    Args:
        X: ``(n, D)`` rows, in the dtype kernel values are computed in.
        Y, C: ``(P, n)`` labels in {-1, +1} and costs; p: ``(P, n)`` linear term (default -1).
        alpha0, nu: a feasible start ``(P, n)`` and the nu formulation (see
            :func:`~torchsvm.solvers.dual.smo_dual`); one process.
        kernel: ``kernel(A, Z) -> (n_A, n_Z)``.
        members: None, or one tensor of row indices per problem.
        working_set_size, tol: of each solver; dtype: of the solvers' state (alpha, G).
        shards: the ranks holding the rows (default: this process holds them all).
        row_of: ``(n,)``, one process, no ``members``: variable t sits on sample ``row_of[t]`` of X, which
            then holds each sample once (epsilon-SVR's two variables per sample; see
            :class:`~torchsvm.solvers.decomposition.DecompositionSolver`).
    """

    def __init__(self, X: Matrix, Y: Tensor, C: Tensor, kernel: KernelFn, *, p: Tensor | None = None,
                 alpha0: Tensor | None = None, nu: bool = False, members: list[Tensor] | None = None,
                 working_set_size: int = 1024, tol: float = 1e-3, dtype: torch.dtype = torch.float64,
                 shards: Collectives = LOCAL, row_of: Tensor | None = None) -> None:
        if row_of is not None and (shards.distributed or members is not None):
            raise ValueError("Expected row_of only for one process and problems over every row")
        if shards.distributed and (alpha0 is not None or nu):
            raise ValueError("Expected no alpha0 and nu=False for sharded problems (the sharded solver starts at 0)")

        def solver(rows: Tensor | None, Y: Tensor, C: Tensor, p: Tensor | None, a0: Tensor | None) -> DecompositionSolver:
            Xs = X if rows is None else X[rows]
            if shards.distributed:
                assert isinstance(Xs, Tensor)  # sharded fits take dense rows
                return ShardedDecompositionSolver(Xs, Y, C, kernel, shards, working_set_size, tol, dtype, p)
            return DecompositionSolver(Xs, Y, C, kernel, working_set_size, tol, dtype, p, a0, nu, row_of)

        def own(T: Tensor | None, k: int, m: Tensor) -> Tensor | None:  # problem k's values on its rows m
            return None if T is None else T[k : k + 1, m]

        self.shape, self.tol = Y.shape, tol
        self.parts: list[tuple[slice, Tensor | None, DecompositionSolver]]
        if members is None:
            self.parts = [(slice(None), None, solver(None, Y, C, p, alpha0))]
        else:
            self.parts = [(slice(k, k + 1), m, solver(m, Y[k : k + 1, m], C[k : k + 1, m], own(p, k, m),
                                                      own(alpha0, k, m)))
                          for k, m in enumerate(members)]

    def step(self) -> bool:
        """One outer iteration of every problem not yet within tol; True once all are."""
        done = [s.step() for _, _, s in self.parts]  # every part steps (a finished one only checks)
        return all(done)

    def _each(self, read) -> Tensor:
        return torch.cat([read(s) for _, _, s in self.parts])

    @property
    def gap(self) -> Tensor:
        """``(P,)`` KKT violation of each problem at its last step."""
        return self._each(lambda s: s.gap)

    @property
    def n_inner(self) -> int:
        """Inner SMO steps so far, all problems together."""
        return sum(s.n_inner for _, _, s in self.parts)

    def default_max_iter(self) -> int:
        """Outer iterations to allow: ``max(1000, 20 N / q)`` of the largest problem (N over all ranks)."""
        return max(max(1000, 20 * s.n_total // s.q) for _, _, s in self.parts)

    def dual_objective(self) -> Tensor:
        return self._each(lambda s: s.dual_objective())

    def bias(self) -> Tensor:
        return self._each(lambda s: s.bias())

    def primal_objective(self, b: Tensor) -> Tensor:
        """``(P,)`` primal objectives at the current iterate with biases ``b`` ``(P,)``."""
        return torch.cat([s.primal_objective(b[at]) for at, _, s in self.parts])

    def coefficients(self) -> Tensor:
        """``y * alpha`` ``(P, n)`` on this process's rows (0 outside a problem's rows)."""
        _, _, first = self.parts[0]
        coef = first.alpha.new_zeros(self.shape)
        for at, rows, s in self.parts:
            if rows is None:
                coef[at] = s.coefficients()
            else:
                coef[at, rows] = s.coefficients()
        return coef

    def result(self) -> DualResult:
        """``alpha`` ``(P, n)`` (this process's rows), biases (and nu's ``r``) and ``info``, KKT violations
        refreshed."""
        results = []
        for _, _, s in self.parts:
            s.gap = s.kkt_violation()
            results.append(s.result())
        if self.parts[0][1] is None:  # one solver over every row
            return results[0]
        alpha = results[0].alpha.new_zeros(self.shape)
        for (at, rows, _), res in zip(self.parts, results, strict=True):
            alpha[at, rows] = res.alpha
        r = None if results[0].r is None else torch.cat([res.r for res in results if res.r is not None])
        gap, iters = self.gap, self._each(lambda s: s.problem_iters)
        return DualResult(alpha, torch.cat([res.b for res in results]),
                          DualInfo(bool((gap <= self.tol).all()), int(iters.max()), gap, iters), r)

    def state_dict(self) -> dict:
        """What continuing needs, every problem's (see :meth:`DecompositionSolver.state_dict`)."""
        return {"problems": self.shape[0], "parts": [s.state_dict() for _, _, s in self.parts]}

    def load_state_dict(self, state: dict) -> None:
        """Continue from :meth:`state_dict` of the same problems."""
        if state["problems"] != self.shape[0] or len(state["parts"]) != len(self.parts):
            raise ValueError(f"Expected the state of {self.shape[0]} problems in {len(self.parts)} part(s), got "
                             f"{state['problems']} in {len(state['parts'])}")
        for (_, _, s), part in zip(self.parts, state["parts"], strict=True):
            s.load_state_dict(part)

    def run(self, max_iter: int | None = None) -> DualResult:
        """Step until every problem is within tol or ``max_iter`` outer iterations (default
        :meth:`default_max_iter`) have run, then :meth:`result`; the caller warns on non-convergence."""
        for _ in range(self.default_max_iter() if max_iter is None else max_iter):
            if self.step():
                break
        return self.result()
