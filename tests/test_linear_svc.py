import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import torchsvm.svm._linear as linear
from torchsvm import LinearSVC
from torchsvm.data import load_images
from torchsvm.solvers.reference import cvxpy_primal
from torchsvm.svm._linear import choose_solver


def three_blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 3.0], [3.0, -1.0], [-3.0, -1.0]])
    y = np.repeat(np.array(["cat", "dog", "eel"]), n)
    X = centers[np.repeat(np.arange(3), n)] + rng.normal(size=(3 * n, 2))
    return X, y


def test_binary_arbitrary_labels_and_shapes():
    X, y = three_blobs()
    keep = y != "eel"
    clf = LinearSVC(C=1.0, device="cpu").fit(X[keep], y[keep])
    assert list(clf.classes_) == ["cat", "dog"]
    assert clf.coef_.shape == (1, 2) and clf.intercept_.shape == (1,)
    scores = clf.decision_function(X[keep])
    assert scores.shape == (keep.sum(),)
    np.testing.assert_array_equal(clf.predict(X[keep]), np.where(scores > 0, "dog", "cat"))
    assert clf.score(X[keep], y[keep]) > 0.95


def test_binary_objective_matches_cvxpy(device):
    X, y = three_blobs(seed=1)
    keep = y != "eel"
    X, y = X[keep], y[keep]
    clf = LinearSVC(C=2.0, loss="hinge", penalize_intercept=False, tol=1e-5, device=device).fit(X, y)
    _, _, obj = cvxpy_primal(X, np.where(y == "dog", 1.0, -1.0), 2.0)
    assert abs(clf.objective_[0] - obj) / obj <= 1e-3


def test_multiclass_one_vs_rest(device):
    X, y = three_blobs()
    clf = LinearSVC(device=device).fit(X, y)
    assert clf.coef_.shape == (3, 2) and clf.decision_function(X).shape == (180, 3)
    assert clf.score(X, y) > 0.95
    # Each column is the binary problem "class k vs the rest".
    for k, label in enumerate(clf.classes_):
        single = LinearSVC(tol=1e-6, device=device).fit(X, np.where(y == label, 1, 0))
        np.testing.assert_allclose(clf.objective_[k], single.objective_[0], rtol=2e-3)


def test_tensor_input_gives_tensor_scores(device):
    X, y = three_blobs()
    Xt = torch.from_numpy(X).float().to(device)
    clf = LinearSVC(device=device).fit(Xt, torch.as_tensor(np.unique(y, return_inverse=True)[1]))
    scores = clf.decision_function(Xt)
    assert isinstance(scores, torch.Tensor) and scores.shape == (180, 3) and scores.device == Xt.device


def test_losses_and_class_weight():
    X, y = three_blobs(seed=2)
    for loss in ("hinge", "squared_hinge", "logistic"):
        assert LinearSVC(loss=loss, device="cpu").fit(X, y).score(X, y) > 0.9
    keep = y != "eel"
    Xo = X[keep] * 0.3  # overlapping classes, so that the weights matter
    base = LinearSVC(device="cpu").fit(Xo, y[keep])
    heavy = LinearSVC(class_weight={"cat": 1.0, "dog": 20.0}, device="cpu").fit(Xo, y[keep])
    # A heavier weight on "dog" moves the boundary towards "cat": more points predicted dog.
    assert (heavy.predict(Xo) == "dog").sum() > (base.predict(Xo) == "dog").sum()
    balanced = LinearSVC(class_weight="balanced", device="cpu").fit(X[keep], y[keep])
    assert balanced.score(X[keep], y[keep]) > 0.9


def test_sklearn_conventions():
    X, y = three_blobs()
    clf = LinearSVC(C=0.5, loss="squared_hinge", device="cpu")
    twin = clone(clf)
    assert twin.get_params() == clf.get_params() and twin is not clf
    twin.set_params(C=3.0)
    assert twin.C == 3.0 and clf.C == 0.5
    pipe = make_pipeline(StandardScaler(), LinearSVC(device="cpu")).fit(X, y)
    assert pipe.score(X, y) > 0.95
    search = GridSearchCV(LinearSVC(device="cpu"), {"C": [0.1, 1.0]}, cv=3).fit(X, y)
    assert search.best_params_["C"] in (0.1, 1.0)
    with pytest.raises(Exception, match="not fitted"):
        LinearSVC().predict(X)


