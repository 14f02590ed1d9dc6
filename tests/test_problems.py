"""The problem API (torchsvm.svm.problems): its steps are a fit, and the code outside the estimators
takes fits apart through it only."""

import re
from pathlib import Path

import numpy as np
import pytest

from torchsvm import SVC, SVR, NuSVC
from torchsvm.svm import problems

ROOT = Path(__file__).resolve().parents[1]


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


_PRIVATE_STEPS = re.compile(r"\.(_prepare|_fit_problems|_solve|_set_solution|_finish|_kernel_dtype|_check_params|"
                            r"_combine|_predict_from_decision|_problem_params)\b")


def test_code_outside_the_estimators_uses_the_api():
    """GridSearchCV, the Lightning modules, scripts and benchmarks take fits apart through the API only."""
    files = [*ROOT.glob("torchsvm/*.py"), *ROOT.glob("lightning_modules/*.py"), *ROOT.glob("scripts/*.py"),
             *ROOT.glob("benchmarks/*.py")]
    offenders = [f"{p.relative_to(ROOT)}:{n}" for p in files for n, line in enumerate(p.read_text().splitlines(), 1)
                 if _PRIVATE_STEPS.search(line)]
    assert files and not offenders, offenders
