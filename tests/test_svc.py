"""SVC against scikit-learn's SVC (LIBSVM): attributes, decisions, predictions, API and errors."""

import itertools
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC as SkSVC

from torchsvm import SVC
from torchsvm.data import load_images
from torchsvm.kernels import RBF, Linear, Polynomial, rbf_kernel


def blobs(n=240, centers=4, seed=0):
    return make_blobs(n, centers=centers, n_features=5, random_state=seed, cluster_std=3.0)


def pair_objectives(est, X):
    """Each pair's dual objective, read from dual_coef_ in LIBSVM's layout (checks the layout too)."""
    K = est._kernel(torch.as_tensor(est.support_vectors_), torch.as_tensor(est.support_vectors_)).numpy()
    sv_class = np.repeat(np.arange(len(est.classes_)), est.n_support_)
    objectives = []
    for i, j in itertools.combinations(range(len(est.classes_)), 2):
        coef = np.zeros(len(sv_class))
        coef[sv_class == i] = est.dual_coef_[j - 1, sv_class == i]
        coef[sv_class == j] = est.dual_coef_[i, sv_class == j]
        objectives.append(np.abs(coef).sum() - 0.5 * coef @ K @ coef)
    return np.array(objectives)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"kernel": "linear"},
        {"kernel": "poly", "degree": 2, "coef0": 1.0},
        {"gamma": "auto"},
        {"class_weight": "balanced"},
        {"class_weight": {0: 1.0, 1: 3.0, 2: 0.5, 3: 1.0}},
    ],
)
def test_matches_libsvm_multiclass(device, params):
    X, y = blobs()
    ref = SkSVC(C=2.0, tol=1e-5, **params).fit(X, y)
    est = SVC(C=2.0, tol=1e-5, device=device, **params).fit(X, y)
    np.testing.assert_array_equal(est.classes_, ref.classes_)
    # The same optimum: dual objectives within 1e-3 relative, the same predictions.
    np.testing.assert_allclose(pair_objectives(est, X), pair_objectives(_as_fitted(est, ref), X), rtol=1e-3)
    assert (est.predict(X) == ref.predict(X)).mean() >= 0.995
    np.testing.assert_allclose(est.intercept_, ref.intercept_, atol=2e-2)
    np.testing.assert_allclose(est.decision_function(X), ref.decision_function(X), atol=2e-2)
    if params.get("kernel") != "linear":  # strictly convex: the same support vectors and coefficients
        np.testing.assert_array_equal(est.support_, ref.support_)
        np.testing.assert_array_equal(est.n_support_, ref.n_support_)
        np.testing.assert_allclose(est.support_vectors_, ref.support_vectors_)
        np.testing.assert_allclose(est.dual_coef_, ref.dual_coef_, atol=2e-2)
    est.decision_function_shape = ref.decision_function_shape = "ovo"
    assert est.decision_function(X).shape == (len(X), 6)
    np.testing.assert_allclose(est.decision_function(X), ref.decision_function(X), atol=2e-2)


def _as_fitted(est, ref):
    """A copy of our estimator carrying LIBSVM's support vectors and coefficients."""
    other = clone(est)
    other._kernel = est._kernel
    other.classes_, other.support_vectors_ = est.classes_, ref.support_vectors_
    other._n_support, other.dual_coef_ = ref.n_support_, ref.dual_coef_  # n_support_: scikit-learn's read-only view
    return other


def test_binary_sign_convention_and_string_labels(device):
    X, y = blobs(centers=2, seed=1)
    labels = np.array(["cat", "dog"])[y]
    ref = SkSVC(C=0.5, tol=1e-5).fit(X, labels)
    est = SVC(C=0.5, tol=1e-5, device=device).fit(X, labels)
    assert est.dual_coef_.shape == (1, len(est.support_)) and est.intercept_.shape == (1,)
    np.testing.assert_allclose(est.dual_coef_, ref.dual_coef_, atol=1e-3)
    np.testing.assert_allclose(est.intercept_, ref.intercept_, atol=1e-3)
    dec = est.decision_function(X)
    assert dec.shape == (len(X),)
    np.testing.assert_array_equal(est.predict(X), np.where(dec > 0, "dog", "cat"))  # + is classes_[1]


@pytest.mark.parametrize("multi_class", ["ovo", "ovr"])
def test_decomposition_solver_equals_in_memory(multi_class):
    X, y = blobs(seed=2)
    small = SVC(C=3.0, tol=1e-5, multi_class=multi_class, solver="smo", device="cpu").fit(X, y)
    large = SVC(C=3.0, tol=1e-5, multi_class=multi_class, solver="decomposition", working_set_size=16,
                device="cpu").fit(X, y)
    np.testing.assert_array_equal(small.support_, large.support_)
    np.testing.assert_allclose(small.dual_coef_, large.dual_coef_, atol=1e-3)
    np.testing.assert_allclose(small.decision_function(X), large.decision_function(X), atol=1e-3)
    # solver="auto" with a cache too small for the Gram matrix goes the decomposition way too.
    tiny = SVC(C=3.0, tol=1e-5, multi_class=multi_class, cache_size=0.01, device="cpu").fit(X, y)
    np.testing.assert_allclose(small.decision_function(X), tiny.decision_function(X), atol=1e-3)