def test_errors():
    X, y = three_blobs()
    with pytest.raises(ValueError, match="Expected at least 2 classes in y, got 1 class"):
        LinearSVC(device="cpu").fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match=r"The 'C' parameter of LinearSVC must be a float in the range \(0.0, inf\). Got -1"):
        LinearSVC(C=-1, device="cpu").fit(X, y)
    with pytest.raises(ValueError, match=r"Expected y of shape \(180,\) to match X"):
        LinearSVC(device="cpu").fit(X, y[:10])
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        LinearSVC(device="cpu").fit(Xn, y)
    with pytest.raises(ValueError, match="Expected non-negative class weights"):
        LinearSVC(class_weight={"cat": -1.0, "dog": 1.0, "eel": 1.0}, device="cpu").fit(X, y)
    with pytest.raises(ValueError, match="at least one sample"):
        LinearSVC(device="cpu").fit(torch.zeros(0, 2), torch.zeros(0))
    with pytest.raises(ValueError, match="The 'loss' parameter of LinearSVC must be a str among"):
        LinearSVC(loss="l1", device="cpu").fit(X, y)
    clf = LinearSVC(device="cpu").fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but LinearSVC is expecting 2 features as input"):
        clf.predict(np.zeros((4, 3)))


def test_non_convergence_warns():
    X, y = three_blobs()
    message = r"Liblinear failed to converge, increase the number of iterations.*after 1 iterations \(max_iter=1\)"
    with pytest.warns(ConvergenceWarning, match=message):
        LinearSVC(max_iter=1, device="cpu").fit(X, y)


def test_real_mnist_10k_binary(mnist_dir):
    X, y = load_images("mnist", "train", mnist_dir)
    Xt, yt = load_images("mnist", "test", mnist_dir)
    keep, keep_t = (y == 3) | (y == 8), (yt == 3) | (yt == 8)
    X = X[keep].reshape(int(keep.sum()), -1).double() / 255
    Xt = Xt[keep_t].reshape(int(keep_t.sum()), -1).double() / 255
    clf = LinearSVC(C=0.1, device="cpu").fit(X, y[keep])
    assert clf.score(Xt, yt[keep_t].numpy()) > 0.93


def test_real_mnist_10k_ten_classes_float32_against_liblinear(mnist_dir):
    # LIBLINEAR's (w, b) is a feasible point of our problem, so our certified objective must not
    # exceed its value by more than tol; accuracy must be on par. Float32 pixels, as the benchmark.
    from sklearn.svm import LinearSVC as SkLinearSVC

    X, y = load_images("mnist", "train", mnist_dir)
    Xt, yt = load_images("mnist", "test", mnist_dir)
    X = (X[:2000].reshape(2000, -1).float() / 255).numpy()
    Xt = (Xt.reshape(len(Xt), -1).float() / 255).numpy()
    y, yt = y[:2000].numpy(), yt.numpy()
    ours = LinearSVC(C=1.0, loss="hinge", penalize_intercept=False, device="cpu").fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = SkLinearSVC(C=1.0, loss="hinge", dual=True, max_iter=2000).fit(X, y)

    def objective(coef, intercept):
        Y = np.where(y[:, None] == np.arange(10), 1.0, -1.0)
        margins = Y * (X.astype(np.float64) @ coef.T.astype(np.float64) + intercept)
        return 0.5 * (coef.astype(np.float64) ** 2).sum() + np.maximum(0, 1 - margins).sum()

    assert ours.coef_.dtype == np.float32
    assert objective(ours.coef_, ours.intercept_) <= objective(ref.coef_, ref.intercept_) * (1 + 1e-3)
    assert ours.score(Xt, yt) >= ref.score(Xt, yt) - 0.005


