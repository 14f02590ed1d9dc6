"""``import torchsvm`` stays light: the estimators (scikit-learn, numba's set-up) load on first use."""

import subprocess
import sys


def test_import_torchsvm_loads_no_heavy_extra():
    code = ("import sys, torchsvm\n"
            "heavy = [m for m in ('sklearn', 'pytorch_lightning', 'lightning', 'cvxpy', 'cvxpylayers', 'matplotlib',"
            " 'torchvision', 'tensorboard') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "from torchsvm import SVC, LinearSVC\n"
            "assert 'sklearn' in sys.modules and SVC.__module__ == 'torchsvm.svm._classes'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_attribute_is_an_attribute_error():
    import pytest

    import torchsvm

    with pytest.raises(AttributeError, match="module 'torchsvm' has no attribute 'SVX'"):
        torchsvm.SVX  # noqa: B018


_WITHOUT_EXTRAS = r"""
import sys
for name in ("pytorch_lightning", "lightning", "torchmetrics", "jsonargparse", "tensorboard", "torchvision",
             "matplotlib", "cvxpy", "cvxpylayers"):
    sys.modules[name] = None  # import of it fails, as where the extra is not installed
import numpy as np, pytest, torch
from torchsvm import SVC, LinearSVC
from torchsvm.functional import svm_dual
from torchsvm.kernels import rbf_kernel
from torchsvm.solvers import cvxpy_dual
X = np.random.default_rng(0).normal(size=(60, 3)); y = (X[:, 0] > 0).astype(int)
assert SVC().fit(X, y).score(X, y) > 0.9 and LinearSVC().fit(X, y).score(X, y) > 0.9
K = rbf_kernel(torch.as_tensor(X)); alpha, b = svm_dual(K, torch.as_tensor(2.0 * y - 1), 1.0)
with pytest.raises(ImportError, match=r"cvxpy_dual needs cvxpy, which comes with the 'reference' extra: "
                                      r"pip install 'torchsvm-gpu\[reference\]'"):
    cvxpy_dual(K.numpy(), 2.0 * y - 1, 1.0)
with pytest.raises(ImportError, match=r"lightning_modules .* needs \w+, which comes with the 'lightning' extra"):
    import lightning_modules
print("ok")
"""


def test_the_core_works_without_any_extra():
    """No Lightning, TensorBoard, torchvision, matplotlib, cvxpy: the estimators and Functions fit; what needs
    an extra says which."""
    out = subprocess.run([sys.executable, "-c", _WITHOUT_EXTRAS], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


def test_the_wheel_ships_the_configs_and_type_information(tmp_path):
    """``torchsvm fit --config NAME`` after a pip install needs the configs inside the package."""
    import zipfile
    from pathlib import Path

    import torchsvm

    root = Path(__file__).parents[1]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
                    str(root)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("torchsvm_gpu-*.whl")
    assert wheel.name.startswith(f"torchsvm_gpu-{torchsvm.__version__}-")  # the version is written once
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"lightning_modules/configs/{p.name}" for p in (root / "configs").glob("*.yaml")}
    assert shipped and shipped <= names and "torchsvm/py.typed" in names
