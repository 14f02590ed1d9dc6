"""scikit-learn parity: every constructor parameter, default, error text, fitted attribute and input
rule of scikit-learn's SVM classes, each checked against scikit-learn's own class on the same data."""

import inspect
import warnings

import numpy as np
import pytest
import torch
from sklearn import svm as sk
from sklearn.datasets import load_iris, make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import (
    check_sample_weight_equivalence_on_dense_data,
    check_sample_weight_equivalence_on_sparse_data,
)

import torchsvm as ts
from torchsvm.svm import problems

PAIRS = [(ts.SVC, sk.SVC), (ts.NuSVC, sk.NuSVC), (ts.SVR, sk.SVR), (ts.NuSVR, sk.NuSVR),
         (ts.OneClassSVM, sk.OneClassSVM), (ts.LinearSVC, sk.LinearSVC), (ts.LinearSVR, sk.LinearSVR)]
# Documented differences of defaults: a memory budget from the device instead of LIBSVM's 200 MB row cache.
DEFAULT_DIFFERENCES = {"cache_size"}
# The same value of intercept_scaling, written 1 or 1.0 in scikit-learn's two classes.
SAME = {("intercept_scaling", 1, 1.0)}

# Fixed (X, y) shared by the comparisons: iris (3 classes) and its binary cut.
IRIS_X, IRIS_Y = load_iris(return_X_y=True)
LINEAR_X = np.array([[-2, 0], [-1, -1], [0, -2], [0, 2], [1, 1], [2, 0]], dtype=float)  # scikit-learn's test set
LINEAR_Y = np.array([1, 1, 1, 2, 2, 2])


@pytest.mark.parametrize("ours, theirs", PAIRS, ids=[t.__name__ for t, _ in PAIRS])
def test_every_parameter_with_its_default(ours, theirs):
    mine = inspect.signature(ours.__init__).parameters
    for name, param in inspect.signature(theirs.__init__).parameters.items():
        if name == "self":
            continue
        assert name in mine, f"{ours.__name__} lacks scikit-learn's parameter {name!r}"
        if name not in DEFAULT_DIFFERENCES and (name, param.default, mine[name].default) not in SAME:
            assert mine[name].default == param.default, (name, mine[name].default, param.default)
        assert mine[name].kind == param.kind or param.kind is inspect.Parameter.KEYWORD_ONLY, name


BAD_VALUES = [("C", 0.0), ("C", "a"), ("C", -1), ("tol", 0), ("tol", "x"), ("gamma", -1.0), ("gamma", "large"),
              ("degree", -1), ("degree", 1.5), ("kernel", "laplace"), ("nu", 0.0), ("nu", 1.5), ("epsilon", -0.5),
              ("max_iter", -2), ("max_iter", 1.5), ("class_weight", "all"), ("decision_function_shape", "ova"),
              ("shrinking", "yes"), ("probability", 3), ("break_ties", 1.0), ("cache_size", -1), ("verbose", "loud"),
              ("penalty", "l3"), ("loss", "l1"), ("dual", "maybe"), ("multi_class", "all"), ("fit_intercept", 2),
              ("intercept_scaling", 0.0), ("random_state", "seed")]


@pytest.mark.parametrize("ours, theirs", PAIRS, ids=[t.__name__ for t, _ in PAIRS])
def test_bad_parameters_in_scikit_learns_words(ours, theirs):
    X, y = IRIS_X, IRIS_Y
    checked = 0
    for name, value in BAD_VALUES:
        if name not in theirs().get_params() or (ours is ts.LinearSVR and name == "epsilon"):
            continue
        with pytest.raises(ValueError) as expected:
            theirs(**{name: value}).fit(X, y)
        with pytest.raises(ValueError) as got:
            ours(**{name: value}, device="cpu").fit(X, y)
        if name in ("loss", "kernel", "cache_size", "class_weight"):  # torchsvm's options beside scikit-learn's
            assert str(got.value).split(" must be ")[0] == str(expected.value).split(" must be ")[0]
            assert str(got.value).endswith(f"Got {value!r} instead.")
        else:
            assert str(got.value) == str(expected.value), name
        checked += 1
    assert checked >= 8


def test_unsupported_liblinear_combinations_in_scikit_learns_words():
    X, y = IRIS_X, IRIS_Y
    for params in (dict(penalty="l2", loss="hinge", dual=False), dict(penalty="l1", loss="hinge", dual=False)):
        with pytest.raises(ValueError) as expected:
            sk.LinearSVC(**params).fit(X, y)
        with pytest.raises(ValueError) as got:
            ts.LinearSVC(**params, device="cpu").fit(X, y)
        assert str(got.value) == str(expected.value)
    with pytest.raises(ValueError) as expected:
        sk.LinearSVR(loss="epsilon_insensitive", dual=False).fit(X, y)
    with pytest.raises(ValueError) as got:
        ts.LinearSVR(loss="epsilon_insensitive", dual=False, device="cpu").fit(X, y)
    assert str(got.value) == str(expected.value)


