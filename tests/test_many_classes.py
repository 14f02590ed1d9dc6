"""Many classes, one-vs-one: each pair on its own rows (memory of the pairs' sizes, not pairs x N),
LIBSVM's k - 1 coefficients per support vector, and scikit-learn's fitted attributes and predictions."""

import numpy as np
import pytest
import torch
from sklearn import svm as sk
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV as SkGridSearchCV

import torchsvm as ts
from torchsvm.model_selection import GridSearchCV
from torchsvm.svm import problems as svm_problems


def _data(n=900, n_classes=30, seed=0):
    X, y = make_classification(n, 10, n_informative=8, n_redundant=0, n_classes=n_classes, n_clusters_per_class=1,
                               class_sep=2.0, random_state=seed)
    return X, y


@pytest.mark.parametrize("kernel", ["rbf", "linear"])
def test_thirty_classes_equal_scikit_learn(kernel):
    X, y = _data()
    ours = ts.SVC(kernel=kernel, C=2.0, gamma=0.1, tol=1e-8, device="cpu").fit(X, y)
    ref = sk.SVC(kernel=kernel, C=2.0, gamma=0.1, tol=1e-8, decision_function_shape="ovo").fit(X, y)
    if kernel == "rbf":  # a strictly convex dual: one solution (the linear kernel's rank-10 Gram has many)
        np.testing.assert_array_equal(ours.support_, ref.support_)
        np.testing.assert_array_equal(ours.n_support_, ref.n_support_)
        np.testing.assert_allclose(ours.dual_coef_, ref.dual_coef_, atol=1e-6)
        np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=1e-6)
    else:  # ... but one primal w per pair (b is LIBSVM's average over free SVs: as close as the duals)
        np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-5)
        np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=1e-4)
    ovo = ts.SVC(kernel=kernel, C=2.0, gamma=0.1, tol=1e-8, decision_function_shape="ovo", device="cpu").fit(X, y)
    np.testing.assert_allclose(ovo.decision_function(X), ref.decision_function(X), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))


def test_pairs_are_solved_on_their_own_rows():
    """The problems hold each pair's rows only: (pairs, largest pair) arrays, not (pairs, N)."""
    X, y = _data()
    est = ts.SVC(device="cpu")
    svm_problems.check_params(est)
    problems, _ = svm_problems.make_problems(est, torch.as_tensor(X), y)
    counts = np.bincount(y)
    widest = max(counts[i] + counts[j] for i in range(30) for j in range(i + 1, 30))
    assert problems.Y.shape == (435, widest) and widest < len(y) / 10
    # Each row lists its pair's first class's rows ascending (y = +1), then the second's (-1), then padding
    # of cost 0.
    i, j = 3, 17
    p = [(a, b) for a in range(30) for b in range(a + 1, 30)].index((i, j))
    valid = problems.C[p] > 0
    rows = np.concatenate([np.flatnonzero(y == i), np.flatnonzero(y == j)])
    assert not valid[int(valid.sum()):].any()
    np.testing.assert_array_equal(problems.row_index[p, valid].numpy(), rows)
    np.testing.assert_array_equal(problems.Y[p, valid].numpy(), np.where(y[rows] == i, 1.0, -1.0))
    expanded = problems.expanded(len(y))  # the decomposition solvers' form
    assert expanded.Y.shape == (435, len(y))
    np.testing.assert_array_equal(expanded.members[p].numpy(), rows)


def test_a_dropped_sample_and_the_decomposition_route_give_the_same_model():
    X, y = _data(n=600, n_classes=12)
    w = np.ones(len(y))
    w[[3, 50, 51]] = 0.0  # samples leave their pairs
    in_memory = ts.SVC(tol=1e-8, device="cpu").fit(X, y, sample_weight=w)
    by_rows = ts.SVC(tol=1e-8, solver="decomposition", working_set_size=16, device="cpu").fit(X, y, sample_weight=w)
    ref = sk.SVC(tol=1e-8).fit(X, y, sample_weight=w)
    for ours in (in_memory, by_rows):
        np.testing.assert_allclose(ours.dual_coef_, ref.dual_coef_, atol=1e-5)
        np.testing.assert_array_equal(ours.predict(X), ref.predict(X))


