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
