"""The estimators' parameter constraints in scikit-learn's form: one validation, scikit-learn's error texts.

Each estimator has ``_parameter_constraints`` as scikit-learn's own classes do, made by
:class:`Constrained` from its ``__init__`` signature and the tables below, and its ``fit`` calls
``self._validate_params()`` (scikit-learn's ``BaseEstimator`` method), so a bad value gets the same
``InvalidParameterError`` (a ``ValueError`` and a ``TypeError``) and the same words as
scikit-learn's class: ``The 'C' parameter of SVC must be a float in the range (0.0, inf]. Got 'a'
instead.`` scikit-learn's ``Interval`` / ``StrOptions`` live in a private module that its own
estimators and third-party ones import; this is the one place torchsvm does.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import TYPE_CHECKING

import torch
from sklearn.utils._param_validation import Hidden, Interval, StrOptions

__all__ = ["LIBSVM", "LINEAR", "TORCHSVM", "Constrained", "Hidden", "Interval", "StrOptions"]

# scikit-learn 1.9's BaseLibSVM._parameter_constraints, as they are.
LIBSVM: dict = {
    "kernel": [StrOptions({"linear", "poly", "rbf", "sigmoid", "precomputed"}), callable],
    "degree": [Interval(Integral, 0, None, closed="left")],
    "gamma": [StrOptions({"scale", "auto"}), Interval(Real, 0.0, None, closed="left")],
    "coef0": [Interval(Real, None, None, closed="neither")],
    "tol": [Interval(Real, 0.0, None, closed="neither")],
    "C": [Interval(Real, 0.0, None, closed="right")],
    "nu": [Interval(Real, 0.0, 1.0, closed="right")],
    "epsilon": [Interval(Real, 0.0, None, closed="left")],
    "shrinking": ["boolean"],
    "probability": ["boolean", Hidden(StrOptions({"deprecated"}))],
    # torchsvm's "auto" (a memory budget from the device) beside scikit-learn's number of MB.
    "cache_size": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
    "class_weight": [StrOptions({"balanced"}), dict, None],
    "verbose": ["verbose"],
    "max_iter": [Interval(Integral, -1, None, closed="left")],
    "random_state": ["random_state"],
    "decision_function_shape": [StrOptions({"ovr", "ovo"})],
    "break_ties": ["boolean"],
}

# scikit-learn 1.9's LinearSVC / LinearSVR constraints; "logistic" is torchsvm's own loss.
LINEAR: dict = {
    "penalty": [StrOptions({"l1", "l2"})],
    "loss": [StrOptions({"hinge", "squared_hinge", "logistic", "epsilon_insensitive", "squared_epsilon_insensitive"})],
    "dual": ["boolean", StrOptions({"auto"})],
    "tol": [Interval(Real, 0.0, None, closed="neither")],
    "C": [Interval(Real, 0.0, None, closed="neither")],
    "multi_class": [StrOptions({"ovr", "crammer_singer"})],
    "fit_intercept": ["boolean"],
    "intercept_scaling": [Interval(Real, 0, None, closed="neither")],
    "class_weight": [None, dict, StrOptions({"balanced"})],
    "verbose": ["verbose"],
    "random_state": ["random_state"],
    "max_iter": [Interval(Integral, 0, None, closed="left")],
    # A negative tube is no regression loss (scikit-learn's LinearSVR accepts any real).
    "epsilon": [Interval(Real, 0.0, None, closed="left")],
}

# torchsvm's own parameters, shared by the estimators that have them.
TORCHSVM: dict = {
    "device": [str, torch.device],
    "distributed": ["boolean"],
    "process_group": "no_validation",
    "kernel_dtype": [StrOptions({"auto", "float32", "float64"})],
    "working_set_size": [Interval(Integral, 2, None, closed="left"), StrOptions({"auto"})],
    "penalize_intercept": ["boolean"],
}


class Constrained:
    """Gives each subclass ``_parameter_constraints`` for every parameter of its ``__init__``: its own
    ``_own_constraints`` first, then its family's table (``_family``), then :data:`TORCHSVM`. A
    parameter found in none is an error when the class is defined."""

    _family: dict = {}
    _own_constraints: dict = {}
    _parameter_constraints: dict  # set below for each subclass

    if TYPE_CHECKING:  # scikit-learn's BaseEstimator, the other base of every user

        @classmethod
        def _get_param_names(cls) -> list[str]: ...

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        tables = (cls._own_constraints, cls._family, TORCHSVM)
        constraints = {}
        for name in cls._get_param_names():
            found = [table[name] for table in tables if name in table]
            if not found:
                raise TypeError(f"{cls.__name__}: no constraint for its parameter {name!r}")
            constraints[name] = found[0]
        cls._parameter_constraints = constraints
