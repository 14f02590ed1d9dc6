"""Fitted estimators as torch modules (``est.to_module()``): the same outputs as the estimators, in float64 and
float32, through state_dict, composition, torch.compile and torch.export with a dynamic batch dimension."""

from __future__ import annotations

import io

import numpy as np
import pytest
import scipy.sparse
import torch
from sklearn.datasets import load_iris, make_regression

import torchsvm as ts
from torchsvm.svm.modules import LinearSVMModule, SVMModule

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # unscaled iris: not the point

_X, _Y = load_iris(return_X_y=True)
_XR, _YR = make_regression(80, 4, noise=5.0, random_state=0)
_XR = _XR / 3

CLASSIFIERS = {
    "svc-rbf-3": lambda: ts.SVC(C=2.0),
    "svc-poly-3-ovo-shape": lambda: ts.SVC(kernel="poly", degree=2, coef0=1.0, decision_function_shape="ovo"),
    "svc-sigmoid-2": lambda: ts.SVC(kernel="sigmoid", gamma=0.05, coef0=-1.0),
    "svc-linear-3-break-ties": lambda: ts.SVC(kernel="linear", break_ties=True),
    "svc-ovr-3": lambda: ts.SVC(multi_class="ovr", gamma=0.5),
    "nu-svc-3": lambda: ts.NuSVC(nu=0.2),
    "linear-svc-3": lambda: ts.LinearSVC(C=0.5),
    "linear-svc-2-hinge": lambda: ts.LinearSVC(loss="hinge"),
    "linear-svc-crammer-singer": lambda: ts.LinearSVC(multi_class="crammer_singer"),
    "linear-svc-l1": lambda: ts.LinearSVC(penalty="l1", dual=False),
}
REGRESSORS = {
    "svr-rbf": lambda: ts.SVR(C=10.0, gamma=0.3),
    "nu-svr-poly": lambda: ts.NuSVR(kernel="poly", degree=3, C=3.0),
    "linear-svr": lambda: ts.LinearSVR(C=1.0, max_iter=5000),
}


def _labels(name: str) -> np.ndarray:
    return (_Y == 2).astype(int) * 5 - 1 if "-2" in name else _Y  # a binary set with labels -1 / 4


def _fit(name: str, sparse: bool = False):
    make = {**CLASSIFIERS, **REGRESSORS}[name]
    X, y = (_XR, _YR) if name in REGRESSORS else (_X, _labels(name))
    est = make().set_params(device="cpu")
    est.fit(scipy.sparse.csr_matrix(X) if sparse else X, y)
    return est, X


