import pytest
import torch
from torch.autograd import gradcheck

from torchsvm.functional import hinge_objective


def _problem(device, N=30, D=4, K=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, D, generator=g, dtype=torch.float64)
    shape = (N,) if K is None else (N, K)
    y = (torch.randint(0, 2, shape, generator=g) * 2 - 1).double()
    w = torch.randn(D if K is None else (D, K), generator=g, dtype=torch.float64) * 0.5
    b = torch.randn(() if K is None else (K,), generator=g, dtype=torch.float64) * 0.1
    return [t.to(device) for t in (X, y, w, b)]


def _away_from_kink(X, y, w, b):
    # Keep every margin away from 1 so finite differences see a smooth function.
    W = w.unsqueeze(1) if w.ndim == 1 else w
    Y = y.unsqueeze(1) if y.ndim == 1 else y
    m = Y * (X @ W + b)
    return bool(((m - 1).abs() > 1e-3).all())


def plain_objective(X, y, w, b, C):
    """The objective written with plain torch ops (autograd is the reference)."""
    W = w.unsqueeze(1) if w.ndim == 1 else w
    Y = y.unsqueeze(1) if y.ndim == 1 else y
    Cm = C if not isinstance(C, torch.Tensor) or C.ndim != 1 else C.unsqueeze(1)
    out = 0.5 * (W**2).sum(0) + (Cm * torch.relu(1 - Y * (X @ W + b))).sum(0)
    return out[0] if w.ndim == 1 else out


@pytest.mark.parametrize("K", [None, 3])
def test_gradcheck(device, K):
    X, y, w, b = _problem(device, K=K)
    assert _away_from_kink(X, y, w, b)
    C = torch.rand(X.shape[0], dtype=torch.float64, device=device) + 0.5
    for t in (X, w, b, C):
        t.requires_grad_()
    assert gradcheck(lambda X, w, b, C: hinge_objective(X, y, w, b, C), (X, w, b, C))


@pytest.mark.parametrize("K", [None, 3])
def test_matches_autograd_and_formulas(device, K):
    X, y, w, b = _problem(device, K=K, seed=1)
    C = torch.rand(X.shape[0], dtype=torch.float64, device=device) + 0.5
    w.requires_grad_()
    b.requires_grad_()
    E = hinge_objective(X, y, w, b, C)
    # (D,) weights select column 0 of the batched Function's (1,) output.
    node = E.grad_fn if K is not None else E.grad_fn.next_functions[0][0]
    assert type(node).__name__ == "HingeObjectiveFunctionBackward"
    E_ref = plain_objective(X, y, w, b, C)
    torch.testing.assert_close(E, E_ref)
    gw, gb = torch.autograd.grad(E.sum(), (w, b))
    gw_ref, gb_ref = torch.autograd.grad(E_ref.sum(), (w, b))
    torch.testing.assert_close(gw, gw_ref)
    torch.testing.assert_close(gb, gb_ref)
    if K is None:  # the formulas, written out
        f = X @ w.detach() + b.detach()
        a = (y * f < 1).double()
        torch.testing.assert_close(gw, w.detach() - ((C * a * y)[:, None] * X).sum(0))
        torch.testing.assert_close(gb, -(C * a * y).sum())


def test_subgradient_zero_at_margin_exactly_one():
    # x = 1, y = 1, w = 0.5, b = 0.5: y f(x) = 1 exactly, so the sample is not a violator.
    X = torch.tensor([[1.0]], dtype=torch.float64)
    y = torch.tensor([1.0], dtype=torch.float64)
    w = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
    b = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    gw, gb = torch.autograd.grad(hinge_objective(X, y, w, b, 3.0), (w, b))
    assert gw.tolist() == [0.5] and gb.item() == 0.0


def test_scalar_C_and_no_grad(device):
    X, y, w, b = _problem(device)
    torch.testing.assert_close(hinge_objective(X, y, w, b, 2.0), plain_objective(X, y, w, b, 2.0))
    with torch.no_grad():
        assert hinge_objective(X, y, w.requires_grad_(), b, 2.0).grad_fn is None


def test_errors():
    X, y, w, b = _problem("cpu")
    with pytest.raises(ValueError, match=r"Expected y to hold only -1 and \+1, got values \[0"):
        hinge_objective(X, (y > 0).double(), w, b)
    with pytest.raises(ValueError, match="Expected C > 0, got 0"):
        hinge_objective(X, y, w, b, 0.0)
    with pytest.raises(ValueError, match="Expected C > 0 everywhere"):
        hinge_objective(X, y, w, b, -torch.ones(30, dtype=torch.float64))
    with pytest.raises(ValueError, match="Expected X to be finite, got 1 NaN"):
        Xn = X.clone()
        Xn[0, 0] = float("nan")
        hinge_objective(Xn, y, w, b)
    with pytest.raises(ValueError, match=r"Expected y of shape \(30,\)"):
        hinge_objective(X, y[:10], w, b)
    with pytest.raises(ValueError, match="Expected at least one sample"):
        hinge_objective(X[:0], y[:0], w, b)
