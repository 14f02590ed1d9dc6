import numpy as np
import pytest
import torch
from sklearn.svm import SVR as SkSVR
from sklearn.svm import OneClassSVM as SkOneClassSVM

from torchsvm import SVR, OneClassSVM
from torchsvm.svm import problems


def regression(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, np.sin(X[:, 0]) + 0.5 * X[:, 1] + 0.1 * rng.normal(size=n)


@pytest.mark.parametrize("params", [{}, {"C": 5.0, "epsilon": 0.3}, {"kernel": "linear", "epsilon": 0.05},
                                    {"kernel": "poly", "degree": 2, "gamma": 0.2, "coef0": 1.0}])
def test_svr_matches_libsvm(device, params):
    X, y = regression()
    ref = SkSVR(tol=1e-6, **params).fit(X, y)
    ours = SVR(tol=1e-6, device=device, kernel_dtype="float64", **params).fit(X, y)
    np.testing.assert_array_equal(np.sort(ours.support_), np.sort(ref.support_))
    order = np.argsort(ref.support_)
    np.testing.assert_allclose(ours.dual_coef_[0][np.argsort(ours.support_)], ref.dual_coef_[0][order], atol=1e-4)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=1e-5)
    X_test, _ = regression(50, seed=1)
    np.testing.assert_allclose(ours.predict(X_test), ref.predict(X_test), atol=1e-5)
    assert ours.score(X, y) == pytest.approx(ref.score(X, y), abs=1e-6)  # R^2
    assert ours.n_support_.tolist() == [len(ref.support_)] and isinstance(ours.n_iter_, int)


def test_svr_decomposition_and_weights():
    X, y = regression(150)
    smo = SVR(C=2.0, tol=1e-6, device="cpu").fit(X, y)
    dec = SVR(C=2.0, tol=1e-6, device="cpu", solver="decomposition", working_set_size=32).fit(X, y)
    np.testing.assert_allclose(dec.predict(X), smo.predict(X), atol=1e-4)
    w = np.random.default_rng(0).integers(1, 4, size=len(y)).astype(float)
    ref = SkSVR(C=2.0, gamma=0.2, tol=1e-6).fit(X, y, sample_weight=w)
    ours = SVR(C=2.0, gamma=0.2, tol=1e-6, device="cpu").fit(X, y, sample_weight=w)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), atol=1e-4)
    t = ours.predict(torch.from_numpy(X))
    assert isinstance(t, torch.Tensor) and t.shape == (150,)


@pytest.mark.parametrize("params", [{}, {"nu": 0.1}, {"nu": 0.9, "gamma": 0.5},
                                    pytest.param({"kernel": "linear", "nu": 0.3}, marks=pytest.mark.slow)])
def test_one_class_matches_libsvm(device, params):
    X, _ = regression()
    ref = SkOneClassSVM(tol=1e-6, **params).fit(X)
    ours = OneClassSVM(tol=1e-6, device=device, kernel_dtype="float64", **params).fit(X)
    if params.get("kernel") != "linear":  # a rank-4 linear kernel has many optimal alphas: compare f only
        np.testing.assert_array_equal(np.sort(ours.support_), np.sort(ref.support_))
    np.testing.assert_allclose(ours.offset_, ref.offset_, rtol=1e-5, atol=1e-5)
    assert ours.offset_[0] == -ours.intercept_[0]
    X_test = np.random.default_rng(3).normal(size=(100, 4)) * 1.5
    np.testing.assert_allclose(ours.decision_function(X_test), ref.decision_function(X_test), atol=1e-4)
    np.testing.assert_allclose(ours.score_samples(X_test), ref.score_samples(X_test), atol=1e-4)
    dec = ref.decision_function(X_test)
    clear = np.abs(dec) > 1e-3  # away from the boundary the sign is not a matter of rounding
    np.testing.assert_array_equal(ours.predict(X_test)[clear], ref.predict(X_test)[clear])
    assert set(np.unique(ours.predict(X_test))) <= {-1, 1}
    # nu bounds the fraction of training outliers from above and of support vectors from below
    # (the linear kernel's rho is ~0 here: the boundary passes through the data, as LIBSVM's does).
    nu = params.get("nu", 0.5)
    if params.get("kernel") != "linear":
        assert (ours.predict(X) == -1).mean() <= nu + 0.02 and len(ours.support_) / len(X) >= nu - 0.02


def test_one_class_decomposition_equals_in_memory():
    """The decomposition solver starts from LIBSVM's alpha too (G = K alpha0 from kernel rows)."""
    X, _ = regression(150)
    smo = OneClassSVM(nu=0.3, tol=1e-6, device="cpu").fit(X)
    dec = OneClassSVM(nu=0.3, tol=1e-6, device="cpu", solver="decomposition", working_set_size=32).fit(X)
    np.testing.assert_allclose(dec.decision_function(X), smo.decision_function(X), atol=1e-4)


def test_bad_input_in_scikit_learns_words():
    X, y = regression(30)
    with pytest.raises(ValueError, match=r"The 'epsilon' parameter of SVR must be a float in the range \[0.0, inf\)"):
        SVR(epsilon=-0.1).fit(X, y)
    with pytest.raises(ValueError, match="Input y contains NaN"):
        SVR().fit(X, np.where(np.arange(30) == 3, np.nan, y))
    with pytest.raises(ValueError, match=r"The 'C' parameter of SVR must be a float in the range \(0.0, inf\]. Got 0 instead."):
        SVR(C=0).fit(X, y)
    for nu in (0.0, 1.5):
        with pytest.raises(ValueError, match=r"The 'nu' parameter of OneClassSVM must be a float in the range \(0.0, 1.0\]"):
            OneClassSVM(nu=nu).fit(X)


def test_working_set_size_auto():
    """"auto": 2048 on the CPU while two buffers of its kernel rows fit in cache_size, else 1024; 1024 on
    a GPU; an int as given; anything else refused by the parameter check."""
    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    assert problems.working_set_size(SVR(), 20_000, 4, cpu) == 2048
    assert problems.working_set_size(SVR(), 1_000_000, 4, cpu) == 1024  # 16 GB of rows: over the 2 GiB budget
    assert problems.working_set_size(SVR(cache_size=20_000), 1_000_000, 4, cpu) == 2048
    assert problems.working_set_size(SVR(), 20_000, 4, gpu) == 1024
    assert problems.working_set_size(SVR(working_set_size=64), 20_000, 4, cpu) == 64
    with pytest.raises(ValueError, match="working_set_size"):
        SVR(working_set_size="big").fit(np.zeros((4, 2)), np.arange(4.0))
