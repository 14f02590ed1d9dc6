import numpy as np
import pytest
import torch

from torchsvm.solvers._hinge_stopping import _solve_partition
from torchsvm.solvers._line_search import _bracketed_hinge_derivative
from torchsvm.solvers._newton import _CurvatureGram, _newton_direction_direct, _newton_direction_woodbury
from torchsvm.solvers.primal import loss_terms, primal_gd, primal_newton
from torchsvm.solvers.reference import cvxpy_primal


def numpy_gd(X, y, C, lr, epochs):
    """Batch subgradient descent, written independently in NumPy."""
    w = np.zeros(X.shape[1])
    b = 0.0
    for _ in range(epochs):
        active = y * (X @ w + b) < 1
        grad_w = w - (C * active * y) @ X
        grad_b = -np.sum(C * active * y)
        w, b = w - lr * grad_w, b - lr * grad_b
    return w, b


def blobs(N=120, D=3, shift=1.0, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    y = np.where(np.arange(N) % 3 == 0, 1.0, -1.0)
    X = rng.normal(size=(N, D)) + shift * y[:, None] * np.linspace(1, 0.2, D)
    return X.astype(dtype), y.astype(dtype)


def test_primal_gd_matches_numpy():
    X, y = blobs()
    C = np.where(y > 0, 5.0, 2.0)
    w, b, objectives = primal_gd(torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(C), lr=1e-3, epochs=100)
    w_ref, b_ref = numpy_gd(X, y, C, 1e-3, 100)
    assert w.dtype == torch.float64 and w.shape == (3,) and b.ndim == 0
    np.testing.assert_allclose(w.numpy(), w_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b.item(), b_ref, rtol=1e-12, atol=1e-12)
    assert len(objectives) == 101 and objectives[-1] < objectives[0]


def test_primal_gd_defaults_and_zero_epochs():
    X, y = blobs()
    w, b, _ = primal_gd(torch.from_numpy(X), torch.from_numpy(y))  # C=5, lr=1e-3, epochs=100
    w_ref, b_ref = numpy_gd(X, y, 5.0, 1e-3, 100)
    np.testing.assert_allclose(w.numpy(), w_ref, rtol=1e-12)
    w0, b0, _ = primal_gd(torch.from_numpy(X), torch.from_numpy(y), epochs=0)
    assert w0.abs().sum() == 0 and b0 == 0


@pytest.mark.parametrize("loss", ["hinge", "squared_hinge", "logistic"])
@pytest.mark.parametrize("weighted", [False, True])
def test_newton_reaches_cvxpy_optimum(device, loss, weighted):
    X, y = blobs(N=150, D=6, shift=0.8, seed=3)
    C = np.where(y > 0, 3.0, 0.5) if weighted else np.full_like(y, 1.0)
    _, _, obj_ref = cvxpy_primal(X, y, C, loss)
    def T(a):
        return torch.from_numpy(a).to(device)

    result = primal_newton(T(X), T(y)[:, None], T(C)[:, None], loss=loss, tol=1e-5, max_iter=300)
    assert result.info.converged
    obj = float(result.info.objective[0])
    assert abs(obj - obj_ref) / obj_ref <= 1e-3
    if loss == "hinge":  # the certificate bounds the true error
        assert (obj - obj_ref) / obj_ref <= result.info.gap + 1e-7


def test_newton_float32_certificate_holds(device):
    # The benchmarks fit float32 pixels: the float32 path (float32 products while h is wide) must
    # still end within tol of the float64 optimum.
    X, y = blobs(N=400, D=20, shift=0.5, seed=13)
    _, _, obj_ref = cvxpy_primal(X, y, 1.0)
    def T(a):
        return torch.from_numpy(a).to(device, torch.float32)

    result = primal_newton(T(X), T(y)[:, None], torch.ones(400, 1, device=device), tol=1e-3)
    assert result.info.converged and result.w.dtype == torch.float32
    assert abs(float(result.info.objective[0]) - obj_ref) / obj_ref <= 1.5e-3


def test_solve_partition_recovers_the_optimum_from_its_partition():
    # Given the optimal partition (alpha = C where y f < 1, free where y f = 1), the linear KKT
    # system gives back cvxpy's solution.
    X, y = blobs(N=120, D=5, shift=0.7, seed=17)
    C = np.where(y > 0, 2.0, 0.7)
    w_ref, b_ref, _ = cvxpy_primal(X, y, C)
    z = 1 - y * (X @ w_ref + b_ref)
    at_c, free = torch.from_numpy(z > 1e-5)[:, None], torch.from_numpy(np.abs(z) <= 1e-5)[:, None]
    assert 0 < int(free.sum()) <= 6
    def T(a):
        return torch.from_numpy(a)[:, None]

    W, b, alpha = _solve_partition(torch.from_numpy(X), T(y), T(C), at_c, free, max_free=6)
    np.testing.assert_allclose(W[:, 0].numpy(), w_ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(float(b[0]), b_ref, rtol=1e-4, atol=1e-5)
    assert bool(((alpha >= -1e-6) & (alpha <= T(C) + 1e-6)).all())  # a dual-feasible point


def test_bracketed_line_search_derivative_matches_the_full_one():
    g = torch.Generator().manual_seed(0)
    N, K, h = 500, 3, 0.05
    m0, dm = 1 + 0.5 * torch.randn(N, K, generator=g, dtype=torch.float64), torch.randn(N, K, generator=g, dtype=torch.float64)
    C = torch.rand(N, K, generator=g, dtype=torch.float64) + 0.5
    wp, pp = torch.randn(K, generator=g, dtype=torch.float64), torch.rand(K, generator=g, dtype=torch.float64)
    lo, hi = torch.tensor([0.0, 0.1, 0.3], dtype=torch.float64), torch.tensor([0.2, 0.15, 0.9], dtype=torch.float64)
    dphi = _bracketed_hinge_derivative(wp, pp, m0, dm, C, lo, hi, h)
    for s in (0.0, 0.37, 1.0):
        t = lo + s * (hi - lo)
        full = wp + t * pp + (C * loss_terms(m0 + t * dm, "hinge", h)[1] * dm).sum(0)
        torch.testing.assert_close(dphi(t), full, rtol=1e-12, atol=1e-12)


def test_newton_batched_equals_looped():
    X, y = blobs(N=90, D=4, seed=5)
    Xt = torch.from_numpy(X)
    Y = torch.stack([torch.from_numpy(y), -torch.from_numpy(y), torch.from_numpy(np.sign(X[:, 0]) + (X[:, 0] == 0))], 1)
    C = torch.ones_like(Y)
    batched = primal_newton(Xt, Y, C, tol=1e-6, max_iter=400)
    for k in range(3):
        single = primal_newton(Xt, Y[:, k : k + 1], C[:, k : k + 1], tol=1e-6, max_iter=400)
        torch.testing.assert_close(batched.info.objective[k], single.info.objective[0], rtol=2e-6, atol=0)


def test_newton_conjugate_gradient_path_matches_direct():
    X, y = blobs(N=100, D=5, seed=7)
    args = (torch.from_numpy(X), torch.from_numpy(y)[:, None], torch.ones(100, 1, dtype=torch.float64))
    direct = primal_newton(*args, loss="squared_hinge", tol=1e-8)
    cg = primal_newton(*args, loss="squared_hinge", tol=1e-8, direct_max_features=0)
    torch.testing.assert_close(direct.w, cg.w, rtol=1e-5, atol=1e-6)


def test_asymmetric_costs_move_the_boundary():
    # Raising the cost of errors on the +1 class (C1 > C0) pushes the boundary towards -1:
    # fewer +1 samples misclassified, more -1 samples.
    X, y = blobs(N=300, D=2, shift=0.6, seed=11)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)[:, None]
    def errors(C0, C1):
        C = torch.from_numpy(np.where(y > 0, C1, C0))[:, None]
        r = primal_newton(Xt, yt, C, tol=1e-5)
        pred = torch.sign(Xt @ r.w[:, 0] + r.b[0]).numpy()
        return np.sum((pred < 0) & (y > 0)), np.sum((pred > 0) & (y < 0))
    fn_sym, fp_sym = errors(1.0, 1.0)
    fn_asym, fp_asym = errors(1.0, 10.0)
    assert fn_asym < fn_sym and fp_asym > fp_sym


def test_primal_gd_errors():
    X, y = blobs()
    with pytest.raises(ValueError, match=r"Expected y to hold only -1 and \+1"):
        primal_gd(torch.from_numpy(X), torch.from_numpy((y > 0).astype(float)))
    with pytest.raises(ValueError, match="Expected C > 0"):
        primal_gd(torch.from_numpy(X), torch.from_numpy(y), C=-1.0)
    with pytest.raises(ValueError, match=r"Expected Y of shape \(120, K\)"):
        primal_gd(torch.from_numpy(X), torch.from_numpy(y[:5]))
    Xn = X.copy()
    Xn[3, 1] = np.inf
    with pytest.raises(ValueError, match="Expected X to be finite"):
        primal_gd(torch.from_numpy(Xn), torch.from_numpy(y))


@pytest.mark.parametrize("n_curved", [0, 7, 30])
def test_woodbury_newton_direction_equals_the_direct_one(n_curved):
    # Both solve [[I + X^T S X, X^T S 1], [1^T S X, 1^T S 1]] p = rhs (+ damping): one through
    # the (D + 1)^2 Hessian, one through n x n systems with the bias eliminated.
    g = torch.Generator().manual_seed(n_curved)
    N, D, K = 60, 40, 3
    X = torch.randn(N, D, generator=g, dtype=torch.float64)
    curv = torch.zeros(N, K, dtype=torch.float64)
    for k in range(K):
        idx = torch.randperm(N, generator=g)[: max(0, n_curved - 3 * k)]
        curv[idx, k] = torch.rand(len(idx), generator=g, dtype=torch.float64) * 50 + 0.1
    rhs = torch.randn(D + 1, K, generator=g, dtype=torch.float64)
    direct = _newton_direction_direct(X, curv, rhs, 1e-3, torch.float64)
    woodbury = _newton_direction_woodbury(X, curv, rhs, 1e-3, torch.float64)
    torch.testing.assert_close(woodbury, direct, rtol=1e-8, atol=1e-8)


def test_direct_newton_direction_with_shared_curvature_equals_per_class():
    # Equal curvature in every class (the first step) factors one H for all right-hand sides.
    g = torch.Generator().manual_seed(1)
    X = torch.randn(50, 8, generator=g, dtype=torch.float64)
    curv = (torch.rand(50, 1, generator=g, dtype=torch.float64) + 0.1).expand(50, 3).clone()
    rhs = torch.randn(9, 3, generator=g, dtype=torch.float64)
    shared = _newton_direction_direct(X, curv, rhs, 1e-3, torch.float64)
    for k in range(3):
        single = _newton_direction_direct(X, curv[:, k : k + 1], rhs[:, k : k + 1], 1e-3, torch.float64)
        torch.testing.assert_close(shared[:, k : k + 1], single, rtol=1e-10, atol=1e-12)


def test_curvature_gram_updates_equal_rebuilds():
    # Between Newton steps few rows enter or leave the curved set; updating G_k by those rows
    # must give Z^T diag(w_k) Z exactly as a rebuild does, at fewer rows multiplied.
    g = torch.Generator().manual_seed(3)
    N, D, K = 200, 6, 3
    X = torch.randn(N, D, generator=g, dtype=torch.float64)
    Z = torch.nn.functional.pad(X, (0, 1), value=1.0)
    C = torch.rand(N, K, generator=g, dtype=torch.float64) + 0.5
    band = torch.rand(N, K, generator=g) < 0.6
    gram = _CurvatureGram(X, K)
    rebuilt_rows = 0
    for step in range(6):
        cols = torch.tensor([0, 2]) if step >= 3 else torch.arange(K)  # class 1 finished
        flip = torch.rand(N, K, generator=g) < 0.05
        band = band ^ flip
        weights = (C * band)[:, cols]
        G = gram.update(cols, weights, torch.float64)
        for j in range(len(cols)):
            expected = Z.t() @ (weights[:, j : j + 1] * Z)
            torch.testing.assert_close(G[j], expected, rtol=1e-12, atol=1e-12)
            rebuilt_rows += int((weights[:, j] > 0).sum())
    assert gram.rows_used < rebuilt_rows / 2


def test_direct_newton_direction_through_the_gram_cache_equals_a_fresh_one():
    g = torch.Generator().manual_seed(4)
    N, D, K = 80, 5, 2
    X = torch.randn(N, D, generator=g, dtype=torch.float64)
    gram, cols = _CurvatureGram(X, K), torch.arange(K)
    for step in range(3):
        weights = (torch.rand(N, K, generator=g) < 0.5 + 0.1 * step).to(torch.float64)
        rhs = torch.randn(D + 1, K, generator=g, dtype=torch.float64)
        cached = _newton_direction_direct(X, weights, rhs, 1e-3, torch.float64, 4.0, gram, cols)
        fresh = _newton_direction_direct(X, 4.0 * weights, rhs, 1e-3, torch.float64)
        torch.testing.assert_close(cached, fresh, rtol=1e-10, atol=1e-12)


def test_newton_bad_shapes_are_value_errors():
    X = torch.randn(20, 3, dtype=torch.float64)
    y = torch.where(X[:, 0] > 0, 1.0, -1.0).double()
    with pytest.raises(ValueError, match=r"Expected Y of shape \(20, K\)"):
        primal_newton(X, y, torch.ones(20, dtype=torch.float64))  # 1-D Y: was an IndexError
    with pytest.raises(ValueError, match=r"Expected C of shape \(20, 1\)"):
        primal_newton(X, y[:, None], torch.ones(20, dtype=torch.float64))
    with pytest.raises(ValueError, match="Expected loss"):
        primal_newton(X, y[:, None], torch.ones(20, 1, dtype=torch.float64), loss="hinge2")


@pytest.mark.parametrize("loss", ["hinge", "squared_hinge"])
@pytest.mark.parametrize("bias_penalty", [1.0, 0.04, float("inf")])
@pytest.mark.parametrize("route", ["direct", "woodbury", "cg"])
def test_bias_penalty_matches_cvxpy(device, loss, bias_penalty, route):
    """1/2 lam b^2 (LIBLINEAR's penalized bias, lam = 1 / intercept_scaling^2) or no bias (lam = inf), on
    each route to the Newton direction: Cholesky of (D+1)^2, Woodbury (fewer curved rows than D), CG."""
    X, y = blobs(N=40 if route == "woodbury" else 120, D=60 if route == "woodbury" else 3, seed=4)
    w_ref, b_ref, obj_ref = cvxpy_primal(X, y, 0.7, loss, bias_penalty)
    res = primal_newton(torch.from_numpy(X).to(device), torch.from_numpy(y).unsqueeze(1).to(device),
                        torch.full((len(y), 1), 0.7, dtype=torch.float64, device=device), loss=loss, tol=1e-9,
                        max_iter=300, bias_penalty=bias_penalty, direct_max_features=0 if route == "cg" else 4096)
    assert float(res.info.objective[0]) == pytest.approx(obj_ref, rel=1e-6)
    np.testing.assert_allclose(res.w[:, 0].cpu().numpy(), w_ref, atol=2e-4 * max(1.0, np.abs(w_ref).max()))
    assert float(res.b[0]) == (0.0 if bias_penalty == float("inf") else pytest.approx(b_ref, abs=2e-4))


@pytest.mark.parametrize("loss", ["hinge", "squared_hinge"])
def test_penalized_bias_and_offsets_equal_coordinate_descent(loss):
    """The Newton solver and dual coordinate descent solve the same penalized-bias problem, margins o included."""
    from torchsvm.solvers.dcd import dual_coordinate_descent

    X, y = blobs(N=150, D=4, seed=5)
    Xt, Y = torch.from_numpy(X), torch.from_numpy(np.stack([y, -y], 1))
    C = torch.full((150, 2), 0.5, dtype=torch.float64)
    O = torch.from_numpy(np.random.default_rng(0).uniform(0.5, 1.5, size=(150, 2)))
    newton = primal_newton(Xt, Y, C, loss=loss, tol=1e-10, max_iter=300, offset=O, bias_penalty=1 / 4.0)
    dcd = dual_coordinate_descent(Xt, Y, C, loss, tol=1e-12, max_iter=100_000, intercept_scaling=2.0, offset=O)
    np.testing.assert_allclose(newton.info.objective.numpy(), dcd.info.objective.numpy(), rtol=1e-8)
    np.testing.assert_allclose(newton.w.numpy(), dcd.w.numpy(), atol=1e-4)
    np.testing.assert_allclose(newton.b.numpy(), dcd.b.numpy(), atol=1e-4)


def host_problems(seed, max_cost, warm):
    """Three problems on one X of 90 rows (the labels, their flip, random ones) with per-sample costs, offsets
    (LinearSVR's two rows per sample) and, if ``warm``, a random start: ``(X, Y, C, O, W0, b0)``."""
    rng = np.random.default_rng(seed)
    X, y = blobs(N=90, D=4, shift=0.7)
    Y = np.stack([y, -y, np.where(rng.random(90) < 0.5, 1.0, -1.0)], 1)
    C = rng.uniform(0.5, max_cost, size=Y.shape)
    O = rng.uniform(0.5, 1.5, size=Y.shape)
    W0, b0 = (rng.normal(size=(4, 3)), rng.normal(size=3)) if warm else (None, None)
    return X, Y, C, O, W0, b0


@pytest.mark.parametrize("bias_penalty", [0.0, 1.0, float("inf")], ids=["free-bias", "penalized-bias", "no-bias"])
@pytest.mark.parametrize("warm", [False, True])
def test_host_newton_takes_the_torch_methods_steps(bias_penalty, warm):
    """The compiled squared-hinge Newton method: the same steps, iterates and certificate as the torch method,
    with offsets (LinearSVR's two rows per sample), per-class costs and a warm start."""
    from torchsvm.solvers.primal import primal_newton_host

    X, Y, C, O, W0, b0 = host_problems(seed=1, max_cost=3.0, warm=warm)
    t = lambda a: None if a is None else torch.from_numpy(a)  # noqa: E731
    ref = primal_newton(t(X), t(Y), t(C), loss="squared_hinge", tol=1e-8, offset=t(O), bias_penalty=bias_penalty,
                        W0=t(W0), b0=t(b0))
    ours = primal_newton_host(X, Y, C, tol=1e-8, offset=O, bias_penalty=bias_penalty, W0=W0, b0=b0)
    assert ours.info.n_iter == ref.info.n_iter and ours.info.converged and ref.info.converged
    np.testing.assert_allclose(ours.w.numpy(), ref.w.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ours.b.numpy(), ref.b.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ours.info.objective.numpy(), ref.info.objective.numpy(), rtol=1e-12)
    if bias_penalty == float("inf"):
        assert not ours.b.any()


@pytest.mark.parametrize("bias_penalty", [0.0, 1.0, float("inf")], ids=["free-bias", "penalized-bias", "no-bias"])
@pytest.mark.parametrize("warm", [False, True])
def test_host_hinge_newton_takes_the_torch_methods_steps(bias_penalty, warm):
    """The compiled hinge Newton method: per problem the same smoothing stages, steps, exact-partition candidates and
    certified gap as the torch method on that problem alone, with offsets, per-sample costs and a warm start."""
    from torchsvm.solvers.primal import primal_newton_host

    X, Y, C, O, W0, b0 = host_problems(seed=2, max_cost=30.0, warm=warm)
    ours = primal_newton_host(X, Y, C, loss="hinge", tol=1e-6, offset=O, bias_penalty=bias_penalty, W0=W0, b0=b0)
    t = lambda a: None if a is None else torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    for k in range(3):  # the torch method batches the problems' stages: compare each problem alone
        one = slice(k, k + 1)
        ref = primal_newton(t(X), t(Y[:, one]), t(C[:, one]), loss="hinge", tol=1e-6, offset=t(O[:, one]),
                            bias_penalty=bias_penalty, W0=None if W0 is None else t(W0[:, one]),
                            b0=None if b0 is None else t(b0[one]))
        alone = primal_newton_host(X, Y[:, one], C[:, one], loss="hinge", tol=1e-6, offset=O[:, one],
                                   bias_penalty=bias_penalty, W0=None if W0 is None else W0[:, one],
                                   b0=None if b0 is None else b0[one])
        assert alone.info.n_iter == ref.info.n_iter and alone.info.converged and ref.info.converged
        assert alone.info.gap == pytest.approx(ref.info.gap, rel=1e-6, abs=1e-12)
        np.testing.assert_allclose(ours.w[:, k].numpy(), ref.w[:, 0].numpy(), rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(ours.b[k].item(), ref.b[0].item(), rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(ours.info.objective[k].item(), ref.info.objective[0].item(), rtol=1e-10)
    assert ours.info.converged and ours.info.gap <= 1e-6
    if bias_penalty == float("inf"):
        assert not ours.b.any()
    with pytest.raises(ValueError, match="Expected loss to be 'hinge' or 'squared_hinge'"):
        primal_newton_host(X, Y, C, loss="logistic")


@pytest.mark.parametrize("loss", ["squared_hinge", "hinge"])
def test_small_linear_svc_runs_the_host_newton_method(monkeypatch, loss):
    """A small dense (squared) hinge fit takes the compiled method (no torch step), a large one the torch method."""
    import torchsvm.svm._linear as linear
    from torchsvm import LinearSVC

    calls = []
    host = linear.primal_newton_host
    monkeypatch.setattr(linear, "primal_newton_host", lambda *a, **kw: calls.append("host") or host(*a, **kw))
    monkeypatch.setattr(linear, "primal_newton", lambda *a, **kw: pytest.fail("the torch Newton method ran"))
    X, y = blobs(N=200, D=5)
    LinearSVC(solver="newton", loss=loss, device="cpu").fit(X, y)
    assert calls == ["host"]
    monkeypatch.setattr(linear, "_HOST_NEWTON_WORK", 10)
    with pytest.raises(pytest.fail.Exception, match="torch Newton"):
        LinearSVC(solver="newton", loss=loss, device="cpu").fit(X, y)
