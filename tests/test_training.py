"""The two-layer network's training: its script, TensorBoard logging, the NaN guard, errors, MNIST accuracy,
SIGTERM and the quiet console (the SVM modules: test_svm_modules.py; the CLI: test_cli.py)."""

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger

from lightning_modules import ClassifierModule, MNISTDataModule
from lightning_modules.history import read_scalars
from tests.conftest import ROOT, load_script


def test_script_one_fast_batch(tiny_data, tmp_path, capsys):
    import logging

    script = load_script("train_two_layer_net")
    level = logging.getLogger("pytorch_lightning").level
    out = tmp_path / "out"
    acc = script.main(["--data-dir", str(tiny_data), "--epochs", "2", "--limit-batches", "1",
                       "--hidden", "16", "--output-dir", str(out), "--accelerator", "cpu", "--quiet",
                       "--no-download", "--log-every", "1"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"test_acc={acc:.4f}"
    assert logging.getLogger("pytorch_lightning").level == level  # --quiet leaves the caller's levels as they were
    assert (out / "two_layer_net.png").stat().st_size > 0
    run = out / "tensorboard" / "version_0"
    curves = read_scalars(run, ["train_loss_step", "train_acc", "val_acc", "test_acc_epoch", "test_acc"])
    assert len(curves["train_acc"]) == 2 and len(curves["test_acc_epoch"]) == 2
    assert {"train_loss_step", "val_acc", "test_acc"} <= curves.keys()
    # A second run keeps the first one's logs; without --quiet it names a TensorBoard command that runs as printed.
    capsys.readouterr()
    script.main(["--data-dir", str(tiny_data), "--epochs", "1", "--limit-batches", "1", "--hidden", "8",
                 "--output-dir", str(out), "--accelerator", "cpu", "--no-download"])
    assert run.is_dir() and (out / "tensorboard" / "version_1").is_dir()
    assert f"({sys.executable} -m tensorboard.main --logdir {out})" in capsys.readouterr().out
    subprocess.run([sys.executable, "-m", "tensorboard.main", "--help"], capture_output=True, check=True)



def test_script_help():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_two_layer_net.py"), "--help"],
                            capture_output=True, text=True, check=True)
    assert "--accelerator" in result.stdout and "--data-dir" in result.stdout



def test_histograms_and_hparams_logged(tiny_data, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    dm = MNISTDataModule(data_dir=str(tiny_data), batch_size=32, download=False)
    logger = TensorBoardLogger(tmp_path, name="tb")
    trainer = pl.Trainer(max_epochs=1, logger=logger, enable_progress_bar=False, enable_checkpointing=False,
                         enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(ClassifierModule(hidden_features=8), datamodule=dm)
    events = EventAccumulator(logger.log_dir, size_guidance={"histograms": 0})
    events.Reload()
    histograms = set(events.Tags()["histograms"])
    assert {"weights/fc1.weight", "grads/fc1.weight", "grads/fc2.bias"} <= histograms
    assert "hp_metric" in events.Tags()["scalars"]
    assert (Path(logger.log_dir) / "hparams.yaml").read_text().count("hidden_features: 8") == 1



class _Explodes(torch.nn.Module):
    """A TwoLayerNet stand-in whose logits turn NaN after a number of training calls."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(784, 10)
        self.after, self.calls = after, 0

    def forward(self, x):
        out = self.fc(x.flatten(1))
        if self.training:
            self.calls += 1
            if self.calls > self.after:
                out = out * float("nan")
        return out



def test_nan_stops_with_clear_error_and_keeps_checkpoints(tiny_data, tmp_path):
    dm = MNISTDataModule(data_dir=str(tiny_data), batch_size=60, download=False)  # 3 batches an epoch
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1, every_n_epochs=1)
    trainer = pl.Trainer(max_epochs=3, logger=TensorBoardLogger(tmp_path, name="tb"), callbacks=[ckpt],
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    with pytest.raises(FloatingPointError, match=r"Training loss became nan at epoch 1, batch 1 \(global step 4\)"):
        trainer.fit(ClassifierModule(model=_Explodes(after=4)), datamodule=dm)
    assert [p.name for p in (tmp_path / "ckpt").iterdir()] == ["epoch=0-step=3.ckpt"]
    assert list((tmp_path / "tb").rglob("events.out.tfevents.*"))



def test_module_errors():
    with pytest.raises(ValueError, match="Expected optimizer to be 'sgd' or 'adam', got 'rmsprop'"):
        ClassifierModule(optimizer="rmsprop")
    with pytest.raises(ValueError, match="Expected lr > 0, got 0"):
        ClassifierModule(lr=0)



@pytest.mark.slow
def test_mnist_10k_accuracy(mnist_dir, tmp_path):
    """The issue's target: real MNIST digits, 10 epochs on CPU, test accuracy >= 0.960."""
    script = load_script("train_two_layer_net")
    acc = script.main(["--data-dir", str(mnist_dir), "--epochs", "10", "--output-dir", str(tmp_path),
                       "--accelerator", "cpu", "--quiet", "--no-download"])
    assert acc >= 0.960



def test_lightning_adverts_and_a_third_party_deprecation_are_silenced(tiny_data, tmp_path):
    """Lightning's cloud-logger tip and torch's LeafSpec FutureWarning (from Lightning's own code) are not
    the user's business; Lightning's other messages and every other warning still show."""
    import logging

    import lightning_modules  # noqa: F401  installs the filters
    from lightning_modules import LinearSVMModule

    class Records(logging.Handler):  # what Lightning's rank-zero logger lets through its filters
        def __init__(self) -> None:
            super().__init__(logging.INFO)
            self.lines: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.lines.append(record.getMessage())

    logger, records = logging.getLogger("pytorch_lightning.utilities.rank_zero"), Records()
    level, logger.level = logger.level, logging.INFO
    logger.addHandler(records)
    dm = MNISTDataModule(data_dir=str(tiny_data), batch_size=32, download=False)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # shown only if no filter of ours drops it
            lightning_modules._quiet.install()
            trainer = pl.Trainer(max_epochs=1, logger=TensorBoardLogger(tmp_path), enable_progress_bar=False,
                                 enable_checkpointing=False, enable_model_summary=False, num_sanity_val_steps=0)
            trainer.fit(LinearSVMModule(lr=0.05), datamodule=dm)
    finally:
        logger.removeHandler(records)
        logger.level = level
    text = "\n".join(records.lines)
    assert "litlogger" not in text and "GPU available" in text
    assert not [w for w in caught if "LeafSpec" in str(w.message)]
    with pytest.warns(UserWarning, match="still shown"):
        warnings.warn("still shown", UserWarning, stacklevel=1)



@pytest.mark.slow
def test_sigterm_stops_the_whole_test_run(tmp_path):
    """conftest's handler: a SIGTERM inside a Lightning fit ends the run (exit status 143), later tests do not run."""
    (tmp_path / "conftest.py").write_text((ROOT / "tests" / "conftest.py").read_text())
    (tmp_path / "test_signal.py").write_text(
        "import os, signal\n"
        "import pytorch_lightning as pl\n"
        "class Stop(pl.Callback):\n"
        "    def on_train_batch_start(self, *args):\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "def test_a():\n"
        "    from pytorch_lightning.demos.boring_classes import BoringModel\n"
        "    pl.Trainer(max_epochs=1, callbacks=[Stop()], logger=False, enable_checkpointing=False,\n"
        "               enable_progress_bar=False).fit(BoringModel())\n"
        "def test_b():\n"
        "    raise AssertionError('ran after the SIGTERM')\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "test_signal.py")],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 143, result.stdout[-2000:]
    assert "ran after the SIGTERM" not in result.stdout and "stopped by signal SIGTERM" in result.stdout + result.stderr

