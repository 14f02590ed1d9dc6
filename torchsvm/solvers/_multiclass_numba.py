"""The Crammer-Singer solver's projected-gradient stage as compiled CPU code (numba).

The same iteration as :func:`torchsvm.solvers.multiclass._projected_gradient` (FISTA with adaptive
restart on the rescaled dual, exact row projections, the same stopping rules), one problem per
thread. The torch version runs a few-shot batch as some 30 small operations a step, and on the CPU
their dispatch, not their arithmetic, is the cost: here a step of a 25 x 5 problem is some 4,000
floating-point operations and no dispatch. Each problem also stops on its own test (the torch
version steps every problem until the batch's slowest one stops).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
from torch import Tensor

__all__ = ["projected_gradient_cpu"]


@numba.njit(inline="always")
def _gradient_step(K, lin, Z, L, V):
    """V = Z - (K Z - lin) / L."""
    N, M = Z.shape
    acc = np.empty(M)
    for i in range(N):
        for m in range(M):
            acc[m] = -lin[i, m]
        for j in range(N):
            k = K[i, j]
            for m in range(M):
                acc[m] += k * Z[j, m]
        for m in range(M):
            V[i, m] = Z[i, m] - acc[m] / L


@numba.njit(inline="always")
def _project_rows(V, U, out, tau):
    """Each row of V projected onto {a <= u, sum a = 0}: ``project_rows``'s breakpoint rule."""
    N, M = V.shape
    for i in range(N):
        n_capped, total = 0, 0.0
        for c in range(M):
            b = V[i, c] - U[i, c]
            phi = 0.0
            for m in range(M):
                phi += min(V[i, m] - b, U[i, m])
            if phi <= 0:
                n_capped += 1
                total += U[i, c]
            else:
                total += V[i, c]
        tau[i] = total / (M - n_capped)
        for m in range(M):
            out[i, m] = min(V[i, m] - tau[i], U[i, m])


@numba.njit(parallel=True, cache=True)
def _fista(K, lin, U, L, level, max_iter, check_every, active, steps):
    B, N, M = lin.shape
    for b in numba.prange(B):
        Lb = max(L[b], 1e-300)
        A, Z = np.zeros((N, M)), np.zeros((N, M))
        V, A_new, P, tau = np.empty((N, M)), np.empty((N, M)), np.empty((N, M)), np.empty(N)
        k, gap_before, n_iter = 0, np.inf, 0
        for n_iter in range(1, max_iter + 1):
            _gradient_step(K[b], lin[b], Z, Lb, V)
            _project_rows(V, U[b], A_new, tau)
            dot = 0.0
            for i in range(N):
                for m in range(M):
                    dot += (Z[i, m] - A_new[i, m]) * (A_new[i, m] - A[i, m])
            k = 1 if dot > 0 else k + 1  # adaptive restart: the momentum pointed uphill
            momentum = max((k - 1) / (k + 2), 0.0)
            for i in range(N):
                for m in range(M):
                    Z[i, m] = A_new[i, m] + momentum * (A_new[i, m] - A[i, m])
                    A[i, m] = A_new[i, m]
            if n_iter % check_every == 0:
                _gradient_step(K[b], lin[b], A, Lb, V)
                _project_rows(V, U[b], P, tau)
                gap = 0.0
                for i in range(N):
                    for m in range(M):
                        gap = max(gap, abs(A[i, m] - P[i, m]))
                gap *= Lb
                if gap <= level:
                    break
                if n_iter > check_every:  # give up when this rate would not get there within max_iter
                    rate = min(max(gap / gap_before, 1e-12), 1 - 1e-6)
                    if check_every * math.log(level / gap) / math.log(rate) > max_iter - n_iter:
                        break
                gap_before = gap
        _gradient_step(K[b], lin[b], A, Lb, V)
        _project_rows(V, U[b], P, tau)
        for i in range(N):
            for m in range(M):
                active[b, i, m] = V[i, m] - tau[i] >= U[b, i, m]
        steps[b] = n_iter


def projected_gradient_cpu(Ks: Tensor, lin: Tensor, Us: Tensor, L: Tensor, level: float, max_iter: int,
                           check_every: int = 10) -> tuple[Tensor, int]:
    """:func:`torchsvm.solvers.multiclass._projected_gradient` for float64 CPU tensors, compiled."""
    B, N, M = lin.shape
    active = np.empty((B, N, M), dtype=np.bool_)
    steps = np.zeros(B, dtype=np.int64)
    K_np, lin_np, U_np, L_np = (np.ascontiguousarray(T.detach().numpy()) for T in (Ks, lin, Us, L))
    _fista(K_np, lin_np, U_np, L_np, float(level), int(max_iter), int(check_every), active, steps)
    return torch.from_numpy(active), int(steps.max()) if B else 0
