"""The public names the issues spell out resolve from the package, not only from private submodules."""

import importlib

import pytest

PUBLIC = {
    "torchsvm": ["LinearSVC", "SVC", "functional", "nn"],
    "torchsvm.functional": ["hinge_objective", "svm_dual", "linear", "relu", "cross_entropy"],
    "torchsvm.solvers": ["primal_gd", "primal_newton", "smo_dual", "cvxpy_dual", "cvxpy_primal", "cvxpylayers_dual"],
    "torchsvm.kernels": [
        "linear_kernel", "polynomial_kernel", "rbf_kernel", "sigmoid_kernel",
        "Linear", "Polynomial", "RBF", "is_psd", "check_kernel", "polynomial_feature_map", "RandomFourierFeatures",
    ],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_names_resolve(module):
    mod = importlib.import_module(module)
    missing = [name for name in PUBLIC[module] if not hasattr(mod, name)]
    assert not missing, f"{module} lacks {missing}"
    exported = getattr(mod, "__all__", None)
    assert exported is not None and set(PUBLIC[module]) <= set(exported), f"{module}.__all__ lacks some of {PUBLIC[module]}"
