"""LIBSVMDataModule: LIBSVM-format files into the kernel modules, from Python and from the CLI."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import dump_svmlight_file, make_classification

from lightning_modules import LIBSVMDataModule
from lightning_modules.cli import build_cli
from torchsvm import SVC

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def files(tmp_path):
    X, y = make_classification(300, 12, n_informative=6, n_classes=3, class_sep=2.0, random_state=0)
    X[np.abs(X) < 0.5] = 0.0  # sparse rows, as such files are
    labels = np.array([-1, 4, 9])[y]  # the file's labels, not 0 .. K - 1
    dump_svmlight_file(X[:240], labels[:240], str(tmp_path / "train.libsvm"), zero_based=False)
    dump_svmlight_file(X[240:, :10], labels[240:], str(tmp_path / "test.libsvm"), zero_based=False)  # narrower
    return tmp_path, X, labels


def test_rows_classes_and_splits(files):
    root, X, labels = files
    dm = LIBSVMDataModule(str(root / "train.libsvm"), test_path=str(root / "test.libsvm"), val_split=0.25)
    dm.setup("fit")
    assert dm.classes.tolist() == [-1.0, 4.0, 9.0]
    Xtr, ytr = dm.train_set.tensors
    Xv, yv = dm.val_set.tensors
    assert (len(ytr), len(yv)) == (180, 60) and Xtr.dtype == torch.float32 and Xtr.shape[1] == 12
    # Every training row is the file's row, its target the index of its label.
    rows = torch.cat([Xtr, Xv]).double().numpy()
    targets = torch.cat([ytr, yv])
    order = np.lexsort(rows.T[::-1])
    ref = np.lexsort(X[:240].T[::-1])
    np.testing.assert_allclose(rows[order], X[:240][ref], rtol=1e-6)
    np.testing.assert_array_equal(dm.classes[targets].numpy()[order], labels[:240][ref])
    Xt, yt = dm.test_set.tensors
    assert Xt.shape == (60, 12)  # widened to the training file's features
    np.testing.assert_array_equal(dm.classes[yt].numpy(), labels[240:])


def test_regression_and_held_out_test_split(files):
    root, _, labels = files
    dm = LIBSVMDataModule(str(root / "train.libsvm"), task="regression", val_split=0.1, test_split=0.2)
    dm.setup("fit")
    sizes = [len(s) for s in (dm.train_set, dm.val_set, dm.test_set)]
    assert sizes == [168, 24, 48] and dm.classes is None
    assert dm.train_set.tensors[1].dtype == torch.float32


def test_bad_files(files, tmp_path):
    root, _, _ = files
    (tmp_path / "bad.libsvm").write_text("1 1:0.5 2:0.25\n2 1:oops\n")
    with pytest.raises(ValueError, match="line 2"):
        LIBSVMDataModule(str(tmp_path / "bad.libsvm")).setup("fit")
    (tmp_path / "other.libsvm").write_text("-1 1:0.5\n7 2:1.0\n")
    dm = LIBSVMDataModule(str(root / "train.libsvm"), test_path=str(tmp_path / "other.libsvm"))
    with pytest.raises(ValueError, match=r"expected labels among the training file's \[-1.0, 4.0, 9.0\], got \[7.0\]"):
        dm.setup("fit")
    with pytest.raises(FileNotFoundError, match="no such file"):
        LIBSVMDataModule(str(tmp_path / "missing.libsvm")).setup("fit")
    with pytest.raises(ValueError, match="Expected task"):
        LIBSVMDataModule("x", task="ranking")


def test_kernel_svm_config_trains_on_a_libsvm_file(files, tmp_path, monkeypatch):
    """The issue's command: the kernel_svm config with the data module and path swapped on the command line;
    the fitted module predicts like SVC on the same rows."""
    root, X, labels = files
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["torchsvm"])
    cli = build_cli(["fit", "--config", str(ROOT / "configs" / "kernel_svm.yaml"),
                    "--data.class_path", "lightning_modules.LIBSVMDataModule",
                    "--data.path", str(root / "train.libsvm"), "--data.test_path", str(root / "test.libsvm"),
                    "--data.batch_size", "64", "--model.working_set_size", "16", "--model.n_train", "1000",
                    "--model.gamma", "0.1", "--model.C", "1.0", "--model.tol", "0.001",
                    "--trainer.max_epochs", "30", "--trainer.enable_progress_bar", "false",
                    "--trainer.accelerator", "cpu"])
    assert list((tmp_path / "outputs").rglob("*.ckpt"))
    dm, model = cli.datamodule, cli.model.eval()
    Xtr, ytr = dm.train_set.tensors
    Xt, yt = dm.test_set.tensors
    with torch.no_grad():
        predicted = model(Xt).argmax(1)
    reference = SVC(C=1.0, gamma=0.1, tol=1e-3).fit(Xtr.double(), ytr.numpy()).predict(Xt.double())
    assert (predicted.numpy() == reference).mean() >= 0.98
    assert (predicted == yt).float().mean() > 0.8  # three classes: chance is 1/3
