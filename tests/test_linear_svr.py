"""LinearSVR: the primal Newton solver on the epsilon-insensitive loss, against the kernel SVR and LIBLINEAR."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVR as SkLinearSVR

from torchsvm import SVR, LinearSVR
from torchsvm.solvers.primal import primal_newton, primal_objective


def data(n=300, seed=0):
    return make_regression(n, 6, noise=10.0, bias=30.0, random_state=seed)


@pytest.mark.parametrize("epsilon,C", [(0.0, 0.1), (0.0, 10.0), (5.0, 1.0)])
def test_equals_the_linear_kernel_svr(device, epsilon, C):
    """Both solve the same problem (bias not penalized): the dual by SMO, the primal by Newton.
    (An odd number of samples: with epsilon = 0 and every sample at its bound, the optimal b is
    a median of the residuals, an interval for an even count.)"""
    X, y = data(301)
    ours = LinearSVR(epsilon=epsilon, C=C, tol=1e-8, penalize_intercept=False, device=device).fit(X, y)
    ref = SVR(kernel="linear", epsilon=epsilon, C=C, tol=1e-6, device=device, kernel_dtype="float64").fit(X, y)
    w_ref = ref.dual_coef_ @ ref.support_vectors_
    np.testing.assert_allclose(ours.coef_, w_ref[0], rtol=1e-5, atol=1e-5 * np.abs(w_ref).max())
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), atol=1e-3)
    assert ours.coef_.shape == (6,) and ours.intercept_.shape == (1,)
    assert ours.score(X, y) == pytest.approx(ref.score(X, y), abs=1e-6)


def test_squared_loss_matches_liblinear():
    """LIBLINEAR penalizes the bias through a constant feature; a large intercept_scaling makes that negligible."""
    X, y = data()
    ref = SkLinearSVR(loss="squared_epsilon_insensitive", epsilon=2.0, C=0.5, tol=1e-10, dual=False,
                      intercept_scaling=1e4, max_iter=100_000).fit(X, y)
    ours = LinearSVR(loss="squared_epsilon_insensitive", epsilon=2.0, C=0.5, tol=1e-9, penalize_intercept=False,
                     device="cpu").fit(X, y)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), atol=1e-3)


def test_offset_objective_and_weights():
    """primal_newton's offset is the loss max(0, o - y f); sample weights scale C."""
    X, y = data(120)
    w = np.random.default_rng(0).integers(1, 4, size=len(y)).astype(float)
    options = dict(epsilon=1.0, C=0.3, tol=1e-9, penalize_intercept=False, device="cpu")
    weighted = LinearSVR(**options).fit(X, y, sample_weight=w)
    repeated = LinearSVR(**options).fit(np.repeat(X, w.astype(int), 0), np.repeat(y, w.astype(int)))
    np.testing.assert_allclose(weighted.predict(X), repeated.predict(X), rtol=1e-5, atol=1e-4)
    Xt, t = torch.from_numpy(X), torch.from_numpy(y)
    f = Xt @ torch.from_numpy(weighted.coef_) + float(weighted.intercept_[0])
    losses = 0.3 * torch.from_numpy(w) * ((f - t).abs() - 1.0).clamp_min(0)
    direct = 0.5 * float(weighted.coef_ @ weighted.coef_) + float(losses.sum())
    X2 = torch.cat([Xt, Xt])
    ones = torch.ones(120, dtype=torch.float64)
    Y2 = torch.cat([ones, -ones]).unsqueeze(1)
    O = torch.cat([t - 1.0, -t - 1.0]).unsqueeze(1)
    C2 = torch.cat([0.3 * torch.from_numpy(w)] * 2).unsqueeze(1)
    W = torch.from_numpy(weighted.coef_).unsqueeze(1)
    b = torch.from_numpy(weighted.intercept_)
    assert float(primal_objective(X2, Y2, C2, W, b, "hinge", O)[0]) == pytest.approx(direct, rel=1e-12)
    assert float(weighted.objective_[0]) == pytest.approx(direct, rel=1e-12)
    with pytest.raises(ValueError, match="Expected offset of shape"):
        primal_newton(X2, Y2, C2, offset=O[:10])


def test_tensor_in_tensor_out_and_bad_input():
    X, y = data(60)
    model = LinearSVR(device="cpu").fit(torch.from_numpy(X), torch.from_numpy(y))
    out = model.predict(torch.from_numpy(X))
    assert isinstance(out, torch.Tensor) and out.shape == (60,)
    with pytest.raises(ValueError, match=r"The 'epsilon' parameter of LinearSVR must be a float in the range \[0.0, inf\)"):
        LinearSVR(epsilon=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="The 'loss' parameter of LinearSVR must be a str among"):
        LinearSVR(loss="hinge").fit(X, y)
    with pytest.raises(ValueError, match="Input y contains NaN"):
        LinearSVR().fit(X, np.where(np.arange(60) == 3, np.nan, y))
    with pytest.warns(ConvergenceWarning, match=r"Liblinear failed to converge.*\(LinearSVR: "):
        LinearSVR(max_iter=1, C=100.0, device="cpu").fit(X, y)


