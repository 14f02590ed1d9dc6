"""Cross-validated model selection whose fits are solved as one batched problem per kernel and fold.

:class:`GridSearchCV` is scikit-learn's (same arguments, ``cv_results_``, ``best_*``, refit,
``predict``/``score``), and for a :class:`torchsvm.SVC` whose grid varies ``C`` (and any kernel
parameters) it does not fit the grid points one after another: for each kernel setting and each
fold, the kernel of the fold's training rows is computed once and every binary problem of every
``C`` value is solved in one batched SMO (held-out rows are simply not part of the problems).
Anything else (other estimators, other varying parameters, a scoring other than accuracy,
sample weights, a training fold without some class) runs scikit-learn's own search, one fit
at a time.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np
import torch
from sklearn.base import clone, is_classifier
from sklearn.metrics import check_scoring
from sklearn.model_selection import GridSearchCV as _SkGridSearchCV
from sklearn.model_selection import ParameterGrid, check_cv
from sklearn.model_selection import cross_validate as _sk_cross_validate
from sklearn.utils.validation import indexable

from torchsvm.svm import SVC
from torchsvm.svm._base import DualProblems, classes_and_costs

__all__ = ["GridSearchCV", "cross_val_score", "cross_validate"]

# SVC parameters that change the kernel; the grid's other varying parameter may only be C.
_KERNEL_PARAMS = ("kernel", "gamma", "degree", "coef0", "kernel_dtype")


class GridSearchCV(_SkGridSearchCV):
    """scikit-learn's ``GridSearchCV``, with the fits of a :class:`torchsvm.SVC` grid batched.

    Same arguments and attributes as :class:`sklearn.model_selection.GridSearchCV`; the folds
    are scikit-learn's (``check_cv``: stratified for classifiers), so are the scores.
    ``mean_fit_time`` of a batched search is each batch's time shared evenly by its fits.
    """

    def fit(self, X: Any, y: Any = None, **params: Any) -> "GridSearchCV":
        candidates = list(ParameterGrid(self.param_grid))
        for grid in ([self.param_grid] if isinstance(self.param_grid, dict) else self.param_grid):
            unknown = set(grid) - set(self.estimator.get_params())
            if unknown:
                raise ValueError(
                    f"Invalid parameter {sorted(unknown)[0]!r} for estimator {self.estimator!r}. "
                    f"Valid parameters are: {sorted(self.estimator.get_params())!r}."
                )
        if not self._batchable(candidates, y, params):
            return super().fit(X, y, **params)
        X, y = indexable(X, y)
        y_np = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
        cv = check_cv(self.cv, y_np, classifier=is_classifier(self.estimator))
        splits = list(cv.split(X, y_np))
        classes = np.unique(y_np)
        if any(len(np.unique(y_np[train])) != len(classes) for train, _ in splits):
            return super().fit(X, y, **params)  # a fold lacks a class: scikit-learn's per-fit handling
        out = _batched_svc_scores(self.estimator, candidates, X, y_np, splits)
        self.multimetric_ = False
        self.n_splits_ = len(splits)
        self.scorer_ = check_scoring(self.estimator, self.scoring)
        results = self._format_results(candidates, len(splits), out)  # scikit-learn's layout of cv_results_
        self.cv_results_ = results
        self.best_index_ = int(np.flatnonzero(results["rank_test_score"] == 1)[0])
        self.best_score_ = float(results["mean_test_score"][self.best_index_])
        self.best_params_ = results["params"][self.best_index_]
        if self.refit:
            self.best_estimator_ = clone(self.estimator).set_params(**clone(self.best_params_, safe=False))
            start = time.time()
            self.best_estimator_.fit(X, y)
            self.refit_time_ = time.time() - start
        return self

    def _batchable(self, candidates: list[dict], y: Any, params: dict) -> bool:
        if type(self.estimator) is not SVC or params or y is None:
            return False
        if self.scoring not in (None, "accuracy") or self.return_train_score or self.refit not in (True, False):
            return False
        varying = {k for c in candidates for k, v in c.items() if any(d.get(k) != v for d in candidates)}
        return varying <= {"C", *_KERNEL_PARAMS} and self.estimator.kernel != "precomputed"


def _batched_svc_scores(estimator: SVC, candidates: list[dict], X: Any, y: np.ndarray,
                        splits: list[tuple[np.ndarray, np.ndarray]]) -> list[dict]:
    """Accuracy of every (candidate, split), in scikit-learn's order: candidates, then splits."""
    scores = np.full((len(candidates), len(splits)), np.nan)
    times = np.zeros((len(candidates), len(splits), 2))

    def kernel_key(c: dict) -> tuple:
        return tuple(sorted((k, repr(v)) for k, v in c.items() if k != "C"))

    by_kernel = itertools.groupby(sorted(range(len(candidates)), key=lambda i: kernel_key(candidates[i])),
                                  key=lambda i: kernel_key(candidates[i]))
    X_np = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
    for _, members in by_kernel:
        members = list(members)
        fixed = {k: v for k, v in candidates[members[0]].items() if k != "C"}
        Cs = [float(candidates[i].get("C", estimator.C)) for i in members]
        for s, (train, test) in enumerate(splits):
            start = time.time()
            acc = _fit_fold(clone(estimator).set_params(**fixed), Cs, X_np[train], y[train], X_np[test], y[test])
            share = (time.time() - start) / len(members)
            for m, i in enumerate(members):
                scores[i, s] = acc[m]
                times[i, s] = (share, 0.0)
    return [{"test_scores": scores[c, s], "fit_time": times[c, s, 0], "score_time": times[c, s, 1],
             "n_test_samples": len(splits[s][1]), "fit_error": None}
            for c in range(len(candidates)) for s in range(len(splits))]


