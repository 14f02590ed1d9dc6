import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import make_blobs
from sklearn.model_selection import GridSearchCV as SkGridSearchCV
from sklearn.model_selection import cross_val_score as sk_cross_val_score
from sklearn.svm import SVC as SkSVC
from sklearn.svm import SVR as SkSVR
from sklearn.svm import NuSVC as SkNuSVC
from sklearn.svm import NuSVR as SkNuSVR

from torchsvm import SVC, SVR, NuSVC, NuSVR
from torchsvm.model_selection import GridSearchCV, cross_val_score
from torchsvm.svm import problems


def data(n=150, classes=3, seed=0):
    return make_blobs(n, centers=classes, n_features=4, cluster_std=3.0, random_state=seed)


@pytest.mark.parametrize("classes,extra", [(3, {}), (2, {}), (3, {"multi_class": ["ovr"]})])
def test_batched_search_equals_scikit_learns(classes, extra):
    X, y = data(classes=classes)
    grid = {"C": [0.1, 1.0, 10.0], "gamma": [0.05, "scale"], **extra}
    ours = GridSearchCV(SVC(device="cpu", tol=1e-6), grid, cv=3).fit(X, y)
    grid_ref = {k: v for k, v in grid.items() if k != "multi_class"}
    ref_est = SkSVC(tol=1e-6, decision_function_shape="ovr")
    ref = SkGridSearchCV(ref_est, grid_ref, cv=3).fit(X, y)
    if not extra:  # scikit-learn's SVC is one-vs-one: the same models
        np.testing.assert_allclose(ours.cv_results_["mean_test_score"], ref.cv_results_["mean_test_score"], atol=1e-12)
        for k in range(3):
            np.testing.assert_allclose(ours.cv_results_[f"split{k}_test_score"], ref.cv_results_[f"split{k}_test_score"])
        assert ours.best_params_ == ref.best_params_ and ours.best_score_ == pytest.approx(ref.best_score_)
        np.testing.assert_array_equal(ours.cv_results_["rank_test_score"], ref.cv_results_["rank_test_score"])
        for key in ("param_C", "param_gamma"):  # built here, in scikit-learn's layout (masked arrays, dtypes)
            mine, theirs = ours.cv_results_[key], ref.cv_results_[key]
            assert mine.dtype == theirs.dtype and list(mine.mask) == list(theirs.mask)
            assert list(mine.filled(None)) == list(theirs.filled(None))
    assert set(ours.cv_results_) == set(ref.cv_results_) | ({"param_multi_class"} if extra else set())
    assert list(ours.cv_results_["params"]) == list(ParameterGridLike(grid))
    # The refit model is the best parameters' SVC on all data, as scikit-learn's.
    assert isinstance(ours.best_estimator_, SVC) and ours.best_estimator_.get_params()["C"] == ours.best_params_["C"]
    assert ours.score(X, y) == pytest.approx(ours.best_estimator_.score(X, y))
    np.testing.assert_array_equal(ours.predict(X), ours.best_estimator_.predict(X))


def ParameterGridLike(grid):  # noqa: N802  (scikit-learn's order of candidates)
    from sklearn.model_selection import ParameterGrid

    return ParameterGrid(grid)


def test_other_searches_fall_back_to_scikit_learns_loop():
    X, y = data()
    # A parameter of the solver varies (not of the problems or the kernel): scikit-learn's search.
    search = GridSearchCV(SVC(device="cpu"), {"C": [1.0], "tol": [1e-3, 1e-4]}, cv=3).fit(X, y)
    assert len(search.cv_results_["params"]) == 2 and hasattr(search, "best_estimator_")
    with pytest.raises(ValueError, match="Invalid parameter 'Cee' for estimator"):
        GridSearchCV(SVC(), {"Cee": [1.0]}).fit(X, y)


