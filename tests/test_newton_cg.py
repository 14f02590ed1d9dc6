"""The squared hinge's Newton method with conjugate gradients (torchsvm.solvers.newton_cg) and its place in
LinearSVC / LinearSVR's "auto"."""

import numpy as np
import pytest
import scipy.sparse
import torch
from sklearn.exceptions import ConvergenceWarning

from torchsvm import LinearSVC, LinearSVR
from torchsvm._sparse import as_sparse_rows
from torchsvm.solvers.dcd import dual_coordinate_descent
from torchsvm.solvers.newton_cg import newton_cg_squared_hinge
from torchsvm.solvers.reference import cvxpy_primal

CPU = torch.device("cpu")


def sparse_problem(n=400, d=60, density=0.2, seed=0):
    """Sparse rows, more rows than features, labels from a noisy linear rule."""
    rng = np.random.default_rng(seed)
    X = scipy.sparse.random(n, d, density=density, format="csr", random_state=seed)
    y = np.where(X @ rng.standard_normal(d) + 0.3 * rng.standard_normal(n) > 0, 1.0, -1.0)
    return X, y


def objective(X, y, C, w, b, B, o=None):
    """1/2 ||w||^2 + 1/2 (b / B)^2 + sum C max(0, o - y (X w + b))^2, computed here from (w, b)."""
    o = 1.0 if o is None else o
    r = np.maximum(0.0, o - y * (X @ w + b))
    return 0.5 * w @ w + (0.5 * (b / B) ** 2 if B else 0.0) + float(np.sum(C * r * r))


@pytest.mark.parametrize("B", [1.0, 0.0])
def test_newton_cg_reaches_the_optimum_its_gap_certifies(B):
    """Against cvxpy (the bias a feature of value B; B = 0: none) and a tight coordinate descent: the objective
    computed from the returned (w, b) is within the certified relative gap of the optimum, per-sample costs
    included."""
    X, y = sparse_problem()
    C = np.random.default_rng(1).uniform(0.5, 4.0, len(y))
    A = as_sparse_rows(X, "X", CPU, torch.float64)
    Y, Ct = torch.from_numpy(y)[:, None], torch.from_numpy(C)[:, None]
    result = newton_cg_squared_hinge(A, Y, Ct, tol=1e-6, intercept_scaling=B)
    w, b = result.w[:, 0].numpy(), float(result.b[0])
    assert result.info.converged and result.info.gap <= 1e-6
    Xb = np.hstack([X.toarray(), np.full((len(y), 1), B)])
    w_ref, _, reference = cvxpy_primal(Xb, y, C, "squared_hinge", bias_penalty=np.inf)
    mine = objective(X, y, C, w, b, B)
    assert abs(mine - float(result.info.objective[0])) <= 1e-9 * mine
    assert reference * (1 - 1e-6) <= mine <= reference * (1 + 1e-6) + 1e-9
    tight = dual_coordinate_descent(A, Y, Ct, "squared_hinge", tol=1e-10, max_iter=100000, intercept_scaling=B)
    np.testing.assert_allclose(w, tight.w[:, 0].numpy(), atol=1e-3)
    assert mine - float(tight.info.objective[0]) <= 1e-6 * mine


def test_newton_cg_with_offsets_and_several_problems_on_sparse_and_dense_x():
    """Margins o (LinearSVR's two rows per sample) and K problems; a dense X gives the same arithmetic (its
    nonzeros as compressed rows) as the sparse one."""
    X, y = sparse_problem(300, 40)
    rng = np.random.default_rng(2)
    Y = torch.from_numpy(np.stack([y, -y, np.where(rng.random(len(y)) < 0.5, 1.0, -1.0)], 1))
    O = torch.from_numpy(rng.uniform(0.2, 1.5, Y.shape))
    C = torch.full(Y.shape, 2.0, dtype=torch.float64)
    sparse = newton_cg_squared_hinge(as_sparse_rows(X, "X", CPU, torch.float64), Y, C, tol=1e-8, offset=O)
    dense = newton_cg_squared_hinge(torch.from_numpy(X.toarray()), Y, C, tol=1e-8, offset=O)
    torch.testing.assert_close(sparse.w, dense.w, rtol=0, atol=1e-12)
    reference = dual_coordinate_descent(torch.from_numpy(X.toarray()), Y, C, "squared_hinge", tol=1e-10,
                                        max_iter=100000, offset=O)
    torch.testing.assert_close(sparse.info.objective, reference.info.objective, rtol=1e-7, atol=0)
    for k in range(3):
        mine = objective(X, Y[:, k].numpy(), 2.0, sparse.w[:, k].numpy(), float(sparse.b[k]), 1.0, O[:, k].numpy())
        assert abs(mine - float(sparse.info.objective[k])) <= 1e-9 * mine


def test_estimators_take_newton_cg_and_match_coordinate_descent():
    """solver="newton-cg" in LinearSVC and LinearSVR (squared epsilon-insensitive: the same solver on two rows per
    sample) ends within tol of coordinate descent's objective with the same predictions; a hinge loss is refused
    with the reason; max_iter too small warns."""
    X, y = sparse_problem(500, 50)
    for C in (0.1, 10.0):
        cg = LinearSVC(C=C, solver="newton-cg", tol=1e-6).fit(X, y)
        cd = LinearSVC(C=C, solver="dcd", tol=1e-8, max_iter=100000).fit(X, y)
        np.testing.assert_allclose(cg.objective_, cd.objective_, rtol=1e-6)
        assert np.mean(cg.predict(X) == cd.predict(X)) >= 0.99
    t = np.asarray(X @ np.arange(50.0) / 50)
    svr_cg = LinearSVR(loss="squared_epsilon_insensitive", epsilon=0.1, solver="newton-cg", tol=1e-6).fit(X, t)
    svr_cd = LinearSVR(loss="squared_epsilon_insensitive", epsilon=0.1, solver="dcd", tol=1e-8, max_iter=100000).fit(X, t)
    np.testing.assert_allclose(svr_cg.objective_, svr_cd.objective_, rtol=1e-6)
    with pytest.raises(ValueError, match="solver='newton-cg' solves the squared hinge"):
        LinearSVC(loss="hinge", solver="newton-cg").fit(X, y)
    with pytest.raises(ValueError, match="solver='newton-cg' solves the squared hinge"):
        LinearSVC(solver="newton-cg", penalize_intercept=False).fit(X, y)
    with pytest.warns(ConvergenceWarning, match="relative duality gap"):
        LinearSVC(C=10.0, solver="newton-cg", max_iter=1).fit(X, y)
