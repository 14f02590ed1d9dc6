"""Dual SVM solver: SMO with LIBSVM's second-order working-set selection, batched over problems.

    minimize_a  1/2 a^T Q a + p^T a,   Q_ij = y_i y_j K_ij,   0 <= a_i <= C_i,   y^T a = 0

(LIBSVM's form: p = -1 for classification; epsilon-SVR and the one-class SVM have their own p,
start and labels, see :mod:`torchsvm.svm`).

Two solvers, plain torch code without autograd, B problems advancing together:

- :func:`smo_dual` keeps the Gram matrix in memory (``K`` ``(B, N, N)``, or one ``(N, N)``
  shared by B label vectors as one-vs-rest is) and moves one pair of variables per step.
- :func:`decomposition_dual` never forms N x N: working sets of ~1024 variables, their kernel
  rows by one matrix product, an inner SMO on the small block (ThunderSVM / cuML's design).

This module gathers them: the shared types and rules live in ``_dual_rules.py``, SMO in
:mod:`torchsvm.solvers.smo`, the decomposition solver in :mod:`torchsvm.solvers.decomposition`.
"""

from torchsvm.kernels import KernelFn
from torchsvm.solvers._dual_rules import (
    DualInfo,
    DualResult,
    device_memory_guard,
    dual_bias,
    dual_objective,
    kernel_diagonal,
    nu_bias,
)
from torchsvm.solvers.decomposition import DecompositionSolver, decomposition_dual
from torchsvm.solvers.smo import smo_dual, smo_steps

__all__ = [
    "DualInfo",
    "DualResult",
    "KernelFn",
    "smo_dual",
    "smo_steps",
    "dual_objective",
    "dual_bias",
    "nu_bias",
    "DecompositionSolver",
    "decomposition_dual",
    "kernel_diagonal",
    "device_memory_guard",
]
