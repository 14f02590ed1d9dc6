import pytest
import torch
import torch.nn.functional as TF
from torch.autograd import gradcheck

from torchsvm import functional as F
from torchsvm.functional import LinearFunction
from torchsvm.nn import Linear


def _inputs(device, dtype=torch.float64, batch=(5,), D=4, O=3):
    X = torch.randn(*batch, D, device=device, dtype=dtype, requires_grad=True)
    W = torch.randn(O, D, device=device, dtype=dtype, requires_grad=True)
    b = torch.randn(O, device=device, dtype=dtype, requires_grad=True)
    return X, W, b


def test_gradcheck(device):
    assert gradcheck(F.linear, _inputs(device))
    X, W, _ = _inputs(device)
    assert gradcheck(F.linear, (X, W, None))


@pytest.mark.parametrize("batch", [(), (5,), (2, 3)])
def test_matches_torch(device, batch):
    X, W, b = _inputs(device, batch=batch)
    Y = F.linear(X, W, b)
    assert type(Y.grad_fn).__name__ == "LinearFunctionBackward"
    G = torch.randn_like(Y)
    grads = torch.autograd.grad(Y, (X, W, b), G)
    Y_ref = TF.linear(X, W, b)
    grads_ref = torch.autograd.grad(Y_ref, (X, W, b), G)
    torch.testing.assert_close(Y, Y_ref)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(g, g_ref)


def test_gradient_formulas_by_hand(device):
    # dX = dY W, dW = dY^T X, db = sum of dY's rows, written out independently of the Function.
    X, W, b = _inputs(device)
    G = torch.randn(5, 3, device=device, dtype=torch.float64)
    gX, gW, gb = torch.autograd.grad(F.linear(X, W, b), (X, W, b), G)
    torch.testing.assert_close(gX, G @ W.detach())
    torch.testing.assert_close(gW, G.T @ X.detach())
    torch.testing.assert_close(gb, G.sum(0))


def test_float32_and_non_contiguous(device):
    X = torch.randn(6, 8, device=device).t()  # (8, 6), non-contiguous
    W = torch.randn(6, 3, device=device).t()  # (3, 6), non-contiguous
    b = torch.randn(3, device=device)
    X.requires_grad_()
    W.requires_grad_()
    assert not X.is_contiguous() and not W.is_contiguous()
    Y = F.linear(X, W, b)
    torch.testing.assert_close(Y, TF.linear(X, W, b))
    gX, gW = torch.autograd.grad(Y.sum(), (X, W))
    gX_ref, gW_ref = torch.autograd.grad(TF.linear(X, W, b).sum(), (X, W))
    torch.testing.assert_close(gX, gX_ref)
    torch.testing.assert_close(gW, gW_ref)


def test_needs_input_grad_honoured(device, monkeypatch):
    X, W, b = _inputs(device)
    X = X.detach()  # no gradient wanted for X
    calls = []
    original = torch.Tensor.mm

    def spy(self, other):
        calls.append((tuple(self.shape), tuple(other.shape)))
        return original(self, other)

    Y = F.linear(X, W, b)
    monkeypatch.setattr(torch.Tensor, "mm", spy)
    gW, gb = torch.autograd.grad(Y.sum(), (W, b))
    monkeypatch.undo()
    assert X.grad is None
    # Only dW = dY^T X was computed: one mm of (3, 5) by (5, 4); dX = dY W (5,3)x(3,4) was not.
    assert calls == [((3, 5), (5, 4))]
    assert gW.shape == W.shape and gb.shape == b.shape


def test_no_grad_and_requires_grad_false(device):
    X, W, b = (t.detach() for t in _inputs(device))
    Y = F.linear(X, W, b)
    assert Y.grad_fn is None and not Y.requires_grad
    X, W, b = _inputs(device)
    with torch.no_grad():
        Y = F.linear(X, W, b)
    assert Y.grad_fn is None


def test_module_equals_function_and_state_dict(device):
    torch.manual_seed(1)
    ours = Linear(4, 3).to(device)
    torch.manual_seed(1)
    ref = torch.nn.Linear(4, 3).to(device)
    torch.testing.assert_close(ours.weight, ref.weight)  # same init
    assert ours.state_dict().keys() == ref.state_dict().keys()
    ref.load_state_dict(ours.state_dict())
    X = torch.randn(2, 4, device=device)
    torch.testing.assert_close(ours(X), F.linear(X, ours.weight, ours.bias))
    torch.testing.assert_close(ours(X), ref(X))
    assert type(ours(X).grad_fn).__name__ == "LinearFunctionBackward"
    no_bias = Linear(4, 3, bias=False).to(device)
    assert no_bias.bias is None and no_bias(X).shape == (2, 3)


def test_autocast_cpu_bfloat16():
    # Under autocast the op runs in the autocast dtype, as torch.nn.functional.linear does,
    # and the gradients come back in the parameters' float32.
    X, W, b = (torch.randn(*s, requires_grad=True) for s in ((5, 4), (3, 4), (3,)))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        Y = F.linear(X, W, b)
        Y_ref = TF.linear(X, W, b)
    assert Y.dtype == Y_ref.dtype == torch.bfloat16
    torch.testing.assert_close(Y, Y_ref)
    Y.float().sum().backward()
    assert X.grad.dtype == W.grad.dtype == torch.float32
    gW_ref = torch.autograd.grad(Y_ref.float().sum(), W)[0]
    torch.testing.assert_close(W.grad, gW_ref)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA autocast needs a GPU")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_autocast_cuda(dtype):
    X, W, b = (torch.randn(*s, device="cuda", requires_grad=True) for s in ((5, 4), (3, 4), (3,)))
    with torch.autocast("cuda", dtype=dtype):
        Y = F.linear(X, W, b)
        Y_ref = TF.linear(X, W, b)
    assert Y.dtype == Y_ref.dtype == dtype
    torch.testing.assert_close(Y, Y_ref)
    Y.float().sum().backward()
    assert W.grad.dtype == torch.float32


def test_errors():
    X, W, b = torch.randn(5, 4), torch.randn(3, 4), torch.randn(3)
    with pytest.raises(ValueError, match=r"Expected input of shape \(\*, 4\).*got input of shape \(5, 2\)"):
        F.linear(torch.randn(5, 2), W, b)
    with pytest.raises(ValueError, match=r"Expected weight of shape \(out_features, in_features\)"):
        F.linear(X, torch.randn(4), b)
    with pytest.raises(ValueError, match=r"Expected bias of shape \(3,\), got shape \(4,\)"):
        F.linear(X, W, torch.randn(4))
    with pytest.raises(TypeError, match="Expected all tensors to have one dtype.*float64"):
        F.linear(X.double(), W, b)
    with pytest.raises(TypeError, match="Expected input to have a floating-point dtype"):
        F.linear(torch.ones(5, 4, dtype=torch.long), W.long(), b.long())
    with pytest.raises(TypeError, match="Expected weight to be a torch.Tensor, got list"):
        F.linear(X, [[1.0]], b)
    with pytest.raises(ValueError, match="Expected all tensors on one device"):
        F.linear(X, W.to("meta"), b)


def test_function_class_is_used():
    X, W, b = _inputs("cpu")
    assert isinstance(F.linear(X, W, b).grad_fn, LinearFunction._backward_cls)