def test_one_vs_rest_is_k_binary_problems():
    X, y = blobs(seed=3)
    est = SVC(C=1.0, tol=1e-5, multi_class="ovr", device="cpu").fit(X, y)
    assert est.dual_coef_.shape == (4, len(est.support_)) and est.intercept_.shape == (4,)
    dec = est.decision_function(X)
    for k in range(4):
        binary = SkSVC(C=1.0, tol=1e-5, gamma=est._gamma).fit(X, (y == k).astype(int))
        np.testing.assert_allclose(dec[:, k], binary.decision_function(X), atol=2e-3)
    np.testing.assert_array_equal(est.predict(X), dec.argmax(1))


def test_one_vs_one_pairs_grouped_under_a_small_cache():
    X, y = blobs(seed=4)
    one_group = SVC(C=1.0, tol=1e-5, solver="smo", device="cpu").fit(X, y)
    # cache for about one pair block at a time: six groups, each solved in memory on its own pair.
    n_pair = 2 * 60
    several = SVC(C=1.0, tol=1e-5, cache_size=1.5 * n_pair**2 * 8 / 2**20, device="cpu").fit(X, y)
    np.testing.assert_allclose(one_group.dual_coef_, several.dual_coef_, atol=1e-3)


def test_kernel_forms_agree():
    X, y = blobs(seed=5)
    Xt = torch.as_tensor(X)
    gamma = 0.1
    exact = dict(kernel_dtype="float64", device="cpu")  # a precomputed Gram matrix is used as given: float64
    by_name = SVC(C=1.0, gamma=gamma, **exact).fit(X, y)
    by_object = SVC(C=1.0, kernel=RBF(gamma), **exact).fit(X, y)
    # a callable gets NumPy arrays for a NumPy fit, as scikit-learn's does
    by_callable = SVC(C=1.0, kernel=lambda A, Z: rbf_kernel(torch.as_tensor(A), torch.as_tensor(Z), gamma=gamma).numpy(),
                      **exact).fit(X, y)
    K = rbf_kernel(Xt, gamma=gamma).numpy()
    by_gram = SVC(C=1.0, kernel="precomputed", device="cpu").fit(K, y)
    expected = by_name.decision_function(X)
    np.testing.assert_allclose(by_object.decision_function(X), expected, atol=1e-10)
    np.testing.assert_allclose(by_callable.decision_function(X), expected, atol=1e-10)
    np.testing.assert_allclose(by_gram.decision_function(K), expected, atol=1e-10)
    assert by_gram.support_vectors_.shape == (0, 0)
    tiny_cache = SVC(C=1.0, kernel="precomputed", cache_size=0.001, device="cpu").fit(K, y)
    np.testing.assert_allclose(tiny_cache.decision_function(K), expected, atol=1e-10)
    composed = SVC(C=1.0, kernel=Linear() + 0.5 * Polynomial(degree=2), device="cpu").fit(X, y)
    assert composed.score(X, y) > 0.8


def test_tensor_in_tensor_out(device):
    X, y = blobs(seed=6)
    Xt = torch.as_tensor(X, device=device)
    est = SVC(device=device).fit(Xt, torch.as_tensor(y))
    dec = est.decision_function(Xt)
    assert isinstance(dec, torch.Tensor) and dec.device.type == torch.device(device).type
    np.testing.assert_allclose(dec.cpu().numpy(), est.decision_function(X))


def test_scikit_learn_api():
    X, y = blobs(n=120, seed=7)
    est = SVC(C=2.0, gamma=0.1, device="cpu")
    assert clone(est).get_params() == est.get_params()
    assert est.set_params(C=3.0).C == 3.0
    pipe = make_pipeline(StandardScaler(), SVC(device="cpu")).fit(X, y)
    assert pipe.score(X, y) > 0.8
    search = GridSearchCV(SVC(device="cpu"), {"C": [0.1, 10.0]}, cv=2).fit(X, y)
    assert search.best_params_["C"] in (0.1, 10.0)


