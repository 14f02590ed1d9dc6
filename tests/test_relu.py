import pytest
import torch
from torch.autograd import gradcheck

from torchsvm import functional as F
from torchsvm.nn import ReLU


def test_gradcheck(device):
    # Keep inputs away from the kink, where finite differences are undefined.
    X = torch.randn(6, 5, device=device, dtype=torch.float64)
    X = (X + 0.1 * X.sign()).requires_grad_()
    assert gradcheck(F.relu, (X,))


def test_matches_torch(device):
    X = torch.randn(4, 3, 2, device=device, dtype=torch.float64, requires_grad=True)
    Y = F.relu(X)
    assert type(Y.grad_fn).__name__ == "ReLUFunctionBackward"
    G = torch.randn_like(Y)
    torch.testing.assert_close(Y, torch.relu(X))
    torch.testing.assert_close(torch.autograd.grad(Y, X, G)[0], torch.autograd.grad(torch.relu(X), X, G)[0])


def test_subgradient_zero_at_kink(device):
    X = torch.tensor([-1.0, 0.0, 2.0], device=device, requires_grad=True)
    F.relu(X).sum().backward()
    assert X.grad.tolist() == [0.0, 0.0, 1.0]


def test_nan_input_gives_nan_output_and_zero_gradient():
    X = torch.tensor([float("nan"), 1.0, -1.0], requires_grad=True)
    Y = F.relu(X)
    assert Y[0].isnan() and Y[1:].tolist() == [1.0, 0.0]
    Y.sum().backward()
    assert X.grad.tolist() == [0.0, 1.0, 0.0]


def test_non_contiguous_and_float32(device):
    X = torch.randn(5, 7, device=device).t().requires_grad_()
    g = torch.autograd.grad(F.relu(X).sum(), X)[0]
    torch.testing.assert_close(g, (X > 0).float())


def test_no_grad_and_module(device):
    X = torch.randn(3, 3, device=device)
    with torch.no_grad():
        assert F.relu(X.requires_grad_()).grad_fn is None
    torch.testing.assert_close(ReLU()(X), F.relu(X))
    assert ReLU().state_dict() == {}


def test_errors():
    with pytest.raises(TypeError, match="Expected input to have a floating-point dtype, got torch.int64"):
        F.relu(torch.arange(3))
    with pytest.raises(TypeError, match="Expected input to be a torch.Tensor, got list"):
        F.relu([1.0])