def _penalized_objective(model, X, y, C, squared=False):
    """1/2 ||w||^2 + 1/2 b^2 + C sum loss: LIBLINEAR's problem (intercept_scaling 1), per class summed."""
    classes = np.unique(y)
    Y = np.where(y[:, None] == classes, 1.0, -1.0) if len(classes) > 2 else np.where(y == classes[1], 1.0, -1.0)[:, None]
    W, b = np.asarray(model.coef_, dtype=np.float64), np.asarray(model.intercept_, dtype=np.float64)
    xi = np.maximum(0, 1 - Y * (X @ W.T + b))
    return 0.5 * (W**2).sum() + 0.5 * (b**2).sum() + C * ((xi**2).sum() if squared else xi.sum())


@pytest.mark.parametrize("loss", ["hinge", "squared_hinge"])
def test_dcd_solves_liblinears_problem(loss):
    """solver="dcd" is LIBLINEAR's problem (penalized bias): its certified objective is within tol of
    LIBLINEAR's solved tightly, and the predictions agree."""
    from sklearn.datasets import make_classification
    from sklearn.svm import LinearSVC as SkLinearSVC

    X, y = make_classification(600, 12, n_informative=6, n_classes=3, random_state=0)
    ours = LinearSVC(C=0.5, loss=loss, solver="dcd", tol=1e-4, max_iter=5000, device="cpu").fit(X, y)
    ref = SkLinearSVC(C=0.5, loss=loss, dual=True, tol=1e-8, max_iter=100_000).fit(X, y)
    assert ours.duality_gap_ <= 1e-4
    p_ours = _penalized_objective(ours, X, y, 0.5, loss == "squared_hinge")
    p_ref = _penalized_objective(ref, X, y, 0.5, loss == "squared_hinge")
    assert p_ours <= p_ref * (1 + 1e-4)  # certified: no more than tol above the optimum
    assert p_ours == pytest.approx(p_ref, rel=1e-4)
    assert (ours.predict(X) == ref.predict(X)).mean() >= 0.99
    assert float(ours.objective_.sum()) == pytest.approx(p_ours, rel=1e-9)  # objective_ is that objective


def test_dcd_float32_values_are_computed_in_float64():
    """float32 X is read in float32 (less to stream through) but every product is float64: the same
    iterates, gap and objective as the float64 copy of the same values."""
    from sklearn.datasets import make_classification

    X, y = make_classification(300, 10, n_informative=5, n_classes=3, random_state=2)
    X32 = X.astype(np.float32)
    a = LinearSVC(C=2.0, solver="dcd", tol=1e-6, max_iter=5000, random_state=0, device="cpu").fit(torch.from_numpy(X32), y)
    b = LinearSVC(C=2.0, solver="dcd", tol=1e-6, max_iter=5000, random_state=0, device="cpu").fit(X32.astype(np.float64), y)
    assert a.coef_.dtype == np.float32 and a.n_iter_ == b.n_iter_
    assert a.duality_gap_ == b.duality_gap_
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-6, atol=1e-7)


def test_dcd_same_answer_on_one_thread_or_several():
    """Each class has its own random stream, so the thread pool's order of work changes nothing."""
    from sklearn.datasets import make_classification

    X, y = make_classification(300, 10, n_informative=5, n_classes=4, random_state=3)
    threads = torch.get_num_threads()
    fits = []
    try:
        for n in (1, 3):
            torch.set_num_threads(n)
            fits.append(LinearSVC(C=0.1, solver="dcd", max_iter=5000, random_state=0, device="cpu").fit(X, y))
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(fits[0].coef_, fits[1].coef_)
    np.testing.assert_array_equal(fits[0].intercept_, fits[1].intercept_)


