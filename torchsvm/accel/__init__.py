"""Zero code change: scikit-learn's SVM classes run on torchsvm.

    python -m torchsvm.accel script.py [args]      # run a script with the accelerator installed
    %load_ext torchsvm.accel                       # in Jupyter / IPython
    import torchsvm.accel; torchsvm.accel.install()
    TORCHSVM_ACCEL=1 python script.py              # at every Python start (the torchsvm-accel.pth file)

After :func:`install`, ``sklearn.svm.SVC``, ``NuSVC``, ``SVR``, ``NuSVR``, ``OneClassSVM``, ``LinearSVC``
and ``LinearSVR`` are subclasses of scikit-learn's classes that fit with torchsvm's estimator of the same
name (on the GPU when there is one: ``device="auto"``) and predict through it; ``Pipeline``,
``GridSearchCV``, ``cross_validate`` and ``clone`` see scikit-learn's parameters, and ``isinstance`` with
scikit-learn's classes holds. A fit that torchsvm cannot run (it raises ``NotImplementedError`` or runs
out of device memory) falls back to scikit-learn's own class for that fit, and its predictions follow;
:func:`fallbacks` lists those calls, and ``install(log=True)`` (or ``TORCHSVM_ACCEL_LOG=1``) logs where
every fit ran and why through the ``torchsvm.accel`` logger.

A pickled accelerated model loads in any process where torchsvm is importable, accelerator installed or not.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import sklearn.svm
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.metaestimators import available_if

import torchsvm.svm

__all__ = ["install", "uninstall", "installed", "fallbacks", "load_ipython_extension", "NAMES"]

NAMES = ("SVC", "NuSVC", "SVR", "NuSVR", "OneClassSVM", "LinearSVC", "LinearSVR")
logger = logging.getLogger("torchsvm.accel")
_ORIGINALS: dict[str, type] = {name: getattr(sklearn.svm, name) for name in NAMES}
_FALLBACKS: list[str] = []
# What a torchsvm fit may raise where scikit-learn's class can still fit: anything else (a ValueError on
# bad input, say) is raised as scikit-learn would raise it.
_FALL_BACK_ON = (NotImplementedError, torch.OutOfMemoryError)


class _Accelerated(BaseEstimator):
    """The accelerated behaviour, mixed in before scikit-learn's class (see :func:`_proxy`).

    The fitted torchsvm estimator is kept as ``_torchsvm_``; its fitted attributes are copied onto this
    object (shared arrays, not copies), so ``support_vectors_``, ``coef_`` and the rest read as scikit-learn's.
    Predictions go through the torchsvm estimator, with this object's current parameters and public fitted
    attributes (a user may set ``coef_`` or ``decision_function_shape`` after fit, as scikit-learn allows).
    """

    _torchsvm_class: Any
    _sklearn_class: Any

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
        self.__dict__.pop("_torchsvm_", None)
        name = type(self).__name__
        try:
            est = self._torchsvm_class(**self.get_params(deep=False))
            est.fit(X, y, sample_weight=sample_weight)
        except _FALL_BACK_ON as err:
            reason = f"{name}.fit fell back to scikit-learn: {type(err).__name__}: {err}"
            _FALLBACKS.append(reason)
            logger.info(reason)
            return self._sklearn_class.fit(self, X, y, sample_weight=sample_weight)
        params = est.get_params(deep=False)  # scikit-learn's and torchsvm's own (device, solver, ...)
        for key, value in vars(est).items():
            if key not in params and not _is_data_descriptor(type(self), key):
                self.__dict__[key] = value
        self._torchsvm_ = est
        logger.info("%s.fit ran on torchsvm (device %s)", name, torchsvm.svm.fit_device(est.device, X))
        return self

    def _torchsvm(self) -> Any:
        """The fitted torchsvm estimator, brought up to date with this object's parameters and public fitted
        attributes; None after a fallback fit (scikit-learn's own methods then answer)."""
        est = self.__dict__.get("_torchsvm_")
        if est is None:
            return None
        est.set_params(**self.get_params(deep=False))
        for key, value in vars(est).items():
            if key.endswith("_") and not key.startswith("_") and key in self.__dict__ and self.__dict__[key] is not value:
                setattr(est, key, self.__dict__[key])
        return est

    def _answer(self, method: str, *args: Any, **kwargs: Any) -> Any:
        est = self._torchsvm()
        if est is None:
            return getattr(self._sklearn_class, method)(self, *args, **kwargs)
        return getattr(est, method)(*args, **kwargs)

    def __reduce__(self) -> Any:
        # By this module's rebuild function, not by class path: the class a name in sklearn.svm points at
        # depends on whether the accelerator is installed in the loading process.
        return _rebuild, (type(self).__name__, self.__getstate__())


def _is_data_descriptor(cls: type, name: str) -> bool:
    attribute = getattr(cls, name, None)
    return hasattr(attribute, "__set__") or isinstance(attribute, property)


def _forwarded(name: str) -> property:
    """A fitted attribute scikit-learn's class computes by a property (``coef_``, ``n_support_``, ...): read
    from the torchsvm estimator after a torchsvm fit, from scikit-learn's property after a fallback fit."""
    def get(self: Any) -> Any:
        est = self.__dict__.get("_torchsvm_")
        if est is None:
            return getattr(self._sklearn_class, name).fget(self)
        return getattr(est, name)

    return property(get, doc=f"scikit-learn's ``{name}``, from the estimator that was fitted")


def _method(cls: type, name: str) -> Any:
    """``name`` answered by the fitted estimator, available where scikit-learn's class makes it available
    (``predict_proba`` only with ``probability=True``, as its ``available_if`` says)."""
    def method(self: Any, X: Any) -> Any:
        return self._answer(name, X)

    method.__name__ = method.__qualname__ = name
    return available_if(lambda self: _available(cls, name, self))(method)


def _available(cls: type, name: str, obj: Any) -> bool:
    """Whether scikit-learn's ``cls`` offers ``name`` on ``obj`` (its descriptor raises AttributeError if not)."""
    for klass in cls.__mro__:
        if name in klass.__dict__:
            klass.__dict__[name].__get__(obj, cls)
            return True
    return False


def _proxy(name: str) -> type:
    """``sklearn.svm.<name>`` running on torchsvm: scikit-learn's class first in the bases after the mixin,
    so its ``__init__`` (parameters), tags, docs and ``isinstance`` hold."""
    original = _ORIGINALS[name]
    namespace: dict[str, Any] = {"_torchsvm_class": getattr(torchsvm.svm, name), "_sklearn_class": original,
                                 "__module__": __name__, "__doc__": original.__doc__, "__qualname__": name}
    for attribute in ("predict", "decision_function", "predict_proba", "predict_log_proba", "score_samples"):
        if hasattr(original, attribute):
            namespace[attribute] = _method(original, attribute)
    for attribute in ("coef_", "n_support_", "probA_", "probB_"):
        if isinstance(getattr(original, attribute, None), property):
            namespace[attribute] = _forwarded(attribute)
    return type(name, (_Accelerated, original), namespace)


_PROXIES: dict[str, type] = {name: _proxy(name) for name in NAMES}
globals().update(_PROXIES)  # torchsvm.accel.SVC, ...: what pickles name


def _rebuild(name: str, state: dict) -> Any:
    cls: Any = _PROXIES[name]
    est = cls.__new__(cls)
    est.__setstate__(state)
    return est


def install(log: bool | None = None) -> None:
    """Point ``sklearn.svm``'s seven SVM classes at torchsvm (idempotent). ``log``: log where each fit runs
    (default: the ``TORCHSVM_ACCEL_LOG`` environment variable)."""
    if log is None:
        log = os.environ.get("TORCHSVM_ACCEL_LOG", "") not in ("", "0")
    if log:
        logging.basicConfig()
        logger.setLevel(logging.INFO)
    # sklearn.svm only: a plain scikit-learn model pickles by its class's path in sklearn.svm._classes
    for name, proxy in _PROXIES.items():
        setattr(sklearn.svm, name, proxy)


def uninstall() -> None:
    """Give ``sklearn.svm`` its own classes back (objects already made keep their class)."""
    for name, original in _ORIGINALS.items():
        setattr(sklearn.svm, name, original)


def installed() -> bool:
    return sklearn.svm.SVC is _PROXIES["SVC"]


def fallbacks() -> list[str]:
    """The fits that ran on scikit-learn's class since the process started, each with its reason."""
    return list(_FALLBACKS)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext torchsvm.accel``."""
    install()
