import pytest
import torch

from torchsvm import functional as F
from torchsvm.nn import TwoLayerNet


def test_two_layer_net_matches_torch_reference(device):
    net = TwoLayerNet(12, 7, 3).to(device=device, dtype=torch.float64)
    ref = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3))
    ref = ref.to(device=device, dtype=torch.float64)
    ref.load_state_dict({k.replace("fc1", "1").replace("fc2", "3"): v for k, v in net.state_dict().items()})
    x = torch.randn(5, 3, 4, device=device, dtype=torch.float64)
    t = torch.randint(0, 3, (5,), device=device)
    loss = F.cross_entropy(net(x), t)
    loss_ref = torch.nn.functional.cross_entropy(ref(x), t)
    torch.testing.assert_close(loss, loss_ref)
    grads = torch.autograd.grad(loss, list(net.parameters()))
    grads_ref = torch.autograd.grad(loss_ref, list(ref.parameters()))
    for g, g_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(g, g_ref)


def test_two_layer_net_gradcheck():
    net = TwoLayerNet(6, 5, 3).double()
    x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0, 2, 1, 1])
    assert torch.autograd.gradcheck(lambda x: F.cross_entropy(net(x), t), (x,))


def test_state_dict_round_trip(tmp_path):
    net = TwoLayerNet(784, 32, 10)
    torch.save(net.state_dict(), tmp_path / "net.pt")
    other = TwoLayerNet(784, 32, 10)
    other.load_state_dict(torch.load(tmp_path / "net.pt"))
    x = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(net(x), other(x))
    assert list(net.state_dict()) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]


def test_errors():
    with pytest.raises(ValueError, match="Expected inputs with 784 features per sample, got 100"):
        TwoLayerNet()(torch.randn(2, 100))
    with pytest.raises(ValueError, match="Expected hidden_features to be a positive int, got 0"):
        TwoLayerNet(hidden_features=0)