@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("C,epsilon", [(0.05, 0.0), (1.0, 5.0), (30.0, 1.0)])
def test_svr_coordinate_descent_solves_the_two_row_problem(squared, C, epsilon):
    """One variable per sample (LIBLINEAR's SVR) reaches the optimum of the hinge form on two copies of each
    sample (dual coordinate descent there): the same weights, bias and primal objective; its certified gap is
    the hinge form's gap at its answer; float32 values give the same answer."""
    from torchsvm.solvers.dcd import dual_coordinate_descent
    from torchsvm.solvers.svr_cd import svr_coordinate_descent

    X, y = data(200, seed=1)
    Xt, t = torch.from_numpy(X), torch.from_numpy(y)
    cost = torch.from_numpy(np.random.default_rng(2).uniform(0.5, 2.0, 200)) * C
    ours = svr_coordinate_descent(Xt, t, cost, epsilon, squared, tol=1e-12, max_iter=100_000, intercept_scaling=2.0)
    ones = torch.ones(200, dtype=torch.float64)
    two_rows = dual_coordinate_descent(torch.cat([Xt, Xt]), torch.cat([ones, -ones]).unsqueeze(1),
                                       torch.cat([cost, cost]).unsqueeze(1), "squared_hinge" if squared else "hinge",
                                       tol=1e-12, max_iter=100_000, intercept_scaling=2.0,
                                       offset=torch.cat([t - epsilon, -t - epsilon]).unsqueeze(1))
    assert ours.info.converged and ours.info.gap <= 1e-12
    scale = float(two_rows.w.abs().max())
    torch.testing.assert_close(ours.w, two_rows.w, rtol=0, atol=1e-6 * scale)
    torch.testing.assert_close(ours.b, two_rows.b, rtol=0, atol=1e-6 * max(scale, 1.0))
    torch.testing.assert_close(ours.info.objective, two_rows.info.objective, rtol=1e-9, atol=0)
    # The objective is the primal at the returned model, computed here from scratch.
    residual = (t - (Xt @ ours.w[:, 0] + ours.b[0])).abs() - epsilon
    loss = residual.clamp_min(0) ** (2 if squared else 1)
    direct = 0.5 * float(ours.w.square().sum()) + 0.5 * float(ours.b[0] / 2.0) ** 2 + float((cost * loss).sum())
    assert float(ours.info.objective[0]) == pytest.approx(direct, rel=1e-9)
    single = svr_coordinate_descent(Xt.float(), t, cost, epsilon, squared, tol=1e-10, max_iter=100_000,
                                    intercept_scaling=2.0)
    torch.testing.assert_close(single.w.double(), ours.w, rtol=0, atol=1e-4 * scale)


@pytest.mark.parametrize("solver", ["dcd", "auto"])
def test_linear_svr_takes_the_one_variable_descent_and_matches_liblinear(monkeypatch, solver):
    """With scikit-learn's defaults (L1 loss, penalized intercept) ``solver="dcd"`` runs the SVR coordinate descent,
    and "auto" (here C ||x||^2 > 3: the compiled Newton method) predicts as it and LIBLINEAR do at a tight
    tolerance; errors name the bad argument."""
    from torchsvm.solvers import svr_cd
    from torchsvm.solvers.svr_cd import svr_coordinate_descent

    calls = []
    monkeypatch.setattr(svr_cd, "svr_coordinate_descent", lambda *a, **kw: calls.append(1) or svr_coordinate_descent(*a, **kw))
    X, y = data(400, seed=3)
    ours = LinearSVR(C=1.0, epsilon=2.0, tol=1e-8, max_iter=100_000, device="cpu", solver=solver).fit(X, y)
    ref = SkLinearSVR(C=1.0, epsilon=2.0, tol=1e-10, max_iter=1_000_000, random_state=0).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-5, atol=1e-5 * np.abs(ref.coef_).max())
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-5, atol=1e-4)
    assert bool(calls) == (solver == "dcd") and ours.n_iter_ > 1 and ours.duality_gap_ <= 1e-8
    Xt, t = torch.from_numpy(X), torch.from_numpy(y)
    with pytest.raises(ValueError, match="Expected epsilon >= 0"):
        svr_coordinate_descent(Xt, t, torch.ones(400, dtype=torch.float64), -1.0)
    with pytest.raises(ValueError, match="Expected intercept_scaling >= 0"):
        svr_coordinate_descent(Xt, t, torch.ones(400, dtype=torch.float64), 1.0, intercept_scaling=-1.0)