def test_feature_count_mismatch_in_scikit_learns_words():
    for ours, theirs in ((ts.SVC, sk.SVC), (ts.LinearSVC, sk.LinearSVC), (ts.SVR, sk.SVR)):
        with pytest.raises(ValueError) as expected:
            theirs().fit(IRIS_X, IRIS_Y).predict(IRIS_X[:, :3])
        with pytest.raises(ValueError) as got:
            ours(device="cpu").fit(IRIS_X, IRIS_Y).predict(IRIS_X[:, :3])
        assert str(got.value) == str(expected.value)


# -- LinearSVC / LinearSVR: scikit-learn's problem by default ---------------------------------------
LINEAR_CASES = [{}, dict(fit_intercept=False), dict(intercept_scaling=5.0), dict(class_weight="balanced"),
                dict(class_weight={0: 3.0, 1: 1.0, 2: 0.5}), dict(C=0.05), dict(loss="hinge", C=0.1),
                dict(penalty="l1", dual=False), dict(penalty="l1", dual=False, C=0.05, fit_intercept=False),
                dict(penalty="l1", dual=False, class_weight="balanced"), dict(multi_class="crammer_singer"),
                dict(multi_class="crammer_singer", C=0.1, fit_intercept=False),
                dict(multi_class="crammer_singer", class_weight={0: 3.0, 1: 1.0, 2: 0.5})]


@pytest.mark.parametrize("params", LINEAR_CASES, ids=[str(p) for p in LINEAR_CASES])
def test_linear_svc_solves_scikit_learns_problem(device, params):
    """The defaults (squared hinge, intercept penalized through intercept_scaling, LIBLINEAR's
    one-vs-rest class weights) give scikit-learn's model: the same coefficients to the tolerance (no
    redundant features, which would make the L1 optimum not unique)."""
    X, y = make_classification(400, 12, n_informative=6, n_redundant=0, n_classes=3, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        ref = sk.LinearSVC(tol=1e-12, max_iter=200_000, random_state=0, **params).fit(X, y)
    ours = ts.LinearSVC(tol=1e-9, max_iter=100_000, random_state=0, device=device, **params).fit(X, y)
    if caught and "multi_class" not in params:
        # LIBLINEAR stopped short: ours is certified, so its objective (LIBLINEAR's, written out here) is no higher
        p = {"C": 1.0, "loss": "squared_hinge", "penalty": "l2", "fit_intercept": True, "intercept_scaling": 1.0, **params}
        Y = np.where(y[:, None] == np.arange(3), 1.0, -1.0)
        C = p["C"] * np.where(Y > 0, ours.class_weight_, 1.0)  # LIBLINEAR's one-vs-rest costs

        def objective(coef, b):
            b = b if p["fit_intercept"] else np.zeros(3)
            reg = np.abs(coef).sum(1) + np.abs(b) / p["intercept_scaling"] if p["penalty"] == "l1" else \
                0.5 * (coef**2).sum(1) + 0.5 * (b / p["intercept_scaling"]) ** 2
            xi = np.maximum(0, 1 - Y * (X @ coef.T + b))
            return reg + (C * (xi**2 if p["loss"] == "squared_hinge" else xi)).sum(0)

        assert (objective(ours.coef_, ours.intercept_) <= objective(ref.coef_, ref.intercept_) * (1 + 1e-9)).all()
        assert (ours.predict(X) == ref.predict(X)).mean() >= 0.98
        return
    scale = np.abs(ref.coef_).max()
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-4 * scale)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=1e-4 * scale)
    assert (ours.predict(X) == ref.predict(X)).mean() >= 0.98  # samples within 1e-4 of a tie may go either way
    assert ours.class_weight_.tolist() == pytest.approx(ref.class_weight_.tolist() if hasattr(ref, "class_weight_")
                                                        else ours.class_weight_.tolist())


@pytest.mark.parametrize("solver", ["dcd", "newton"])
def test_linear_svc_defaults_equal_scikit_learns_defaults(solver):
    """Both classes with their defaults on the same data: the same model to scikit-learn's tol."""
    X, y = make_classification(300, 8, n_informative=5, n_classes=2, random_state=1)
    ref = sk.LinearSVC().fit(X, y)
    ours = ts.LinearSVC(solver=solver, random_state=0, device="cpu").fit(X, y)
    # tol certifies the objective: coordinate descent's coefficients are within sqrt(2 tol P) of the optimum's
    atol = (1e-3 if solver == "newton" else 0.05) * np.abs(ref.coef_).max()
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=atol)
    assert ours.intercept_.shape == ref.intercept_.shape == (1,) and ours.coef_.shape == ref.coef_.shape
    assert (ours.predict(X) == ref.predict(X)).mean() >= 0.99  # a sample on the margin may go either way
    assert isinstance(ours.n_iter_, int)


@pytest.mark.parametrize("params", [{}, dict(loss="squared_epsilon_insensitive", epsilon=2.0),
                                    dict(fit_intercept=False), dict(intercept_scaling=3.0, C=0.1)])
