"""scikit-learn's own SVM tests (scripts/sklearn_tests.py) pass against torchsvm, both ways."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "sklearn_tests.py"


@pytest.mark.slow
@pytest.mark.parametrize("mode", [[], ["--accel"]], ids=["torchsvm-classes", "accelerator"])
def test_scikit_learn_svm_tests_pass(mode):
    out = subprocess.run([sys.executable, str(SCRIPT), *mode, "--", "-p", "no:warnings", "-x"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    if mode:
        assert "torchsvm.accel: 0 call(s) fell back to scikit-learn" in out.stdout
