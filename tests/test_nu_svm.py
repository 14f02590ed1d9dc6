"""nu-SVC and nu-SVR against LIBSVM (scikit-learn), and the nu selection of the solvers."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, make_classification
from sklearn.svm import NuSVC as SkNuSVC
from sklearn.svm import NuSVR as SkNuSVR

from torchsvm import NuSVC, NuSVR
from torchsvm.kernels import rbf_kernel
from torchsvm.solvers.dual import decomposition_dual, smo_dual


def regression(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, np.sin(X[:, 0]) + 0.5 * X[:, 1] + 0.1 * rng.normal(size=n)


# (Parameters where w != 0: with nu above what separates the reduced hulls, r -> 0 and LIBSVM's 1/r
# rescaling is undefined; e.g. poly degree 2 with coef0 = 0 on these data.)
@pytest.mark.parametrize("params", [{"nu": 0.5}, {"nu": 0.2, "gamma": 0.3},
                                    {"nu": 0.3, "kernel": "poly", "degree": 2, "coef0": 1.0}])
def test_nu_svc_binary_matches_libsvm(device, params):
    X, y = make_classification(240, 5, random_state=2)
    ref = SkNuSVC(tol=1e-6, **params).fit(X, y)
    ours = NuSVC(tol=1e-6, device=device, kernel_dtype="float64", **params).fit(X, y)
    np.testing.assert_array_equal(ours.support_, ref.support_)
    np.testing.assert_allclose(ours.dual_coef_, ref.dual_coef_, rtol=1e-4, atol=1e-4 * np.abs(ref.dual_coef_).max())
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=1e-5)
    np.testing.assert_allclose(ours.decision_function(X), ref.decision_function(X), atol=1e-5)
    # nu bounds the fraction of margin errors from above, of support vectors from below.
    assert len(ours.support_) / len(y) >= params["nu"] - 1e-9


def test_nu_svc_multiclass_and_weights_match_libsvm():
    X, y = load_digits(n_class=4, return_X_y=True)
    X = X / 16
    w = np.random.default_rng(0).uniform(0.5, 2.0, size=len(y))
    for sample_weight in (None, w):
        ref = SkNuSVC(nu=0.2, gamma=0.05, tol=1e-6).fit(X, y, sample_weight=sample_weight)
        ours = NuSVC(nu=0.2, gamma=0.05, tol=1e-6, device="cpu", kernel_dtype="float64").fit(X, y, sample_weight=sample_weight)
        np.testing.assert_array_equal(ours.support_, ref.support_)
        np.testing.assert_array_equal(ours.n_support_, ref.n_support_)
        np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=1e-4)
        np.testing.assert_allclose(ours.decision_function(X), ref.decision_function(X), atol=1e-4)
        np.testing.assert_array_equal(ours.predict(X), ref.predict(X))


def test_nu_svc_decomposition_equals_in_memory():
    X, y = load_digits(n_class=3, return_X_y=True)
    smo = NuSVC(nu=0.3, tol=1e-6, device="cpu").fit(X, y)
    dec = NuSVC(nu=0.3, tol=1e-6, device="cpu", solver="decomposition", working_set_size=32).fit(X, y)
    np.testing.assert_allclose(dec.decision_function(X), smo.decision_function(X), atol=1e-4)


@pytest.mark.parametrize("params", [{}, {"nu": 0.1, "C": 5.0}, {"nu": 0.8, "kernel": "linear"}])
def test_nu_svr_matches_libsvm(device, params):
    X, y = regression()
    ref = SkNuSVR(tol=1e-6, **params).fit(X, y)
    ours = NuSVR(tol=1e-6, device=device, kernel_dtype="float64", **params).fit(X, y)
    if params.get("kernel") != "linear":  # a rank-4 linear kernel has many optimal alphas: compare f only
        np.testing.assert_array_equal(ours.support_, ref.support_)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=1e-4)
    X_test, _ = regression(50, seed=1)
    np.testing.assert_allclose(ours.predict(X_test), ref.predict(X_test), atol=1e-4)
    assert ours.score(X, y) == pytest.approx(ref.score(X, y), abs=1e-6)


def test_nu_svr_decomposition_and_weights():
    X, y = regression(100)
    w = np.random.default_rng(1).integers(1, 4, size=len(y)).astype(float)
    ref = SkNuSVR(nu=0.3, C=2.0, gamma=0.2, tol=1e-5).fit(X, y, sample_weight=w)
    for solver in ("smo", "decomposition"):
        ours = NuSVR(nu=0.3, C=2.0, gamma=0.2, tol=1e-5, device="cpu", solver=solver, working_set_size=32)
        np.testing.assert_allclose(ours.fit(X, y, sample_weight=w).predict(X), ref.predict(X), atol=1e-4)


def test_nu_selection_keeps_both_constraints():
    """Every nu step moves two variables of one sign: y^T a and e^T a stay at the start's values."""
    X, y = make_classification(120, 4, random_state=0)
    Xt = torch.from_numpy(X)
    Y = torch.where(torch.from_numpy(y) == 1, 1.0, -1.0).double()
    K = rbf_kernel(Xt, Xt, gamma=0.3)
    alpha0 = torch.where(torch.arange(120) % 2 == 0, 1.0, 0.0).double()
    alpha0 = alpha0 * torch.where(Y > 0, 20 / alpha0[Y > 0].sum(), 20 / alpha0[Y < 0].sum())  # 20 per sign
    zeros = torch.zeros(120, dtype=torch.float64)
    res = smo_dual(K, Y, 1.0, tol=1e-6, p=zeros, alpha0=alpha0.unsqueeze(0), nu=True)
    a = res.alpha[0]
    assert res.info.converged and res.r is not None
    assert float(a[Y > 0].sum()) == pytest.approx(20.0, abs=1e-10)
    assert float(a[Y < 0].sum()) == pytest.approx(20.0, abs=1e-10)
    dec = decomposition_dual(Xt, Y, 1.0, lambda A, Z: rbf_kernel(A, Z, gamma=0.3), working_set_size=16,
                             tol=1e-6, p=zeros, alpha0=alpha0.unsqueeze(0), nu=True)
    v = lambda al: al * Y  # noqa: E731
    obj = lambda al: float(v(al) @ K @ v(al))  # noqa: E731
    assert obj(dec.alpha[0]) == pytest.approx(obj(a), rel=1e-5)


def test_bad_nu_in_scikit_learns_words():
    X, y = make_classification(60, 4, weights=[0.8], random_state=0)
    with pytest.raises(ValueError, match="specified nu is infeasible"):
        NuSVC(nu=0.9).fit(X, y)
    for est in (NuSVC, NuSVR):
        for nu in (0.0, 1.5, "half"):
            with pytest.raises(ValueError, match=rf"The 'nu' parameter of {est.__name__} must be a float in the range"):
                est(nu=nu).fit(X, y)
    with pytest.raises(ValueError, match=r"The 'C' parameter of NuSVR must be a float in the range \(0.0, inf\]"):
        NuSVR(C=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="Input y contains NaN"):
        NuSVR().fit(X, np.where(np.arange(60) == 3, np.nan, 1.0))
    with pytest.raises(ValueError, match="specified nu is infeasible"):  # scikit-learn's words for NuSVC here
        NuSVC().fit(X, y, sample_weight=(y == 1).astype(float))
