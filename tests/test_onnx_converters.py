"""skl2onnx converters for torchsvm's estimators (``import torchsvm.onnx``): the ONNX-ML graph skl2onnx writes for
scikit-learn's class, run by ONNX Runtime to the estimator's own labels and scores, alone and in a Pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
import sklearn.svm as sk
from sklearn.datasets import load_iris
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import torchsvm as ts

skl2onnx = pytest.importorskip("skl2onnx")
ort = pytest.importorskip("onnxruntime")
import torchsvm.onnx  # noqa: E402,F401  (registers the converters)

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning",
                                        "ignore::sklearn.exceptions.ConvergenceWarning")

_X, _Y = load_iris(return_X_y=True)
_X32 = _X.astype(np.float32)
_OPSET = {"": 18, "ai.onnx.ml": 3}

CASES = {  # name: (torchsvm estimator, scikit-learn's, targets)
    "svc-3": (lambda: ts.SVC(), lambda: sk.SVC(), _Y),
    "svc-2": (lambda: ts.SVC(kernel="poly", degree=2), lambda: sk.SVC(kernel="poly", degree=2), (_Y == 2).astype(int)),
    "nu-svc": (lambda: ts.NuSVC(nu=0.3, kernel="sigmoid", gamma=0.01), lambda: sk.NuSVC(nu=0.3, kernel="sigmoid",
                                                                                      gamma=0.01), _Y),
    "svr": (lambda: ts.SVR(C=3.0), lambda: sk.SVR(C=3.0), _X[:, 3]),
    "nu-svr": (lambda: ts.NuSVR(kernel="linear"), lambda: sk.NuSVR(kernel="linear"), _X[:, 3]),
    "one-class": (lambda: ts.OneClassSVM(nu=0.2), lambda: sk.OneClassSVM(nu=0.2), None),
    "linear-svc": (lambda: ts.LinearSVC(), lambda: sk.LinearSVC(), _Y),
    "linear-svc-2": (lambda: ts.LinearSVC(loss="hinge"), lambda: sk.LinearSVC(loss="hinge"), (_Y == 2).astype(int)),
    "linear-svc-crammer-singer": (lambda: ts.LinearSVC(multi_class="crammer_singer"),
                                  lambda: sk.LinearSVC(multi_class="crammer_singer"), _Y),
    "linear-svr": (lambda: ts.LinearSVR(max_iter=5000), lambda: sk.LinearSVR(max_iter=5000), _X[:, 3]),
}


def _run(model, options=None) -> tuple[list, list[str]]:
    onx = skl2onnx.to_onnx(model, _X32[:1], target_opset=_OPSET, options=options)
    return ort.InferenceSession(onx.SerializeToString()).run(None, {"X": _X32}), [n.op_type for n in onx.graph.node]


@pytest.mark.parametrize("name", CASES)
def test_the_graph_is_scikit_learns_and_gives_the_estimators_outputs(name):
    make_ours, make_theirs, y = CASES[name]
    ours, theirs = make_ours().set_params(device="cpu").fit(_X, y), make_theirs().fit(_X, y)
    classifier = hasattr(ours, "classes_")
    options = (lambda m: {type(m): {"zipmap": False}}) if classifier else (lambda m: None)
    got, ops = _run(ours, options(ours))
    _, reference_ops = _run(theirs, options(theirs))
    assert ops == reference_ops  # the same ONNX-ML graph as for scikit-learn's class
    if classifier:
        np.testing.assert_array_equal(got[0], ours.predict(_X))
        expected = ours.decision_function(_X)
        expected = expected if expected.ndim == 2 else expected[:, None]  # two classes: the first column (SVC: d, -d)
        np.testing.assert_allclose(got[1][:, : expected.shape[1]], expected, rtol=1e-4,
                                   atol=1e-4 * max(1.0, np.abs(expected).max()))  # ONNX Runtime in float32
    elif isinstance(ours, ts.OneClassSVM):
        np.testing.assert_allclose(got[1].ravel(), ours.decision_function(_X), atol=1e-4)
    else:
        np.testing.assert_allclose(got[0].ravel(), ours.predict(_X), rtol=1e-5, atol=1e-4)


def test_a_sparse_fitted_model_and_a_pipeline():
    ours = ts.SVC(device="cpu").fit(scipy.sparse.csr_matrix(_X), _Y)
    got, _ = _run(ours, {type(ours): {"zipmap": False}})
    np.testing.assert_array_equal(got[0], ours.predict(_X))
    pipeline = make_pipeline(StandardScaler(), ts.SVC(C=3.0, device="cpu")).fit(_X, _Y)
    got, ops = _run(pipeline, {ts.SVC: {"zipmap": False}})
    assert "SVMClassifier" in ops and "Scaler" in ops
    np.testing.assert_array_equal(got[0], pipeline.predict(_X))


def test_what_scikit_learns_graph_cannot_hold():
    with pytest.raises(ValueError, match="Expected SVC\\(multi_class='ovo'\\)"):
        skl2onnx.to_onnx(ts.SVC(multi_class="ovr", device="cpu").fit(_X, _Y), _X32[:1], target_opset=_OPSET)
    with pytest.raises(ValueError, match="Expected a built-in kernel"):
        skl2onnx.to_onnx(ts.SVC(kernel=lambda A, B: A @ B.T, device="cpu").fit(_X, _Y), _X32[:1], target_opset=_OPSET)
