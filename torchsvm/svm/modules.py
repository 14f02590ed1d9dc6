"""Fitted estimators as torch modules (``est.to_module()``): the model as buffers, the decision function as
``forward``, so that a fitted SVM moves with ``.to(device, dtype)``, sits inside a network, runs under
``torch.compile`` and exports with ``torch.export`` (a dynamic batch dimension) and ONNX.

Both modules read only plain data: :class:`SVMModule` a kernel model's support vectors, per-problem
coefficients and intercepts (the estimator's :class:`~torchsvm.svm.problems.Solution`), :class:`LinearSVMModule`
a linear model's ``coef_`` and ``intercept_``. What ``forward`` returns is set once, by ``output``:
``"decision_function"`` (the estimator's shape rules: one column for two classes and the regressors,
``decision_function_shape`` for one-vs-one), ``"predict"`` (class labels, as the estimator's ``predict``:
LIBSVM's vote or ``break_ties``), ``"predict_proba"`` (a classifier fitted with ``probability=True``:
Platt's sigmoids coupled over the pairs, as the estimator's ``predict_proba``) or ``"score_samples"``
(one-class). The same are methods, whatever ``output`` says.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import numpy as np
import torch
from torch import Tensor, nn

from torchsvm.kernels import kernel_function, rbf_centered
from torchsvm.svm._probability import class_probabilities

__all__ = ["DecisionHead", "LinearSVMModule", "SVMModule", "ovr_from_pairs"]

Output = Literal["decision_function", "predict", "predict_proba", "score_samples"]
Task = Literal["classifier", "regressor", "outlier"]


class DecisionHead(nn.Module):
    """The problems' decision values ``(n, P)`` as the estimators return and predict from them
    (``forward`` gives ``output``).

    ``classes``: the labels predict returns (numbers; for other labels, the index into the estimator's
    ``classes_``, which ``labels`` lists). One-vs-one classifiers of more than two classes (``one_vs_one``:
    a problem per pair (i, j), i < j, in row order) vote as LIBSVM (ties to the first class) or, with
    ``break_ties``, take the largest of the one-vs-rest shaped values; ``ovr_shape`` gives
    ``decision_function`` that shape. ``prob_a``, ``prob_b``: Platt's sigmoid per pair of a classifier fitted
    with ``probability=True`` (its ``predict_proba``).
    """

    classes: Tensor | None
    pairs: Tensor | None
    prob_a: Tensor | None
    prob_b: Tensor | None

    def __init__(self, task: str, output: str, classes: Any = None, one_vs_one: bool = False,
                 ovr_shape: bool = False, break_ties: bool = False, offset: float = 0.0,
                 prob_a: Any = None, prob_b: Any = None) -> None:
        super().__init__()
        if task not in get_args(Task):
            raise ValueError(f"Expected task to be one of {get_args(Task)}, got {task!r}")
        if output not in get_args(Output):
            raise ValueError(f"Expected output to be one of {get_args(Output)}, got {output!r}")
        if output == "score_samples" and task != "outlier":
            raise ValueError(f"Expected output='score_samples' only for a one-class model, got a {task}")
        if output == "predict_proba" and prob_a is None:
            raise ValueError(f"Expected output='predict_proba' only for a classifier fitted with probability=True, "
                             f"got a {task}{' without probability estimates' if task == 'classifier' else ''}")
        self.task, self.output, self.ovr_shape, self.break_ties, self.offset = task, output, ovr_shape, break_ties, offset
        labels = np.asarray([] if classes is None else classes)
        self.labels = labels.tolist()
        numeric = labels.dtype.kind in "biuf"  # other labels (strings): predict gives their index
        # No empty buffers (a regressor's classes, a one-vs-rest model's pairs): None buffers are not saved.
        kept = torch.as_tensor(labels if numeric else np.arange(len(labels))) if len(labels) else None
        self.register_buffer("classes", kept)
        k = len(labels)
        self.register_buffer("pairs", torch.triu_indices(k, k, 1).T.contiguous() if one_vs_one and k > 2 else None)
        for name, value in (("prob_a", prob_a), ("prob_b", prob_b)):
            self.register_buffer(name, None if value is None else torch.as_tensor(np.asarray(value, dtype=np.float64)))

    def decision_function(self, dec: Tensor) -> Tensor:
        if dec.shape[1] == 1:  # one problem: a regressor, a one-class model, two classes
            return dec[:, 0]
        if self.pairs is not None and self.ovr_shape:
            return ovr_from_pairs(dec, self.pairs, len(self.labels))
        return dec

    def predict(self, dec: Tensor) -> Tensor:
        if self.task == "regressor":
            return dec[:, 0]
        if self.task == "outlier":
            return torch.where(dec[:, 0] > 0, 1, -1)
        k = len(self.labels)
        assert self.classes is not None  # a classifier's
        if dec.shape[1] == 1:  # two classes, one problem: positive for the second
            idx = (dec[:, 0] > 0).long()
        elif self.pairs is None:  # one-vs-rest
            idx = dec.argmax(1)
        elif self.break_ties:
            idx = ovr_from_pairs(dec, self.pairs, k).argmax(1)
        else:  # LIBSVM's vote: pair (i, j) votes for i where positive, else for j; ties to the first class
            won = (dec > 0).to(dec.dtype)
            votes = dec.new_zeros(dec.shape[0], k)
            votes = votes.index_add(1, self.pairs[:, 0], won).index_add(1, self.pairs[:, 1], 1 - won)
            idx = votes.argmax(1)
        return self.classes[idx]

    def predict_proba(self, dec: Tensor) -> Tensor:
        """``(n, k)`` class probabilities, columns in the classes' order."""
        if self.prob_a is None or self.prob_b is None:
            raise ValueError("Expected a classifier fitted with probability=True for predict_proba")
        return class_probabilities(dec, self.prob_a, self.prob_b, len(self.labels), self.pairs)

    def forward(self, dec: Tensor) -> Tensor:
        if self.output == "predict":
            return self.predict(dec)
        if self.output == "predict_proba":
            return self.predict_proba(dec)
        if self.output == "score_samples":
            return dec[:, 0] + self.offset
        return self.decision_function(dec)