def _fit_fold(model: SVC, Cs: list[float], X: np.ndarray, y: np.ndarray, X_test: np.ndarray,
              y_test: np.ndarray) -> list[float]:
    """Fit ``model`` at every C of ``Cs`` on one fold as one batched problem; the test accuracy of each."""
    model.set_params(C=1.0)
    model._check_params()
    Xt, kernel, Xk, K = model._prepare(X)  # gamma="scale" resolved on this fold's rows, as a fit would
    y_idx, unit_cost = classes_and_costs(model, Xt.shape[0], y, None)
    per_C = [model._problems(y_idx, unit_cost * C, Xt.device, Xt.dtype) for C in Cs]
    P = per_C[0].Y.shape[0]
    problems = DualProblems(
        Y=torch.cat([p.Y for p in per_C]), C=torch.cat([p.C for p in per_C]),
        members=None if per_C[0].members is None else [m for p in per_C for m in p.members],
    )
    res = model._solve(Xk, kernel, K, problems)
    model._warn_convergence(res.info.kkt_violation)
    coef, b = model._coefficients(res, problems)  # (len(Cs) P, N), (len(Cs) P,)
    accuracies = []
    for m in range(len(Cs)):
        rows = slice(m * P, (m + 1) * P)
        model._keep_support(Xt, coef[rows], b[rows], kernel, np.arange(len(y_idx)))
        accuracies.append(float((model._predict_from_decision(model._decision(X_test)) == y_test).mean()))
    return accuracies


def cross_validate(estimator: Any, X: Any, y: Any = None, *, cv: Any = 5, scoring: Any = None, **kwargs: Any) -> dict:
    """scikit-learn's ``cross_validate``; a :class:`torchsvm.SVC` with default scoring runs batched
    (its folds as one problem each, see :class:`GridSearchCV`). Returns ``test_score``,
    ``fit_time``, ``score_time``."""
    if type(estimator) is SVC and scoring in (None, "accuracy") and not kwargs:
        search = GridSearchCV(estimator, {"C": [estimator.C]}, cv=cv, refit=False).fit(X, y)
        r = search.cv_results_
        n = search.n_splits_
        return {"fit_time": np.full(n, r["mean_fit_time"][0]), "score_time": np.zeros(n),
                "test_score": np.array([r[f"split{k}_test_score"][0] for k in range(n)])}
    return _sk_cross_validate(estimator, X, y, cv=cv, scoring=scoring, **kwargs)


def cross_val_score(estimator: Any, X: Any, y: Any = None, *, cv: Any = 5, scoring: Any = None, **kwargs: Any) -> np.ndarray:
    """scikit-learn's ``cross_val_score`` on :func:`cross_validate`: the test score of each fold."""
    return cross_validate(estimator, X, y, cv=cv, scoring=scoring, **kwargs)["test_score"]
