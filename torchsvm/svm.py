"""Estimators with the scikit-learn API, solved with torch on the CPU or a GPU."""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted
from torch import Tensor

from torchsvm.solvers.primal import primal_newton

__all__ = ["LinearSVC", "resolve_device"]


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` is CUDA when available, else CPU; anything else goes to ``torch.device``."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _as_tensor_2d(X: Any, name: str, device: torch.device, dtype: torch.dtype | None = None) -> Tensor:
    """X as a 2-D floating tensor on ``device``, with clear errors for bad shapes and NaN/inf."""
    if isinstance(X, Tensor):
        T = X.detach()
        if not T.is_floating_point():
            T = T.to(torch.float32)
        if T.ndim != 2:
            raise ValueError(f"Expected {name} to be 2-D (n_samples, n_features), got shape {tuple(T.shape)}")
        if T.shape[0] == 0:
            raise ValueError(f"Expected {name} with at least one sample, got shape {tuple(T.shape)}")
        if not bool(torch.isfinite(T).all()):
            raise ValueError(f"Expected {name} to be finite, got NaN or infinity")
    else:
        from sklearn.utils.validation import check_array

        # check_array raises for a wrong dimension, no samples and NaN/inf, naming them.
        T = torch.from_numpy(np.ascontiguousarray(check_array(X, dtype=(np.float64, np.float32))))
    return T.to(device=device, dtype=dtype or T.dtype)


class LinearSVC(ClassifierMixin, BaseEstimator):
    """Linear support vector classifier solved in the primal with torch (CPU or GPU).

    For each class k (one-vs-rest; one problem for two classes) it solves

        minimize 1/2 ||w||^2 + sum_i C_i L(y_i (w . x_i + b)),   y_i in {-1, +1},

    with C_i = C * class_weight[class of i] and the bias b not regularized. All K problems are
    solved together by a batched Newton-CG on one copy of X (see
    :func:`torchsvm.solvers.primal.primal_newton`); ``hinge`` stops on a certified relative
    duality gap ``tol``, the smooth losses on the relative gradient norm.

    Differences from scikit-learn's ``LinearSVC`` (LIBLINEAR): the default loss is the hinge
    (the course's SVM), the bias is not penalized, and in one-vs-rest every sample keeps its own
    class's weight in all K problems (LIBLINEAR gives the "rest" side weight 1).

    Args:
        C: inverse regularization strength, > 0.
        loss: ``"hinge"``, ``"squared_hinge"`` or ``"logistic"``.
        class_weight: None, a dict ``{class: weight}``, or ``"balanced"``.
        solver: ``"auto"`` or ``"newton"`` (the same, for now).
        tol: stopping tolerance: for the hinge the certified relative duality gap, so the
            objective is within ``tol`` (relative) of the optimum; for the smooth losses the
            gradient norm relative to its value at w = 0.
        max_iter: maximum Newton iterations.
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ...
        random_state: unused by the deterministic Newton solver; kept for the scikit-learn API.

    Attributes:
        coef_: ``(1, n_features)`` for two classes, else ``(n_classes, n_features)``.
        intercept_: ``(1,)`` or ``(n_classes,)``.
        classes_: the sorted class labels.
        n_iter_: Newton iterations run.
        n_features_in_: number of features seen in ``fit``.
        objective_: final primal objective per problem.
        duality_gap_: final relative gap (hinge) or gradient norm (smooth losses).
    """

    def __init__(
        self,
        C: float = 1.0,
        *,
        loss: Literal["hinge", "squared_hinge", "logistic"] = "hinge",
        class_weight: dict | Literal["balanced"] | None = None,
        solver: Literal["auto", "newton"] = "auto",
        tol: float = 1e-3,
        max_iter: int = 300,
        device: str = "auto",
        random_state: int | None = None,
    ) -> None:
        self.C = C
        self.loss = loss
        self.class_weight = class_weight
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.device = device
        self.random_state = random_state

    def _check_params(self) -> None:
        if not isinstance(self.C, (int, float)) or not self.C > 0:
            raise ValueError(f"Expected C > 0, got {self.C!r}")
        if self.loss not in ("hinge", "squared_hinge", "logistic"):
            raise ValueError(f"Expected loss to be 'hinge', 'squared_hinge' or 'logistic', got {self.loss!r}")
        if self.solver not in ("auto", "newton"):
            raise ValueError(f"Expected solver to be 'auto' or 'newton', got {self.solver!r}")
        if not self.tol > 0:
            raise ValueError(f"Expected tol > 0, got {self.tol!r}")
        if not isinstance(self.max_iter, int) or self.max_iter < 1:
            raise ValueError(f"Expected max_iter to be a positive int, got {self.max_iter!r}")

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "LinearSVC":
        """Fit on ``X`` ``(n_samples, n_features)`` (array-like or tensor) and labels ``y`` of any values."""
        self._check_params()
        device = resolve_device(self.device)
        Xt = _as_tensor_2d(X, "X", device)
        y_np = y.detach().cpu().numpy() if isinstance(y, Tensor) else np.asarray(y)
        if y_np.ndim != 1 or y_np.shape[0] != Xt.shape[0]:
            raise ValueError(f"Expected y of shape ({Xt.shape[0]},) to match X, got shape {y_np.shape}")
        check_classification_targets(y_np)
        self.classes_, y_idx = np.unique(y_np, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"Expected at least 2 classes in y, got 1 class: {self.classes_.tolist()}")
        self.n_features_in_ = Xt.shape[1]

        weights = compute_class_weight(self.class_weight, classes=self.classes_, y=y_np) \
            if self.class_weight is not None else np.ones(len(self.classes_))
        if np.any(weights < 0) or not np.all(np.isfinite(weights)):
            raise ValueError(f"Expected non-negative class weights, got {dict(zip(self.classes_.tolist(), weights))}")
        cost = self.C * weights[y_idx]  # (N,)
        if sample_weight is not None:
            sw = np.asarray(sample_weight, dtype=np.float64)
            if sw.shape != (Xt.shape[0],) or np.any(sw < 0):
                raise ValueError(f"Expected non-negative sample_weight of shape ({Xt.shape[0]},), got {sw.shape}")
            cost = cost * sw

        y_t = torch.as_tensor(y_idx, device=device)
        K = 1 if len(self.classes_) == 2 else len(self.classes_)
        columns = torch.arange(K, device=device) + (1 if K == 1 else 0)  # binary: +1 is classes_[1]
        Y = torch.where(y_t.unsqueeze(1) == columns, 1.0, -1.0).to(Xt.dtype)  # (N, K)
        # Samples with zero cost leave the problem; give them a tiny cost instead of dividing by zero.
        C_t = torch.as_tensor(cost, dtype=Xt.dtype, device=device).clamp_min(1e-12).unsqueeze(1).expand(-1, K)

        result = primal_newton(Xt, Y, C_t, loss=self.loss, tol=self.tol, max_iter=self.max_iter)
        self.coef_ = result.w.t().cpu().numpy()
        self.intercept_ = result.b.cpu().numpy()
        self.n_iter_ = result.info.n_iter
        self.objective_ = result.info.objective.cpu().numpy()
        self.duality_gap_ = result.info.gap
        self._w = result.w  # (D, K) on the device, for fast tensor predictions
        self._b = result.b
        if not result.info.converged:
            warnings.warn(
                f"LinearSVC did not converge in max_iter={self.max_iter} Newton iterations (relative "
                f"{'duality gap' if self.loss == 'hinge' else 'gradient norm'} {result.info.gap:.2e} > "
                f"tol={self.tol}). Increase max_iter, loosen tol, or scale the features.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def decision_function(self, X: Any) -> np.ndarray | Tensor:
        """Signed distances ``(n_samples,)`` for two classes, else ``(n_samples, n_classes)``.

        A tensor input gives a tensor on the model's device; anything else gives a NumPy array.
        """
        check_is_fitted(self, "coef_")
        Xt = _as_tensor_2d(X, "X", self._w.device, self._w.dtype)
        if Xt.shape[1] != self.n_features_in_:
            raise ValueError(
                f"Expected X with {self.n_features_in_} features, as in fit, got {Xt.shape[1]} features"
            )
        scores = torch.addmm(self._b, Xt, self._w)
        scores = scores[:, 0] if scores.shape[1] == 1 else scores
        return scores if isinstance(X, Tensor) else scores.cpu().numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Class labels (NumPy, values of ``classes_``)."""
        scores = self.decision_function(X)
        s = scores if isinstance(scores, Tensor) else torch.from_numpy(np.asarray(scores))
        idx = (s > 0).long() if s.ndim == 1 else s.argmax(dim=1)
        return self.classes_[idx.cpu().numpy()]