def test_grid_search_over_many_classes_equals_separate_fits():
    X, y = _data(n=600, n_classes=12)
    search = GridSearchCV(ts.SVC(device="cpu"), {"C": [0.5, 5.0], "gamma": [0.05, 0.2]}, cv=3).fit(X, y)
    sk_search = SkGridSearchCV(sk.SVC(), {"C": [0.5, 5.0], "gamma": [0.05, 0.2]}, cv=3).fit(X, y)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], sk_search.cv_results_["mean_test_score"], atol=0.01)


@pytest.mark.parametrize("kernel", ["rbf", "poly"])
def test_large_pair_blocks_are_assembled_from_class_blocks(kernel):
    """Pairs large enough (by_segments) get their Gram blocks from the two classes' own blocks
    (cached across pairs) and the cross block: equal to the whole block, padding included, and the fit
    equal to scikit-learn's."""
    from torchsvm.svm._blocks import BlockCache, by_segments, gram_blocks

    rng = np.random.default_rng(0)
    sizes = [300, 450, 520]  # unequal: the smaller pairs are padded to the largest
    X = np.concatenate([rng.normal(0.3 * c, 1.0, size=(m, 30)) for c, m in enumerate(sizes)])
    y = np.repeat(np.arange(3), sizes)
    perm = rng.permutation(len(y))  # classes interleaved in row order
    X, y = X[perm], y[perm]
    est = ts.SVC(kernel=kernel, C=1.0, gamma=0.2, degree=2, coef0=1.0, device="cpu")
    svm_problems.check_params(est)
    Xt = torch.as_tensor(X)
    problems, _ = svm_problems.make_problems(est, Xt, y)
    kernel_fn = svm_problems.resolve_kernel(est, Xt)
    valid = problems.C > 0
    signed = torch.where(valid, (problems.row_index + 1) * problems.Y.sign().long(), 0)
    assert by_segments(signed.shape[1], X.shape[1])
    cache = BlockCache(2**30)
    blocks = gram_blocks(Xt, None, kernel_fn, signed, cache, torch.empty(3, signed.shape[1], signed.shape[1],
                                                                       dtype=Xt.dtype))
    assert len(cache.blocks) == 3  # each class's own block computed once, used by its two pairs
    for u in range(3):
        rows = problems.row_index[u]
        torch.testing.assert_close(blocks[u], kernel_fn(Xt[rows], Xt[rows]), rtol=1e-12, atol=1e-12)
    ours = ts.SVC(kernel=kernel, C=1.0, gamma=0.2, degree=2, coef0=1.0, tol=1e-8, device="cpu").fit(X, y)
    ref = sk.SVC(kernel=kernel, C=1.0, gamma=0.2, degree=2, coef0=1.0, tol=1e-8).fit(X, y)
    np.testing.assert_array_equal(ours.support_, ref.support_)
    np.testing.assert_allclose(ours.dual_coef_, ref.dual_coef_, atol=1e-4)  # overlapping classes: LIBSVM's stop
    np.testing.assert_allclose(ours.decision_function(X), ref.decision_function(X), atol=1e-4)


@pytest.mark.parametrize("k", [2, 3, 7, 40])
def test_pair_tensor_is_the_pair_list(k):
    from torchsvm.svm._inputs import ovo_pair_tensor, ovo_pairs

    assert ovo_pair_tensor(k).tolist() == [list(p) for p in ovo_pairs(k)]


@pytest.mark.parametrize("n,n_classes", [(900, 30), (1500, 3)], ids=["thirty-classes", "large-pairs"])
def test_nu_svc_many_classes_and_large_pairs_equal_scikit_learn(n, n_classes):
    X, y = _data(n=n, n_classes=n_classes)
    ours = ts.NuSVC(nu=0.1, gamma=0.1, tol=1e-8, device="cpu").fit(X, y)
    ref = sk.NuSVC(nu=0.1, gamma=0.1, tol=1e-8).fit(X, y)
    np.testing.assert_array_equal(ours.support_, ref.support_)
    np.testing.assert_allclose(ours.decision_function(X), ref.decision_function(X), atol=1e-4)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
