"""Run scikit-learn's own SVM tests against torchsvm.

    python scripts/sklearn_tests.py            # torchsvm's classes in place of sklearn.svm's
    python scripts/sklearn_tests.py --accel    # scikit-learn's classes, unchanged, under torchsvm.accel
    python scripts/sklearn_tests.py -- -k sparse -x   # anything after -- goes to pytest

The test files are copied from the installed scikit-learn at run time (never vendored):
``sklearn/svm/tests/{test_svm,test_sparse,test_bounds}.py`` and ``sklearn/tests/test_common.py``, of
which only the cases that take an SVM estimator run. Directly, the files' ``sklearn.svm`` imports are
pointed at a module holding torchsvm's seven classes (and scikit-learn's own helpers, such as
``l1_min_c``); test_common's estimator list is swapped for torchsvm's instances built with the
parameters scikit-learn's list gives its own classes. With ``--accel`` nothing is rewritten: the
accelerator is installed before the files are imported, and any call that falls back to
scikit-learn's class is counted and reported (the target is none).

``EXPECTED_FAILURES`` below lists every test expected to fail, each with its reason (and
``ACCEL_EXPECTED_FAILURES`` those under the accelerator only); a listed test that passes fails the run
(strict xfail), so the lists cannot go stale. ``NOT_ABOUT_TORCHSVM`` lists the tests of scikit-learn's
internals that call no estimator: they run, and the summary at the end counts them apart from the passes
that exercise torchsvm (one line per part: the SVM test files, test_common's SVM cases).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import sklearn

# Tests of scikit-learn's own internals, which call no estimator: they run (and pass: scikit-learn's code), and the
# summary counts them apart, so that the passes that exercise torchsvm are told.
NOT_ABOUT_TORCHSVM: dict[str, str] = {
    r"test_svm\.py::test_libsvm_iris\[": "calls LIBSVM's compiled module sklearn.svm._libsvm directly",
    r"test_bounds\.py::test_newrand_": "tests scikit-learn's private random generator sklearn.svm._newrand",
}

# Test-id pattern (a regular expression searched in the pytest node id) -> why torchsvm fails it.
EXPECTED_FAILURES: dict[str, str] = {
    r"test_svm\.py::test_svr_errors$": "a kernel callable returning (1, 1) for 2 samples: torchsvm refuses it at fit "
                                      "(ValueError naming the shape), where scikit-learn's fit accepts it and only "
                                      "predict raises",
    r"test_svm\.py::test_libsvm_convergence_warnings\[": "expects LIBSVM's step count (2) on a 6-point set; "
                                                        "torchsvm's SMO breaks working-set ties at the first index "
                                                        "(LIBSVM: the last) and converges there in one step",
    r"test_svm\.py::test_linear_svm_convergence_warnings\[": "expects LIBLINEAR's trust-region Newton to need more "
                                                            "than max_iter=2 on a 6-point set; torchsvm's Newton "
                                                            "solver converges there in one iteration",
    r"test_svm\.py::test_svc_ovr_tie_breaking\[.*NuSVC\]": "NuSVC's intercept of a degenerate pair (gamma=1e6) is "
                                                          "8e-10 where LIBSVM's is exactly 0, so the tied votes "
                                                          "fall the other way",
}

# Expected failures under the accelerator only (torchsvm's own classes pass them).
ACCEL_EXPECTED_FAILURES: dict[str, str] = {
    r"test_svm\.py::test_tweak_params$": "sets scikit-learn's private _dual_coef_ on the proxy and expects predict to "
                                         "follow; the accelerator hands the torchsvm model the parameters and public "
                                         "attributes a user changes, not scikit-learn's private ones",
}

_SVM_FILES = ("test_svm.py", "test_sparse.py", "test_bounds.py")
_SHIM = '''"""sklearn.svm with torchsvm's seven estimators in place of scikit-learn's (written by sklearn_tests.py)."""
from sklearn.svm import *  # noqa: F403  (l1_min_c and the rest of the namespace)
from sklearn.svm import _bounds, _classes, _libsvm, _newrand  # noqa: F401
from torchsvm.svm import SVC, SVR, LinearSVC, LinearSVR, NuSVC, NuSVR, OneClassSVM  # noqa: F401
'''

_CONFTEST = '''"""Written by sklearn_tests.py: scikit-learn's fixtures and hooks, the SVM cases, the expected failures."""
import os
import re

import pytest

ACCEL = os.environ["TORCHSVM_SKLEARN_TESTS_MODE"] == "accel"
if ACCEL:
    import torchsvm.accel

    torchsvm.accel.install()

import sklearn.conftest
import sklearn.svm
from sklearn.conftest import *  # noqa: F403  (global_random_seed and the other fixtures)
from sklearn.utils._test_common import instance_generator

import torchsvm.svm

EXPECTED_FAILURES = {expected}
NOT_ABOUT_TORCHSVM = {not_about}
_SVM_NAMES = ("SVC", "NuSVC", "SVR", "NuSVR", "OneClassSVM", "LinearSVC", "LinearSVR")

