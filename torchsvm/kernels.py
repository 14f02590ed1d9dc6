"""Kernel functions, composable Kernel objects, validity (PSD) checks and explicit feature maps.

The functions follow ``sklearn.metrics.pairwise`` (same values, same defaults: ``gamma=None``
means ``1 / n_features``) and are plain torch ops: batched over leading dimensions, on any
device, differentiable in ``X``, ``Z`` and a tensor ``gamma``. :func:`kernel_row_blocks` yields
a Gram matrix a block of rows at a time, for problems whose N x N matrix does not fit.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from torchsvm._sparse import Matrix, SparseRows, inner, row_norms_sq
from torchsvm.validation import check_positive_int

# k(A, Z) -> (n_A, n_Z): the built-in kernels take dense tensors and SparseRows alike.
KernelFn = Callable[[Any, Any], Tensor]

__all__ = [
    "linear_kernel",
    "polynomial_kernel",
    "rbf_kernel",
    "rbf_centered",
    "sigmoid_kernel",
    "kernel_function",
    "kernel_row_blocks",
    "Kernel",
    "Linear",
    "Polynomial",
    "RBF",
    "Sigmoid",
    "FeatureMap",
    "Precomputed",
    "is_psd",
    "check_kernel",
    "polynomial_feature_map",
    "RandomFourierFeatures",
]

Number = float | int


def _pair(X: Tensor, Z: Tensor | None) -> tuple[Tensor, Tensor]:
    """(X, Z) checked; either may be a :class:`~torchsvm._sparse.SparseRows` (2-D, no autograd)."""
    if not isinstance(X, (Tensor, SparseRows)):
        raise TypeError(f"Expected X to be a torch.Tensor, got {type(X).__name__}")
    Z = X if Z is None else Z
    if X.ndim < 2 or Z.ndim < 2 or X.shape[-1] != Z.shape[-1]:
        raise ValueError(
            f"Expected X (..., N, D) and Z (..., M, D) with the same D, got {tuple(X.shape)} and {tuple(Z.shape)}"
        )
    if not X.is_floating_point():
        raise TypeError(f"Expected X to have a floating-point dtype, got {X.dtype}")
    return X, Z


def _gamma(gamma: Number | Tensor | None, X: Tensor) -> Number | Tensor:
    if gamma is None:
        return 1.0 / X.shape[-1]
    if isinstance(gamma, Tensor):
        if gamma.numel() == 1 and not bool(gamma.detach() >= 0):
            raise ValueError(f"Expected gamma >= 0, got {gamma.item()}")
        return gamma
    if not gamma >= 0:
        raise ValueError(f"Expected gamma >= 0, got {gamma}")
    return gamma


def linear_kernel(X: Tensor, Z: Tensor | None = None) -> Tensor:
    """``K_ij = x_i . z_j``, ``(..., N, M)``."""
    X, Z = _pair(X, Z)
    return inner(X, Z)


def polynomial_kernel(
    X: Tensor, Z: Tensor | None = None, *, degree: int = 3, gamma: Number | Tensor | None = None, coef0: float = 1.0
) -> Tensor:
    """``K_ij = (gamma x_i . z_j + coef0)^degree``; ``gamma=None`` is ``1 / n_features``."""
    X, Z = _pair(X, Z)
    check_positive_int("degree", degree)
    return (_gamma(gamma, X) * inner(X, Z) + coef0) ** degree


def rbf_kernel(X: Tensor, Z: Tensor | None = None, *, gamma: Number | Tensor | None = None) -> Tensor:
    """``K_ij = exp(-gamma ||x_i - z_j||^2)`` (gamma = 1 / (2 sigma^2)); ``gamma=None`` is ``1 / n_features``."""
    X, Z = _pair(X, Z)
    # ||x - z||^2 = ||x||^2 + ||z||^2 - 2 x.z: one matrix product, no (N, M, D) intermediate.
    g = _gamma(gamma, X)
    if isinstance(X, SparseRows) or isinstance(Z, SparseRows):  # centring would fill in the zeros
        return (inner(X, Z).mul_(-2).add_(row_norms_sq(X).unsqueeze(1)).add_(row_norms_sq(Z).unsqueeze(0))
                .clamp_min_(0).mul_(-g).exp_())
    # Distances do not change under a shift; centring on Z's mean keeps the norms small, so the
    # expansion does not cancel away float32's digits for data far from the origin.
    center = Z.mean(-2, keepdim=True)
    Z = Z - center
    return rbf_centered(X - center, Z, (Z * Z).sum(-1).unsqueeze(-2), g)


def rbf_centered(X: Tensor, Z: Tensor, zz: Tensor, g: Number | Tensor) -> Tensor:
    """:func:`rbf_kernel` of rows already centred on Z's mean, with ``zz`` ``(..., 1, M)`` Z's squared norms: a
    fitted model keeps its support vectors so (:class:`torchsvm.svm.modules.SVMModule`), not preparing them again
    for every batch."""
    xx = (X * X).sum(-1).unsqueeze(-1)
    if torch.is_grad_enabled() and any(isinstance(t, Tensor) and t.requires_grad for t in (X, Z, g)):
        return torch.exp(-g * (xx + zz - 2 * (X @ Z.mT)).clamp_min(0))
    # No graph to record: work in place on the one (N, M) buffer (the solvers' Gram matrices), with
    # -gamma ||z||^2 and the factor 2 gamma taken into the matrix product: four passes over it, not six.
    if X.ndim == Z.ndim and X.ndim in (2, 3) and not isinstance(g, Tensor):  # they scale by numbers only
        product = torch.addmm if X.ndim == 2 else torch.baddbmm
        return product(zz * -g, X, Z.mT, beta=1, alpha=2 * g).sub_(g * xx).clamp_max_(0).exp_()
    return (X @ Z.mT).mul_(-2).add_(xx).add_(zz).clamp_min_(0).mul_(-g).exp_()


def sigmoid_kernel(
    X: Tensor, Z: Tensor | None = None, *, gamma: Number | Tensor | None = None, coef0: float = 1.0
) -> Tensor:
    """``K_ij = tanh(gamma x_i . z_j + coef0)``; not positive semidefinite in general."""
    X, Z = _pair(X, Z)
    return torch.tanh(_gamma(gamma, X) * inner(X, Z) + coef0)


BUILTIN_KERNELS = ("linear", "poly", "rbf", "sigmoid")  # kernel_function's names


def kernel_function(name: str, gamma: float, degree: int = 3, coef0: float = 0.0) -> KernelFn:
    """The built-in kernel ``name`` (``"linear"``, ``"poly"``, ``"rbf"``, ``"sigmoid"``) as ``k(A, Z)``
    with its parameters bound: the one dispatch the estimators and the Lightning modules share. A
    partial of a module-level function, not a lambda, so a fitted model keeps it and pickles."""
    kernels = {
        "linear": functools.partial(linear_kernel),
        "poly": functools.partial(polynomial_kernel, degree=degree, gamma=gamma, coef0=coef0),
        "rbf": functools.partial(rbf_kernel, gamma=gamma),
        "sigmoid": functools.partial(sigmoid_kernel, gamma=gamma, coef0=coef0),
    }
    if name not in kernels:
        raise ValueError(f"Expected kernel to be one of {sorted(kernels)}, got {name!r}")
    return kernels[name]


def kernel_row_blocks(
    kernel: KernelFn, X: Matrix, Z: Matrix | None = None, block_size: int = 4096
) -> Iterator[tuple[slice, Tensor]]:
    """Yield ``(rows, K[rows, :])`` for ``K = kernel(X, Z)``, ``block_size`` rows at a time."""
    Z = X if Z is None else Z
    if block_size < 1:
        raise ValueError(f"Expected block_size >= 1, got {block_size}")
    for start in range(0, X.shape[-2], block_size):
        rows = slice(start, min(start + block_size, X.shape[-2]))
        yield rows, kernel(X[rows] if isinstance(X, SparseRows) else X[..., rows, :], Z)


class Kernel:
    """A kernel k(x, z) as an object: call it on ``(X, Z)`` for the Gram matrix; compose with ``+ * -``.

    ``k1 + k2``, ``k1 * k2``, ``a * k`` (a > 0), ``k ** p`` and :meth:`polynomial` with
    non-negative coefficients are kernels again (the closure rules of kernels); ``is_valid`` records
    that structurally. ``k1 - k2`` and ``-a * k`` can be built but are not kernels in general:
    ``is_valid`` is False, and :func:`check_kernel` tests the Gram matrix itself.
    """

    is_valid: bool = True

    def __call__(self, X: Tensor, Z: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    def __add__(self, other: Kernel) -> Kernel:
        return _Sum(self, _as_kernel(other))

    def __radd__(self, other: Kernel) -> Kernel:
        return _Sum(_as_kernel(other), self)

    def __sub__(self, other: Kernel) -> Kernel:
        return _Sum(self, _Scaled(_as_kernel(other), -1.0))

    def __neg__(self) -> Kernel:
        return _Scaled(self, -1.0)

    def __mul__(self, other: Kernel | Number) -> Kernel:
        if isinstance(other, (int, float)):
            return _Scaled(self, float(other))
        return _Product(self, _as_kernel(other))

    __rmul__ = __mul__

    def __pow__(self, power: int) -> Kernel:
        check_positive_int("power", power)
        out: Kernel = self
        for _ in range(power - 1):
            out = _Product(out, self)
        return out

    def polynomial(self, coefficients: list[float]) -> Kernel:
        """``sum_j coefficients[j] * k^j`` (j = 0 is the constant); a kernel when all are >= 0."""
        return _PolynomialOf(self, [float(c) for c in coefficients])


def _as_kernel(k: object) -> Kernel:
    if isinstance(k, Kernel):
        return k
    if callable(k):
        return _Callable(k)
    raise TypeError(f"Expected a Kernel or a callable kernel(X, Z), got {type(k).__name__}")


class _Callable(Kernel):
    def __init__(self, fn: Callable[[Tensor, Tensor], Tensor]) -> None:
        self.fn = fn
        self.is_valid = True  # the caller's claim; check_kernel tests it

    def __call__(self, X: Tensor, Z: Tensor | None = None) -> Tensor:
        return self.fn(X, X if Z is None else Z)

    def __repr__(self) -> str:
        return f"Kernel({getattr(self.fn, '__name__', self.fn)!r})"


class _Sum(Kernel):
    def __init__(self, a: Kernel, b: Kernel) -> None:
        self.a, self.b = a, b
        self.is_valid = a.is_valid and b.is_valid

    def __call__(self, X: Tensor, Z: Tensor | None = None) -> Tensor:
        return self.a(X, Z) + self.b(X, Z)

    def __repr__(self) -> str:
        return f"({self.a!r} + {self.b!r})"


class _Product(Kernel):
    def __init__(self, a: Kernel, b: Kernel) -> None:
        self.a, self.b = a, b
        self.is_valid = a.is_valid and b.is_valid  # Schur product theorem

    def __call__(self, X: Tensor, Z: Tensor | None = None) -> Tensor:
        return self.a(X, Z) * self.b(X, Z)

    def __repr__(self) -> str:
        return f"({self.a!r} * {self.b!r})"


class _Scaled(Kernel):
    def __init__(self, k: Kernel, scale: float) -> None:
        self.k, self.scale = k, scale
        self.is_valid = k.is_valid and scale > 0

    def __call__(self, X: Tensor, Z: Tensor | None = None) -> Tensor:
        return self.scale * self.k(X, Z)

    def __repr__(self) -> str:
        return f"{self.scale:g} * {self.k!r}"


class _PolynomialOf(Kernel):
    def __init__(self, k: Kernel, coefficients: list[float]) -> None:
        if not coefficients:
            raise ValueError("Expected at least one polynomial coefficient, got none")
        self.k, self.coefficients = k, coefficients
        self.is_valid = k.is_valid and all(c >= 0 for c in coefficients)

    def __call__(self, X: Tensor, Z: Tensor | None = None) -> Tensor:
        base = self.k(X, Z)
        out = torch.full_like(base, self.coefficients[0])
        power = torch.ones_like(base)
        for c in self.coefficients[1:]:
            power = power * base
            out = out + c * power
        return out

    def __repr__(self) -> str:
        return f"polynomial({self.k!r}, {self.coefficients})"


class Linear(Kernel):
    """``x . z``."""

    def __call__(self, X: Tensor, Z: Tensor | None = None) -> Tensor:
        return linear_kernel(X, Z)

    def __repr__(self) -> str:
        return "Linear()"


class Polynomial(Kernel):
    """``(gamma x . z + coef0)^degree``; a kernel for coef0 >= 0."""

    def __init__(self, degree: int = 3, gamma: float | None = None, coef0: float = 1.0) -> None:
        self.degree, self.gamma, self.coef0 = degree, gamma, coef0
        self.is_valid = coef0 >= 0

    def __call__(self, X: Tensor, Z: Tensor | None = None) -> Tensor:
        return polynomial_kernel(X, Z, degree=self.degree, gamma=self.gamma, coef0=self.coef0)

    def __repr__(self) -> str:
        return f"Polynomial(degree={self.degree}, gamma={self.gamma}, coef0={self.coef0})"


class RBF(Kernel):
    """``exp(-gamma ||x - z||^2)``; ``gamma`` may be a tensor (learnable)."""

    def __init__(self, gamma: float | Tensor | None = None) -> None:
        self.gamma = gamma

    def __call__(self, X: Tensor, Z: Tensor | None = None) -> Tensor:
        return rbf_kernel(X, Z, gamma=self.gamma)

    def __repr__(self) -> str:
        return f"RBF(gamma={self.gamma})"


class Sigmoid(Kernel):
    """``tanh(gamma x . z + coef0)``: not PSD in general, so ``is_valid`` is False."""

    is_valid = False

    def __init__(self, gamma: float | None = None, coef0: float = 1.0) -> None:
        self.gamma, self.coef0 = gamma, coef0

    def __call__(self, X: Tensor, Z: Tensor | None = None) -> Tensor:
        return sigmoid_kernel(X, Z, gamma=self.gamma, coef0=self.coef0)

    def __repr__(self) -> str:
        return f"Sigmoid(gamma={self.gamma}, coef0={self.coef0})"


class FeatureMap(Kernel):
    """``k(phi(x), phi(z))`` for a feature map ``phi`` (default base kernel: the dot product)."""

    def __init__(self, phi: Callable[[Tensor], Tensor], base: Kernel | None = None) -> None:
        self.phi, self.base = phi, base or Linear()
        self.is_valid = self.base.is_valid

    def __call__(self, X: Tensor, Z: Tensor | None = None) -> Tensor:
        return self.base(self.phi(X), None if Z is None else self.phi(Z))

    def __repr__(self) -> str:
        return f"FeatureMap({getattr(self.phi, '__name__', self.phi)!r}, {self.base!r})"


class Precomputed(Kernel):
    """Marks a Gram matrix passed in directly (``kernel="precomputed"``); calling it is an error."""

    def __call__(self, X: Tensor, Z: Tensor | None = None) -> Tensor:
        raise TypeError("A precomputed kernel has no function to call: pass the Gram matrix itself")


def is_psd(K: Tensor, tol: float | None = None) -> bool:
    """Whether ``K`` is symmetric and its smallest eigenvalue is >= ``-tol * max(1, |lambda|_max)``.

    ``tol=None`` scales with the size and precision: ``10 * N * eps(dtype)``.
    """
    return psd_report(K, tol)[0]


def psd_report(K: Tensor, tol: float | None) -> tuple[bool, str]:
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        return False, f"Expected a square (N, N) Gram matrix, got shape {tuple(K.shape)}"
    if not bool(torch.isfinite(K).all()):
        return False, "Expected a finite Gram matrix, got NaN or infinity"
    N = K.shape[0]
    eps = torch.finfo(K.dtype).eps
    tol = 10 * N * eps if tol is None else tol
    scale = max(1.0, float(K.abs().max()))
    asym = float((K - K.mT).abs().max())
    if asym > tol * scale * 10:
        return False, f"Expected a symmetric Gram matrix, got max |K - K^T| = {asym:.3g}"
    eigenvalues = torch.linalg.eigvalsh(((K + K.mT) / 2).to(torch.float64))
    smallest, largest = float(eigenvalues[0]), float(eigenvalues.abs().max())
    if smallest < -tol * max(1.0, largest):
        return False, (f"Expected a positive semidefinite Gram matrix, got smallest eigenvalue {smallest:.4g} "
                       f"(largest |eigenvalue| {largest:.4g}, tolerance {tol:.2g} relative)")
    return True, ""


def check_kernel(kernel: Callable[..., Tensor] | Kernel, X: Tensor, tol: float | None = None) -> Tensor:
    """Compute the Gram matrix ``kernel(X, X)`` and raise ``ValueError`` unless it is a valid kernel matrix.

    Returns the Gram matrix. The message names the smallest eigenvalue (Mercer's condition
    fails on these points) or the asymmetry.
    """
    K = _as_kernel(kernel)(X, None)
    ok, why = psd_report(K.detach(), tol)
    if not ok:
        raise ValueError(f"{why}: {kernel!r} is not a valid kernel on these {X.shape[0]} points")
    return K


def polynomial_feature_map(X: Tensor, degree: int = 2, coef0: float = 1.0) -> Tensor:
    """The explicit map phi with ``phi(x) . phi(z) = (x . z + coef0)^degree``, for any dimension D.

    With x~ = [x, sqrt(coef0)], the multinomial theorem gives
    (x~ . z~)^d = sum_{|a| = d} d! / (a_1! ... a_{D+1}!) x~^a z~^a, so phi(x)_a = sqrt(d!/a!) x~^a
    over the C(D + d, d) multi-indices a of total degree d.

    Shape:
        X ``(N, D)`` -> ``(N, C(D + degree, degree))``.
    """
    check_positive_int("degree", degree)
    if coef0 < 0:
        raise ValueError(f"Expected coef0 >= 0 (sqrt(coef0) enters the map), got {coef0}")
    N, D = X.shape
    Xa = torch.cat([X, torch.full((N, 1), math.sqrt(coef0), dtype=X.dtype, device=X.device)], 1)
    combos = list(itertools.combinations_with_replacement(range(D + 1), degree))
    idx = torch.tensor(combos, device=X.device)  # (M, degree)
    counts = torch.zeros(len(combos), D + 1, dtype=torch.float64)
    counts.scatter_add_(1, idx.cpu(), torch.ones(idx.shape, dtype=torch.float64))
    log_coef = math.lgamma(degree + 1) - torch.lgamma(counts + 1).sum(1)  # log(d! / a!)
    coef = torch.exp(0.5 * log_coef).to(dtype=X.dtype, device=X.device)
    return Xa[:, idx].prod(dim=2) * coef  # (N, M)


class RandomFourierFeatures(torch.nn.Module):
    """Random Fourier features z(x) with ``z(x) . z(x') ~ exp(-gamma ||x - x'||^2)`` (Rahimi & Recht).

    ``z(x) = sqrt(2 / n_components) cos(W x + b)``, rows of W from N(0, 2 gamma I), b ~ U[0, 2 pi).
    A linear model on z approximates the RBF-kernel machine at O(N n_components) cost.
    """

    W: Tensor  # (n_components, in_features), a buffer
    b: Tensor  # (n_components,), a buffer

    def __init__(self, in_features: int, n_components: int = 1000, gamma: float = 1.0, seed: int = 0) -> None:
        super().__init__()
        if gamma <= 0:
            raise ValueError(f"Expected gamma > 0, got {gamma}")
        check_positive_int("n_components", n_components)
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("W", torch.randn(n_components, in_features, generator=g) * math.sqrt(2 * gamma))
        self.register_buffer("b", torch.rand(n_components, generator=g) * 2 * math.pi)

    def forward(self, X: Tensor) -> Tensor:
        W, b = self.W.to(X.dtype), self.b.to(X.dtype)
        return math.sqrt(2.0 / W.shape[0]) * torch.cos(X @ W.t() + b)