def test_linear_svr_solves_scikit_learns_problem(device, params):
    X, y = make_regression(300, 6, noise=10.0, bias=30.0, random_state=0)
    X, y = X / 10, y / 100
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = sk.LinearSVR(tol=1e-12, max_iter=500_000, random_state=0, **params).fit(X, y)
    ours = ts.LinearSVR(tol=1e-10, max_iter=100_000, random_state=0, device=device, **params).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=2e-4 * np.abs(ref.coef_).max())
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), atol=2e-4 * np.abs(y).max())
    assert ours.coef_.shape == ref.coef_.shape and np.shape(ours.intercept_) == np.shape(ref.intercept_)


@pytest.mark.parametrize("params", [dict(multi_class="crammer_singer"), dict(penalty="l1", dual=False)])
def test_linear_svc_binary_and_weighted_variants_as_scikit_learn(params):
    """Two classes (Crammer-Singer keeps the difference of its two weight vectors, as scikit-learn) and
    sample weights (some dropped), against scikit-learn's fit of the same data. No redundant features:
    with exact linear combinations among the features the L1 optimum is not unique."""
    X, y = make_classification(300, 10, n_informative=5, n_redundant=0, random_state=4)
    sw = np.random.default_rng(0).uniform(0.5, 2.0, size=300)
    sw[:10] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = sk.LinearSVC(tol=1e-12, max_iter=200_000, random_state=0, **params).fit(X, y, sample_weight=sw)
    ours = ts.LinearSVC(tol=1e-10, max_iter=100_000, random_state=0, device="cpu", **params).fit(X, y, sample_weight=sw)
    assert ours.coef_.shape == ref.coef_.shape == (1, 10) and ours.intercept_.shape == (1,)
    # LIBLINEAR warns at this tol (its own stopping rule): ours is certified, so no higher an objective,
    # and the same model to 1e-3 of the weights' scale
    if params.get("penalty") == "l1":
        Y = np.where(y == 1, 1.0, -1.0)

        def objective(coef, b):
            return np.abs(coef).sum() + abs(b[0]) + (sw * np.maximum(0, 1 - Y * (X @ coef[0] + b[0])) ** 2).sum()

        assert objective(ours.coef_, ours.intercept_) <= objective(ref.coef_, ref.intercept_) * (1 + 1e-9)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-3 * np.abs(ref.coef_).max())
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=1e-3 * np.abs(ref.coef_).max())


def test_linear_models_predict_from_their_attributes():
    """Assigning coef_ / intercept_ changes the predictions, as in scikit-learn (they are the model)."""
    X, y = IRIS_X, IRIS_Y
    for est, ref_cls in ((ts.LinearSVC(device="cpu"), sk.LinearSVC), (ts.LinearSVR(device="cpu"), sk.LinearSVR)):
        est.fit(X, y)
        ref = ref_cls(max_iter=100_000).fit(X, y)  # only its predict is used
        ref.coef_, ref.intercept_ = est.coef_.astype(np.float64), np.asarray(est.intercept_, dtype=np.float64)
        np.testing.assert_allclose(est.predict(X), ref.predict(X))
        est.coef_ = np.zeros_like(est.coef_)
        ref.coef_ = np.zeros_like(ref.coef_)
        est.intercept_ = ref.intercept_ = np.arange(np.size(est.intercept_), dtype=np.float64)
        np.testing.assert_allclose(est.predict(X), ref.predict(X))
    fitted = ts.LinearSVC(fit_intercept=False, device="cpu").fit(X, y)
    assert fitted.intercept_ == 0.0 and sk.LinearSVC(fit_intercept=False, max_iter=100_000).fit(X, y).intercept_ == 0.0


def test_linear_convergence_warning_in_liblinears_words():
    with pytest.warns(ConvergenceWarning, match=r"^Liblinear failed to converge, increase the number of iterations\."):
        ts.LinearSVC(max_iter=2, C=100.0, device="cpu").fit(IRIS_X, IRIS_Y)


# -- the LIBSVM family -------------------------------------------------------------------------
@pytest.mark.parametrize("ours, theirs", PAIRS[:5], ids=[t.__name__ for t, _ in PAIRS[:5]])
def test_linear_kernel_coef_is_scikit_learns(device, ours, theirs):
    X, y = (IRIS_X, IRIS_Y) if theirs in (sk.SVC, sk.NuSVC) else (IRIS_X[:, :3], IRIS_X[:, 3])
    ref = theirs(kernel="linear", tol=1e-8).fit(X, y)
    mine = ours(kernel="linear", tol=1e-8, kernel_dtype="float64", device=device).fit(X, y)
    assert mine.coef_.shape == ref.coef_.shape
    np.testing.assert_allclose(mine.coef_, ref.coef_, rtol=1e-4, atol=1e-5 * np.abs(ref.coef_).max())
    with pytest.raises(AttributeError):
        mine.coef_ = ref.coef_  # read-only, as scikit-learn's
    assert not mine.coef_.flags.writeable
    with pytest.raises(AttributeError, match="coef_ is only available when using a linear kernel"):
        _ = ours(device="cpu").fit(X, y).coef_


