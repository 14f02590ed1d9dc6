"""skl2onnx converters for torchsvm's estimators, registered when this module is imported.

``import torchsvm.onnx`` then ``skl2onnx.to_onnx(model, X[:1])`` converts a fitted torchsvm estimator, or a
scikit-learn ``Pipeline`` holding one, into the ONNX-ML graph skl2onnx writes for scikit-learn's class:
``SVMClassifier`` (``SVC``, ``NuSVC``), ``SVMRegressor`` (``SVR``, ``NuSVR``, ``OneClassSVM``),
``LinearClassifier`` (``LinearSVC``) and ``LinearRegressor`` (``LinearSVR``), with the same options
(``zipmap``, ``raw_scores``...). The estimators keep scikit-learn's fitted attributes, so skl2onnx's own
converters read them; torchsvm's models that scikit-learn's classes cannot hold (one-vs-rest ``SVC``, a
callable or precomputed kernel) are refused with the reason. For a module or a plain ONNX graph of
torch operators instead, see :mod:`torchsvm.export`. Needs the ``export`` extra (skl2onnx).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from torchsvm._sparse import dense_array
from torchsvm.optional import require
from torchsvm.svm import SVC, SVR, LinearSVC, LinearSVR, NuSVC, NuSVR, OneClassSVM

__all__ = ["register"]

_CLASSIFIER_OPTIONS = {"zipmap": [True, False, "columns"], "nocl": [True, False],
                       "output_class_labels": [False, True], "raw_scores": [True, False]}


def _checked(convert: Callable) -> Callable:
    """skl2onnx's converter, after the checks scikit-learn's classes make unnecessary."""

    def converter(scope: Any, operator: Any, container: Any) -> Any:
        model = operator.raw_operator
        kernel = getattr(model, "kernel", "linear")
        if not isinstance(kernel, str) or kernel == "precomputed":
            raise ValueError(f"Expected a built-in kernel for ONNX (SVMClassifier/SVMRegressor compute kernel values "
                             f"from the support vectors), got kernel={kernel!r}")
        if isinstance(model, SVC) and model.multi_class != "ovo":
            raise ValueError("Expected SVC(multi_class='ovo') for ONNX's SVMClassifier (one-vs-one, as LIBSVM); "
                             "export a one-vs-rest SVC with torchsvm.export.to_onnx")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # scikit-learn 1.9 deprecates probA_ / probB_, read here
            return convert(scope, operator, container)

    return converter


def _as_scikit_learn(convert: Callable) -> Callable:
    """skl2onnx's LinearSVC converter on scikit-learn's LinearSVC holding this model's fitted attributes (the
    converter tells LinearSVC's raw scores from a logistic model's by its class), with the model's options."""

    def converter(scope: Any, operator: Any, container: Any) -> Any:
        from sklearn.svm import LinearSVC as ScikitLinearSVC

        model = operator.raw_operator
        twin = ScikitLinearSVC(multi_class=model.multi_class, fit_intercept=model.fit_intercept)
        twin.coef_ = dense_array(model.coef_)
        twin.intercept_, twin.classes_, twin.n_features_in_ = model.intercept_, model.classes_, model.n_features_in_
        container.options[id(twin)] = container.get_options(model, {})  # options given for the torchsvm model
        operator.raw_operator = twin
        try:
            return convert(scope, operator, container)
        finally:
            operator.raw_operator = model

    return converter


def register() -> None:
    """Register the converters (done on import; again is harmless)."""
    skl2onnx = require("skl2onnx", "export", "skl2onnx conversion")
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )
    from skl2onnx.operator_converters.linear_classifier import convert_sklearn_linear_classifier
    from skl2onnx.operator_converters.linear_regressor import convert_sklearn_linear_regressor
    from skl2onnx.operator_converters.support_vector_machines import (
        convert_sklearn_svm_classifier,
        convert_sklearn_svm_regressor,
    )
    from skl2onnx.shape_calculators.support_vector_machines import calculate_sklearn_svm_output_shapes

    # The aliases are scikit-learn's: skl2onnx's converters read the model's kind from them.
    table = [
        (SVC, "SklearnSVC", calculate_sklearn_svm_output_shapes, convert_sklearn_svm_classifier, _CLASSIFIER_OPTIONS),
        (NuSVC, "SklearnSVC", calculate_sklearn_svm_output_shapes, convert_sklearn_svm_classifier, _CLASSIFIER_OPTIONS),
        (SVR, "SklearnSVR", calculate_sklearn_svm_output_shapes, convert_sklearn_svm_regressor, None),
        (NuSVR, "SklearnSVR", calculate_sklearn_svm_output_shapes, convert_sklearn_svm_regressor, None),
        (OneClassSVM, "SklearnOneClassSVM", calculate_sklearn_svm_output_shapes, convert_sklearn_svm_regressor, None),
        (LinearSVC, "SklearnLinearSVC", calculate_linear_classifier_output_shapes,
         _as_scikit_learn(convert_sklearn_linear_classifier), _CLASSIFIER_OPTIONS),
        (LinearSVR, "SklearnLinearSVR", calculate_linear_regressor_output_shapes, convert_sklearn_linear_regressor, None),
    ]
    for model, alias, shape, convert, options in table:
        skl2onnx.update_registered_converter(model, alias, shape, _checked(convert), overwrite=True, options=options)


register()