@pytest.mark.parametrize("ours,ref,grid", [
    (NuSVC, SkNuSVC, {"nu": [0.1, 0.3], "gamma": [0.05, 0.2]}),
    (SVR, SkSVR, {"C": [0.5, 5.0], "epsilon": [0.05, 0.3], "gamma": [0.1, "scale"]}),
    (NuSVR, SkNuSVR, {"nu": [0.3, 0.6], "C": [1.0, 3.0]}),
])
def test_batched_family_searches_equal_scikit_learns(ours, ref, grid, monkeypatch):
    if ours in (SVR, NuSVR):
        rng = np.random.default_rng(0)
        X = rng.normal(size=(120, 4))
        y = np.sin(X[:, 0]) + 0.5 * X[:, 1] + 0.1 * rng.normal(size=120)
    else:
        X, y = data()
    solves = []
    original = problems.solve
    monkeypatch.setattr(problems, "solve", lambda *a: solves.append(1) or original(*a))
    search = GridSearchCV(ours(device="cpu", tol=1e-6), grid, cv=3).fit(X, y)
    n_kernels = len(grid.get("gamma", [None]))
    assert len(solves) == n_kernels * 3 + 1  # one batched solve per kernel setting and fold, and the refit
    reference = GridSearchCV(ref(tol=1e-6), grid, cv=3).fit(X, y)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], reference.cv_results_["mean_test_score"],
                               atol=1e-4)
    assert search.best_params_ == reference.best_params_


def test_a_fold_without_a_class_is_scikit_learns_business():
    X, y = data(n=60)
    y = y.copy()
    y[:2] = 3  # two samples of a fourth class: a 3-fold split leaves it out of some training folds
    with pytest.warns(UserWarning):
        search = GridSearchCV(SVC(device="cpu"), {"C": [1.0, 2.0]}, cv=3).fit(X, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_cross_val_score_and_calibration():
    X, y = data()
    ours = cross_val_score(SVC(C=2.0, gamma=0.1, device="cpu", tol=1e-6), X, y, cv=4)
    ref = sk_cross_val_score(SkSVC(C=2.0, gamma=0.1, tol=1e-6), X, y, cv=4)
    np.testing.assert_allclose(ours, ref)
    # scikit-learn's replacement for probability=True works on torchsvm's SVC.
    calibrated = CalibratedClassifierCV(SVC(device="cpu"), ensemble=False, cv=3).fit(X, y)
    proba = calibrated.predict_proba(X)
    assert proba.shape == (150, 3) and np.allclose(proba.sum(1), 1.0)
    assert (calibrated.predict(X) == y).mean() > 0.8


def test_cross_validate_times_are_measured_per_fold(monkeypatch):
    """The batched path's fit and score times are each fold's own: a scoring step slowed by 0.2 s on
    fold 2 only shows in that fold's ``score_time``, and fit times are not one mean repeated."""
    import time

    from torchsvm import model_selection

    X, y = data()
    model_selection.cross_validate(SVC(device="cpu"), X, y, cv=3)  # first calls (compiled loops) out of the way
    calls = []
    original = model_selection._fold_decisions

    def slow_on_fold_two(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            time.sleep(0.2)
        return original(*args, **kwargs)

    monkeypatch.setattr(model_selection, "_fold_decisions", slow_on_fold_two)
    out = model_selection.cross_validate(SVC(device="cpu"), X, y, cv=3)
    assert len(calls) == 3  # the batched path ran
    assert out["score_time"][1] >= 0.2 and out["score_time"][[0, 2]].max() < 0.2
    assert (out["fit_time"] > 0).all() and len(set(out["fit_time"])) == 3
    np.testing.assert_allclose(out["test_score"], sk_cross_val_score(SkSVC(), X, y, cv=3))


def test_cross_validate_with_a_slow_scorer_reports_its_time():
    """A scorer of the user's own runs scikit-learn's loop, whose score_time is measured."""
    import time

    from torchsvm.model_selection import cross_validate

    def slow_accuracy(estimator, X, y):
        time.sleep(0.03)
        return float((estimator.predict(X) == y).mean())

    X, y = data()
    out = cross_validate(SVC(device="cpu"), X, y, cv=3, scoring=slow_accuracy)
    assert (out["score_time"] >= 0.03).all()
