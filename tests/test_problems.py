"""The problem API (torchsvm.svm.problems): its steps are a fit (tests/test_layers.py checks that the code
outside the estimators takes fits apart through it only), and a fitted model is plain data both ways."""

import numpy as np
import pytest
import scipy.sparse

from torchsvm import SVC, SVR, NuSVC, NuSVR, OneClassSVM
from torchsvm._sparse import dense_array  # dual_coef_ of a sparse fit is CSR
from torchsvm.svm import problems


@pytest.mark.parametrize("make", [lambda: SVC(C=2.0, gamma=0.5), lambda: NuSVC(nu=0.3), lambda: SVR(C=3.0)],
                         ids=["svc", "nu_svc", "svr"])
def test_the_steps_are_a_fit(make):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int) if not isinstance(make(), SVR) else X @ [1.0, -2.0, 0.5, 0.0]
    est = make()
    prepared = problems.prepare(est, X)
    dual, context = problems.make_problems(est, prepared.X, y)
    result = problems.solve(est, prepared, dual)
    problems.set_solution(est, prepared, result, dual, context)
    ref = make().fit(X, y)
    np.testing.assert_array_equal(est.support_, ref.support_)
    np.testing.assert_allclose(est.dual_coef_, ref.dual_coef_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(est.intercept_, ref.intercept_, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(est.predict(X), ref.predict(X))


def test_stacked_problems_solve_as_each_alone():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 3))
    y = rng.integers(0, 3, size=80)
    models = [SVC(C=c, gamma=0.7) for c in (0.5, 5.0)]
    prepared = [problems.prepare(m, X) for m in models]
    parts = [problems.make_problems(m, prepared[0].X, y) for m in models]
    both = problems.solve(models[0], prepared[0], problems.stack([p for p, _ in parts]))
    for k, m in enumerate(models):
        alone = problems.solve(m, prepared[0], parts[k][0])
        rows = slice(3 * k, 3 * k + 3)  # three one-vs-one pairs each
        np.testing.assert_allclose(both.alpha[rows, : alone.alpha.shape[1]].numpy(), alone.alpha.numpy(), atol=1e-10)


@pytest.mark.parametrize("make, n_classes, sparse", [
    (lambda: SVC(C=2.0, gamma=0.5), 3, False), (lambda: SVC(kernel="poly", degree=2, coef0=1.0), 2, False),
    (lambda: SVC(multi_class="ovr", kernel="sigmoid", gamma=0.01), 3, False),
    (lambda: NuSVC(nu=0.3, gamma="scale"), 4, True), (lambda: SVR(C=3.0), 0, False), (lambda: NuSVR(), 0, True),
    (lambda: OneClassSVM(nu=0.2), 0, False), (lambda: SVC(kernel="precomputed"), 3, False),
], ids=["svc-3", "svc-poly-2", "svc-ovr-3", "nu_svc-4-sparse", "svr", "nu_svr-sparse", "one_class", "precomputed-3"])
def test_solution_round_trip(make, n_classes, sparse):
    """``from_solution(est.to_solution())`` is the fitted model again: the same attributes and decisions."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(70, 5)) * (rng.random((70, 5)) < (0.5 if sparse else 1.0))
    y = rng.integers(0, n_classes, size=70) if n_classes else X @ [1.0, -1.0, 0.5, 0.0, 2.0]
    est = make()
    Xf = X @ X.T if est.kernel == "precomputed" else (scipy.sparse.csr_matrix(X) if sparse else X)
    est.fit(Xf, y)
    solution = est.to_solution()
    assert isinstance(solution, problems.Solution)
    again = type(est).from_solution(solution, **est.get_params())
    for name in ("support_", "dual_coef_", "intercept_", "n_support_", "n_features_in_", "shape_fit_"):
        np.testing.assert_allclose(dense_array(getattr(again, name)), dense_array(getattr(est, name)), rtol=0, atol=0,
                                   err_msg=name)
    if n_classes:
        np.testing.assert_array_equal(again.classes_, est.classes_)
    if hasattr(est, "decision_function"):
        np.testing.assert_allclose(again.decision_function(Xf), est.decision_function(Xf), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(again.predict(Xf), est.predict(Xf))