def _check(module, est, X: np.ndarray, rtol: float, atol: float) -> None:
    Xt = torch.as_tensor(X)
    with torch.no_grad():
        if hasattr(est, "decision_function"):
            np.testing.assert_allclose(module(Xt).numpy(), est.decision_function(X), rtol=rtol, atol=atol)
        np.testing.assert_array_equal(module.predict(Xt).numpy(), est.predict(X)) if not isinstance(
            est, ts.SVR | ts.NuSVR | ts.LinearSVR) else np.testing.assert_allclose(
            module.predict(Xt).numpy(), est.predict(X), rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", [*CLASSIFIERS, *REGRESSORS])
def test_module_outputs_equal_the_estimators(name):
    est, X = _fit(name)
    module = est.to_module()
    assert isinstance(module, LinearSVMModule if name.startswith("linear") else SVMModule)
    _check(module, est, X, rtol=1e-6, atol=1e-9)
    _check(module.to(torch.float32), est, X.astype(np.float32), rtol=1e-4, atol=1e-4)
    if name in CLASSIFIERS:  # output="predict": forward gives the labels
        np.testing.assert_array_equal(est.to_module(output="predict")(torch.as_tensor(X)).numpy(), est.predict(X))


@pytest.mark.parametrize("name", ["svc-rbf-3", "nu-svr-poly", "linear-svc-3"])
def test_sparse_fitted_models_give_dense_modules(name):
    est, X = _fit(name, sparse=True)
    _check(est.to_module(), est, X, rtol=1e-6, atol=1e-9)


def test_one_class_module_gives_every_output():
    est = ts.OneClassSVM(nu=0.2, gamma=0.5, device="cpu").fit(_X)
    Xt = torch.as_tensor(_X)
    module = est.to_module()
    np.testing.assert_allclose(module(Xt).numpy(), est.decision_function(_X), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(module.score_samples(Xt).numpy(), est.score_samples(_X), rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(module.predict(Xt).numpy(), est.predict(_X))
    np.testing.assert_allclose(est.to_module(output="score_samples")(Xt).numpy(), est.score_samples(_X), atol=1e-9)


def test_string_labels_predict_their_index():
    labels = np.array(["setosa", "versicolor", "virginica"])
    est = ts.SVC(device="cpu").fit(_X, labels[_Y])
    module = est.to_module()
    assert module.head.labels == labels.tolist()
    np.testing.assert_array_equal(labels[module.predict(torch.as_tensor(_X)).numpy()], est.predict(_X))


def test_what_a_module_cannot_hold():
    with pytest.raises(ValueError, match="Expected a built-in kernel"):
        ts.SVC(kernel="precomputed", device="cpu").fit(_X @ _X.T, _Y).to_module()
    with pytest.raises(ValueError, match="Expected a built-in kernel"):
        ts.SVC(kernel=lambda A, B: A @ B.T, device="cpu").fit(_X, _Y).to_module()
    est = ts.SVC(device="cpu").fit(_X, _Y)
    with pytest.raises(ValueError, match="only for a classifier fitted with probability=True"):
        est.to_module(output="predict_proba")
    with pytest.raises(ValueError, match="only for a one-class model"):
        est.to_module(output="score_samples")
    with pytest.raises(ValueError, match="break_ties must be False"):
        ts.SVC(break_ties=True, decision_function_shape="ovo", device="cpu").fit(_X, _Y).to_module(output="predict")


def test_state_dict_round_trip_and_composition():
    est, X = _fit("svc-rbf-3")
    module = est.to_module()
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    other = ts.SVC(C=2.0, device="cpu").fit(X, _Y).to_module()  # the same structure
    other.load_state_dict(torch.load(io.BytesIO(buffer.getvalue())))
    Xt = torch.as_tensor(X)
    torch.testing.assert_close(other(Xt), module(Xt))
    whole = io.BytesIO()
    torch.save(module, whole)  # the module itself pickles (its kernel is a partial of a module-level function)
    torch.testing.assert_close(torch.load(io.BytesIO(whole.getvalue()), weights_only=False)(Xt), module(Xt))
    # A feature network, then the SVM: one module.
    net = torch.nn.Sequential(torch.nn.Identity(), est.to_module(output="predict"))
    np.testing.assert_array_equal(net(Xt).numpy(), est.predict(X))


@pytest.mark.parametrize("name", ["svc-rbf-3", "svc-poly-3-ovo-shape", "svr-rbf", "linear-svc-3"])
def test_export_with_a_dynamic_batch(name):
    est, X = _fit(name)
    module = est.to_module(output="predict" if name != "svr-rbf" else "decision_function")
    batch = torch.export.Dim("batch")
    program = torch.export.export(module, (torch.as_tensor(X[:7]),), dynamic_shapes={"X": {0: batch}})
    exported = program.module()
    for rows in (1, 33, len(X)):
        Xt = torch.as_tensor(X[:rows])
        torch.testing.assert_close(exported(Xt), module(Xt))


@pytest.mark.slow
def test_compiled_module_equals_the_eager_one():
    est, X = _fit("svc-rbf-3")
    module = est.to_module()
    compiled = torch.compile(module, dynamic=True)
    for rows in (5, 40):
        Xt = torch.as_tensor(X[:rows])
        torch.testing.assert_close(compiled(Xt), module(Xt))


@pytest.mark.parametrize("name", ["svc-rbf-3", "svr-rbf", "linear-svc-3"])
def test_module_on_the_fit_device(name, device):
    """A model fitted on ``device`` gives its module there: buffers and outputs on that device, equal to the
    estimator's (CUDA where there is one: the GPU suite runs the ``cuda`` ids)."""
    make = {**CLASSIFIERS, **REGRESSORS}[name]
    X, y = (_XR, _YR) if name in REGRESSORS else (_X, _labels(name))
    est = make().set_params(device=str(device)).fit(torch.as_tensor(X, device=device), torch.as_tensor(y))
    module = est.to_module()
    assert {b.device.type for b in module.buffers()} == {device.type}
    Xt = torch.as_tensor(X, device=device)
    with torch.no_grad():
        got = module(Xt)
    assert got.device.type == device.type
    expected = est.decision_function(Xt) if hasattr(est, "decision_function") else est.predict(Xt)
    torch.testing.assert_close(got, expected.to(got.dtype), rtol=1e-6, atol=1e-6)


def test_one_vs_rest_shape_counts_a_zero_as_scikit_learn_does():
    """A pair's value of exactly 0 counts for its first class in the one-vs-rest shape (scikit-learn's rule),
    in the module as in the estimators."""
    from torchsvm.svm.modules import DecisionHead
    from torchsvm.svm.problems import ovr_from_ovo

    dec = torch.tensor([[0.0, 0.0, 0.0], [0.5, -0.25, 0.0]], dtype=torch.float64)  # 3 classes, 3 pairs
    head = DecisionHead("classifier", "decision_function", [0, 1, 2], one_vs_one=True, ovr_shape=True)
    torch.testing.assert_close(head(dec), ovr_from_ovo(dec, 3))
    assert head(dec)[0].tolist()[0] > head(dec)[0].tolist()[2]  # class 0 wins both of its ties


_PROBABILITY = {
    "svc-rbf-2": lambda: ts.SVC(C=2.0, probability=True, random_state=0),
    "svc-rbf-3": lambda: ts.SVC(C=2.0, probability=True, random_state=0),
    "nu-svc-linear-3": lambda: ts.NuSVC(kernel="linear", nu=0.3, probability=True, random_state=0),
}


def _probability_model(name):
    return _PROBABILITY[name]().set_params(device="cpu").fit(_X, _labels(name))


@pytest.mark.filterwarnings("ignore::FutureWarning")  # probability=True is deprecated in scikit-learn 1.9
@pytest.mark.parametrize("name", list(_PROBABILITY))
def test_predict_proba_module_equals_the_estimator(name):
    """A classifier fitted with probability=True: the module's predict_proba (output or method) is the estimator's
    (Platt's sigmoids, LIBSVM's coupling), in float64 and float32."""
    est = _probability_model(name)
    Xt = torch.as_tensor(_X)
    expected = est.predict_proba(_X)
    np.testing.assert_allclose(est.to_module(output="predict_proba")(Xt).numpy(), expected, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(est.to_module().predict_proba(Xt).numpy(), expected, rtol=1e-6, atol=1e-12)
    single = est.to_module(output="predict_proba").to(torch.float32)
    np.testing.assert_allclose(single(Xt.float()).numpy(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.slow  # the traced coupling is LIBSVM's 100 sweeps unrolled: about a minute to export here
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_predict_proba_module_exports_with_a_dynamic_batch():
    """Traced, the coupling runs its sweeps whole, converged samples frozen: the same probabilities."""
    est = _probability_model("svc-rbf-3")
    Xt = torch.as_tensor(_X)
    expected = est.predict_proba(_X)
    batch = torch.export.Dim("batch")
    module = est.to_module(output="predict_proba")
    program = torch.export.export(module, (Xt[:7],), dynamic_shapes={"X": {0: batch}}).module()
    for rows in (1, 33, len(_X)):
        np.testing.assert_allclose(program(Xt[:rows]).numpy(), expected[:rows], rtol=1e-6, atol=1e-12)
