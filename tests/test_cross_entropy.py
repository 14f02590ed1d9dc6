import pytest
import torch
import torch.nn.functional as TF
from torch.autograd import gradcheck

from torchsvm import functional as F


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gradcheck(device, reduction):
    Z = torch.randn(6, 4, device=device, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 4, (6,), device=device)
    assert gradcheck(lambda z: F.cross_entropy(z, t, reduction), (Z,))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_matches_torch(device, reduction):
    Z = torch.randn(8, 5, device=device, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 5, (8,), device=device)
    L, L_ref = F.cross_entropy(Z, t, reduction), TF.cross_entropy(Z, t, reduction=reduction)
    assert type(L.grad_fn).__name__ == "CrossEntropyFunctionBackward"
    torch.testing.assert_close(L, L_ref)
    G = torch.randn_like(L)
    torch.testing.assert_close(torch.autograd.grad(L, Z, G)[0], torch.autograd.grad(L_ref, Z, G)[0])


def test_gradient_formula(device):
    # dL/dz = (softmax(z) - onehot(t)) / N for the mean.
    Z = torch.randn(7, 3, device=device, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 3, (7,), device=device)
    g = torch.autograd.grad(F.cross_entropy(Z, t), Z)[0]
    expected = (torch.softmax(Z.detach(), 1) - TF.one_hot(t, 3).double()) / 7
    torch.testing.assert_close(g, expected)


def test_numerically_stable(device):
    Z = torch.tensor([[1000.0, 0.0, -1000.0], [-1e4, 1e4, 0.0]], device=device, requires_grad=True)
    t = torch.tensor([0, 0], device=device)
    L = F.cross_entropy(Z, t, "none")
    torch.testing.assert_close(L, TF.cross_entropy(Z, t, reduction="none"))
    assert torch.isfinite(torch.autograd.grad(L.sum(), Z)[0]).all()


def test_float32_non_contiguous_and_no_grad(device):
    Z = torch.randn(5, 9, device=device).t()[:, :4]  # (9, 4) non-contiguous view
    t = torch.randint(0, 4, (9,), device=device)
    torch.testing.assert_close(F.cross_entropy(Z, t), TF.cross_entropy(Z, t))
    with torch.no_grad():
        assert F.cross_entropy(Z.requires_grad_(), t).grad_fn is None


def test_autocast_runs_in_float32():
    Z = torch.randn(4, 3, requires_grad=True)
    t = torch.tensor([0, 1, 2, 0])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = Z.to(torch.bfloat16)
        L = F.cross_entropy(logits, t)
        L_ref = TF.cross_entropy(logits, t)
    assert L.dtype == L_ref.dtype == torch.float32
    torch.testing.assert_close(L, L_ref)


def test_errors():
    Z, t = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    with pytest.raises(ValueError, match=r"Expected target class indices in \[0, 2\], got values \[3\]"):
        F.cross_entropy(Z, torch.tensor([0, 1, 3, 0]))
    with pytest.raises(ValueError, match=r"got values \[-1\]"):
        F.cross_entropy(Z, torch.tensor([0, -1, 2, 0]))
    with pytest.raises(ValueError, match=r"Expected target of shape \(4,\) to match logits"):
        F.cross_entropy(Z, t[:3])
    with pytest.raises(TypeError, match="Expected target to hold integer class indices, got dtype torch.float32"):
        F.cross_entropy(Z, t.float())
    with pytest.raises(ValueError, match=r"Expected logits of shape \(N, C\)"):
        F.cross_entropy(Z[0], t)
    with pytest.raises(ValueError, match="Expected reduction to be 'mean', 'sum' or 'none', got 'avg'"):
        F.cross_entropy(Z, t, "avg")