if not ACCEL:
    # test_common parametrizes over _tested_estimators(): give it torchsvm's instances, built with the
    # parameters scikit-learn's list gives its own class, and the expected failures of that class.
    _sklearn_instances = instance_generator._tested_estimators
    _sklearn_failures = instance_generator._get_expected_failed_checks

    def _tested_estimators(type_filter=None):
        for estimator in _sklearn_instances(type_filter):
            name = type(estimator).__name__
            if type(estimator).__module__.startswith("sklearn.svm") and name in _SVM_NAMES:
                yield getattr(torchsvm.svm, name)(**estimator.get_params())

    def _get_expected_failed_checks(estimator):
        if type(estimator).__module__.startswith("torchsvm"):
            twin = getattr(sklearn.svm, type(estimator).__name__)()
            shared = twin.get_params().keys() & estimator.get_params().keys()
            estimator = twin.set_params(**{{k: estimator.get_params()[k] for k in shared}})
        return _sklearn_failures(estimator)

    instance_generator._tested_estimators = _tested_estimators
    instance_generator._get_expected_failed_checks = _get_expected_failed_checks


def _is_svm(value):
    return type(value).__name__ in _SVM_NAMES and type(value).__module__.startswith(("torchsvm", "sklearn.svm"))


def pytest_collection_modifyitems(config, items):
    sklearn.conftest.pytest_collection_modifyitems(config, items)
    kept, dropped = [], []
    for item in items:
        if item.nodeid.startswith("test_common.py"):
            params = getattr(getattr(item, "callspec", None), "params", {{}})
            if not any(_is_svm(v) for v in params.values()):
                dropped.append(item)
                continue
        for pattern, reason in EXPECTED_FAILURES.items():
            if re.search(pattern, item.nodeid):
                item.add_marker(pytest.mark.xfail(reason=reason, strict=True))
        kept.append(item)
    items[:] = kept
    config.hook.pytest_deselected(items=dropped)


def pytest_terminal_summary(terminalreporter):
    # Per part: scikit-learn's SVM test files, and test_common's SVM cases; the internals' passes told apart.
    for part, in_part in (("scikit-learn's SVM test files", lambda n: not n.startswith("test_common.py")),
                          ("test_common.py's SVM cases", lambda n: n.startswith("test_common.py"))):
        # pytest files each test's report under its outcome (a setup or teardown that passes is filed under "")
        nodes = {{outcome: {{r.nodeid for r in terminalreporter.stats.get(outcome, []) if in_part(r.nodeid)}}
                 for outcome in ("passed", "failed", "skipped", "xfailed", "xpassed", "error")}}
        counts = {{outcome: len(ids) for outcome, ids in nodes.items()}}
        internals = sum(any(re.search(p, n) for p in NOT_ABOUT_TORCHSVM) for n in nodes["passed"])
        total = sum(counts.values())
        if total:
            text = ", ".join(f"{{v}} {{k}}" for k, v in counts.items() if v)
            terminalreporter.write_line(f"{{part}}: {{total}} tests: {{text}}"
                                        + (f"; {{internals}} of the passes call no estimator "
                                           "(scikit-learn's internals)" if internals else ""))
    if ACCEL:
        calls = torchsvm.accel.fallbacks()
        terminalreporter.write_line(f"torchsvm.accel: {{len(calls)}} call(s) fell back to scikit-learn")
        for line in calls[:50]:
            terminalreporter.write_line("  " + line)
'''


def _point_at_torchsvm(source: str) -> str:
    """The test file with its sklearn.svm imports pointed at the shim module."""
    def drop_svm(match: re.Match[str]) -> str:
        names = [n.strip() for n in match.group(1).split(",") if n.strip() != "svm"]
        return f"from sklearn import {', '.join(names)}\nimport torchsvm_sklearn_svm as svm"

    source = re.sub(r"^from sklearn import (.*\bsvm\b.*)$", drop_svm, source, flags=re.M)
    return re.sub(r"^from sklearn\.svm import", "from torchsvm_sklearn_svm import", source, flags=re.M)


def prepare(directory: Path, accel: bool) -> None:
    """Copy the installed test files into ``directory`` (rewritten unless ``accel``) with the conftest."""
    root = Path(sklearn.__file__).parent
    for name in _SVM_FILES:
        # test_sparse reuses test_svm's helpers: the copy beside it, either way
        source = (root / "svm" / "tests" / name).read_text().replace("from sklearn.svm.tests import test_svm",
                                                                     "import test_svm")
        if not accel:
            source = _point_at_torchsvm(source)
        (directory / name).write_text(source)
    shutil.copy(root / "tests" / "test_common.py", directory / "test_common.py")
    (directory / "torchsvm_sklearn_svm.py").write_text(_SHIM)
    expected = {**EXPECTED_FAILURES, **ACCEL_EXPECTED_FAILURES} if accel else EXPECTED_FAILURES
    (directory / "conftest.py").write_text(_CONFTEST.format(expected=repr(expected),
                                                                    not_about=repr(NOT_ABOUT_TORCHSVM)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accel", action="store_true", help="run scikit-learn's classes under torchsvm.accel")
    parser.add_argument("--keep", action="store_true", help="keep the copied files and print where")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="torchsvm-sklearn-tests-"))
    try:
        prepare(directory, args.accel)
        env = dict(os.environ, TORCHSVM_SKLEARN_TESTS_MODE="accel" if args.accel else "direct")
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(directory),
                   "-W", "ignore::DeprecationWarning", *args.pytest_args]
        print(f"scikit-learn {sklearn.__version__}, {'accelerator' if args.accel else 'torchsvm classes'}: "
              f"{' '.join(command[3:])}", flush=True)
        return subprocess.call(command, cwd=directory, env=env)
    finally:
        if args.keep:
            print(f"kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