def test_dcd_binary_sparse_rows_and_errors():
    X = np.zeros((80, 30))
    rng = np.random.default_rng(1)
    X[:, :5] = rng.normal(size=(80, 5))  # mostly zero rows, as images: the solver reads nonzeros only
    y = np.where(X[:, 0] + 0.5 * X[:, 1] > 0, "a", "b")
    clf = LinearSVC(C=1.0, solver="dcd", intercept_scaling=2.0, tol=1e-5, max_iter=10_000, device="cpu").fit(X, y)
    assert clf.coef_.shape == (1, 30) and np.all(clf.coef_[0, 5:] == 0) and clf.score(X, y) >= 0.95
    with pytest.raises(ValueError, match="solver='dcd' solves the hinge and squared hinge"):
        LinearSVC(solver="dcd", loss="logistic").fit(X, y)
    with pytest.raises(ValueError, match="solver='dcd' solves the hinge and squared hinge with a penalized intercept"):
        LinearSVC(solver="dcd", penalize_intercept=False).fit(X, y)
    with pytest.raises(ValueError,
                       match=r"The 'intercept_scaling' parameter of LinearSVC must be a float in the range \(0.0, inf\)"):
        LinearSVC(solver="dcd", intercept_scaling=0).fit(X, y)
    with pytest.warns(ConvergenceWarning, match=r"Liblinear failed to converge.*after 2 iterations \(max_iter=2\)"):
        LinearSVC(C=100.0, solver="dcd", max_iter=2, device="cpu").fit(X, y)


def test_auto_hands_a_stalled_coordinate_descent_to_newton():
    """Dense, overlapping classes at C = 1: coordinate descent's gap shrinks slowly; with ``hand_over`` it stops
    where its gap, at its rate, would not reach tol within max_iter sweeps ("auto" then lets the Newton method
    finish; on X this dense "auto" picks Newton from the start), and "auto" ends certified either way."""
    from sklearn.datasets import make_classification

    from torchsvm.solvers.dcd import dual_coordinate_descent

    X, y = make_classification(500, 20, n_informative=8, n_classes=3, random_state=0)
    Xt = torch.from_numpy(X)
    Y = torch.where(torch.from_numpy(y)[:, None] == torch.arange(3), 1.0, -1.0).double()
    C = torch.ones(500, 3, dtype=torch.float64)
    plain = dual_coordinate_descent(Xt, Y, C, "squared_hinge", tol=1e-4, max_iter=300)
    stalled = dual_coordinate_descent(Xt, Y, C, "squared_hinge", tol=1e-4, max_iter=300, hand_over=True)
    assert plain.info.n_iter == 300 and not plain.info.converged
    assert stalled.info.n_iter < 300 and not stalled.info.converged
    newton = LinearSVC(solver="newton", tol=1e-8, device="cpu").fit(X, y)
    for X_fit in (X, np.where(np.abs(X) < 1.5, 0.0, X)):  # dense: Newton; mostly zeros: coordinate descent first
        auto = LinearSVC(random_state=0, device="cpu").fit(X_fit, y)
        assert auto.n_iter_ < 1000 and auto.duality_gap_ <= 1e-4
    np.testing.assert_allclose(LinearSVC(device="cpu").fit(X, y).objective_, newton.objective_, rtol=1e-4)


def auto_solver(X, **params):
    """"auto"'s choice as a plain function of X and the parameters."""
    return choose_solver(X, LinearSVC(**params)._settings())


def test_hand_over_rule_projects_the_gaps_recent_rate():
    """dcd.stalled: a gap halving every 50 sweeps from 1 reaches 1e-4 at sweep ~664. Within max_iter=1000
    coordinate descent goes on; with 500 the first judged check hands over; a gap that stops falling hands over
    even where max_iter is far (its recent rate is 0), and one rising gap among falling ones does not where
    max_iter leaves room."""
    from torchsvm.solvers.dcd import new_history, stalled

    def first_stop(gaps, max_sweeps):
        history = new_history()
        for sweep, gap in gaps:
            if stalled(history, gap, sweep, 50, max_sweeps, 1e-4):
                return sweep
        return None

    halving = [(s, 0.5 ** (s / 50)) for s in range(50, 650, 50)]
    assert first_stop(halving, 1000) is None
    assert first_stop(halving, 500) == 100
    flat = [(s, 0.5 ** (min(s, 200) / 50)) for s in range(50, 650, 50)]
    assert first_stop(flat, 10**6) == 400  # once the anchor is in the plateau (the anchor: half the sweeps back)
    assert first_stop(flat, 1000) == 300  # the rate since sweep 100 no longer reaches 1e-4 by sweep 1000
    noisy = [(s, g * (3.0 if s == 200 else 1.0)) for s, g in halving]
    assert first_stop(noisy, 1500) is None  # its best lags a check: the projection ~1,230, not ~660


