"""The SMO backends behind one registry: which runs where, how a name is checked, one fallback rule.

Each backend runs :func:`torchsvm.solvers.smo.smo_steps`'s loop, with the same working-set selection,
clipping and stopping rule (the conformance tests in ``tests/test_smo_backends.py`` hold them to the
torch step, step for step):

- ``"triton"``: the whole loop in one Triton launch, one program per problem (CUDA; CPU tensors
  too under Triton's interpreter, ``TRITON_INTERPRET=1``);
- ``"numba"``: the whole loop as compiled CPU code, problems in parallel threads;
- ``"torch"``: the step as torch ops, on any device.

``backend="auto"`` takes the first compiled backend made for the tensors' device (Triton on CUDA,
numba on the CPU) and falls back to the torch step, with one warning, where the compiled one cannot
run (Triton cannot build the kernel on this GPU); a backend named explicitly runs or raises.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import torch
from torch import Tensor

__all__ = ["Backend", "BACKENDS", "choose", "warn_fallback"]

# run(K, pos, C, alpha, score, tol (B,), max_steps, movable, counts, nu, kernel_index) -> final gap (B,),
# updating alpha, score = -y G and counts in place (contiguous tensors).
CompiledRun = Callable[..., Tensor]


@dataclass(frozen=True)
class Backend:
    name: str
    auto_devices: tuple[str, ...]  # device types where "auto" picks it
    runs_on: Callable[[torch.device], bool]  # where it may be asked for by name
    installed: Callable[[], bool]
    install: str  # what makes it installed, for the error
    run: CompiledRun | None  # None: the torch step (smo.py's own loop)
    errors: Callable[[], tuple[type[BaseException], ...]] = tuple  # "cannot run here": auto falls back
    reads_kernel_index: bool = False  # reads K[kernel_index[b]] in place (others get a gathered copy)


def _triton_runs_on(device: torch.device) -> bool:
    return device.type == "cuda" or (device.type == "cpu" and os.environ.get("TRITON_INTERPRET") == "1")


def _smo_triton() -> ModuleType:
    """The Triton kernel's module, imported when first asked for: importing Triton takes a good part of a
    second, which a CPU-only process (most fits) should not pay at ``import torchsvm``."""
    return importlib.import_module("torchsvm.solvers._smo_triton")


def _run_triton(K: Tensor, pos: Tensor, C: Tensor, alpha: Tensor, score: Tensor, tol: Tensor, max_steps: int,
                movable: Tensor | None, counts: Tensor, nu: bool, kernel_index: Tensor | None) -> Tensor:
    return _smo_triton().smo_steps_triton(K, pos, C.contiguous(), alpha, score, tol, max_steps, movable, counts, nu)


def _run_numba(K: Tensor, pos: Tensor, C: Tensor, alpha: Tensor, score: Tensor, tol: Tensor, max_steps: int,
               movable: Tensor | None, counts: Tensor, nu: bool, kernel_index: Tensor | None) -> Tensor:
    # The compiled loop's module imports numba (a fraction of a second): loaded on the first CPU solve, not at import.
    from torchsvm.solvers._smo_numba import smo_steps_numba

    return smo_steps_numba(K, pos, C, alpha, score, tol, max_steps, movable, counts, nu, kernel_index)


# In "auto"'s order of preference; the torch step last, as it runs everywhere.
BACKENDS: dict[str, Backend] = {
    backend.name: backend
    for backend in (
        Backend("triton", ("cuda",), _triton_runs_on, lambda: _smo_triton().triton is not None,
                "Triton (it comes with torch's CUDA builds on Linux: pip install triton)", _run_triton,
                lambda: _smo_triton().backend_errors()),
        Backend("numba", ("cpu",), lambda device: device.type == "cpu", lambda: True, "numba", _run_numba,
                reads_kernel_index=True),
        Backend("torch", (), lambda device: True, lambda: True, "torch", None),
    )
}


def choose(name: str, device: torch.device) -> tuple[list[Backend], bool]:
    """The backends to try in order for tensors on ``device``, and whether a failure may fall back
    (``"auto"``). A named backend is checked here: known, installed, made for the device.

    Raises:
        ValueError: an unknown name, or a backend that does not run on ``device``.
        ImportError: a named backend that is not installed.
    """
    if name == "auto":
        picked = [b for b in BACKENDS.values() if device.type in b.auto_devices and b.installed()]
        return [*picked[:1], BACKENDS["torch"]], True
    if name not in BACKENDS:
        raise ValueError(f"Expected backend to be one of {['auto', *BACKENDS]}, got {name!r}")
    backend = BACKENDS[name]
    if not backend.installed():
        raise ImportError(f"backend={name!r} needs {backend.install}; backend='auto' runs without it")
    if not backend.runs_on(device):
        where = " or ".join(backend.auto_devices) or "any device"
        raise ValueError(f"backend={name!r} runs on {where} tensors, got tensors on {device}; "
                         f"use backend='auto' (it picks the backend for the device) or move the tensors")
    return [backend], False


def warn_fallback(backend: Backend, err: BaseException) -> None:
    """The one warning of a fallback: the backend "auto" picked could not run here."""
    warnings.warn(f"The {backend.name} SMO backend could not run here ({type(err).__name__}: {err}); "
                  f"using the torch step.", RuntimeWarning, stacklevel=4)
