"""Sparse X (scipy.sparse, torch sparse tensors) in every estimator and solver: the same fit as the
dense copy of the same data, scikit-learn's on the same sparse data, never the dense N x D matrix."""

import warnings

import numpy as np
import pytest
import scipy.sparse
import torch
from sklearn import svm as sk
from sklearn.datasets import make_classification

import torchsvm as ts
from torchsvm import _sparse
from torchsvm._sparse import SparseRows, as_sparse_rows
from torchsvm.kernels import kernel_function
from torchsvm.model_selection import GridSearchCV
from torchsvm.solvers import primal_newton
from torchsvm.solvers.dcd import compressed

CPU = torch.device("cpu")


def _sparse_data(n=240, d=40, n_classes=3, seed=0):
    X, y = make_classification(n, d, n_informative=10, n_redundant=0, n_classes=n_classes, random_state=seed)
    X[np.abs(X) < 1.0] = 0.0  # about two thirds zeros
    X[5] = 0.0  # an empty row
    return X, scipy.sparse.csr_matrix(X), y


def _rows(A):
    return as_sparse_rows(A, "X", CPU)


# -- SparseRows against its dense matrix ----------------------------------------------------------
def test_rows_products_and_statistics_equal_the_dense_ones():
    X, A, _ = _sparse_data()
    S, T = _rows(A), torch.from_numpy(X)
    rng = np.random.default_rng(0)
    index = torch.as_tensor(rng.choice(len(X), 50))  # repeats included
    torch.testing.assert_close(S[index].to_dense(), T[index])
    torch.testing.assert_close(S[10:30].to_dense(), T[10:30])
    torch.testing.assert_close(S[T[:, 0] > 0].to_dense(), T[T[:, 0] > 0])
    W, R = torch.randn(40, 3, dtype=torch.float64), torch.randn(240, 3, dtype=torch.float64)
    torch.testing.assert_close(_sparse.mm(S, W), T @ W)
    torch.testing.assert_close(_sparse.xt_mm(S, R), T.T @ R)
    torch.testing.assert_close(_sparse.row_norms_sq(S), (T * T).sum(1))
    torch.testing.assert_close(S.var(), T.var(correction=0))
    Z = S[index]
    for a, z in [(S, Z), (S, T[index]), (T, Z)]:  # sparse-sparse, sparse-dense, dense-sparse
        torch.testing.assert_close(_sparse.inner(a, z), T @ T[index].T)
    torch.testing.assert_close(_sparse.vstack([S, S[:7]]).to_dense(), torch.cat([T, T[:7]]))


def test_inputs_are_canonicalized_and_left_as_they_were():
    """scipy's COO with repeated entries (summed), unsorted CSR indices, torch COO / CSR / CSC: all equal
    the dense matrix; the caller's matrix is not changed by the canonicalization."""
    dense = np.array([[0.0, 3.0, 0.0], [1.0, 0.0, 2.0], [0.0, 0.0, 0.0]])
    coo = scipy.sparse.coo_matrix(([1.0, 2.0, 1.0, 2.0], ([0, 0, 1, 1], [1, 1, 0, 2])), shape=(3, 3))
    unsorted = scipy.sparse.csr_matrix((np.array([2.0, 1.0, 3.0]), np.array([2, 0, 1]), np.array([0, 0, 2, 3])),
                                       shape=(3, 3))
    before = unsorted.indices.copy()
    np.testing.assert_array_equal(_rows(coo).to_dense().numpy(), dense)
    np.testing.assert_array_equal(_rows(unsorted).to_dense().numpy(), dense[[2, 1, 0]])
    np.testing.assert_array_equal(unsorted.indices, before)
    T = torch.from_numpy(dense)
    for t in (T.to_sparse(), T.to_sparse_csr(), T.to_sparse_csc()):
        S = _rows(t)
        assert isinstance(S, SparseRows) and S.nnz == 3
        np.testing.assert_array_equal(S.to_dense().numpy(), dense)
    # A torch CSR with unsorted, repeated columns in a row: summed and sorted.
    raw = torch.sparse_csr_tensor(torch.tensor([0, 3, 3]), torch.tensor([2, 0, 2]), torch.tensor([1.0, 4.0, 2.0]), (2, 3),
                                  check_invariants=False)
    S = _rows(raw)
    np.testing.assert_array_equal(S.col.numpy(), [0, 2])
    np.testing.assert_array_equal(S.to_dense().numpy(), [[4.0, 0.0, 3.0], [0.0, 0.0, 0.0]])


def test_compressed_rows_and_columns_of_sparse_x_equal_the_dense_ones():
    X, A, _ = _sparse_data()
    for columns in (False, True):
        for got, want in zip(compressed(_rows(A), columns), compressed(torch.from_numpy(X), columns), strict=True):
            np.testing.assert_array_equal(got, want)