def test_mnist_10k_subset_agrees_with_libsvm(mnist_dir):
    X, y = load_images("mnist", "train", mnist_dir)
    X_test, y_test = load_images("mnist", "test", mnist_dir)
    X = X[:2000].reshape(2000, -1).double().numpy() / 255
    y = y[:2000].numpy()
    X_test = X_test[:1000].reshape(1000, -1).double().numpy() / 255
    y_test = y_test[:1000].numpy()
    ref = SkSVC(C=5.0, gamma=0.05).fit(X, y)
    est = SVC(C=5.0, gamma=0.05, device="cpu").fit(X, y)
    assert (est.predict(X_test) == ref.predict(X_test)).mean() >= 0.995
    assert est.score(X_test, y_test) >= ref.score(X_test, y_test) - 0.005
    assert est.score(X_test, y_test) > 0.9


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, match",
    [
        ({"C": 0.0}, r"The 'C' parameter of SVC must be a float in the range \(0.0, inf\]. Got 0.0 instead."),
        ({"gamma": -1.0}, r"The 'gamma' parameter of SVC must be a str among \{.*\} or a float in the range \[0.0, inf\)"),
        ({"gamma": "large"}, r"The 'gamma' parameter of SVC must be a str among \{.*\} or a float in the range"),
        ({"kernel": "laplace"}, r"The 'kernel' parameter of SVC must be a str among"),
        ({"degree": -1}, r"The 'degree' parameter of SVC must be an int in the range \[0, inf\). Got -1 instead."),
        ({"multi_class": "crammer_singer"}, r"The 'multi_class' parameter of SVC must be a str among \{'ov[or]', 'ov[or]'\}"),
        ({"cache_size": -5},
         r"The 'cache_size' parameter of SVC must be a float in the range \(0.0, inf\) or a str among \{'auto'\}"),
        ({"multi_class": "ovr", "decision_function_shape": "ovo"}, "needs multi_class='ovo'"),
        ({"kernel_dtype": "float16"}, r"The 'kernel_dtype' parameter of SVC must be a str among"),
    ],
)
def test_bad_parameters(params, match):
    X, y = blobs(n=40)
    with pytest.raises(ValueError, match=match):
        SVC(device="cpu", **params).fit(X, y)


def test_bad_data():
    X, y = blobs(n=40)
    with pytest.raises(ValueError, match="at least 2 classes"):
        SVC(device="cpu").fit(X, np.zeros(40))
    with pytest.raises(ValueError, match="Expected y of shape \\(40,\\)"):
        SVC(device="cpu").fit(X, y[:30])
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        SVC(device="cpu").fit(X_nan, y)
    est = SVC(device="cpu").fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but SVC is expecting 5 features as input"):
        est.predict(X[:, :3])


def test_bad_precomputed_gram():
    X, y = blobs(n=40)
    K = rbf_kernel(torch.as_tensor(X)).numpy()
    with pytest.raises(ValueError, match="Expected a square Gram matrix \\(N, N\\)"):
        SVC(kernel="precomputed", device="cpu").fit(K[:, :30], y)
    K_asym = K.copy()
    K_asym[0, 1] += 0.5
    with pytest.warns(UserWarning, match="Expected a symmetric Gram matrix"):  # LIBSVM solves it as given
        asym = SVC(kernel="precomputed", device="cpu").fit(K_asym, y)
    assert asym.predict(K).shape == (40,)
    est = SVC(kernel="precomputed", device="cpu").fit(K, y)
    message = "X has 20 features, but SVC is expecting 40 features as input.*a Gram matrix \\(n_samples, 40\\)"
    with pytest.raises(ValueError, match=message):
        est.predict(K[:, :20])


def test_non_psd_kernel_warns_with_smallest_eigenvalue():
    X, y = blobs(n=60)
    with pytest.warns(UserWarning, match="not positive semidefinite.*smallest eigenvalue -"):
        SVC(kernel=RBF(0.1) - 2.0 * Linear(), max_iter=200, device="cpu").fit(X, y)


def test_non_convergence_warns():
    X, y = blobs(n=100)
    with pytest.warns(ConvergenceWarning, match=r"Solver terminated early \(max_iter=.*\(SVC: max KKT violation"):
        SVC(C=100.0, max_iter=2, device="cpu").fit(X, y)


def test_out_of_memory_is_a_clear_error():
    X, y = blobs(n=40)

    def kernel(A, Z):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 14.40 GiB")

    with pytest.raises(MemoryError, match="40 x 40 Gram matrix.*solver='decomposition'"):
        SVC(kernel=kernel, device="cpu").fit(X, y)


def test_x_that_does_not_fit_on_the_device_is_a_clear_error(monkeypatch):
    X, y = blobs(n=40)
    real_to = torch.Tensor.to

    def to(self, *args, **kwargs):  # the copy of X to the device fails as a full GPU's would
        if self.shape == (40, 5):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB")
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", to)
    with pytest.raises(MemoryError, match=r"X \(40 x 5, torch.float64\) on cpu\. .*distributed=True"):
        SVC(device="cpu").fit(X, y)