def test_fitted_attributes_as_scikit_learns():
    for ours, theirs in PAIRS[:5]:
        y = IRIS_Y if theirs in (sk.SVC, sk.NuSVC) else IRIS_X[:, 3]
        ref = theirs().fit(IRIS_X[:, :3], y)
        mine = ours(device="cpu").fit(IRIS_X[:, :3], y)
        for name in ("support_", "support_vectors_", "n_support_", "dual_coef_", "intercept_", "fit_status_",
                     "shape_fit_", "n_features_in_", "n_iter_", "class_weight_", "classes_", "offset_"):
            if hasattr(ref, name):
                assert hasattr(mine, name), (ours.__name__, name)
                shape, ref_shape = np.shape(getattr(mine, name)), np.shape(getattr(ref, name))
                if name in ("support_", "support_vectors_", "dual_coef_"):  # as many SVs to the tolerance: not exactly
                    shape, ref_shape = shape[:-1] if name == "dual_coef_" else shape[1:], \
                        ref_shape[:-1] if name == "dual_coef_" else ref_shape[1:]
                assert shape == ref_shape, (ours.__name__, name)
        assert mine.fit_status_ == 0 and type(mine.n_iter_) is type(ref.n_iter_)


def test_max_iter_reached_sets_fit_status_and_warns_in_scikit_learns_words():
    with pytest.warns(ConvergenceWarning, match=r"^Solver terminated early \(max_iter=3\)\.  Consider pre-processing"):
        est = ts.SVC(max_iter=3, device="cpu").fit(IRIS_X, IRIS_Y)
    assert est.fit_status_ == 1


# -- sample_weight: zero and negative weights drop samples (scikit-learn's LIBSVM) ----------------
@pytest.mark.parametrize("ours, theirs", PAIRS[:5] + PAIRS[5:], ids=[t.__name__ for t, _ in PAIRS])
@pytest.mark.parametrize("weight", [0.0, -0.3])
def test_all_weights_dropped_is_an_error(ours, theirs, weight):
    sw = [weight] * len(LINEAR_Y)
    if theirs in (sk.LinearSVC, sk.LinearSVR):  # LIBLINEAR has no such check; ours says so anyway
        match = "Invalid input - all samples have zero or negative weights."
    else:
        with pytest.raises(ValueError) as expected:
            theirs(kernel="linear").fit(LINEAR_X, LINEAR_Y, sample_weight=sw)
        match = "Invalid input - all samples have zero or negative weights." if ours is not ts.NuSVC else \
            "(Invalid input - all samples have zero or negative weights.|nu is infeasible)"
        assert expected.match(match)
    with pytest.raises(ValueError, match=match):
        ours(device="cpu").fit(LINEAR_X, LINEAR_Y, sample_weight=sw)


@pytest.mark.parametrize("ours, theirs, message", [(ts.SVC, sk.SVC, "all samples with positive weights belong to the same class"),
                                                   (ts.NuSVC, sk.NuSVC, "specified nu is infeasible")])
@pytest.mark.parametrize("sw", [[0, -0.5, 0, 1, 1, 1], [1, 1, 1, 0, -0.1, -0.3]])
def test_one_class_left_after_dropping(ours, theirs, message, sw):
    with pytest.raises(ValueError, match=message):
        theirs(kernel="linear").fit(LINEAR_X, LINEAR_Y, sample_weight=sw)
    with pytest.raises(ValueError, match=message):
        ours(kernel="linear", device="cpu").fit(LINEAR_X, LINEAR_Y, sample_weight=sw)


