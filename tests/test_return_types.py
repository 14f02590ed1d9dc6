"""The rule the API reference states once: numbers follow the input (NumPy in, NumPy out; a tensor in, a
tensor out), class labels are NumPy arrays."""

import warnings

import numpy as np
import pytest
import torch

from torchsvm import SVC, SVR, LinearSVC, LinearSVR, NuSVC, NuSVR, OneClassSVM

rng = np.random.default_rng(0)
X = rng.normal(size=(60, 3))
LABELS, TARGET = (X[:, 0] > 0).astype(int), 2.0 * X[:, 0]

CASES = [  # (estimator, y, methods returning numbers, methods returning labels)
    (SVC, LABELS, ["decision_function"], ["predict"]),
    (NuSVC, LABELS, ["decision_function"], ["predict"]),
    (LinearSVC, LABELS, ["decision_function"], ["predict"]),
    (SVR, TARGET, ["predict"], []),
    (NuSVR, TARGET, ["predict"], []),
    (LinearSVR, TARGET, ["predict"], []),
    (OneClassSVM, None, ["decision_function", "score_samples"], ["predict"]),
]


@pytest.mark.parametrize("cls,y,numbers,labels", CASES, ids=[c[0].__name__ for c in CASES])
def test_numbers_follow_the_input_and_labels_are_numpy(cls, y, numbers, labels):
    est = cls().fit(X) if y is None else cls().fit(X, y)
    for name in numbers:
        assert isinstance(getattr(est, name)(X), np.ndarray), name
        out = getattr(est, name)(torch.as_tensor(X))
        assert isinstance(out, torch.Tensor), name
        np.testing.assert_allclose(out.cpu().numpy(), getattr(est, name)(X))
    for name in labels:
        assert isinstance(getattr(est, name)(torch.as_tensor(X)), np.ndarray), name


def test_probabilities_follow_the_input():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # probability=True is deprecated in scikit-learn 1.9
        est = SVC(probability=True, random_state=0).fit(X, LABELS)
    assert isinstance(est.predict_proba(X), np.ndarray)
    assert isinstance(est.predict_proba(torch.as_tensor(X)), torch.Tensor)
