"""The decomposition solver over rows sharded across the ranks of a process group.

Each rank owns a shard of the rows: its X, labels, costs, alpha and gradient G. One outer
iteration, for B problems, working set q (q/2 new variables, q/2 kept), D features, R ranks:

1. the KKT violation: a max and a min per problem across ranks (``2B`` values);
2. the working set: each rank offers its own top candidates from each end (I_up by the largest
   -y G, I_low by the smallest), every rank gathers all offers and keeps the global top
   (two all-gathers of ``B q/4`` values and indices each);
3. the new variables' feature rows and every working-set variable's (y, C, alpha, G) are summed
   into place from their owners (``B (q/2 D + 4 q)`` float64 values);
4. each rank computes the new kernel rows against its own shard only, ``K(X_W, X_r)``, and the
   q x q block from the shared rows; the q-variable subproblem is solved on every rank and rank
   0's step is broadcast (``B q`` values), so every rank applies exactly the same one;
5. alpha and G are updated locally: ``G_r += y_r * K(X_W, X_r)^T (y_W * delta_W)``.

Nothing N x N and nothing N x D is exchanged: per iteration each rank hands
``8 B (q D / 2 + 6 q + 2)`` bytes to collectives, whatever N is (see the cost model in docs/guide/distributed.md).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from torchsvm.distributed import Collectives, gather_rows, row_offsets
from torchsvm.kernels import KernelFn
from torchsvm.solvers._dual_rules import DualInfo, DualResult, dual_bias, index_sets
from torchsvm.solvers.decomposition import DecompositionSolver, kept_columns
from torchsvm.solvers.smo import extremes

__all__ = ["ShardedDecompositionSolver"]


class ShardedDecompositionSolver(DecompositionSolver):
    """:class:`~torchsvm.solvers.dual.DecompositionSolver` for C-SVC problems whose rows are spread
    over the ranks of ``shards`` (see the module docstring for what one iteration exchanges).

    Every rank constructs it on its own rows and steps it the same number of times; the state
    (alpha, G) stays local, ``gap`` and the biases are global. Starts from alpha = 0 (G = p, so
    no kernel product with the other ranks' rows is needed).

    Args:
        X: ``(N_r, D)`` this rank's rows (kernel dtype).
        y: ``(B, N_r)`` labels in {-1, +1}; C: ``(B, N_r)`` costs (0 leaves a row out).
        kernel, working_set_size, tol, dtype: as :class:`DecompositionSolver`; q is set from the
            total number of rows.
        shards: the ranks (:class:`torchsvm.distributed.Shards`).
        p: ``(B, N_r)`` linear term of this rank's variables (default -1: classification).
    """

    def __init__(self, X: Tensor, y: Tensor, C: Tensor, kernel: KernelFn, shards: Collectives,
                 working_set_size: int = 1024, tol: float = 1e-3, dtype: torch.dtype | None = None,
                 p: Tensor | None = None) -> None:
        super().__init__(X, y, C, kernel, working_set_size, tol, dtype, p)
        self.X_dense = X  # sharded fits take dense rows
        self.shards = shards
        offsets = row_offsets(shards, X.shape[0], X.device)
        self.first, self.n_total = int(offsets[shards.rank]), int(offsets[-1])
        self.q = min(working_set_size - working_set_size % 2, self.n_total - self.n_total % 2)
        self._XW: Tensor | None = None  # (B, q, D) the working set's feature rows, newest half first
        self._K_WW: Tensor | None = None  # (B, q, q) their kernel block

    def _positions(self, W: Tensor) -> tuple[Tensor, Tensor]:
        """For global indices ``W``: whether this rank owns each, and its local index (clamped where not)."""
        local = W - self.first
        owned = (local >= 0) & (local < self.X.shape[0])
        return owned, local.clamp(0, self.X.shape[0] - 1)

    def kkt_violation(self) -> Tensor:
        up, low = index_sets(self.alpha, self.Y > 0, self.C)
        m, _, M = extremes(-self.Y * self.G, up, low)
        m, neg_M = self.shards.max(torch.stack([m, -M]))
        return (m + neg_M).nan_to_num(nan=-math.inf)

    def _select(self, n: int, exclude: Tensor | None) -> tuple[Tensor, Tensor]:
        """The global top violators from each end, ``(B, n)`` global row indices and whether each is real."""
        B, N = self.Y.shape
        up, low = index_sets(self.alpha, self.Y > 0, self.C)
        if exclude is not None:
            up, low = up & ~exclude, low & ~exclude
        score = -self.Y * self.G
        sizes = [n // 2, n - n // 2]
        taken = torch.zeros(B, N, dtype=torch.bool, device=score.device)
        index, ok = [], []
        for size, (side, value) in zip(sizes, ((up, score), (low, -score)), strict=True):
            k = min(size, N)
            v, i = torch.where(side & ~taken, value, -math.inf).topk(k, dim=-1)
            offer = torch.full((B, 2, size), -math.inf, dtype=torch.float64, device=score.device)
            offer[:, 0, :k], offer[:, 1] = v, float(self.first)  # padding points at a real row: a placeholder
            offer[:, 1, :k] = (i + self.first).to(torch.float64)  # exact below 2^53 rows
            offers = self.shards.all_gather(offer)  # (R, B, 2, size)
            values = offers[:, :, 0].permute(1, 0, 2).reshape(B, -1)
            rows = offers[:, :, 1].permute(1, 0, 2).reshape(B, -1)
            best, at = values.topk(size, dim=-1)
            W = rows.gather(1, at).long()
            real = best > -math.inf
            owned, local = self._positions(W)
            taken |= torch.zeros(B, N, dtype=torch.int32, device=score.device).scatter_add_(
                1, local, (owned & real).int()) > 0
            index.append(W)
            ok.append(real)
        return torch.cat(index, 1), torch.cat(ok, 1)

    def _share(self, W: Tensor, W_new: Tensor) -> tuple[Tensor, Tensor]:
        """Sum into place from their owners: the feature rows of ``W_new`` ``(B, n, D)`` and
        (y, C, alpha, G) of every variable of ``W`` ``(4, B, q)``."""
        B, n = W_new.shape
        D = self.X.shape[1]
        owned_new, local_new = self._positions(W_new)
        owned, local = self._positions(W)
        rows = torch.where(owned_new.unsqueeze(2), self.X_dense[local_new.reshape(-1)].reshape(B, n, D), 0)
        state = torch.stack([T.gather(1, local) for T in (self.Y, self.C, self.alpha, self.G)])
        state = torch.where(owned, state.to(torch.float64), 0)
        buffer = self.shards.sum(torch.cat([rows.reshape(-1).to(torch.float64), state.reshape(-1)]))
        return buffer[: B * n * D].reshape(B, n, D).to(self.X.dtype), buffer[B * n * D :].reshape(4, B, -1)

    def _block(self, XW: Tensor, n: int) -> Tensor:
        """The working set's kernel block ``(B, q, q)`` from its shared rows (the first ``n`` new): the new
        rows against all q, the kept half's block from the last iteration (its newest half), by symmetry
        the rest; (q/2) q D per problem instead of q^2 D."""
        B, q, _ = XW.shape
        K = XW.new_empty(B, q, q)
        for b in range(B):
            K[b, :n] = self.kernel(XW[b, :n], XW[b])
        if n < q:
            assert self._K_WW is not None  # kept rows come from an earlier block
            K[:, n:, :n] = K[:, :n, n:].mT
            K[:, n:, n:] = self._K_WW[:, : q - n, : q - n]
        return K

    def _subproblem(self, W: Tensor, W_new: Tensor) -> tuple[Tensor, ...]:
        """The new rows and the working set's state summed into place from their owners; kernel rows
        against this rank's shard only, the q x q block from the shared rows."""
        B, q = W.shape
        keep = q - W_new.shape[1]
        X_new, state = self._share(W, W_new)
        rows = self.kernel(X_new.reshape(-1, X_new.shape[2]), self.X).reshape(B, W_new.shape[1], -1)
        if keep:
            rows = torch.cat([rows, kept_columns(self._rows, keep)], 1)  # (B, q, N_r): local columns
            X_new = torch.cat([X_new, kept_columns(self._XW, keep)], 1)
        self._K_WW = self._block(X_new, W_new.shape[1])  # reads the last block before replacing it
        self._XW = X_new  # (B, q, D)
        return (rows, self._K_WW, *(t.to(self.Y.dtype) for t in state))

    def state_dict(self) -> dict:
        """:meth:`DecompositionSolver.state_dict` with ``alpha`` and ``G`` of every rank's rows (rank order): the
        same on every rank, so that any rank's copy resumes the fit, on as many ranks as the rows are split."""
        state = super().state_dict()
        for name in ("alpha", "G"):
            every, _ = gather_rows(self.shards, state[name].T.contiguous())
            state[name] = every.T
        return state

    def load_state_dict(self, state: dict) -> None:
        own = slice(self.first, self.first + self.alpha.shape[1])  # this rank's rows of the whole
        if state["alpha"].shape[1] != self.n_total:
            raise ValueError(f"Expected a state of {self.n_total} rows (all ranks'), got {state['alpha'].shape[1]}")
        super().load_state_dict({**state, "alpha": state["alpha"][:, own], "G": state["G"][:, own]})

    def _restore_kept_rows(self) -> None:
        """The last working set's shared rows, their kernel rows on this rank and their block."""
        if self._W is None:
            self._rows = self._XW = self._K_WW = None
            return
        XW, _ = self._share(self._W, self._W)
        B, q, D = XW.shape
        self._rows = self.kernel(XW.reshape(-1, D), self.X).reshape(B, q, -1)
        self._XW = XW
        self._K_WW = torch.stack([self.kernel(XW[b], XW[b]) for b in range(B)])

    def _agree(self, delta: Tensor) -> Tensor:
        # Rank 0's step for everyone: the subproblems agree to rounding, the iterates must agree exactly.
        return self.shards.broadcast(delta)

    def dual_objective(self) -> Tensor:
        return self.shards.sum(super().dual_objective())

    def primal_objective(self, b: Tensor) -> Tensor:
        return self.shards.sum(super().primal_objective(b))

    def bias(self) -> Tensor:
        return dual_bias(self.G, self.Y, self.alpha, self.C, self.shards)

    def result(self) -> DualResult:
        """``alpha`` ``(B, N_r)`` of this rank's rows; the biases and ``info`` are global."""
        converged = bool((self.gap <= self.tol).all())
        return DualResult(self.alpha, self.bias(), DualInfo(converged, self.n_iter, self.gap, self.problem_iters))