@pytest.mark.parametrize("ours, theirs", [(ts.SVC, sk.SVC), (ts.NuSVC, sk.NuSVC), (ts.NuSVR, sk.NuSVR)])
@pytest.mark.parametrize("sw", [[1, -0.5, 1, 1, 1, 1], [1, 1, 1, 0, 1, 1]])
def test_partly_dropped_weights_give_scikit_learns_model(device, ours, theirs, sw):
    ref = theirs(kernel="linear").fit(LINEAR_X, LINEAR_Y, sample_weight=sw)
    mine = ours(kernel="linear", device=device).fit(LINEAR_X, LINEAR_Y, sample_weight=sw)
    np.testing.assert_allclose(mine.coef_, ref.coef_, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(mine.intercept_, ref.intercept_, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(mine.predict(LINEAR_X), ref.predict(LINEAR_X), atol=1e-3)


@pytest.mark.parametrize("ours, theirs", [(ts.SVC, sk.SVC), (ts.NuSVC, sk.NuSVC)])
def test_sided_sample_weight_moves_the_boundary_as_scikit_learns(ours, theirs):
    for sw, side in (([1] * 6, 0), ([10.0, 0.1, 0.1, 0.1, 0.1, 10], -1), ([1.0, 0.1, 10.0, 10.0, 0.1, 0.1], 1)):
        params = dict(kernel="linear") if ours is ts.NuSVC else dict(kernel="linear", C=1e-2)
        ref = float(theirs(**params).fit(LINEAR_X, LINEAR_Y, sample_weight=sw).decision_function([[-1.0, 1.0]])[0])
        mine = float(ours(**params, device="cpu").fit(LINEAR_X, LINEAR_Y, sample_weight=sw).decision_function([[-1.0, 1.0]])[0])
        assert mine == pytest.approx(ref, abs=1e-3)
        assert np.sign(round(mine, 6)) == side


def test_dropped_samples_leave_linear_svc_as_if_removed():
    X, y = make_classification(200, 6, random_state=3)
    sw = np.where(np.arange(200) % 7 == 0, 0.0, 1.0)
    sw[1] = -2.0
    keep = sw > 0
    a = ts.LinearSVC(tol=1e-10, device="cpu").fit(X, y, sample_weight=sw)
    b = ts.LinearSVC(tol=1e-10, device="cpu").fit(X[keep], y[keep])
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-5 * np.abs(b.coef_).max())


@pytest.mark.parametrize("est", [ts.SVC(gamma=0.5, tol=1e-10, kernel_dtype="float64", device="cpu"),
                                 ts.NuSVC(nu=0.1, gamma=0.5, tol=1e-10, kernel_dtype="float64", device="cpu"),
                                 ts.SVR(gamma=0.5, tol=1e-10, kernel_dtype="float64", device="cpu"),
                                 ts.NuSVR(gamma=0.5, tol=1e-10, kernel_dtype="float64", device="cpu"),
                                 ts.LinearSVC(tol=1e-10, solver="newton", device="cpu"),
                                 ts.LinearSVR(tol=1e-8, solver="newton", device="cpu")],
                         ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("check", [check_sample_weight_equivalence_on_dense_data,
                                   check_sample_weight_equivalence_on_sparse_data], ids=["dense", "sparse"])
def test_sample_weight_equivalence_with_a_tight_tol(est, check):
    """scikit-learn's own check (integer weights equal repeated rows), which its SVM classes are
    listed as failing: with a fixed gamma, float64 kernel values and a tight tol, ours pass it. (The
    linear models by Newton: a certified duality gap g fixes coefficients only to about sqrt(g), the
    check wants 1e-7; nu=0.1 because the check's weights make the default 0.5 infeasible.)"""
    check(type(est).__name__, est)


def test_one_class_sample_weight_equivalence():
    """The same check's data for OneClassSVM, on the decision values: its free support vectors lie on
    the boundary (decision 0 to rounding), where predict's sign is rounding's choice, for scikit-learn too."""
    rng = np.random.RandomState(42)
    X, sw = rng.rand(15, 30), rng.randint(0, 5, size=15)
    options = dict(gamma=0.5, tol=1e-10, kernel_dtype="float64", device="cpu")
    weighted = ts.OneClassSVM(**options).fit(X, sample_weight=sw)
    repeated = ts.OneClassSVM(**options).fit(np.repeat(X, sw, axis=0))
    np.testing.assert_allclose(weighted.decision_function(X), repeated.decision_function(X), atol=1e-9)
    ref = sk.OneClassSVM(gamma=0.5, tol=1e-10).fit(X, sample_weight=sw)
    np.testing.assert_allclose(weighted.decision_function(X), ref.decision_function(X), atol=1e-7)


# -- prediction: break_ties, decision_function_shape ---------------------------------------------
def test_break_ties_as_scikit_learn():
    X, y = make_classification(200, 4, n_informative=3, n_redundant=0, n_classes=4, n_clusters_per_class=1,
                               random_state=2)
    for shape in ("ovr", "ovo"):
        for break_ties in (False, True):
            ref = sk.SVC(decision_function_shape=shape, break_ties=break_ties, gamma=0.5, tol=1e-8)
            mine = ts.SVC(decision_function_shape=shape, break_ties=break_ties, gamma=0.5, tol=1e-8, device="cpu")
            ref.fit(X, y)
            mine.fit(X, y)
            np.testing.assert_allclose(mine.decision_function(X), ref.decision_function(X), atol=1e-3)
            if shape == "ovo" and break_ties:
                for est in (ref, mine):
                    with pytest.raises(ValueError, match="break_ties must be False when decision_function_shape is 'ovo'"):
                        est.predict(X)
                continue
            np.testing.assert_array_equal(mine.predict(X), ref.predict(X))
            if break_ties:
                np.testing.assert_array_equal(mine.predict(X), np.argmax(mine.decision_function(X), 1))


# -- probability=True: LIBSVM's Platt scaling, deprecated by scikit-learn 1.9 ---------------------
def test_probability_as_scikit_learn(device):
    X, y = IRIS_X, IRIS_Y
    with pytest.warns(FutureWarning, match="The `probability` parameter was deprecated in 1.9"):
        mine = ts.SVC(probability=True, random_state=0, device=device).fit(X, y)
    with pytest.warns(FutureWarning):
        ref = sk.SVC(probability=True, random_state=0).fit(X, y)
    proba = mine.predict_proba(X)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-12)
    # Another cross-validation split than LIBSVM's random one: close, not equal.
    assert np.abs(proba - ref.predict_proba(X)).max() < 0.05
    assert (proba.argmax(1) == ref.predict_proba(X).argmax(1)).mean() >= 0.98
    np.testing.assert_allclose(mine.predict_log_proba(X), np.log(proba))
    with pytest.warns(FutureWarning, match="Attribute `probA_` was deprecated in version 1.9"):
        probA = mine.probA_
    with pytest.warns(FutureWarning):
        np.testing.assert_allclose(probA, ref.probA_, rtol=0.1)  # one sigmoid per pair, LIBSVM's sign
    with pytest.warns(FutureWarning, match="Attribute `probB_` was deprecated"):
        assert mine.probB_.shape == (3,)
    # random_state seeds the split: the same seed, the same model
    with pytest.warns(FutureWarning):
        again = ts.SVC(probability=True, random_state=0, device=device).fit(X, y)
    np.testing.assert_allclose(again.predict_proba(X), proba)


def test_probability_binary_and_nu_and_classes_order():
    X, y = IRIS_X, np.where(IRIS_Y == 2, "virginica", "other")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        ref = sk.SVC(probability=True, random_state=0).fit(X, y)
        mine = ts.SVC(probability=True, random_state=0, device="cpu").fit(X, y)
        nu = ts.NuSVC(probability=True, random_state=0, device="cpu").fit(X, y)
        assert np.sign(mine.probA_) == np.sign(ref.probA_)
    for est in (mine, nu):
        proba = est.predict_proba(X)
        assert proba.shape == (150, 2)
        assert ((proba[:, 1] > 0.5) == (y == "virginica")).mean() > 0.95  # columns in classes_ order
    assert np.abs(mine.predict_proba(X) - ref.predict_proba(X)).max() < 0.05


def test_no_predict_proba_without_probability():
    est = ts.SVC(device="cpu").fit(IRIS_X, IRIS_Y)
    assert not hasattr(est, "predict_proba") and not hasattr(sk.SVC().fit(IRIS_X, IRIS_Y), "predict_proba")
    for model in (est, sk.SVC().fit(IRIS_X, IRIS_Y)):
        with pytest.raises(AttributeError, match="has no attribute 'predict_proba'"):
            model.predict_proba(IRIS_X)


def test_calibrated_classifier_cv_is_the_recommended_path():
    from sklearn.calibration import CalibratedClassifierCV

    proba = CalibratedClassifierCV(ts.SVC(device="cpu"), ensemble=False).fit(IRIS_X, IRIS_Y).predict_proba(IRIS_X)
    assert proba.shape == (150, 3) and (proba.argmax(1) == IRIS_Y).mean() > 0.95


# -- smaller rules ---------------------------------------------------------------------------------
def test_default_kernel_dtype_makes_precomputed_and_linear_agree():
    """float64 kernel values on the CPU by default: a precomputed linear Gram matrix and
    kernel="linear" give the same dual coefficients (to the solver's arithmetic), as in scikit-learn."""
    linear = ts.SVC(kernel="linear", device="cpu").fit(IRIS_X, IRIS_Y)
    gram = ts.SVC(kernel="precomputed", device="cpu").fit(IRIS_X @ IRIS_X.T, IRIS_Y)
    np.testing.assert_allclose(linear.dual_coef_, gram.dual_coef_, atol=1e-10)
    # w is unique (the linear kernel's dual coefficients need not be: rank 4 < 150 samples)
    ref = sk.SVC(kernel="linear", tol=1e-8).fit(IRIS_X, IRIS_Y)
    tight = ts.SVC(kernel="linear", tol=1e-8, device="cpu").fit(IRIS_X, IRIS_Y)
    np.testing.assert_allclose(tight.coef_, ref.coef_, atol=1e-4)  # LIBSVM keeps kernel values in float32


def test_gamma_zero_and_scale_on_huge_values_as_scikit_learn():
    X = IRIS_X * 1e160  # X.var() overflows: gamma="scale" is 0.0, as scikit-learn's, and 0 * inf distances are NaN
    message = "The dual coefficients or intercepts are not finite"  # scikit-learn's error for the same X
    with (pytest.warns(UserWarning, match=r"gamma='scale' is 0.0 \(a constant kernel\): X.var\(\) = inf"),
          pytest.raises(ValueError, match=message)):
        ts.SVC(device="cpu").fit(X, IRIS_Y)
    with pytest.raises(ValueError, match=message):
        sk.SVC().fit(X, IRIS_Y)
    np.testing.assert_array_equal(ts.SVC(gamma=0.0, device="cpu").fit(IRIS_X, IRIS_Y).predict(IRIS_X),
                                  sk.SVC(gamma=0.0).fit(IRIS_X, IRIS_Y).predict(IRIS_X))


def test_verbose_prints_one_line_per_fit(capsys):
    ts.SVC(verbose=True, device="cpu").fit(IRIS_X, IRIS_Y)
    ts.LinearSVC(verbose=1, device="cpu").fit(IRIS_X, IRIS_Y)
    ts.SVC(device="cpu").fit(IRIS_X, IRIS_Y)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("[torchsvm SVC]") and lines[1].startswith("[torchsvm LinearSVC]")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_names_the_choices():
    with pytest.raises(ValueError, match=r"Expected an available CUDA device, got device='cuda'.*device='auto'"):
        ts.SVC(device="cuda").fit(IRIS_X, IRIS_Y)


def test_coordinate_only_problems_refuse_the_newton_options():
    for params in (dict(penalty="l1", dual=False, solver="newton"), dict(multi_class="crammer_singer", penalize_intercept=False)):
        with pytest.raises(ValueError, match="solved by LIBLINEAR's coordinate descent"):
            ts.LinearSVC(device="cpu", **params).fit(IRIS_X, IRIS_Y)
    message = "The combination of penalty='l1' and loss='squared_hinge' are not supported when dual=True"
    with pytest.raises(ValueError, match=message):
        ts.LinearSVC(penalty="l1", dual=True, device="cpu").fit(IRIS_X, IRIS_Y)


def _string_kernel(A, B):
    """A kernel on strings: shared letters counted (the Gram matrix of letter histograms, PSD)."""
    def hist(words):
        return np.array([[w.count(c) for c in "abcdefghijklmnopqrstuvwxyz"] for w in words], dtype=float)

    return hist(A) @ hist(B).T


def test_callable_kernel_gets_non_numeric_x_as_it_is():
    """scikit-learn passes X that is not numbers to a callable kernel unconverted; so does torchsvm."""
    words = ["apple", "banana", "cherry", "date", "fig", "grape", "kiwi", "lemon", "mango", "melon", "nectarine",
             "orange", "papaya", "peach", "pear", "plum", "quince", "raspberry", "strawberry", "tangerine"]
    y = np.array([len(w) > 5 for w in words]).astype(int)
    ref = sk.SVC(kernel=_string_kernel, C=10.0, tol=1e-8).fit(words, y)
    mine = ts.SVC(kernel=_string_kernel, C=10.0, tol=1e-8, device="cpu").fit(words, y)
    np.testing.assert_allclose(mine.decision_function(words), ref.decision_function(words), atol=1e-5)
    np.testing.assert_array_equal(mine.predict(["kiwi", "watermelon"]), ref.predict(["kiwi", "watermelon"]))


def test_precomputed_kernel_cross_validates_as_scikit_learn():
    """The pairwise tag: scikit-learn's cross-validation cuts a precomputed Gram matrix in rows and columns."""
    from sklearn.model_selection import cross_val_score

    K = IRIS_X @ IRIS_X.T
    ours = cross_val_score(ts.SVC(kernel="precomputed", device="cpu"), K, IRIS_Y, cv=3)
    np.testing.assert_allclose(ours, cross_val_score(sk.SVC(kernel="precomputed"), K, IRIS_Y, cv=3))


def test_sparsify_and_densify_as_scikit_learn():
    ours = ts.LinearSVC(penalty="l1", dual=False, C=0.05, max_iter=20_000, random_state=0, device="cpu").fit(IRIS_X, IRIS_Y)
    dense = ours.decision_function(IRIS_X)
    assert ours.sparsify() is ours and ours.coef_.format == "csr"
    np.testing.assert_allclose(ours.decision_function(IRIS_X), dense)
    assert isinstance(ours.densify().coef_, np.ndarray)
    assert hasattr(sk.LinearSVC(), "sparsify") and hasattr(sk.LinearSVC(), "densify")


def test_auto_kernel_dtype_is_float64_on_small_cpu_problems_only():
    est = ts.SVC(device="cpu")
    assert problems.kernel_dtype(est, torch.device("cpu"), 4096) == torch.float64
    assert problems.kernel_dtype(est, torch.device("cpu"), 4097) == torch.float32
    assert problems.kernel_dtype(est, torch.device("cuda"), 100) == torch.float32
    assert problems.kernel_dtype(ts.SVC(kernel_dtype="float64"), torch.device("cpu"), 10**6) == torch.float64


# -- what scikit-learn's own SVM tests hold torchsvm to (scripts/sklearn_tests.py runs them all) ------------
def test_a_sparse_fit_gives_csr_attributes_and_the_dense_fit_s_model():
    import scipy.sparse

    dense = ts.SVC(kernel="poly", device="cpu").fit(IRIS_X, IRIS_Y)
    sparse = ts.SVC(kernel="poly", device="cpu").fit(scipy.sparse.csr_matrix(IRIS_X), IRIS_Y)
    assert scipy.sparse.issparse(sparse.dual_coef_) and scipy.sparse.issparse(sparse.support_vectors_)
    np.testing.assert_array_equal(sparse.support_, dense.support_)
    np.testing.assert_allclose(sparse.dual_coef_.toarray(), dense.dual_coef_, rtol=1e-7)
    with pytest.raises(ValueError, match="cannot use sparse input in 'SVC' trained on dense data"):
        dense.predict(scipy.sparse.csr_matrix(IRIS_X))


@pytest.mark.parametrize("make", [lambda: ts.SVC(device="cpu"), lambda: ts.LinearSVC(device="cpu")])
def test_dataframe_column_names_are_kept_and_checked(make):
    pd = pytest.importorskip("pandas")
    names = ["a", "b", "c", "d"]
    est = make().fit(pd.DataFrame(IRIS_X, columns=names), IRIS_Y)
    np.testing.assert_array_equal(est.feature_names_in_, names)
    with pytest.raises(ValueError, match="Feature names must be in the same order"):
        est.predict(pd.DataFrame(IRIS_X[:, ::-1], columns=names[::-1]))
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        est.predict(IRIS_X)


def test_max_iter_spent_is_early_termination_as_in_libsvm():
    with pytest.warns(ConvergenceWarning, match=r"Solver terminated early \(max_iter=1\)"):
        est = ts.SVC(kernel="linear", max_iter=1, device="cpu").fit(IRIS_X[:100], IRIS_Y[:100])
    assert est.fit_status_ == 1 and est.n_iter_.max() == 1


def test_default_kernel_values_are_kept_as_libsvm_keeps_them():
    """Near a hard margin (C = 1e9, gamma = 1e-3 on standardized iris) float32 rounding of the kernel values
    changes the solution: kernel_dtype="auto" rounds as LIBSVM's cache does and finds LIBSVM's model;
    "float64" solves the exact problem, a different one."""
    from sklearn.preprocessing import StandardScaler

    X = StandardScaler().fit_transform(IRIS_X)
    ref = sk.SVC(C=1e9, gamma=1e-3).fit(X, IRIS_Y)
    auto = ts.SVC(C=1e9, gamma=1e-3, device="cpu").fit(X, IRIS_Y)
    np.testing.assert_array_equal(auto.support_, ref.support_)
    np.testing.assert_allclose(auto.decision_function(X), ref.decision_function(X), atol=1e-2)
    exact = ts.SVC(C=1e9, gamma=1e-3, kernel_dtype="float64", device="cpu").fit(X, IRIS_Y)
    assert exact.fit_status_ == 0


def test_a_kernel_callable_gets_what_the_model_was_fitted_on():
    seen = []

    def numpy_kernel(A, B):  # written with NumPy methods, as scikit-learn's users write them
        seen.append(type(A))
        return A.dot(B.T)

    est = ts.SVC(kernel=numpy_kernel, device="cpu").fit(IRIS_X, IRIS_Y)
    ref = sk.SVC(kernel=numpy_kernel).fit(IRIS_X, IRIS_Y)
    np.testing.assert_array_equal(est.predict(IRIS_X), ref.predict(IRIS_X))
    assert set(seen) == {np.ndarray}

    def torch_kernel(A, B):
        seen.append(type(A))
        return A @ B.T

    seen.clear()
    ts.SVC(kernel=torch_kernel, device="cpu").fit(torch.as_tensor(IRIS_X), torch.as_tensor(IRIS_Y)).predict(
        torch.as_tensor(IRIS_X))
    assert set(seen) == {torch.Tensor}


def test_libsvm_internal_representation_is_followed_and_checked():
    """scikit-learn's private _dual_coef_ / _intercept_ carry LIBSVM's signs (a two-class model's public attributes
    negated) and predict follows them when set; n_support_ is the model's own array (_n_support), and an altered
    one is refused at predict, as scikit-learn's (its CVE-2020-28975 check)."""
    X, y = load_iris(return_X_y=True)
    binary = y < 2
    for ours, ref in ((ts.SVC(kernel="linear", tol=1e-8, device="cpu"), sk.SVC(kernel="linear", tol=1e-8)),
                      (ts.SVC(tol=1e-8, device="cpu"), sk.SVC(tol=1e-8))):
        for rows in (binary, slice(None)):
            ours.fit(X[rows], y[rows])
            ref.fit(X[rows], y[rows])
            np.testing.assert_allclose(ours._dual_coef_, ref._dual_coef_, atol=1e-4)  # the signs: values to tol
            np.testing.assert_allclose(ours._intercept_, ref._intercept_, atol=1e-4)
            tweak = np.abs(np.asarray(ref._dual_coef_)) * np.linspace(0.5, 2.0, ref._dual_coef_.shape[1])
            ours._dual_coef_, ref._dual_coef_ = tweak, tweak
            ours._intercept_, ref._intercept_ = ref._intercept_ + 0.3, ref._intercept_ + 0.3
            np.testing.assert_allclose(ours.decision_function(X), ref.decision_function(X), atol=1e-6)
            np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    assert ours.n_support_ is ours._n_support
    ours.n_support_[0] += 1
    with pytest.raises(ValueError, match="The internal representation of SVC was altered"):
        ours.predict(X)


def test_a_pickle_with_n_support_as_an_attribute_loads():
    """Models pickled before n_support_ became the view of _n_support load, and predict as before."""
    X, y = load_iris(return_X_y=True)
    est = ts.SVC(device="cpu").fit(X, y)
    state = est.__getstate__()
    state["n_support_"] = state.pop("_n_support")
    old = ts.SVC.__new__(ts.SVC)
    old.__setstate__(state)
    np.testing.assert_array_equal(old.n_support_, est.n_support_)
    np.testing.assert_array_equal(old.predict(X), est.predict(X))
