"""torchsvm.accel: scikit-learn's SVM classes on torchsvm with unchanged user code."""

import importlib.metadata
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import sklearn.svm
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import torchsvm.accel as accel
import torchsvm.svm

X, y = load_iris(return_X_y=True)


@pytest.fixture
def installed():
    accel.install()
    yield
    accel.uninstall()


@pytest.mark.parametrize("name", accel.NAMES)
def test_each_class_fits_on_torchsvm(installed, name):
    cls = getattr(sklearn.svm, name)
    assert issubclass(cls, accel._ORIGINALS[name]) and cls is not accel._ORIGINALS[name]
    target = None if name == "OneClassSVM" else (y if "SVC" in name else X[:, 0])
    est = cls().fit(X, target)
    mine = getattr(torchsvm.svm, name)(device="cpu").fit(X, target)
    np.testing.assert_allclose(est.predict(X), mine.predict(X), rtol=1e-5)  # LinearSVR: a random sweep order
    assert est.get_params() == accel._ORIGINALS[name]().get_params()  # scikit-learn's parameters, no others
    assert type(est._torchsvm_) is getattr(torchsvm.svm, name)


def test_inside_pipeline_search_and_clone(installed):
    search = GridSearchCV(make_pipeline(StandardScaler(), sklearn.svm.SVC()), {"svc__C": [0.1, 1.0]}, cv=3).fit(X, y)
    assert search.best_score_ > 0.9
    assert isinstance(search.best_estimator_[-1], accel.SVC)
    scores = cross_validate(sklearn.svm.LinearSVC(), X, y, cv=3)["test_score"]
    assert scores.min() > 0.8
    est = sklearn.svm.SVC(C=3.0)
    assert type(clone(est)) is accel.SVC and clone(est).C == 3.0


def test_parameters_and_attributes_set_after_fit_are_followed(installed):
    est = sklearn.svm.SVC(decision_function_shape="ovo").fit(X, y)
    assert est.decision_function(X[:2]).shape == (2, 3)
    est.decision_function_shape = "ovr"
    assert est.decision_function(X[:2]).shape == (2, 3)
    lin = sklearn.svm.LinearSVC().fit(X, y)
    lin.coef_ = np.zeros_like(lin.coef_)
    lin.intercept_ = np.array([0.0, 1.0, 0.0])
    np.testing.assert_array_equal(lin.predict(X), np.ones(len(X)))
    assert not hasattr(sklearn.svm.SVC(), "predict_proba")  # available_if, as scikit-learn's


def test_a_fit_torchsvm_cannot_run_falls_back_and_says_why(installed, monkeypatch, caplog):
    def refuse(self, *args, **kwargs):
        raise NotImplementedError("not here")

    monkeypatch.setattr(torchsvm.svm.SVC, "fit", refuse)
    before = len(accel.fallbacks())
    with caplog.at_level("INFO", logger="torchsvm.accel"):
        est = sklearn.svm.SVC().fit(X, y)
    assert "_torchsvm_" not in vars(est)
    np.testing.assert_array_equal(est.predict(X), accel._ORIGINALS["SVC"]().fit(X, y).predict(X))
    assert accel.fallbacks()[before:] == ["SVC.fit fell back to scikit-learn: NotImplementedError: not here"]
    assert "fell back" in caplog.text
    with pytest.raises(ValueError):  # bad input is not a fallback: raised as scikit-learn raises it
        sklearn.svm.LinearSVC().fit(X, y[:-1])


def test_pickle_loads_without_the_accelerator(installed, tmp_path):
    est = sklearn.svm.SVC().fit(X, y)
    path = tmp_path / "svc.pkl"
    path.write_bytes(pickle.dumps(est))
    code = ("import pickle, sys, sklearn.svm, numpy as np; from sklearn.datasets import load_iris; "
            f"est = pickle.loads(open({str(path)!r}, 'rb').read()); X, y = load_iris(return_X_y=True); "
            "assert sklearn.svm.SVC.__module__.startswith('sklearn'); print(type(est).__name__, est.score(X, y))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["SVC", str(est.score(X, y))]


def test_python_m_runs_a_script_unchanged(tmp_path):
    script = tmp_path / "user.py"
    script.write_text("import sys\nfrom sklearn.svm import SVC\nfrom sklearn.datasets import load_iris\n"
                      "X, y = load_iris(return_X_y=True)\nm = SVC().fit(X, y)\n"
                      "print(type(m).__module__, sys.argv[1:], hasattr(m, '_torchsvm_'))\n")
    out = subprocess.run([sys.executable, "-m", "torchsvm.accel", "--log", str(script), "a", "b"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["torchsvm.accel", "['a',", "'b']", "True"]
    assert "SVC.fit ran on torchsvm" in out.stderr


def _accel_pth():
    """The start-up file the install put in site-packages (setup.py), from the distribution's RECORD."""
    # The installed copy's dist-info, not the egg-info a build leaves in the checkout (also on sys.path).
    installed = [d for d in importlib.metadata.distributions(name="torchsvm-gpu") if d.read_text("RECORD")]
    if not installed:
        pytest.skip("torchsvm is imported from its sources, not installed: no start-up file to test")
    files = [(d, f) for d in installed for f in d.files or [] if f.name == "torchsvm-accel.pth"]
    assert files, "the installed torchsvm-gpu has no torchsvm-accel.pth: setup.py's build hooks did not run"
    return files[0][0].locate_file(files[0][1])


@pytest.mark.parametrize("value, on", [("1", True), ("0", False), (None, False)])
def test_environment_variable_installs_at_start_up(value, on):
    assert _accel_pth().exists()
    env = {k: v for k, v in os.environ.items() if k != "TORCHSVM_ACCEL"}
    if value is not None:
        env["TORCHSVM_ACCEL"] = value
    # Unset, the start-up line must not even import torchsvm (every Python start in the environment runs it).
    code = ("import sys; loaded = 'torchsvm' in sys.modules; import sklearn.svm; "
            "print(loaded, sklearn.svm.SVC.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == (["True", "torchsvm.accel"] if on else ["False", "sklearn.svm._classes"])


def test_ipython_extension_installs():
    accel.uninstall()
    accel.load_ipython_extension(None)
    try:
        assert accel.installed()
    finally:
        accel.uninstall()
    assert not accel.installed()
