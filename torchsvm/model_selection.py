"""Cross-validated model selection whose fits are solved as one batched problem per kernel and fold.

:class:`GridSearchCV` is scikit-learn's (same arguments, ``cv_results_``, ``best_*``, refit,
``predict``/``score``), and for :class:`~torchsvm.SVC`, :class:`~torchsvm.NuSVC`,
:class:`~torchsvm.SVR` and :class:`~torchsvm.NuSVR` grids that vary kernel parameters and the
parameters that only change the dual problems (``C``, ``class_weight``; ``nu``; ``C``,
``epsilon``; ``C``, ``nu``) it does not fit the grid points one after another: for each kernel
setting and each fold, the kernel of the fold's training rows is computed once and every
problem of every grid point is solved in one batched SMO (held-out rows are simply not part of
the problems). Anything else (other estimators, other varying parameters, a scoring other than
the estimator's own, sample weights, a training fold without some class, a fit that fails on
some fold) runs scikit-learn's own search, one fit at a time.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np
import torch
from sklearn.base import clone, is_classifier
from sklearn.metrics import accuracy_score, check_scoring, r2_score
from sklearn.model_selection import GridSearchCV as _SkGridSearchCV
from sklearn.model_selection import ParameterGrid, check_cv
from sklearn.model_selection import cross_validate as _sk_cross_validate
from sklearn.utils.validation import indexable
from torch import Tensor

from torchsvm._sparse import as_sparse_rows, is_sparse
from torchsvm.kernels import kernel_row_blocks
from torchsvm.solvers.dual import DualInfo, DualResult
from torchsvm.svm import SVC, SVR, BaseLibSVM, NuSVC, NuSVR, problems
from torchsvm.svm.problems import as_tensor_2d

_BATCHED = (SVC, NuSVC, SVR, NuSVR)  # estimators whose grids are solved batched

__all__ = ["GridSearchCV", "cross_val_score", "cross_validate"]

# Parameters that change the kernel: a batched grid varies these and the estimator's batched_params.
_KERNEL_PARAMS = ("kernel", "gamma", "degree", "coef0", "kernel_dtype")


class GridSearchCV(_SkGridSearchCV):
    """scikit-learn's ``GridSearchCV``, with the fits of SVC / NuSVC / SVR / NuSVR grids batched.

    Same arguments and attributes as :class:`sklearn.model_selection.GridSearchCV`; the folds
    are scikit-learn's (``check_cv``: stratified for classifiers), so are the scores.
    Times of a batched search are measured per fold and kernel setting: the one solve (and the one
    scoring pass) of a fold's batch, shared evenly by the grid points in it, so ``mean_fit_time`` and
    ``mean_score_time`` of those points are equal by construction.
    """

    def fit(self, X: Any, y: Any = None, **params: Any) -> GridSearchCV:
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
        batched = _batched_search(self.estimator, candidates, X, y, self.cv)
        if batched is None:  # scikit-learn's per-fit handling (a fold lacks a class, an infeasible nu)
            return super().fit(X, y, **params)
        splits, out = batched
        self.multimetric_ = False
        self.n_splits_ = len(splits)
        self.scorer_ = check_scoring(self.estimator, self.scoring)
        results = _cv_results(candidates, len(splits), out)
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
        if type(self.estimator) not in _BATCHED or params or y is None:
            return False
        default = "accuracy" if is_classifier(self.estimator) else "r2"  # what estimator.score computes
        if self.scoring not in (None, default) or self.return_train_score or self.refit not in (True, False):
            return False
        if any(c.get("probability", self.estimator.get_params().get("probability")) is True for c in candidates):
            return False  # probability fits its own cross-validation: scikit-learn's loop
        varying = {k for c in candidates for k, v in c.items() if any(d.get(k) != v for d in candidates)}
        return varying <= {*problems.batched_params(self.estimator), *_KERNEL_PARAMS} and self.estimator.kernel != "precomputed"


def _cv_results(candidates: list[dict], n_splits: int, out: list[dict]) -> dict[str, Any]:
    """``cv_results_`` in scikit-learn's documented layout from one score per (candidate, split): times
    and test scores per split, their means and standard deviations, ``param_<name>`` masked arrays,
    ``params``, and ``rank_test_score`` (1 is best; ties share the lowest rank; NaN ranks last)."""
    n = len(candidates)

    def per_candidate(key: str) -> np.ndarray:
        return np.array([o[key] for o in out], dtype=np.float64).reshape(n, n_splits)

    results: dict[str, Any] = {}
    for key, name in (("fit_time", "fit_time"), ("score_time", "score_time"), ("test_scores", "test_score")):
        values = per_candidate(key)
        if name == "test_score":
            for k in range(n_splits):
                results[f"split{k}_test_score"] = values[:, k]
        results[f"mean_{name}"] = values.mean(1)
        results[f"std_{name}"] = values.std(1)
    for name in dict.fromkeys(name for c in candidates for name in c):
        present = [name in c for c in candidates]
        given = [c.get(name) for c in candidates]
        try:
            inferred = np.array([v for v, ok in zip(given, present, strict=True) if ok])
            dtype = inferred.dtype if inferred.dtype.kind != "U" and inferred.ndim == 1 else np.dtype(object)
        except ValueError:  # sequences of different lengths
            dtype = np.dtype(object)
        column = np.ma.MaskedArray(np.empty(n, dtype=dtype), mask=[not ok for ok in present])
        for i, (v, ok) in enumerate(zip(given, present, strict=True)):
            if ok:
                column[i] = v
        results[f"param_{name}"] = column
    results["params"] = candidates
    means = results["mean_test_score"]
    if np.isnan(means).all():
        results["rank_test_score"] = np.ones(n, dtype=np.int32)
    else:
        filled = np.where(np.isnan(means), np.nanmin(means) - 1, means)
        results["rank_test_score"] = (filled[None, :] > filled[:, None]).sum(1).astype(np.int32) + 1
    return results


def _batched_search(estimator: BaseLibSVM, candidates: list[dict], X: Any, y: Any,
                    cv: Any) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[dict]] | None:
    """scikit-learn's folds of ``cv`` and the batched scores and times of every (candidate, split), or
    None where the search must run fit by fit (a training fold without some class, a ValueError)."""
    y_np = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    splits = list(check_cv(cv, y_np, classifier=is_classifier(estimator)).split(X, y_np))
    if is_classifier(estimator) and any(len(np.unique(y_np[train])) != len(np.unique(y_np)) for train, _ in splits):
        return None
    try:
        return splits, _batched_scores(estimator, candidates, X, y_np, splits)
    except ValueError:  # e.g. a nu infeasible on some fold: scikit-learn's loop records it per fit
        return None


def _batched_scores(estimator: BaseLibSVM, candidates: list[dict], X: Any, y: np.ndarray,
                    splits: list[tuple[np.ndarray, np.ndarray]]) -> list[dict]:
    """The default score (accuracy, R^2) of every (candidate, split), in scikit-learn's order:
    candidates, then splits. Candidates that share the kernel parameters are one batched solve per fold."""
    scores = np.full((len(candidates), len(splits)), np.nan)
    times = np.zeros((len(candidates), len(splits), 2))

    def kernel_key(c: dict) -> tuple:
        return tuple(sorted((k, repr(v)) for k, v in c.items() if k not in problems.batched_params(estimator)))

    by_kernel = itertools.groupby(sorted(range(len(candidates)), key=lambda i: kernel_key(candidates[i])),
                                  key=lambda i: kernel_key(candidates[i]))
    if is_sparse(X):  # rows of a CSR matrix are cut by the folds as an array's
        X_np = as_sparse_rows(X, "X", torch.device("cpu")).scipy()
    else:
        X_np = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
    for _, group in by_kernel:
        members = list(group)
        for s, (train, test) in enumerate(splits):
            start = time.time()
            models = [clone(estimator).set_params(**candidates[i]) for i in members]
            fold = _fit_fold(models, X_np[train], y[train])
            fit_share = (time.time() - start) / len(members)
            start = time.time()
            decisions = _fold_decisions(models, fold, X_np[test])
            for m, i, dec in zip(models, members, decisions, strict=True):
                pred = problems.predict_from_decision(m, dec)
                scores[i, s] = accuracy_score(y[test], pred) if is_classifier(m) else r2_score(y[test], pred)
            score_share = (time.time() - start) / len(members)
            for i in members:
                times[i, s] = (fit_share, score_share)
    return [{"test_scores": scores[c, s], "fit_time": times[c, s, 0], "score_time": times[c, s, 1],
             "n_test_samples": len(splits[s][1]), "fit_error": None}
            for c in range(len(candidates)) for s in range(len(splits))]


def _fit_fold(models: list[BaseLibSVM], X: np.ndarray, y: np.ndarray) -> problems.Prepared:
    """Fit ``models`` (one estimator type, one kernel setting) on one fold as one batched problem:
    the kernel once, every model's problems stacked, one solve, each model its slice. Returns the
    fold's training rows and kernel as the models saw them."""
    prepared = [problems.prepare(m, X) for m in models]  # each sets its input attributes; gamma="scale" on this fold
    fold = prepared[0]
    parts = [problems.make_problems(m, fold.X, y) for m in models]
    res = problems.solve(models[0], fold, problems.stack([p for p, _ in parts]))
    start = 0
    for m, (part_problems, context) in zip(models, parts, strict=True):
        rows = slice(start, start + part_problems.Y.shape[0])
        start = rows.stop
        info = DualInfo(bool((res.info.kkt_violation[rows] <= m.tol).all()), res.info.n_iter,
                        res.info.kkt_violation[rows], res.info.problem_iters[rows])
        part = DualResult(res.alpha[rows, : part_problems.Y.shape[1]], res.b[rows], info,
                          None if res.r is None else res.r[rows])
        problems.set_solution(m, fold, part, part_problems, context)  # fit_status_ and the warning per fit
    return fold


