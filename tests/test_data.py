import numpy as np
import pytest
import torch

from lightning_modules import MNISTDataModule
from tests.idx import write_dataset, write_idx
from torchsvm.data import CorruptDataError, DatasetNotFoundError, load_images, read_idx, resolve_data_dir


def test_read_idx_roundtrip(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    torch.testing.assert_close(read_idx(write_idx(tmp_path / "a", a)), torch.from_numpy(a))
    b = np.array([1, -2, 300], dtype=np.int32)
    torch.testing.assert_close(read_idx(write_idx(tmp_path / "b", b, gz=True)), torch.from_numpy(b))


def test_truncated_file_is_named(tmp_path):
    path = write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CorruptDataError, match=r"Expected 2352 data bytes for shape \(3, 28, 28\).*got 2252 \(truncated\)"):
        read_idx(path)


def test_bad_magic_and_truncated_gzip(tmp_path):
    (tmp_path / "x").write_bytes(b"\x01\x02\x08\x01abcd")
    with pytest.raises(CorruptDataError, match="two zero bytes"):
        read_idx(tmp_path / "x")
    path = write_idx(tmp_path / "y", np.zeros((100, 28, 28), dtype=np.uint8), gz=True)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CorruptDataError, match=f"Could not read IDX file {path}"):
        read_idx(path)


def test_load_images_tiny_folder(tmp_path):
    write_dataset(tmp_path, n_train=30, n_test=10, gz=True)
    X, y = load_images("mnist", "train", tmp_path)
    assert X.shape == (30, 28, 28) and X.dtype == torch.uint8
    assert y.tolist() == [i % 10 for i in range(30)] and y.dtype == torch.int64


def test_mismatched_labels(tmp_path):
    write_dataset(tmp_path, n_train=30, n_test=10)
    write_idx(tmp_path / "MNIST/raw/train-labels-idx1-ubyte", np.zeros(29, dtype=np.uint8))
    with pytest.raises(CorruptDataError, match="Expected 30 labels"):
        load_images("mnist", "train", tmp_path)


def test_labels_out_of_range(tmp_path):
    write_dataset(tmp_path, n_train=30, n_test=10)
    write_idx(tmp_path / "MNIST/raw/train-labels-idx1-ubyte", np.full(30, 12, dtype=np.uint8))
    with pytest.raises(CorruptDataError, match=r"Expected labels in 0..9 in .*train-labels-idx1-ubyte, got values \[12\]"):
        load_images("mnist", "train", tmp_path)


def test_missing_names_folder_and_fixes(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"looked in .*MNIST/raw.*--data-dir.*TORCHSVM_DATA_DIR"):
        load_images("mnist", "train", tmp_path, download=False)


def test_download_failure_is_clear(tmp_path, monkeypatch):
    import torchvision

    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: no network")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
    with pytest.raises(DatasetNotFoundError, match=r"Could not download fashion-mnist into .*FashionMNIST/raw.*no network"):
        load_images("fashion-mnist", "test", tmp_path, download=True)


def test_resolve_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("TORCHSVM_DATA_DIR", raising=False)
    assert str(resolve_data_dir()) == "data"
    monkeypatch.setenv("TORCHSVM_DATA_DIR", str(tmp_path))
    assert resolve_data_dir() == tmp_path
    assert str(resolve_data_dir("elsewhere")) == "elsewhere"


def test_datamodule_tiny_folder(tmp_path):
    write_dataset(tmp_path, n_train=50, n_test=20)
    dm = MNISTDataModule(data_dir=str(tmp_path), batch_size=8, val_split=0.2, download=False)
    dm.prepare_data()
    dm.setup("fit")
    dm.setup("test")
    assert len(dm.train_set) == 40 and len(dm.val_set) == 10 and len(dm.test_set) == 20
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 1, 28, 28) and x.dtype == torch.float32 and y.shape == (8,)
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    # The split is seeded: the same seed gives the same validation set.
    dm2 = MNISTDataModule(data_dir=str(tmp_path), batch_size=8, val_split=0.2, download=False)
    dm2.setup("fit")
    torch.testing.assert_close(dm.val_set.tensors[1], dm2.val_set.tensors[1])


def test_datamodule_env_dir(tmp_path, monkeypatch):
    write_dataset(tmp_path, folder="FashionMNIST", n_train=20, n_test=10)
    monkeypatch.setenv("TORCHSVM_DATA_DIR", str(tmp_path))
    dm = MNISTDataModule(dataset="fashion-mnist", download=False, normalize=True)
    dm.setup("test")
    assert len(dm.test_set) == 10


def test_datamodule_errors():
    with pytest.raises(ValueError, match="Expected val_split in \\(0, 1\\), got 1.5"):
        MNISTDataModule(val_split=1.5)
    with pytest.raises(ValueError, match="Expected dataset to be one of"):
        MNISTDataModule(dataset="cifar")
    with pytest.raises(RuntimeError, match="setup\\(\\) must run"):
        MNISTDataModule().train_dataloader()


def test_real_mnist_10k(mnist_dir):
    dm = MNISTDataModule(data_dir=str(mnist_dir), download=False)
    dm.setup("fit")
    dm.setup("test")
    assert len(dm.train_set) + len(dm.val_set) == 8000 and len(dm.test_set) == 2000
    labels = dm.test_set.tensors[1]
    assert set(labels.tolist()) == set(range(10))


def test_real_fashion_mnist(fashion_dir):
    X, y = load_images("fashion-mnist", "train", fashion_dir)
    assert X.shape == (60000, 28, 28)
    assert torch.bincount(y).tolist() == [6000] * 10
