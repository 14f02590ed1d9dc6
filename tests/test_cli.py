"""The `torchsvm` Lightning CLI: every shipped config, checkpoints, misspelled options, thread shares and the
console script."""

import os
import subprocess
import sys
from pathlib import Path

import numba
import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from lightning_modules import ClassifierModule, MNISTDataModule
from lightning_modules.cli import build_cli, cli_main, cpu_thread_share, resolve_config_names
from tests.conftest import ROOT


@pytest.mark.parametrize("config", [pytest.param(p, marks=pytest.mark.slow) if p.name == "svm_head.yaml" else p
                                    for p in sorted((ROOT / "configs").glob("*.yaml"))], ids=lambda p: p.name)
def test_every_config_fits_one_batch(config, tiny_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # configs write under ./outputs
    monkeypatch.setattr(sys, "argv", ["torchsvm"])  # the command line is args=, not pytest's own
    if "RegressionDataModule" in config.read_text():  # synthetic: nothing to point at
        data = ["--data.n_samples", "200", "--model.n_train", "100", "--model.working_set_size", "16"]
    else:
        data = ["--data.data_dir", str(tiny_data), "--data.download", "false"]
    cli_main(["fit", "--config", str(config), *data, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1",
              "--trainer.limit_val_batches", "1",
              "--trainer.enable_progress_bar", "false", "--trainer.accelerator", "cpu"])
    assert list((tmp_path / "outputs").rglob("events.out.tfevents.*"))
    assert list((tmp_path / "outputs").rglob("*.ckpt"))



def test_cli_test_from_checkpoint(tiny_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["torchsvm"])
    common = ["--config", "two_layer_net",  # a shipped config, by name
              "--data.data_dir", str(tiny_data), "--data.download", "false",
              "--trainer.enable_progress_bar", "false", "--trainer.accelerator", "cpu"]
    cli_main(["fit", *common, "--trainer.max_epochs", "1"])
    (ckpt,) = (tmp_path / "outputs").rglob("*.ckpt")
    cli_main(["test", *common, "--ckpt_path", str(ckpt)])
    # Resuming with other model arguments is refused, naming them (Lightning would run the checkpoint's silently).
    with pytest.raises(ValueError, match=r"--ckpt_path .*other model arguments.*lr: checkpoint 0\.\d+, command 0\.5"):
        cli_main(["fit", *common, "--trainer.max_epochs", "2", "--model.lr", "0.5", "--ckpt_path", str(ckpt)])
    cli_main(["fit", *common, "--trainer.max_epochs", "2", "--ckpt_path", str(ckpt)])  # the same arguments: resumes



@pytest.mark.parametrize("option,expected", [
    ("--data.datadir", "--data.datadir: MNISTDataModule has no option 'datadir'; did you mean --data.data_dir?"),
    ("--model.lrr", "--model.lrr: ClassifierModule has no option 'lrr'; did you mean --model.lr?"),
])
def test_cli_names_a_misspelled_option(option, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["torchsvm"])
    with pytest.raises(SystemExit):
        cli_main(["fit", "--config", str(ROOT / "configs" / "two_layer_net.yaml"), option, "1"])
    err = capsys.readouterr().err
    assert f"error: {expected}" in err and "Expected a <class 'NoneType'>" not in err



@pytest.mark.parametrize("trainer,cores,preset,expected", [
    ({"accelerator": "cpu", "devices": 2}, 2, {}, {"OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}),
    ({"accelerator": "cpu", "devices": "4"}, 16, {}, {"OMP_NUM_THREADS": "4", "NUMBA_NUM_THREADS": "4"}),
    ({"accelerator": "cpu", "devices": [0, 1, 2]}, 2, {}, {"OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}),
    ({"accelerator": "cpu", "devices": 2}, 8, {"OMP_NUM_THREADS": "3"}, {"NUMBA_NUM_THREADS": "4"}),  # the user's own kept
    ({"accelerator": "cpu", "devices": 1}, 8, {}, {}),
    ({"accelerator": "cpu", "devices": "auto"}, 8, {}, {}),
    ({"accelerator": "gpu", "devices": 2}, 8, {}, {}),
])
def test_cpu_processes_get_a_share_of_the_cores(trainer, cores, preset, expected):
    assert cpu_thread_share(trainer, cores, environ=preset) == expected



def test_cli_sets_the_thread_share_before_launching(tmp_path, monkeypatch, capsys):
    """Under ``--trainer.devices 2`` on the CPU, the variables are in the environment the launched
    processes inherit, and this process's own pools are narrowed; restored afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["torchsvm"])
    for name in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS"):
        monkeypatch.setenv(name, "0")
        monkeypatch.delenv(name)  # absent during the test, restored after it
    monkeypatch.setattr("lightning_modules.cli._usable_cores", lambda: 4)
    torch_threads, numba_threads = torch.get_num_threads(), numba.get_num_threads()
    try:
        build_cli(["--config", str(ROOT / "configs" / "two_layer_net.yaml"), "--trainer.accelerator", "cpu",
                   "--trainer.devices", "2", "--trainer.strategy", "ddp"], run=False)
        assert os.environ["OMP_NUM_THREADS"] == os.environ["NUMBA_NUM_THREADS"] == "2"
        assert torch.get_num_threads() == 2
        assert numba.get_num_threads() == min(2, numba.config.NUMBA_NUM_THREADS)
    finally:
        torch.set_num_threads(torch_threads)
        numba.set_num_threads(numba_threads)



def test_config_names_resolve_to_the_shipped_configs():
    assert resolve_config_names(["fit", "--config", "kernel_svm", "--config=svm_head"]) == [
        "fit", "--config", str(ROOT / "configs" / "kernel_svm.yaml"), f"--config={ROOT / 'configs' / 'svm_head.yaml'}"]
    kept = ["fit", "--config", "my/own.yaml", "--config", "{trainer: {max_epochs: 1}}"]
    assert resolve_config_names(kept) == kept
    with pytest.raises(ValueError, match="--config two_layer: no such file, and no shipped config of that name "
                                         r"\(shipped: kernel_svm, kernel_svr, linear_svm, svm_head, two_layer_net\)"):
        resolve_config_names(["fit", "--config", "two_layer"])



@pytest.mark.slow
def test_console_script_exits_zero(tmp_path):
    exe = Path(sys.executable).with_name("torchsvm")
    if not exe.exists():
        pytest.skip("the torchsvm console script is not installed beside this Python")
    result = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "fit" in result.stdout



def _tiny_fit(model, dm, root):
    trainer = pl.Trainer(max_steps=4, max_epochs=3, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, limit_val_batches=0, accelerator="cpu",
                         callbacks=[ModelCheckpoint(dirpath=root, save_last=True)])
    trainer.fit(model, datamodule=dm)
    return root / "last.ckpt"


@pytest.mark.parametrize("kind", ["kernel_svm", "linear_svm", "classifier"])
def test_export_command_writes_a_checkpoints_model(kind, tiny_data, tmp_path, capsys):
    """``torchsvm export --ckpt``: the program's predictions are the LightningModule's (flattened images in)."""
    from lightning_modules import KernelSVMModule, LinearSVMModule

    dm = MNISTDataModule(data_dir=str(tiny_data), batch_size=32, download=False)
    model = {"kernel_svm": lambda: KernelSVMModule(C=2.0, gamma=0.02, n_train=150, working_set_size=16),
             "linear_svm": lambda: LinearSVMModule(num_features=784, num_classes=10),
             "classifier": lambda: ClassifierModule(hidden_features=16)}[kind]()
    ckpt = _tiny_fit(model, dm, tmp_path / "ckpt")
    out = tmp_path / f"{kind}.pt2"
    cli_main(["export", "--ckpt", str(ckpt), "--out", str(out), "--output", "predict"])
    said = capsys.readouterr().out
    assert f"wrote {out} (pt2): input X" in said and "(batch, 784); output predict int64 (batch)" in said
    loaded = type(model).load_from_checkpoint(ckpt, map_location="cpu").eval()
    dm.setup("test")
    x, _ = dm.test_set.tensors
    with torch.no_grad():
        expected = loaded(x).argmax(1)
    program = torch.export.load(str(out)).module()
    flat = x.flatten(1).to(torch.float64 if kind == "kernel_svm" else torch.float32)
    torch.testing.assert_close(program(flat), expected)


def test_export_command_from_a_pickle_and_a_libsvm_file(tmp_path, capsys):
    import pickle

    import numpy as np
    from sklearn.datasets import load_iris

    from torchsvm import SVC
    from torchsvm.libsvm_format import save_model

    X, y = load_iris(return_X_y=True)
    est = SVC(device="cpu").fit(X, y)
    (tmp_path / "svc.pkl").write_bytes(pickle.dumps(est))
    save_model(est, tmp_path / "svc.model")
    for source in (["--pickle", str(tmp_path / "svc.pkl")], ["--libsvm", str(tmp_path / "svc.model")]):
        out = tmp_path / "svc.pt2"
        cli_main(["export", *source, "--out", str(out)])
        assert "output decision_function float64 (batch, 3)" in capsys.readouterr().out
        got = torch.export.load(str(out)).module()(torch.as_tensor(X)).numpy()
        np.testing.assert_allclose(got, est.decision_function(X), rtol=1e-6, atol=1e-9)
    with pytest.raises(SystemExit):
        cli_main(["export", "--pickle", str(tmp_path / "svc.pkl"), "--out", str(tmp_path / "svc.txt")])
    assert "expected --format pt2 or onnx" in capsys.readouterr().err
    torch.save({"not": "a checkpoint"}, tmp_path / "bad.ckpt")
    with pytest.raises(ValueError, match="expected a Lightning checkpoint"):
        cli_main(["export", "--ckpt", str(tmp_path / "bad.ckpt"), "--out", str(out)])
    (tmp_path / "cut.ckpt").write_bytes((tmp_path / "bad.ckpt").read_bytes()[:50])  # a truncated file
    with pytest.raises(ValueError, match="cut.ckpt: expected a Lightning checkpoint, got a file torch.load cannot read"):
        cli_main(["export", "--ckpt", str(tmp_path / "cut.ckpt"), "--out", str(out)])
    (tmp_path / "cut.pkl").write_bytes((tmp_path / "svc.pkl").read_bytes()[:100])
    with pytest.raises(ValueError, match="cut.pkl: expected a pickled torchsvm estimator, got a file pickle cannot read"):
        cli_main(["export", "--pickle", str(tmp_path / "cut.pkl"), "--out", str(out)])