def _fold_decisions(models: list[BaseLibSVM], fold: problems.Prepared, X_test: np.ndarray) -> list[Tensor]:
    """Decision values ``(n_test, P)`` of models fitted on the same rows with the same kernel: one kernel
    block against the union of their support vectors, each model its columns."""
    union = np.unique(np.concatenate([m.support_ for m in models]))
    Xt = fold.X
    X_t = as_tensor_2d(X_test, "X", Xt.device, torch.float64)  # as the models' own decision_function
    SV = Xt[torch.as_tensor(union, device=Xt.device, dtype=torch.long)].to(torch.float64)
    assert fold.kernel is not None  # not precomputed: GridSearchCV refuses it
    K = torch.cat([rows for _, rows in kernel_row_blocks(fold.kernel, X_t, SV, 4096)])
    return problems.decisions(models, K, union)


def cross_validate(estimator: Any, X: Any, y: Any = None, *, cv: Any = 5, scoring: Any = None, **kwargs: Any) -> dict:
    """scikit-learn's ``cross_validate``; an SVC / NuSVC / SVR / NuSVR with default scoring and no other
    option runs on :class:`GridSearchCV`'s batched machinery, one solve per fold. Returns
    ``test_score``, ``fit_time`` and ``score_time`` per fold, each time measured on its fold."""
    if type(estimator) in _BATCHED and scoring is None and not kwargs:
        X, y = indexable(X, y)
        batched = _batched_search(estimator, [{}], X, y, cv)
        if batched is not None:
            _, out = batched
            return {key: np.array([o[name] for o in out], dtype=np.float64)
                    for key, name in (("fit_time", "fit_time"), ("score_time", "score_time"), ("test_score", "test_scores"))}
    return _sk_cross_validate(estimator, X, y, cv=cv, scoring=scoring, **kwargs)


def cross_val_score(estimator: Any, X: Any, y: Any = None, *, cv: Any = 5, scoring: Any = None, **kwargs: Any) -> np.ndarray:
    """scikit-learn's ``cross_val_score`` on :func:`cross_validate`: the test score of each fold."""
    return cross_validate(estimator, X, y, cv=cv, scoring=scoring, **kwargs)["test_score"]
