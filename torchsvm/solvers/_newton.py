"""Newton directions for the batched primal solver: H_k p_k = rhs_k for K one-vs-rest problems.

H_k = [[I + X^T S_k X, X^T S_k 1], [1^T S_k X, 1^T S_k 1 + lam]] + damping I, with S_k the curvature of
class k's loss on each sample (zero off the curved rows) and lam the bias penalty (0: a free bias;
inf: no bias, the bias row and column replaced by the identity's, so with rhs_b = 0 the bias stays 0).
:class:`NewtonDirections` picks the solve:
a batched Cholesky of the (D + 1)^2 Hessians (their Gram parts kept between steps), the same
solve through n x n systems by the Woodbury identity when every class has n < D curved rows, or
conjugate gradients when D is too large to factor.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from torchsvm._sparse import Matrix, addmm, dense_rows, xt_mm
from torchsvm.distributed import LOCAL, Collectives, gather_rows

__all__ = ["NewtonDirections"]


def _batched_cg(hvp, rhs: Tensor, tol: float, max_iter: int) -> tuple[Tensor, int]:
    """Solve H p = rhs column by column (K independent SPD systems, vectorized), from p = 0."""
    p = torch.zeros_like(rhs)
    r = rhs.clone()
    d = r.clone()
    rr = (r * r).sum(0)
    stop = (tol * rhs.norm(dim=0)) ** 2
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 (the count is returned)
        Hd = hvp(d)
        dHd = (d * Hd).sum(0)
        alpha = torch.where(dHd > 0, rr / dHd.clamp_min(1e-300), torch.zeros_like(rr))
        p += alpha * d
        r -= alpha * Hd
        rr_new = (r * r).sum(0)
        if bool((rr_new <= stop).all()):
            break
        d = r + (rr_new / rr.clamp_min(1e-300)) * d
        rr = rr_new
    return p, it


class _CurvatureGram:
    """G_k = Z^T diag(weights_k) Z with Z = [X, 1], kept per class k between Newton steps.

    For the hinge and the squared hinge the weights are C_ik on the curved rows and 0 elsewhere,
    and from one step to the next few rows enter or leave the curved set (a small fraction of
    the curved rows, after the first few steps), so G_k is updated by the changed rows,
    G_k += Z_c^T diag(new - old) Z_c, at |c| (D + 1)^2 instead of n_k (D + 1)^2, and rebuilt
    when more rows changed than it now holds (and when the product dtype changes). Rebuilds
    run in ``product_dtype``, updates in float64 (few rows), and both accumulate into float64.
    The K (D + 1)^2 float64 matrices are allocated at the first update.

    Over sharded rows every rank holds the whole sum G_k: a rebuild sums the ranks' parts (an
    all-reduce of (D + 1)^2 values per class), an update gathers the ranks' changed rows and every
    rank adds all of them (|c| (D + 2) values: after the first steps far fewer than (D + 1)^2). The
    choice between the two is made on the counts over all ranks, so every rank makes the same one.
    """

    def __init__(self, X: Matrix, K: int, chunk: int = 8192, shards: Collectives = LOCAL) -> None:
        self.X, self.K, self.chunk, self.shards = X, K, chunk, shards
        self.G: Tensor | None = None
        self.weights = X.new_zeros(X.shape[0], K)  # the weights each G_k holds
        self.product_dtype: torch.dtype | None = None
        self.rows_used = 0  # rows multiplied in all (tests check that updates save work)

    def _allocate(self) -> Tensor:
        if self.G is None:
            D = self.X.shape[1]
            self.G = torch.zeros(self.K, D + 1, D + 1, dtype=torch.float64, device=self.X.device)
        return self.G

    def _add(self, k: int, rows: Tensor | None, w: Tensor, product_dtype: torch.dtype, X: Tensor | None = None) -> None:
        """G_k += Z^T diag(w) Z with Z = [X[rows], 1] (or the given rows ``X`` when ``rows`` is None),
        a chunk of rows at a time: only a chunk is gathered and converted at once."""
        source: Matrix = self.X if X is None else X
        n = rows.numel() if rows is not None else source.shape[0]
        for start in range(0, n, self.chunk):
            part = slice(start, start + self.chunk)
            Xc = dense_rows(source, rows[part] if rows is not None else part)
            Z = torch.nn.functional.pad(Xc.to(product_dtype), (0, 1), value=1.0)
            self._allocate()[k] += (Z * w[part].to(product_dtype).unsqueeze(1)).t().mm(Z).to(torch.float64)
            self.rows_used += Xc.shape[0]

    def update(self, cols: Tensor, weights: Tensor, product_dtype: torch.dtype) -> Tensor:
        """Bring G_k to ``weights[:, j]`` for each class k = cols[j] and return G[cols], ``(K', D + 1, D + 1)``."""
        G = self._allocate()
        rebuild_all = product_dtype != self.product_dtype
        self.product_dtype = product_dtype
        new, old = weights, self.weights[:, cols]
        counts = self.shards.sum(torch.stack([(new != old).sum(0), (new != 0).sum(0)])).tolist()  # changed, held rows
        rebuilt = []
        for j, k in enumerate(cols.tolist()):
            if rebuild_all or counts[0][j] >= counts[1][j]:
                held = (new[:, j] != 0).nonzero().squeeze(1)
                G[k].zero_()
                self._add(k, held, new[held, j], product_dtype)  # this rank's part
                rebuilt.append(k)
            elif counts[0][j]:
                changed = (new[:, j] != old[:, j]).nonzero().squeeze(1)
                # (x_i, new - old) of the changed rows, every rank's where sharded.
                rows = torch.cat([dense_rows(self.X, changed).to(torch.float64), (new[changed, j] - old[changed, j]).unsqueeze(1)
                                  .to(torch.float64)], 1)
                rows, _ = gather_rows(self.shards, rows)
                self._add(k, None, rows[:, -1], torch.float64, X=rows[:, :-1])
        if rebuilt and self.shards.distributed:
            index = torch.as_tensor(rebuilt, device=G.device)
            G[index] = self.shards.sum(G[index])  # the ranks' parts summed
        self.weights[:, cols] = new
        return G[cols]

    def assign(self, cols: Tensor, G: Tensor, weights: Tensor, product_dtype: torch.dtype) -> None:
        """Set G_k = G (one Gram matrix for all of ``cols``) built from ``weights`` ``(N, K')``."""
        self._allocate()[cols] = G
        self.weights[:, cols] = weights
        self.product_dtype = product_dtype


def _newton_direction_direct(
    X: Matrix,
    weights: Tensor,
    rhs: Tensor,
    damping: float,
    product_dtype: torch.dtype,
    scale: float = 1.0,
    gram: _CurvatureGram | None = None,
    cols: Tensor | None = None,
    shards: Collectives = LOCAL,
    bias_penalty: float = 0.0,
) -> Tensor:
    """Solve H_k p_k = rhs_k exactly for every column k by a batched Cholesky in float64.

    H_k = [[I + X^T S_k X, X^T S_k 1], [1^T S_k X, 1^T S_k 1]] + damping I with
    S_k = diag(scale * weights_k). Only rows with nonzero weight enter, gathered a chunk at a time
    so memory stays bounded; cost sum_k n_k (D + 1)^2 + K (D + 1)^3 / 3. With ``gram`` (holding
    classes ``cols`` from an earlier call) the Gram part is updated by the rows whose weight
    changed instead (:class:`_CurvatureGram`). The products run in ``product_dtype`` (float32
    halves their cost where H is well conditioned) and accumulate into float64. Over sharded rows
    the Gram parts are sums over every rank's rows (see :class:`_CurvatureGram`).
    """
    D = X.shape[1]
    # Classes with the same weights share H: the first step (w = 0, every sample on the band,
    # equal costs) builds and factors one Hessian for all K right-hand sides.
    same = weights.shape[1] > 1 and bool((weights == weights[:, :1]).all())
    shared = bool(shards.min(torch.tensor([same], dtype=torch.int32, device=X.device))) if shards.distributed else same
    if shared:
        one = _CurvatureGram(X, 1, shards=shards)
        H = one.update(torch.zeros(1, dtype=torch.long, device=X.device), weights[:, :1], product_dtype)
        if gram is not None and cols is not None:
            gram.assign(cols, H[0], weights, product_dtype)
    else:
        if gram is None or cols is None:
            gram = _CurvatureGram(X, weights.shape[1], shards=shards)
            cols = torch.arange(weights.shape[1], device=X.device)
        H = gram.update(cols, weights, product_dtype)  # the sum over every rank's rows
    H = H * scale
    diag = torch.full((D + 1,), 1.0 + damping, dtype=torch.float64, device=X.device)
    if math.isinf(bias_penalty):  # no bias: its row and column are the identity's (rhs_b = 0 keeps p_b = 0)
        H[:, -1, :] = 0.0
        H[:, :, -1] = 0.0
        diag[-1] = 1.0
    else:
        diag[-1] = damping + bias_penalty
    H.diagonal(dim1=1, dim2=2).add_(diag)
    L, info = torch.linalg.cholesky_ex(H)
    if bool((info > 0).any()):  # numerically singular: lean on the damping more
        H.diagonal(dim1=1, dim2=2).add_(1e-6 * float(H.diagonal(dim1=1, dim2=2).max()))
        L = torch.linalg.cholesky(H)
    # (1, D + 1, K) with one shared H, else (K, D + 1, 1).
    B = rhs.to(torch.float64).unsqueeze(0) if shared else rhs.t().to(torch.float64).unsqueeze(2)
    # Two triangular solves: L L^T p = rhs (cholesky_solve was much slower on CPU for K columns).
    P = torch.linalg.solve_triangular(L.mT, torch.linalg.solve_triangular(L, B, upper=False), upper=True)
    return (P[0] if shared else P.squeeze(2).t()).to(rhs.dtype)


def _newton_direction_woodbury(
    X: Matrix, curv: Tensor, rhs: Tensor, damping: float, product_dtype: torch.dtype, bias_penalty: float = 0.0
) -> Tensor:
    """The same solve as :func:`_newton_direction_direct` through n x n systems, for n_k < D.

    With Z = sqrt(S) X_B (the n curved rows), s = sqrt(S) 1, e = 1 + damping and G = e I + Z Z^T
    (n x n, eigenvalues >= 1), the push-through identity M^{-1} Z^T = Z^T G^{-1} for
    M = e I + Z^T Z eliminates the bias (penalty lam) without ever dividing by the damping alone:
        a = G^{-1} Z r_w,  g = G^{-1} s,
        p_b = (r_b - s^T a) / (e s^T g + damping + lam),
        p_w = (r_w - Z^T a) / e - p_b Z^T g.
    With no bias (lam = inf) p_b = 0 and p_w = (r_w - Z^T a) / e.
    Cost n^2 D + n^3 / 3 per class instead of n D^2 + D^3 / 3. Classes are padded to the largest
    n with zero rows, which leave every formula unchanged.
    """
    N, D = X.shape
    K = curv.shape[1]
    rows = [(curv[:, k] > 0).nonzero().squeeze(1) for k in range(K)]
    n = max(1, max(len(r) for r in rows))
    Z = X.new_zeros(K, n, D, dtype=product_dtype)
    s = torch.zeros(K, n, dtype=torch.float64, device=X.device)
    for k, idx in enumerate(rows):
        root = curv[idx, k].to(torch.float64).sqrt()
        Z[k, : len(idx)] = dense_rows(X, idx).to(product_dtype) * root.to(product_dtype).unsqueeze(1)
        s[k, : len(idx)] = root
    e = 1.0 + damping
    G = torch.bmm(Z, Z.mT).to(torch.float64)
    G.diagonal(dim1=1, dim2=2).add_(e)
    L = torch.linalg.cholesky(G)
    Z = Z.to(torch.float64)
    r_w, r_b = rhs[:-1].t().to(torch.float64), rhs[-1].to(torch.float64)  # (K, D), (K,)
    a = torch.cholesky_solve(torch.bmm(Z, r_w.unsqueeze(2)), L).squeeze(2)  # (K, n)
    g = torch.cholesky_solve(s.unsqueeze(2), L).squeeze(2)
    if math.isinf(bias_penalty):
        p_b = torch.zeros_like(r_b)
    else:
        p_b = (r_b - (s * a).sum(1)) / (e * (s * g).sum(1) + damping + bias_penalty)
    p_w = (r_w - torch.bmm(Z.mT, a.unsqueeze(2)).squeeze(2)) / e - p_b.unsqueeze(1) * torch.bmm(Z.mT, g.unsqueeze(2)).squeeze(2)
    return torch.cat([p_w.t(), p_b.unsqueeze(0)], 0).to(rhs.dtype)


class NewtonDirections:
    """The Newton direction of every open class, by the cheapest exact route D and n allow.

    Direct whenever D <= ``direct_max_features``: building H costs n_curved (D + 1)^2 per class
    in compute-bound matrix products, while each CG step is two memory-bound passes over X and
    the smoothed hinge needs hundreds (a direct step is the cheaper on the datasets benchmarked).
    Holds the Gram cache of the direct route between steps.
    """

    def __init__(self, X: Matrix, K: int, damping: float, direct_max_features: int, cache_gram: bool,
                 shards: Collectives = LOCAL, bias_penalty: float = 0.0) -> None:
        self.X, self.damping, self.shards, self.bias_penalty = X, damping, shards, bias_penalty
        self.direct = X.shape[1] <= direct_max_features
        self.gram = _CurvatureGram(X, K, shards=shards) if self.direct and cache_gram else None

    def solve(self, cols: Tensor, weights: Tensor, scale: float, rhs: Tensor, precise: bool) -> Tensor:
        """p with H p = rhs for classes ``cols``; the curvature is ``scale * weights`` ``(N, K')``.

        ``precise=False`` lets the products run in X's dtype (float32 is accurate enough while H
        is well conditioned); they accumulate and factor in float64 either way.
        """
        X = self.X
        curv = scale * weights
        if not self.direct:
            no_bias = math.isinf(self.bias_penalty)

            def hvp(V: Tensor) -> Tensor:  # V (D + 1, K'): [w-part; b-part]
                U = curv * addmm(V[-1], X, V[:-1])  # (N, K')
                out = self.shards.sum(torch.cat([xt_mm(X, U), U.sum(0, keepdim=True)], 0))  # sums over the rows
                out[:-1] += V[:-1]
                # No bias: H's bias row is the identity's and rhs_b = 0, so CG keeps p_b = 0.
                out[-1] = 0.0 if no_bias else out[-1] + self.bias_penalty * V[-1]
                return out + self.damping * V

            return _batched_cg(hvp, rhs, tol=1e-3, max_iter=max(50, X.shape[1]))[0]
        product_dtype = X.dtype if not precise else torch.float64
        # Woodbury works on the curved rows themselves, which sharded rows do not have in one place.
        if not self.shards.distributed and int((weights > 0).sum(0).max()) < X.shape[1]:
            return _newton_direction_woodbury(X, curv, rhs, self.damping, product_dtype, self.bias_penalty)
        return _newton_direction_direct(X, weights, rhs, self.damping, product_dtype, scale, self.gram, cols,
                                        self.shards, self.bias_penalty)