def test_auto_hands_over_only_to_the_compiled_newton_method(monkeypatch):
    """Where the Newton method would run as torch operations (here: the compiled method's size limit patched to 0),
    "auto" runs coordinate descent to max_iter and warns, as LIBLINEAR, and never calls the Newton method;
    where it runs compiled, "auto" finishes by it, certified."""
    from sklearn.datasets import make_classification

    X, y = make_classification(300, 10, n_informative=6, n_classes=3, random_state=0)
    calls = []
    finish = linear._finish_by_newton
    monkeypatch.setattr(linear, "_finish_by_newton", lambda *a, **k: calls.append(1) or finish(*a, **k))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        certified = LinearSVC(C=0.05, loss="hinge", max_iter=30, random_state=0, device="cpu").fit(X, y)
    assert calls and certified.duality_gap_ <= 1e-4
    calls.clear()
    monkeypatch.setattr(linear, "_HOST_NEWTON_WORK", 0)
    with pytest.warns(ConvergenceWarning, match="Liblinear failed to converge"):
        stopped = LinearSVC(C=0.05, loss="hinge", max_iter=30, random_state=0, device="cpu").fit(X, y)
    assert not calls and stopped.n_iter_ == 30 and stopped.duality_gap_ > 1e-4


def test_auto_solver_choice_on_the_cpu(monkeypatch):
    """The squared hinge on dense X: coordinate descent where C ||x||^2 is small and X wide (it converges in a
    few dozen sweeps: Fashion-MNIST at C = 0.01), else the Newton method; sparse enough X: coordinate descent.
    The hinge: the Newton method only where it runs as compiled code and C ||x||^2 is large."""
    g = torch.Generator().manual_seed(0)
    wide = torch.rand(50, 600, dtype=torch.float64, generator=g)  # ||x||^2 ~ 200
    narrow = torch.rand(50, 20, dtype=torch.float64, generator=g)
    sparse = wide * (torch.rand(50, 600, dtype=torch.float64, generator=g) < 0.1)
    assert auto_solver(wide, C=0.001) == "dcd"
    assert auto_solver(wide, C=0.1) == "newton"
    assert auto_solver(narrow, C=0.001) == "newton"
    assert auto_solver(sparse, C=10.0) == "dcd"
    assert auto_solver(wide, C=0.001, loss="hinge") == "dcd"
    assert auto_solver(narrow, C=0.001, loss="hinge") == "dcd"
    assert auto_solver(narrow, C=10.0, loss="hinge") == "newton"
    assert auto_solver(sparse, C=10.0, loss="hinge") == "dcd"
    monkeypatch.setattr(linear, "_HOST_NEWTON_WORK", 10)  # too large for the compiled method: coordinate descent
    assert auto_solver(narrow, C=10.0, loss="hinge") == "dcd"
    assert auto_solver(narrow, C=10.0) == "newton"


def test_auto_takes_newton_cg_on_sparse_rows_with_moderate_c():
    """One squared-hinge problem on a sparse X with more rows than features: Newton-CG where 3 < C ||x||^2 <= 300,
    else coordinate descent; never for the hinge, for one-vs-rest problems, nor with fewer rows than features."""
    import scipy.sparse

    from torchsvm._sparse import as_sparse_rows

    X = scipy.sparse.random(2000, 1000, density=0.01, format="csr", random_state=0)  # D / density = 1e5: sparse
    y = np.where(X @ np.random.default_rng(0).standard_normal(1000) > 0, 1, -1)  # ||x||^2 ~ 3.3, + 1 (bias)
    A = as_sparse_rows(X, "X", torch.device("cpu"), torch.float64)

    assert auto_solver(A, C=0.1) == "dcd"
    assert auto_solver(A, C=1.0) == "newton-cg"
    assert auto_solver(A, C=50.0) == "newton-cg"
    assert auto_solver(A, C=100.0) == "dcd"
    assert auto_solver(A, C=1.0, loss="hinge") == "dcd"
    assert choose_solver(A, LinearSVC(C=1.0)._settings(), problems=10) == "dcd"
    assert auto_solver(A[:500], C=1.0) == "dcd"  # fewer rows than features: the dual is the smaller problem
    assert LinearSVC(C=1.0, verbose=0).fit(X, y).n_iter_ < 30  # Newton steps, not sweeps


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("estimator,loss", [("LinearSVC", "hinge"), ("LinearSVC", "squared_hinge"),
                                            ("LinearSVR", "epsilon_insensitive")])
