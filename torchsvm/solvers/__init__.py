"""Solvers: primal (batch gradient descent, batched Newton), dual (GPU SMO) and cvxpy references."""

from torchsvm.solvers.dual import DualInfo, DualResult, dual_bias, dual_objective, smo_dual
from torchsvm.solvers.primal import PrimalResult, SolverInfo, primal_gd, primal_newton, primal_objective
from torchsvm.solvers.reference import cvxpy_dual, cvxpy_primal, cvxpylayers_dual, dual_intercept

__all__ = [
    "DualInfo",
    "DualResult",
    "PrimalResult",
    "SolverInfo",
    "cvxpy_dual",
    "cvxpy_primal",
    "cvxpylayers_dual",
    "dual_bias",
    "dual_intercept",
    "dual_objective",
    "primal_gd",
    "primal_newton",
    "primal_objective",
    "smo_dual",
]
