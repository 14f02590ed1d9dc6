"""What the SMO backends (the torch step in :mod:`torchsvm.solvers.smo`, the numba loop, the Triton
kernel) share: the algorithm's constants, written once."""

TAU = 1e-12  # LIBSVM's floor for the curvature along a pair: a_ij = max(K_ii + K_jj - 2 K_ij, TAU)

__all__ = ["TAU"]
