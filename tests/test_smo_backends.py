"""The SMO backends: one conformance table for every compiled backend, and the registry's rules."""

import dataclasses
import json
import os
import subprocess
import sys
import warnings

import pytest
import torch

from tests import smo_cases
from tests.conftest import ROOT
from torchsvm.kernels import rbf_kernel
from torchsvm.solvers import _smo_backends, _smo_triton
from torchsvm.solvers.dual import smo_dual

COMPILED = [name for name, backend in _smo_backends.BACKENDS.items() if backend.run is not None]

# Triton's interpreter runs the table in a fresh process (TRITON_INTERPRET is read when Triton is
# imported); the same process counts the launches and syncs around the whole loop.
_TRITON_TABLE = r"""
import json, sys, torch
from tests.smo_cases import run_table
from tests.op_count import OpCounter
from torchsvm.solvers.dual import smo_steps
torch.save(run_table("triton"), sys.argv[1])
g = torch.Generator().manual_seed(0)
K = torch.rand(40, 40, dtype=torch.float64, generator=g)
K = K @ K.T
Y = torch.where(torch.rand(2, 40, generator=g) > 0.5, 1.0, -1.0).double()
launches = []
for steps in (5, 50):
    alpha, G = torch.zeros(2, 40, dtype=torch.float64), -torch.ones(2, 40, dtype=torch.float64)
    with OpCounter() as c:
        n, _ = smo_steps(K, Y, torch.ones(2, 40, dtype=torch.float64), alpha, G, 1e-12, steps, backend="triton")
    launches.append([n, c.n_launches, c.n_syncs])
print(json.dumps(launches))
"""


def _triton_table(tmp_path_factory):
    triton = pytest.importorskip("triton")
    if tuple(int(v) for v in triton.__version__.split(".")[:2]) < (3, 8):
        # Seen on Triton 3.6: its interpreter cannot run `range(0, N, BLOCK)` with a runtime N.
        pytest.skip(f"Triton {triton.__version__}'s interpreter cannot run the kernel's loops; needs 3.8+")
    path = tmp_path_factory.mktemp("triton") / "table.pt"
    proc = subprocess.run([sys.executable, "-c", _TRITON_TABLE, str(path)], capture_output=True, text=True,
                          env={**os.environ, "TRITON_INTERPRET": "1"}, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return torch.load(path), json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """Each compiled backend's run of the whole table (beside the torch step's), made once."""
    made = {}

    def table(backend):
        if backend not in made:
            made[backend] = _triton_table(tmp_path_factory) if backend == "triton" else (smo_cases.run_table(backend), None)
        return made[backend]

    return table


@pytest.mark.parametrize("case", sorted(smo_cases.CASES))
@pytest.mark.parametrize("backend", [pytest.param(b, marks=pytest.mark.slow) if b == "triton" else b
                                     for b in COMPILED])  # Triton's interpreter: ~1 minute on its first case
def test_backend_takes_the_torch_path(backend, case, tables):
    """The same steps per problem and the same solution as the torch step (Triton under its interpreter on
    the CPU; on CUDA, ties at the first step break elsewhere, see test_svm_dual_solver's CUDA test)."""
    table, _ = tables(backend)
    ref, out = table[case]["torch"], table[case][backend]
    assert int(out["n_iter"]) == int(out["iters"].max())
    if case in smo_cases.FLOAT32:  # the same optimum, from a path a few steps apart
        torch.testing.assert_close(out["objective"], ref["objective"], rtol=1e-6, atol=0)
        torch.testing.assert_close(out["balance"], torch.zeros_like(out["balance"]), rtol=0, atol=1e-5)
        assert float(out["gap"].max()) <= float(out["tol"])
        assert (out["iters"] - ref["iters"]).abs().max() <= 0.1 * ref["iters"].max()
        return
    assert out["iters"].tolist() == ref["iters"].tolist()  # the same path, step for step
    for key in ("alpha", "b", "r", "G", "balance"):
        if key in ref:
            torch.testing.assert_close(out[key], ref[key], rtol=0, atol=1e-12, msg=f"{case}: {key}")
    if "frozen_moved" in out:
        assert not bool(out["frozen_moved"])
    else:  # a solve to its tol
        assert float(out["gap"].max()) <= float(out["tol"])


@pytest.mark.slow  # Triton's interpreter: ~1 minute on its first kernel
def test_triton_loop_is_one_launch(tables):
    """The ops dispatched around the Triton loop do not grow with the steps run."""
    _, launches = tables("triton")
    (n5, launches5, syncs5), (n50, launches50, syncs50) = launches
    assert (n5, n50) == (5, 50) and launches5 == launches50 and syncs5 == syncs50 <= 2


def _problem():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(30, 2, dtype=torch.float64, generator=g)
    return rbf_kernel(X, gamma=0.5), torch.where(X[:, 0] > 0, 1.0, -1.0).double()


def test_unknown_backend_is_refused():
    K, y = _problem()
    with pytest.raises(ValueError, match=r"Expected backend to be one of \['auto', 'triton', 'numba', 'torch'\], got 'cuda'"):
        smo_dual(K, y, backend="cuda")


def test_backend_for_another_device_is_refused_before_running():
    with pytest.raises(ValueError, match="backend='numba' runs on cpu tensors, got tensors on cuda:0; use backend='auto'"):
        _smo_backends.choose("numba", torch.device("cuda", 0))
    if os.environ.get("TRITON_INTERPRET") != "1":
        with pytest.raises(ValueError, match="backend='triton' runs on cuda tensors, got tensors on cpu"):
            _smo_backends.choose("triton", torch.device("cpu"))


def test_missing_backend_names_what_to_install(monkeypatch):
    monkeypatch.setattr(_smo_triton, "triton", None)
    with pytest.raises(ImportError, match="backend='triton' needs Triton"):
        _smo_backends.choose("triton", torch.device("cuda", 0))
    # "auto" on CUDA without Triton: the torch step, nothing to warn about.
    assert [b.name for b in _smo_backends.choose("auto", torch.device("cuda", 0))[0]] == ["torch"]


def test_auto_picks_by_device():
    assert [b.name for b in _smo_backends.choose("auto", torch.device("cpu"))[0]] == ["numba", "torch"]
    if _smo_triton.triton is not None:
        assert [b.name for b in _smo_backends.choose("auto", torch.device("cuda", 0))[0]] == ["triton", "torch"]


def test_auto_falls_back_to_the_torch_step_with_one_warning(monkeypatch):
    """A compiled backend that cannot run here (its own errors, as Triton's on an unsupported GPU): "auto"
    warns once and gives the torch step's result; asked for by name, it raises."""
    class CannotBuild(RuntimeError):
        pass

    def run(*args):
        raise CannotBuild("no kernel for this device")

    broken = dataclasses.replace(_smo_backends.BACKENDS["numba"], run=run, errors=lambda: (CannotBuild,))
    monkeypatch.setitem(_smo_backends.BACKENDS, "numba", broken)
    K, y = _problem()
    with pytest.warns(RuntimeWarning, match="The numba SMO backend could not run here") as caught:
        out = smo_dual(K, y, tol=1e-8)
    assert len([w for w in caught if issubclass(w.category, RuntimeWarning)]) == 1
    ref = smo_dual(K, y, tol=1e-8, backend="torch")
    torch.testing.assert_close(out.alpha, ref.alpha, rtol=0, atol=0)
    with pytest.raises(CannotBuild), warnings.catch_warnings():
        warnings.simplefilter("error")
        smo_dual(K, y, backend="numba")