def test_converged_fit_is_silent():
    X, y = blobs(n=100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SVC(device="cpu").fit(X, y)


@pytest.mark.parametrize("solver,multi_class", [("smo", "ovo"), ("smo", "ovr"), ("decomposition", "ovr")])
def test_n_iter_counts_each_binary_problem(solver, multi_class):
    X, y = blobs(n=160, centers=4, seed=3)
    est = SVC(C=1.0, gamma=0.1, solver=solver, multi_class=multi_class, working_set_size=16, device="cpu").fit(X, y)
    n_problems = 6 if multi_class == "ovo" else 4
    assert est.n_iter_.shape == (n_problems,) and est.n_iter_.dtype == np.int64
    assert est.n_iter_.min() >= 1 and est.n_iter_.min() < est.n_iter_.max()  # batched, yet counted apart


@pytest.mark.parametrize("solver", ["auto", "decomposition"])
def test_float32_kernel_values_match_float64(solver):
    """kernel_dtype="float32" (the GPU's default under "auto") computes the kernel in single precision
    and keeps the solver state in double: the solution matches the all-float64 one to the tolerance."""
    X, y = blobs(n=300, centers=4, seed=11)
    seen = []

    def rbf(A, Z):
        seen.append(A.dtype)
        return rbf_kernel(A, Z, gamma=0.1)

    options = dict(C=2.0, kernel=rbf, tol=1e-6, solver=solver, working_set_size=32, device="cpu")
    Xt = torch.as_tensor(X)  # fitted on a tensor, the callable gets tensors in the kernel's dtype
    single = SVC(**options, kernel_dtype="float32").fit(Xt, y)
    assert set(seen) == {torch.float32}
    seen.clear()
    double = SVC(**options, kernel_dtype="float64").fit(Xt, y)
    assert set(seen) == {torch.float64}
    np.testing.assert_allclose(pair_objectives(single, X), pair_objectives(double, X), rtol=1e-5)
    np.testing.assert_allclose(single.decision_function(X), double.decision_function(X), atol=1e-3)
    assert (single.predict(X) == double.predict(X)).mean() >= 0.995
    assert single.dual_coef_.dtype == np.float64 and single.intercept_.dtype == np.float64


def test_float32_input_is_not_copied_to_float64():
    """float32 X stays float32 (the kernel's own rows when kernel_dtype is float32: one copy of X, not a
    float64 one beside it); the fit equals that of the same values in float64, support vectors float64."""
    from torchsvm.svm import problems

    rng = np.random.default_rng(0)
    X32 = rng.normal(size=(120, 6)).astype(np.float32)
    y = (X32[:, 0] + X32[:, 1] ** 2 > 0.5).astype(int)
    prepared = problems.prepare(SVC(kernel_dtype="float32"), X32)
    assert prepared.X.dtype == torch.float32 and prepared.X_kernel.data_ptr() == prepared.X.data_ptr()
    a, b = SVC().fit(X32, y), SVC().fit(X32.astype(np.float64), y)
    assert a._gamma == b._gamma  # gamma="scale": X.var() in float64 either way
    from torchsvm.svm._inputs import variance

    assert variance(torch.from_numpy(X32), rows=7) == pytest.approx(np.var(X32.astype(np.float64)), rel=1e-13)
    assert a.support_vectors_.dtype == np.float64
    np.testing.assert_array_equal(a.support_, b.support_)
    np.testing.assert_array_equal(a.support_vectors_, b.support_vectors_)
    np.testing.assert_allclose(a.dual_coef_, b.dual_coef_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.decision_function(X32), b.decision_function(X32), rtol=0, atol=1e-12)


def test_rbf_decisions_from_prepared_support_vectors():
    """predict's RBF rows come from the support vectors centred once (kept between calls, not pickled, made
    again after a refit): the same values as the kernel's own, on rows past the compiled few-row path."""
    import pickle

    from torchsvm.kernels import rbf_kernel

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(300, 30)) + 5.0, rng.integers(0, 3, 300)  # off the origin: centring matters
    est = SVC(gamma=0.02, device="cpu").fit(X, y)
    Xt = torch.as_tensor(X)
    expected = rbf_kernel(Xt, est._sv, gamma=est._gamma)  # the kernel's own rows
    got = est._decision_kernel(Xt)(Xt, est._sv)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    first = est.decision_function(X)
    again = pickle.loads(pickle.dumps(est))
    assert again._rbf_rows is None
    np.testing.assert_allclose(again.decision_function(X), first, rtol=0, atol=1e-12)
    est.fit(X[:200] * 0.5, y[:200])  # refit: the kept rows are the new support vectors'
    np.testing.assert_allclose(est.decision_function(X), SVC(gamma=0.02, device="cpu").fit(X[:200] * 0.5, y[:200])
                               .decision_function(X), rtol=0, atol=1e-12)
