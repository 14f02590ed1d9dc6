"""What the Crammer-Singer dual's torch stages (:mod:`torchsvm.solvers.multiclass`) and their compiled twins
(:mod:`torchsvm.solvers._multiclass_numba`) share: the algorithm's constants, written once."""

RIDGES = (1e-12, 1e-8, 1e-4)  # a failed Cholesky factor is retried with these ridges on the diagonal, in turn
PIVOT_RATIO = 1e-5  # a factor is well conditioned while its smallest pivot is above this times its largest (~1e10)
RATE_BOUNDS = (1e-12, 1 - 1e-6)  # the projected gradient's convergence rate is clamped here before it is extrapolated

__all__ = ["PIVOT_RATIO", "RATE_BOUNDS", "RIDGES"]
