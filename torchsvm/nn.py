"""``nn.Module`` wrappers around the hand-written Functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

from torchsvm import functional as F
from torchsvm.kernels import linear_kernel
from torchsvm.validation import check_finite, check_positive, check_positive_int, check_tensor

__all__ = ["ConvEmbedding", "Linear", "ReLU", "SVMHead", "TwoLayerNet"]


class Linear(torch.nn.Linear):
    """Drop-in for ``torch.nn.Linear`` whose forward and backward are :class:`LinearFunction`.

    Subclassing keeps torch's initialization, parameter names (``weight``, ``bias``) and
    state_dict layout, so checkpoints move between the two freely.
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.linear(input, self.weight, self.bias)


class ReLU(torch.nn.Module):
    """Drop-in for ``torch.nn.ReLU()`` (not in place) using :class:`ReLUFunction`."""

    def forward(self, input: Tensor) -> Tensor:
        return F.relu(input)


class TwoLayerNet(torch.nn.Module):
    """``FC -> ReLU -> FC``: returns logits; train it with :func:`torchsvm.functional.cross_entropy`.

    Args:
        in_features: input size; images are flattened, so ``(N, 1, 28, 28)`` needs 784.
        hidden_features: width of the hidden layer.
        num_classes: number of output logits.

    Shape:
        input ``(N, *)`` with ``prod(*) == in_features``; output ``(N, num_classes)``.
    """

    def __init__(self, in_features: int = 784, hidden_features: int = 1024, num_classes: int = 10) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("hidden_features", hidden_features),
                            ("num_classes", num_classes)):
            check_positive_int(name, value)
        self.in_features = in_features
        self.num_classes = num_classes
        self.fc1 = Linear(in_features, hidden_features)
        self.relu = ReLU()
        self.fc2 = Linear(hidden_features, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(1)  # (N, in_features)
        if x.shape[1] != self.in_features:
            raise ValueError(
                f"Expected inputs with {self.in_features} features per sample, "
                f"got {x.shape[1]} (input shape {tuple(x.shape)})"
            )
        return self.fc2(self.relu(self.fc1(x)))


class SVMHead(torch.nn.Module):
    """Few-shot classification head: an SVM fit to each episode's support set scores its queries.

    For B episodes at once, with support embeddings ``(B, N, D)`` labelled ``0..M-1`` and query
    embeddings ``(B, Q, D)``, it returns ``logits = scale * f(query)`` ``(B, Q, M)``:

    - ``"crammer_singer"``: MetaOptNet's SVM head (Lee et al., 2019): the multi-class dual
      :func:`torchsvm.functional.crammer_singer_dual` on ``K = k(support, support)``, then
      ``f_m(q) = sum_i alpha_im k(x_i, q)``. Solved exactly, differentiable in the embeddings.
    - ``"ovr"``: M binary SVMs (class m against the rest) by :func:`torchsvm.functional.svm_dual`,
      ``f_m(q) = sum_i alpha_im y_im k(x_i, q) + b_m``.
    - ``"prototype"``: prototypical networks' head, ``f_m(q) = -||q - mean of class m||^2``.

    Args:
        kind: ``"crammer_singer"``, ``"ovr"`` or ``"prototype"``.
        C: SVM cost, > 0.
        kernel: ``"linear"`` or a batched kernel ``k(A, Z) -> (..., n_A, n_Z)`` (a
            :class:`torchsvm.kernels.Kernel`, e.g. ``RBF(0.1)``).
        scale: initial logit scale (a temperature for the cross-entropy, as MetaOptNet learns).
        learn_scale: make ``scale`` a parameter.
        tol: the SVM solver's tolerance.
        normalize: L2-normalize the embeddings first (the linear kernel is then the cosine
            similarity, bounded by 1, so the logits' size is the scale's).

    Shape:
        support ``(B, N, D)`` or ``(N, D)``, support_labels ``(B, N)`` or ``(N,)`` integers in
        ``[0, M)`` with every class present, query ``(B, Q, D)`` or ``(Q, D)``; logits
        ``(B, Q, M)`` (or ``(Q, M)`` for unbatched inputs). ``M`` is ``n_way`` if given, else
        ``support_labels.max() + 1``.

    Example:
        >>> head = SVMHead("crammer_singer", C=0.1)
        >>> support, query = torch.randn(4, 25, 64), torch.randn(4, 30, 64)
        >>> labels = torch.arange(25).repeat(4, 1) % 5
        >>> head(support, labels, query).shape
        torch.Size([4, 30, 5])
    """

    def __init__(
        self,
        kind: Literal["crammer_singer", "ovr", "prototype"] = "crammer_singer",
        C: float = 0.1,
        kernel: Literal["linear"] | Callable[[Tensor, Tensor], Tensor] = "linear",
        scale: float = 1.0,
        learn_scale: bool = True,
        tol: float = 1e-6,
        normalize: bool = False,
    ) -> None:
        super().__init__()
        if kind not in ("crammer_singer", "ovr", "prototype"):
            raise ValueError(f"Expected kind to be 'crammer_singer', 'ovr' or 'prototype', got {kind!r}")
        check_positive("C", C)
        if kernel != "linear" and not callable(kernel):
            raise ValueError(f"Expected kernel to be 'linear' or a callable k(A, Z), got {kernel!r}")
        self.kind, self.C, self.tol, self.normalize = kind, float(C), tol, normalize
        self.kernel = linear_kernel if kernel == "linear" else kernel
        value = torch.tensor(float(scale))
        if learn_scale:
            self.scale = torch.nn.Parameter(value)
        else:
            self.register_buffer("scale", value)

    def forward(self, support: Tensor, support_labels: Tensor, query: Tensor, n_way: int | None = None) -> Tensor:
        single = support.ndim == 2
        S, y, Qe = (support[None], support_labels[None], query[None]) if single else (support, support_labels, query)
        M = self._check(S, y, Qe, n_way)
        if self.normalize:
            S, Qe = torch.nn.functional.normalize(S, dim=-1), torch.nn.functional.normalize(Qe, dim=-1)
        if self.kind == "prototype":
            onehot = torch.nn.functional.one_hot(y.long(), M).to(S.dtype)  # (B, N, M)
            protos = (onehot.mT @ S) / onehot.sum(1).unsqueeze(-1)  # (B, M, D)
            scores = -torch.cdist(Qe, protos).square()
        elif self.kind == "crammer_singer":
            alpha = F.crammer_singer_dual(self.kernel(S, S), y, self.C, n_classes=M, tol=self.tol, validate=False)
            scores = self.kernel(Qe, S) @ alpha  # (B, Q, M)
        else:
            B, N, _ = S.shape
            K = self.kernel(S, S).unsqueeze(1).expand(B, M, N, N).reshape(B * M, N, N)
            Y = torch.where(y.unsqueeze(1) == torch.arange(M, device=y.device).view(1, M, 1), 1.0, -1.0)  # (B, M, N)
            alpha, b = F.svm_dual(K, Y.to(S.dtype).reshape(B * M, N), self.C, tol=self.tol, validate=False)
            coef = (alpha.reshape(B, M, N) * Y).mT  # (B, N, M)
            scores = self.kernel(Qe, S) @ coef + b.reshape(B, 1, M)
        logits = self.scale * scores
        return logits[0] if single else logits

    def _check(self, S: Tensor, y: Tensor, Q: Tensor, n_way: int | None) -> int:
        for name, t in (("support", S), ("support_labels", y), ("query", Q)):
            check_tensor(name, t)
        if S.ndim != 3 or Q.ndim != 3 or Q.shape[0] != S.shape[0] or Q.shape[2] != S.shape[2]:
            raise ValueError(
                f"Expected support (B, N, D) and query (B, Q, D) with the same B and D, got "
                f"{tuple(S.shape)} and {tuple(Q.shape)}"
            )
        if y.shape != S.shape[:2] or y.dtype.is_floating_point or y.dtype == torch.bool:
            raise ValueError(f"Expected integer support_labels of shape {tuple(S.shape[:2])}, got {y.dtype} {tuple(y.shape)}")
        check_finite("support", S)
        check_finite("query", Q)
        M = int(y.max()) + 1 if n_way is None else n_way
        counts = torch.nn.functional.one_hot(y.long().clamp(0, M - 1), M).sum(1)  # (B, M)
        if bool(((y < 0) | (y >= M)).any()) or bool((counts == 0).any()):
            raise ValueError(
                f"Expected support_labels in [0, {M - 1}] with every class present in every episode, got "
                f"class counts {counts.tolist()[:4]} and values {sorted(set(y.flatten().tolist()))[:8]}"
            )
        return M


class ConvEmbedding(torch.nn.Module):
    """A small CNN embedding 28 x 28 images: ``(conv 3x3 -> batch norm -> ReLU -> max pool 2) x 2 -> FC``.

    Its FC layer and ReLUs are the hand-written ones. The few-shot module's default embedding.

    Args:
        out_features: embedding size D; None: no FC layer, the pooled feature maps themselves
            (D = channels * 49).
        channels: channels of the two convolutions.

    Shape:
        input ``(N, 1, 28, 28)``; output ``(N, out_features)``.
    """

    def __init__(self, out_features: int | None = 64, channels: int = 32) -> None:
        super().__init__()
        if out_features is not None and out_features < 1:
            raise ValueError(f"Expected out_features to be a positive int or None, got {out_features}")
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, channels, 3, padding=1), torch.nn.BatchNorm2d(channels), ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(channels, channels, 3, padding=1), torch.nn.BatchNorm2d(channels), ReLU(), torch.nn.MaxPool2d(2),
        )
        self.fc = Linear(channels * 7 * 7, out_features) if out_features is not None else None

    def forward(self, x: Tensor) -> Tensor:
        z = self.features(x).flatten(1)
        return self.fc(z) if self.fc is not None else z