def ovr_from_pairs(dec: Tensor, pairs: Tensor, k: int) -> Tensor:
    """scikit-learn's one-vs-one -> one-vs-rest decision shape ``(n, k)`` from the pairs' values ``(n, P)``
    (``pairs`` ``(P, 2)``): votes plus confidences squashed to (-1/3, 1/3). The one copy the estimators
    (``ovr_from_ovo``) and the modules share."""
    i, j = pairs[:, 0], pairs[:, 1]
    conf = dec.new_zeros(dec.shape[0], k).index_add(1, i, dec).index_add(1, j, -dec)
    first = (dec >= 0).to(dec.dtype)  # scikit-learn gives a 0 to class i here; predict gives it to j
    votes = dec.new_zeros(dec.shape[0], k).index_add(1, i, first).index_add(1, j, 1 - first)
    return votes + conf / (3 * (conf.abs() + 1))


class SVMModule(nn.Module):
    """A fitted kernel model: ``forward(X)`` ``(n, D)`` is ``K(X, SV) coef + intercept`` for the P problems,
    then the estimator's output rules (see the module docstring).

    For the RBF kernel the support vectors are kept centred on their mean (``center``), with their squared
    norms (``sq_norms``): what :func:`~torchsvm.kernels.rbf_kernel` would prepare again for every batch.

    Args:
        support_vectors: ``(n_SV, D)`` (dense; a sparse-fitted model's rows are made dense).
        coef: ``(P, n_SV)`` each problem's coefficients (the estimator's ``Solution.coef``).
        intercept: ``(P,)``.
        kernel, gamma, degree, coef0: a built-in kernel (``"linear"``, ``"poly"``, ``"rbf"``, ``"sigmoid"``) and its
            parameters, gamma resolved.
        head: how the P values become the output (built by the estimators' ``to_module``).
    """

    support_vectors: Tensor
    coef: Tensor
    intercept: Tensor
    center: Tensor | None
    sq_norms: Tensor | None

    def __init__(self, support_vectors: Tensor, coef: Tensor, intercept: Tensor, *, kernel: str, gamma: float,
                 degree: int, coef0: float, head: DecisionHead) -> None:
        super().__init__()
        self.kernel_name, self.gamma, self.degree, self.coef0 = kernel, float(gamma), int(degree), float(coef0)
        self._kernel = kernel_function(kernel, self.gamma, self.degree, self.coef0)
        center = support_vectors.mean(0, keepdim=True) if kernel == "rbf" else None
        if center is not None:
            support_vectors = support_vectors - center
        self.register_buffer("center", center)
        self.register_buffer("sq_norms", None if center is None else (support_vectors**2).sum(1).unsqueeze(0))
        self.register_buffer("support_vectors", support_vectors)
        self.register_buffer("coef", coef.T.contiguous())  # (n_SV, P): K (n, n_SV) @ coef
        self.register_buffer("intercept", intercept)
        self.head = head

    def problems(self, X: Tensor) -> Tensor:
        """``(n, P)``: each binary problem's decision value."""
        X = X.to(self.coef.dtype)
        if self.center is not None and self.sq_norms is not None:
            K = rbf_centered(X - self.center, self.support_vectors, self.sq_norms, self.gamma)
        else:
            K = self._kernel(X, self.support_vectors)
        return torch.addmm(self.intercept, K, self.coef)

    def decision_function(self, X: Tensor) -> Tensor:
        return self.head.decision_function(self.problems(X))

    def predict(self, X: Tensor) -> Tensor:
        """Labels (regressors: targets; one-class: +1 / -1)."""
        return self.head.predict(self.problems(X))

    def score_samples(self, X: Tensor) -> Tensor:
        return self.problems(X)[:, 0] + self.head.offset

    def predict_proba(self, X: Tensor) -> Tensor:
        """Class probabilities ``(n, k)`` of a classifier fitted with ``probability=True``."""
        return self.head.predict_proba(self.problems(X))

    def forward(self, X: Tensor) -> Tensor:
        return self.head(self.problems(X))

    def extra_repr(self) -> str:
        return (f"kernel={self.kernel_name!r}, gamma={self.gamma:g}, degree={self.degree}, coef0={self.coef0:g}, "
                f"n_SV={self.support_vectors.shape[0]}, problems={self.intercept.shape[0]}")


class LinearSVMModule(nn.Module):
    """A fitted linear model: ``forward(X)`` is ``X W^T + b`` for the K problems (``coef_``, ``intercept_``),
    then the estimator's output rules."""

    weight: Tensor
    bias: Tensor

    def __init__(self, weight: Tensor, bias: Tensor, head: DecisionHead) -> None:
        super().__init__()
        self.register_buffer("weight", weight.contiguous())  # (K, D), rows contiguous: X W^T's fastest layout
        self.register_buffer("bias", bias)  # (K,)
        self.head = head

    def problems(self, X: Tensor) -> Tensor:
        return torch.addmm(self.bias, X.to(self.weight.dtype), self.weight.T)

    def decision_function(self, X: Tensor) -> Tensor:
        return self.head.decision_function(self.problems(X))

    def predict(self, X: Tensor) -> Tensor:
        return self.head.predict(self.problems(X))

    def forward(self, X: Tensor) -> Tensor:
        return self.head(self.problems(X))
