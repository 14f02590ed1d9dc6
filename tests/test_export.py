"""Fitted models out of Python: torch.export programs and ONNX files (run by ONNX Runtime) give the
estimators' outputs, at any batch size."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
import torch
from sklearn.datasets import load_iris, make_regression

import torchsvm as ts
from torchsvm.export import to_onnx, to_pt2

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning",
                                        "ignore::DeprecationWarning", "ignore::FutureWarning")

_X, _Y = load_iris(return_X_y=True)
_XR, _YR = make_regression(60, 4, noise=5.0, random_state=0)

CASES = {  # name: (fitted estimator, output, X, what the estimator gives)
    "svc-rbf-decision": lambda: (ts.SVC(device="cpu").fit(_X, _Y), "decision_function", _X),
    "svc-poly-predict-sparse": lambda: (ts.SVC(kernel="poly", degree=2, device="cpu").fit(scipy.sparse.csr_matrix(_X), _Y),
                                        "predict", _X),
    "nu-svr": lambda: (ts.NuSVR(C=3.0, device="cpu").fit(_XR, _YR), "decision_function", _XR),
    "one-class-scores": lambda: (ts.OneClassSVM(nu=0.2, gamma=0.5, device="cpu").fit(_X), "score_samples", _X),
    "linear-svc-predict": lambda: (ts.LinearSVC(device="cpu").fit(_X, _Y), "predict", _X),
    "linear-svr": lambda: (ts.LinearSVR(device="cpu", max_iter=5000).fit(_XR, _YR), "decision_function", _XR),
}


def _close(got: np.ndarray, expected: np.ndarray) -> None:
    """Within 1e-6 of the outputs' scale (ONNX Runtime sums in its own order: an output near 0 differs in its
    relative digits where the sums do not)."""
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6 * max(1.0, float(np.abs(expected).max())))


def _expected(est, output: str, X: np.ndarray) -> np.ndarray:
    if output == "decision_function" and not hasattr(est, "decision_function"):
        return est.predict(X)  # regressors: their decision values are their predictions
    return getattr(est, output)(X)


@pytest.mark.parametrize("name", CASES)
def test_pt2_program_gives_the_estimators_outputs(name, tmp_path):
    est, output, X = CASES[name]()
    path = to_pt2(est, tmp_path / "model.pt2", output=output)
    loaded = torch.export.load(str(path)).module()
    for rows in (1, 17, len(X)):
        got = loaded(torch.as_tensor(X[:rows])).numpy()
        _close(got, _expected(est, output, X[:rows]))


@pytest.mark.parametrize("name", CASES)
def test_onnx_file_in_onnxruntime_gives_the_estimators_outputs(name, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    est, output, X = CASES[name]()
    path = to_onnx(est, tmp_path / "model.onnx", output=output)
    session = ort.InferenceSession(str(path))
    assert [i.name for i in session.get_inputs()] == ["X"]
    for rows in (1, 17, len(X)):
        (got,) = session.run(None, {"X": X[:rows]})
        _close(got, _expected(est, output, X[:rows]))


def test_export_refuses_what_is_not_a_model(tmp_path):
    with pytest.raises(TypeError, match="Expected a fitted torchsvm estimator or a torch module"):
        to_pt2(object(), tmp_path / "x.pt2")
    with pytest.raises(ValueError, match="Expected n_features"):
        to_pt2(torch.nn.Identity(), tmp_path / "x.pt2")
    program = to_pt2(torch.nn.Linear(3, 2), tmp_path / "lin.pt2", n_features=3)  # any module, given its width
    assert torch.export.load(str(program)).module()(torch.zeros(4, 3)).shape == (4, 2)
