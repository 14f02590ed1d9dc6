"""deformed_images: InfiMNIST-style rows, seeded by chunk, the identity when nothing is drawn."""

import pytest
import torch

from torchsvm.deform import deform, deformed_images

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _digits(m=37, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.zeros(m, 28, 28, dtype=torch.uint8)
    images[:, 6:22, 10:18] = torch.randint(100, 256, (m, 16, 8), generator=g, dtype=torch.uint8)  # a stroke
    return images, torch.arange(m) % 10


@pytest.mark.parametrize("device", DEVICES)
def test_rows_labels_and_seeded_stream(device):
    images, labels = _digits()
    X, y = deformed_images(images, labels, 5000, seed=3, device=device)
    assert X.shape == (5000, 28, 28) and X.dtype == torch.uint8 and X.device.type == device
    assert torch.equal(y.cpu(), labels[torch.arange(5000) % 37])
    # Any range of the stream alone gives the same rows (chunks straddled), and again for the same seed.
    part, _ = deformed_images(images, labels, 1000, seed=3, start=4000, device=device)
    assert torch.equal(part, X[4000:])
    assert torch.equal(deformed_images(images, labels, 50, seed=3, device=device)[0], X[:50])
    other, _ = deformed_images(images, labels, 50, seed=4, device=device)
    assert not torch.equal(other, X[:50])


def test_nothing_drawn_is_the_identity():
    images, labels = _digits()
    X, _ = deformed_images(images, labels, 74, alpha=0.0, max_rotation=0, max_scale=0, max_shear=0, max_shift=0)
    assert torch.equal(X, images.repeat(2, 1, 1))
    Xf, _ = deformed_images(images.float() / 255, labels, 37, alpha=0.0, max_rotation=0, max_scale=0, max_shear=0,
                            max_shift=0)
    assert Xf.dtype == torch.float32
    torch.testing.assert_close(Xf, images.float() / 255, atol=1e-5, rtol=0)


def test_deformations_move_the_stroke_a_little():
    images, labels = _digits()
    X, _ = deformed_images(images, labels, 370, seed=0)
    a, b = X.float().flatten(1), images.repeat(10, 1, 1).float().flatten(1)
    corr = torch.nn.functional.cosine_similarity(a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True))
    assert (X != images.repeat(10, 1, 1)).any(dim=(1, 2)).all()  # every row changed
    assert 0.3 < float(corr.mean()) < 0.99  # still the same stroke, moved
    # Ink is kept roughly (bilinear resampling, scale within 10%, the field compresses or stretches).
    ratio = a.sum(1) / b.sum(1)
    assert 0.8 < float(ratio.median()) < 1.25  # one image may gain or lose half; not the set


def test_errors():
    images, labels = _digits()
    with pytest.raises(ValueError, match=r"Expected images of shape \(M, H, W\)"):
        deformed_images(images.flatten(1), labels, 3)
    with pytest.raises(ValueError, match=r"Expected labels of shape \(37,\), got \(36,\)"):
        deformed_images(images, labels[:-1], 3)
    with pytest.raises(ValueError, match="Expected n >= 0"):
        deformed_images(images, labels, -1)
    with pytest.raises(ValueError, match="Expected sigma > 0"):
        deformed_images(images, labels, 3, sigma=0)


def test_deform_a_batch_in_memory():
    """deform: the same warp as the rows' stream, on a float batch, with a caller's generator."""
    images, _ = _digits()
    src = images.float() / 255
    out = deform(src, torch.Generator().manual_seed(1))
    assert out.shape == src.shape and out.dtype == src.dtype and (out != src).any(dim=(1, 2)).all()
    assert torch.equal(deform(src, torch.Generator().manual_seed(1)), out)  # seeded
    still = deform(src.double(), alpha=0.0, max_rotation=0, max_scale=0, max_shear=0, max_shift=0)
    assert still.dtype == torch.float64
    torch.testing.assert_close(still, src.double(), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match=r"Expected float images of shape \(B, H, W\)"):
        deform(images)
    with pytest.raises(ValueError, match="sigma > 0"):
        deform(src, sigma=0.0)