# -- bad input --------------------------------------------------------------------------------
def test_bad_sparse_input_gets_clear_errors():
    _, A, y = _sparse_data()
    bad = A.copy()
    bad.data[3] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        ts.SVC(device="cpu").fit(bad, y)
    bad_t = torch.from_numpy(A.toarray()).to_sparse_csr()
    bad_t.values()[0] = float("inf")
    with pytest.raises(ValueError, match="Expected X to be finite, got 1 NaN or infinite stored entries"):
        ts.LinearSVC(device="cpu").fit(bad_t, y)
    with pytest.raises(TypeError, match="Sparse precomputed kernels are not supported"):
        ts.SVC(kernel="precomputed", device="cpu").fit(scipy.sparse.csr_matrix(np.eye(240)), y)
    model = ts.SVC(device="cpu").fit(A, y)
    with pytest.raises(ValueError, match="X has 39 features, but SVC is expecting 40 features as input"):
        model.predict(A[:, :39])
    with pytest.raises(ValueError, match="0 sample"):
        ts.LinearSVC(device="cpu").fit(A[:0], y[:0])


# -- estimators: the dense fit of the same data, and scikit-learn's on the sparse data ------------
KERNEL_CASES = [
    (ts.SVC, sk.SVC, dict(kernel="rbf", gamma=0.05, C=3.0)),
    (ts.SVC, sk.SVC, dict(kernel="linear", C=0.1)),
    (ts.SVC, sk.SVC, dict(kernel="poly", degree=2, gamma=0.05, coef0=1.0)),
    (ts.SVC, sk.SVC, dict(kernel="sigmoid", gamma=0.01, coef0=0.0)),
    (ts.NuSVC, sk.NuSVC, dict(nu=0.3)),
]


@pytest.mark.filterwarnings("ignore:The kernel 'sigmoid' is not positive semidefinite")
@pytest.mark.parametrize("ours, theirs, params", KERNEL_CASES, ids=lambda v: getattr(v, "__name__", str(v)))
def test_kernel_classifiers_on_sparse_x(ours, theirs, params):
    X, A, y = _sparse_data()
    options = dict(tol=1e-8, kernel_dtype="float64", device="cpu")
    fit_sparse, fit_dense = ours(**params, **options).fit(A, y), ours(**params, **options).fit(X, y)
    np.testing.assert_allclose(fit_sparse.decision_function(A), fit_dense.decision_function(X), atol=1e-6)
    np.testing.assert_array_equal(fit_sparse.support_, fit_dense.support_)
    assert scipy.sparse.issparse(fit_sparse.support_vectors_)  # scikit-learn's convention
    np.testing.assert_array_equal(fit_sparse.support_vectors_.toarray(), fit_dense.support_vectors_)
    ref = theirs(**params, tol=1e-8).fit(A, y)
    assert (fit_sparse.predict(A) == ref.predict(A)).mean() >= 0.995
    np.testing.assert_array_equal(fit_sparse.predict(X), fit_sparse.predict(A))  # dense rows predict too


def test_linear_kernel_coef_is_sparse_as_scikit_learns():
    X, A, y = _sparse_data()
    ours = ts.SVC(kernel="linear", tol=1e-8, kernel_dtype="float64", device="cpu").fit(A, y)
    ref = sk.SVC(kernel="linear", tol=1e-8).fit(A, y)
    assert scipy.sparse.issparse(ours.coef_) and scipy.sparse.issparse(ref.coef_)
    np.testing.assert_allclose(ours.coef_.toarray(), ref.coef_.toarray(), atol=1e-5)


@pytest.mark.parametrize("ours, theirs, params", [(ts.SVR, sk.SVR, dict(C=3.0, epsilon=0.1, gamma=0.05)),
                                                  (ts.NuSVR, sk.NuSVR, dict(C=3.0, gamma=0.05)),
                                                  (ts.OneClassSVM, sk.OneClassSVM, dict(nu=0.2, gamma=0.05))],
                         ids=lambda v: getattr(v, "__name__", str(v)))
def test_regression_and_one_class_on_sparse_x(ours, theirs, params):
    X, A, _ = _sparse_data()
    t = X[:, 0] * 2.0 + X[:, 1]
    options = dict(tol=1e-8, kernel_dtype="float64", device="cpu")
    fit_sparse, fit_dense, ref = (est(**params, **opts).fit(Z, t) for est, opts, Z in
                                  [(ours, options, A), (ours, options, X), (theirs, dict(tol=1e-8), A)])

    def values(model, Z):  # regressors predict values, the one-class model its decision function
        return np.ravel(model.decision_function(Z) if hasattr(model, "decision_function") else model.predict(Z))

    np.testing.assert_allclose(values(fit_sparse, A), values(fit_dense, X), atol=1e-6)
    np.testing.assert_allclose(values(fit_sparse, A), values(ref, A), atol=1e-4)


