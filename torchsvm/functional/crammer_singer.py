"""The Crammer-Singer multi-class SVM dual as a differentiable Function (MetaOptNet's SVM head)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from torchsvm.solvers.multiclass import ActiveSetSystem, crammer_singer_solve
from torchsvm.validation import (
    check_finite,
    check_gram_and_labels,
    check_positive,
    check_same_device,
    check_symmetric,
)

__all__ = ["CrammerSingerFunction", "crammer_singer_dual"]


class CrammerSingerFunction(torch.autograd.Function):
    """``alpha = argmin 1/2 sum_m a_m^T K a_m - sum_i a_{i,y_i}`` s.t. ``a <= U``, ``sum_m a_im = 0``.

    Inputs are batched: ``K`` ``(B, N, N)``, ``onehot`` ``(B, N, M)`` (the labels), ``U``
    ``(B, N, M)`` the upper bounds ``C_i [m = y_i]``; the output ``alpha`` is ``(B, N, M)``.
    """

    @staticmethod
    def forward(
        K: Tensor, onehot: Tensor, U: Tensor, tol: float, max_iter: int | None
    ) -> tuple[Tensor, Tensor, ActiveSetSystem | None]:
        # float64 whatever K's dtype: the problems are small, and a float32 solve cannot reach a
        # tight KKT tolerance when K's entries are large (unnormalized embeddings).
        result = crammer_singer_solve(K.double(), onehot.double(), U.double(), tol=tol, max_iter=max_iter)
        return result.alpha.to(K.dtype), result.info.active, result.system

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: tuple) -> None:
        K, _, U, _, _ = inputs
        alpha, active, system = output
        ctx.system = system  # the factored KKT system of the solution's active set, reused below
        ctx.mark_non_differentiable(active)
        ctx.save_for_backward(K, U, alpha, active)

    # Implicit differentiation of the KKT conditions on the active set. With F the free
    # variables and the others at their bound (a = u), the solution obeys
    #   S [a_F; beta] = [onehot_F - (K U_bound)_F; -sum_m U_bound],  S = [[H_FF, E_F^T], [E_F, 0]],
    # H = I_M (x) K, E_F the sample of each free variable (see ActiveSetSystem). For an upstream
    # gradient G = dL/dalpha (B, N, M), solve S [w_F; w_b] = [G_F; 0] once (S is symmetric; its
    # factorization comes from the forward) and let W be w_F scattered to (N, M), 0 off F:
    #   dL/dK = -sym(W A^T)                               (N, N), A = alpha with a_bound = u
    #   dL/dU = G - K W - w_b 1^T   on the bound variables (N, M), 0 on F
    # (the bound variables move with u; everything else through S). Variables at a bound are
    # taken to stay there, true away from degenerate points (a bound variable with a zero
    # multiplier). A singular S (free variables of a class outnumbering the kernel's rank,
    # duplicated samples) gives the minimum-norm solution.
    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_alpha: Tensor, *_unused: Any) -> tuple:
        K, U, alpha, active = ctx.saved_tensors
        system, dtype = ctx.system, K.dtype
        K, alpha, G = K.double(), torch.where(active, U, alpha).double(), grad_alpha.double()  # as the forward
        W, w_b = system.solve(G, torch.zeros_like(alpha[..., 0]))  # W: (B, N, M), 0 off the free set
        grad_K = grad_U = None
        if ctx.needs_input_grad[0]:
            dK = -W @ alpha.mT
            grad_K = ((dK + dK.mT) / 2).to(dtype)
        if ctx.needs_input_grad[2]:
            grad_U = torch.where(active, G - K @ W - w_b.unsqueeze(-1), 0).to(dtype)
        return grad_K, None, grad_U, None, None


def crammer_singer_dual(
    K: Tensor,
    y: Tensor,
    C: float | Tensor = 1.0,
    *,
    n_classes: int | None = None,
    tol: float = 1e-6,
    max_iter: int | None = None,
    validate: bool = True,
) -> Tensor:
    """Solve the Crammer-Singer multi-class SVM dual, differentiably in ``K`` and a tensor ``C``.

        minimize   1/2 sum_m a_m^T K a_m - sum_i a_{i, y_i}
        subject to a_im <= C_i [m = y_i]   and   sum_m a_im = 0   for every sample i

    The class scores are ``f_m(x) = sum_i alpha_im k(x_i, x)``; the prediction is their argmax.
    This is the head MetaOptNet (Lee et al., 2019) trains end to end, solved here exactly (no
    ridge added to K, no fixed iteration count: it stops on the KKT conditions): accelerated
    projected gradient, or an interior point where K is ill-conditioned, to find the active set, then
    its KKT equations solved exactly (:func:`torchsvm.solvers.multiclass.crammer_singer_solve`), in
    float64 whatever K's dtype (alpha comes back in K's).
    The backward differentiates those equations (see :class:`CrammerSingerFunction`), so
    gradients reach K (and the embeddings that built it) and a tensor C.

    Args:
        K: ``(N, N)`` or batched ``(B, N, N)`` symmetric PSD Gram matrix of the support set.
        y: ``(N,)`` or ``(B, N)`` integer labels in ``[0, M)``; every class needs a sample.
        C: positive scalar, per-sample ``(N,)`` or ``(B, N)``; a tensor gets a gradient.
        n_classes: M; default ``y.max() + 1``.
        tol: largest violation of the KKT conditions at the solution.
        max_iter: interior-point steps for the problems projected gradient leaves (default 100);
            running out warns.
        validate: check K (finite, symmetric), the labels (in range, every class present) and C
            (> 0): a few passes and device syncs. Shapes and devices are checked either way.

    Returns:
        ``alpha`` ``(N, M)``, or ``(B, N, M)``.

    Raises:
        ValueError: K not square or not symmetric, labels out of range or a class with no
            sample, C <= 0, NaN/inf in K, shapes that disagree.

    Example:
        >>> S = torch.randn(10, 4, dtype=torch.float64)  # support embeddings
        >>> y = torch.arange(10) % 3
        >>> alpha = crammer_singer_dual(S @ S.T, y, C=1.0)
        >>> scores = (S @ S.T) @ alpha  # f_m(x_i) on the support set, (10, 3)
        >>> alpha.shape, bool(alpha.sum(1).abs().max() < 1e-9)
        (torch.Size([10, 3]), True)
    """
    if isinstance(y, Tensor) and (y.dtype.is_floating_point or y.dtype == torch.bool or y.dtype.is_complex):
        raise ValueError(f"Expected integer class labels y, got dtype {y.dtype}")
    Kb, Y, single = check_gram_and_labels(K, y)
    B, N = Kb.shape[0], Kb.shape[-1]
    check_same_device(K=K, y=y, C=C if isinstance(C, Tensor) else None)
    M = int(Y.max()) + 1 if n_classes is None else n_classes
    Y = Y.expand(B, N)
    if validate:
        check_finite("K", K)
        check_symmetric("K", Kb.detach())
        check_positive("C", C.detach() if isinstance(C, Tensor) else C)
        if bool(((Y < 0) | (Y >= M)).any()):
            raise ValueError(f"Expected labels y in [0, {M - 1}], got values {sorted(set(Y.flatten().tolist()))[:8]}")
        ones = torch.ones_like(Y, dtype=torch.long)
        counts = torch.zeros(B, M, dtype=torch.long, device=Y.device).scatter_add_(1, Y.long(), ones)
        if bool((counts == 0).any()):
            b, m = (counts == 0).nonzero()[0].tolist()
            raise ValueError(f"Expected every class in [0, {M - 1}] to have a sample, got none of class {m} in problem {b}")
    onehot = torch.nn.functional.one_hot(Y.long(), M).to(K.dtype)  # (B, N, M)
    Ct = torch.as_tensor(C, dtype=K.dtype, device=K.device)
    Ct = Ct.reshape(1, -1).expand(B, N) if Ct.ndim == 1 else Ct.expand(B, N) if Ct.ndim == 0 else Ct
    if tuple(Ct.shape) != (B, N):
        raise ValueError(f"Expected C to be a scalar, ({N},) or ({B}, {N}), got shape {tuple(Ct.shape)}")
    U = Ct.unsqueeze(-1) * onehot  # upper bounds; dL/dC flows through this product
    alpha, _, _ = CrammerSingerFunction.apply(Kb, onehot, U, tol, max_iter)
    return alpha[0] if single else alpha