def test_low_precision_tensors_fit_as_float64(dtype, estimator, loss):
    """float16 and bfloat16 X (which NumPy, and so the compiled solvers, cannot read) fit as their float64 values:
    the same model as from a float64 copy, float64 coefficients, and predict takes either dtype."""
    import torchsvm

    g = torch.Generator().manual_seed(0)
    X = torch.randn(80, 5, generator=g).to(dtype)
    y = (X[:, 0].double() > 0).long().numpy() if estimator == "LinearSVC" else X[:, :2].double().sum(1).numpy()
    for solver in ("dcd", "newton"):
        make = getattr(torchsvm, estimator)
        low = make(loss=loss, solver=solver, random_state=0, device="cpu").fit(X, y)
        ref = make(loss=loss, solver=solver, random_state=0, device="cpu").fit(X.double(), y)
        np.testing.assert_allclose(low.coef_, ref.coef_, rtol=1e-12, atol=1e-12)
        assert low.coef_.dtype == np.float64
        np.testing.assert_array_equal(low.predict(X), ref.predict(X.double()))


def test_newton_finishes_only_the_problems_coordinate_descent_left_open(monkeypatch):
    """Where coordinate descent certified some one-vs-rest problems and not others, the Newton method runs on the
    open ones alone (on a wide X its steps cost dozens of sweeps per problem); the certified ones keep their
    solutions, and every problem ends within tol of its optimum."""
    from sklearn.datasets import load_digits

    from torchsvm.distributed import LOCAL
    from torchsvm.solvers.dcd import dual_coordinate_descent
    from torchsvm.solvers.primal import primal_newton, primal_objective

    X, y = load_digits(n_class=4, return_X_y=True)
    X = torch.from_numpy(X / 16.0)
    Y = torch.where(torch.from_numpy(y[:, None] == np.arange(4)), 1.0, -1.0).double()
    C, tol = torch.ones_like(Y), 1e-3
    result = dual_coordinate_descent(X, Y, C, "hinge", tol, 250, 1.0, check_every=50, seed=1)
    open_ = result.info.gaps > tol
    assert open_.any() and not open_.all()
    seen = []
    newton = linear._newton
    monkeypatch.setattr(linear, "_newton", lambda X, Y, *a, **kw: seen.append(Y.shape[1]) or newton(X, Y, *a, **kw))
    out = linear._finish_by_newton(X, Y, C, result, dict(loss="hinge", tol=tol, max_iter=1000, offset=None,
                                                          shards=LOCAL, bias_penalty=1.0))
    assert seen == [int(open_.sum())]
    torch.testing.assert_close(out.w[:, ~open_], result.w[:, ~open_], rtol=0, atol=0)
    torch.testing.assert_close(out.b[~open_], result.b[~open_], rtol=0, atol=0)
    assert out.info.converged and out.info.gap <= tol
    torch.testing.assert_close(out.info.objective, primal_objective(X, Y, C, out.w, out.b, "hinge", bias_penalty=1.0))
    best = primal_newton(X, Y, C, loss="hinge", tol=1e-8, bias_penalty=1.0).info.objective
    assert bool((out.info.objective <= best * (1 + tol) + 1e-12).all())


def test_hinge_newton_runs_its_last_stage_to_the_certificate():
    """Digits' class 8 without an intercept is not certified by the end of the smoothing stages' relative-gradient
    targets (gap 1.2e-3 after all 17 stages): the last stage runs on until it is, without a warning."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = LinearSVC(loss="hinge", fit_intercept=False, solver="newton", device="cpu").fit(X, y)
    assert model.duality_gap_ <= 1e-4