@pytest.mark.parametrize("solver", ["auto", "decomposition"])
def test_svc_on_torch_sparse_and_every_scipy_format(solver):
    X, A, y = _sparse_data()
    dense = ts.SVC(solver=solver, working_set_size=32, device="cpu").fit(X, y).decision_function(X)
    for given in (A.tocsc(), A.tocoo(), torch.from_numpy(X).to_sparse_csr(), torch.from_numpy(X).to_sparse()):
        got = ts.SVC(solver=solver, working_set_size=32, device="cpu").fit(given, y).decision_function(given)
        np.testing.assert_allclose(got, dense, atol=1e-6)


def test_probability_and_grid_search_on_sparse_x():
    X, A, y = _sparse_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # probability is deprecated in scikit-learn 1.9
        p_sparse = ts.SVC(probability=True, random_state=0, device="cpu").fit(A, y).predict_proba(A)
        p_dense = ts.SVC(probability=True, random_state=0, device="cpu").fit(X, y).predict_proba(X)
    np.testing.assert_allclose(p_sparse, p_dense, atol=1e-6)
    grid = {"C": [0.1, 1.0, 10.0], "gamma": [0.01, 0.05]}
    on_sparse = GridSearchCV(ts.SVC(device="cpu"), grid, cv=3).fit(A, y)
    on_dense = GridSearchCV(ts.SVC(device="cpu"), grid, cv=3).fit(X, y)
    np.testing.assert_allclose(on_sparse.cv_results_["mean_test_score"], on_dense.cv_results_["mean_test_score"])


LINEAR_CASES = [dict(), dict(C=10.0), dict(loss="hinge"), dict(penalty="l1", dual=False),
                dict(multi_class="crammer_singer"), dict(solver="newton"),
                dict(solver="newton", loss="hinge", penalize_intercept=False), dict(fit_intercept=False)]


@pytest.mark.parametrize("params", LINEAR_CASES, ids=str)
def test_linear_svc_on_sparse_x_is_the_dense_fit(params):
    X, A, y = _sparse_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Crammer-Singer's sweep cap; the same on both
        fit_sparse = ts.LinearSVC(random_state=0, device="cpu", **params).fit(A, y)
        fit_dense = ts.LinearSVC(random_state=0, device="cpu", **params).fit(X, y)
    np.testing.assert_allclose(fit_sparse.objective_, fit_dense.objective_, rtol=1e-9)
    np.testing.assert_allclose(fit_sparse.decision_function(A), fit_dense.decision_function(X), atol=1e-8)


def test_linear_svc_on_sparse_x_agrees_with_liblinear():
    X, A, y = _sparse_data()
    ours = ts.LinearSVC(tol=1e-8, solver="newton", device="cpu").fit(A, y)
    ref = sk.LinearSVC(tol=1e-8, max_iter=100000).fit(A, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-3 * np.abs(ref.coef_).max())
    assert (ours.predict(A) == ref.predict(A)).mean() >= 0.995


def test_linear_svr_on_sparse_x_is_the_dense_fit():
    X, A, _ = _sparse_data()
    t = X[:, 0] * 2.0 + X[:, 1]
    # The same route both ways ("auto" may take the compiled Newton method on the dense copy only).
    for params in (dict(solver="dcd"), dict(loss="squared_epsilon_insensitive", dual=False), dict(solver="newton")):
        fit_sparse, fit_dense = (ts.LinearSVR(random_state=0, device="cpu", **params).fit(Z, t) for Z in (A, X))
        np.testing.assert_allclose(fit_sparse.objective_, fit_dense.objective_, rtol=1e-9)
        np.testing.assert_allclose(fit_sparse.predict(A), fit_dense.predict(X), atol=1e-8)


@pytest.mark.parametrize("loss", ["hinge", "squared_hinge"])
def test_newton_on_many_sparse_features_by_conjugate_gradients(loss):
    """D above the direct route's 4,096 features: Hessian-vector products on the sparse rows, certified
    as on the dense copy (the same problem, the same optimum)."""
    rng = np.random.default_rng(1)
    A = scipy.sparse.random(300, 5000, density=0.004, random_state=1, format="csr")
    w = rng.standard_normal(5000)
    Y = torch.from_numpy(np.where(A @ w > 0, 1.0, -1.0)).unsqueeze(1)
    C = torch.full_like(Y, 1.0)
    sparse = primal_newton(_rows(A), Y, C, loss=loss, tol=1e-6)
    dense = primal_newton(torch.from_numpy(A.toarray()), Y, C, loss=loss, tol=1e-6)
    assert sparse.info.converged and dense.info.converged
    torch.testing.assert_close(sparse.info.objective, dense.info.objective, rtol=1e-5, atol=0)


def test_kernel_functions_on_sparse_rows_equal_the_dense_ones():
    X, A, _ = _sparse_data()
    S, T = _rows(A), torch.from_numpy(X)
    for name in ("linear", "poly", "rbf", "sigmoid"):
        k = kernel_function(name, 0.05, 3, 0.5)
        torch.testing.assert_close(k(S, S[:30]), k(T, T[:30]))
