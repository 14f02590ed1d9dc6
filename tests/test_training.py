import os
import subprocess
import sys
import warnings
from pathlib import Path

import numba
import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger

from lightning_modules import ClassifierModule, MNISTDataModule
from lightning_modules.cli import build_cli, cli_main, cpu_thread_share, resolve_config_names
from lightning_modules.history import read_scalars
from tests.conftest import ROOT, load_script
from tests.idx import write_dataset


@pytest.fixture
def tiny_data(tmp_path) -> Path:
    return write_dataset(tmp_path / "data", n_train=200, n_test=50)


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


@pytest.mark.slow
def test_mnist_10k_accuracy(mnist_dir, tmp_path):
    """The issue's target: real MNIST digits, 10 epochs on CPU, test accuracy >= 0.960."""
    script = load_script("train_two_layer_net")
    acc = script.main(["--data-dir", str(mnist_dir), "--epochs", "10", "--output-dir", str(tmp_path),
                       "--accelerator", "cpu", "--quiet", "--no-download"])
    assert acc >= 0.960


def test_linear_svm_module_logs_svm_curves(tiny_data, tmp_path):
    from lightning_modules import LinearSVMModule

    dm = MNISTDataModule(data_dir=str(tiny_data), batch_size=32, download=False)
    logger = TensorBoardLogger(tmp_path, name="tb")
    trainer = pl.Trainer(max_epochs=2, logger=logger, enable_progress_bar=False, enable_checkpointing=False,
                         enable_model_summary=False, num_sanity_val_steps=0, log_every_n_steps=1)
    model = LinearSVMModule(C=1.0, class_weight={0: 2.0}, lr=0.05)
    trainer.fit(model, datamodule=dm)
    assert model.n_train == 180
    curves = read_scalars(logger.log_dir, ["objective", "hinge_mean", "train_acc", "val_acc",
                                           "margin/class_0", "support_vectors/class_9"])
    assert len(curves) == 6 and len(curves["objective"]) == 2
    # The stripes make the tiny set separable: the objective falls from epoch to epoch.
    assert curves["objective"][1][1] < curves["objective"][0][1]
    # The logged objective is the hinge objective of the whole training split.
    from torchsvm.functional import hinge_objective

    X, y = dm.train_set.tensors
    Y = torch.where(y[:, None] == torch.arange(10), 1.0, -1.0)
    C = model.class_costs[y]
    expected = hinge_objective(X.flatten(1), Y, model.weight.detach().t(), model.bias.detach(), C).sum()
    assert abs(float(expected) - curves["objective"][-1][1]) / float(expected) < 1e-4


def test_linear_svm_module_errors():
    from lightning_modules import LinearSVMModule

    with pytest.raises(ValueError, match="Expected C > 0, got 0"):
        LinearSVMModule(C=0)
    with pytest.raises(ValueError, match="Expected non-negative class weights"):
        LinearSVMModule(class_weight={1: -1.0})


def test_svm_primal_epochs_script(tiny_data, tmp_path, capsys):
    rows = load_script("svm_primal_epochs").main(
        ["--data-dir", str(tiny_data), "--no-download", "--digits", "3", "8", "--epochs", "1", "5",
         "--output-dir", str(tmp_path)])
    assert [r["epochs"] for r in rows] == [1, 5]
    assert (tmp_path / "svm_primal_epochs.png").stat().st_size > 0
    table = (tmp_path / "svm_primal_epochs.md").read_text()
    assert "| NumEpochs |" in table and table.count("\n| 1 |") == 1


def test_svm_2d_demo_script(tmp_path):
    path = load_script("svm_2d_demo").main(["--output-dir", str(tmp_path)])
    assert path.stat().st_size > 0


def test_svm_kernels_2d_script(tmp_path):
    acc = load_script("svm_kernels_2d").main(["--output-dir", str(tmp_path), "--device", "cpu"])
    assert (tmp_path / "kernels_2d.png").stat().st_size > 0 and (tmp_path / "asymmetric_2d.png").stat().st_size > 0
    assert acc["linearly separable"]["linear"] >= 0.95
    assert acc["moons"]["RBF"] >= 0.95 and acc["circles"]["RBF"] >= 0.95
    assert acc["circles"]["linear"] < 0.8  # no line separates concentric circles


def test_kernel_svm_module_solves_the_dual_step_by_step(tiny_data, tmp_path, caplog):
    import logging

    from lightning_modules import KernelSVMModule
    from torchsvm import SVC

    dm = MNISTDataModule(data_dir=str(tiny_data), batch_size=32, download=False)
    logger = TensorBoardLogger(tmp_path, name="tb")
    trainer = pl.Trainer(max_epochs=50, logger=logger, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, log_every_n_steps=1, accelerator="cpu",
                         callbacks=[ModelCheckpoint(dirpath=tmp_path / "ckpt")])
    model = KernelSVMModule(C=2.0, gamma=0.02, n_train=150, working_set_size=16, tol=1e-4)
    with caplog.at_level(logging.INFO):
        trainer.fit(model, datamodule=dm)
    assert trainer.current_epoch < 49  # stopped by convergence, not by max_epochs
    # ... and says so, with what it reached
    assert f"the dual solver converged after {trainer.global_step} steps (max KKT violation" in caplog.text
    assert "<= tol=0.0001" in caplog.text and "support vectors); training stops here." in caplog.text
    assert float(model.solver.gap.max()) <= 1e-4
    curves = read_scalars(logger.log_dir, ["solver/dual_objective", "solver/duality_gap", "solver/kkt_violation",
                                           "solver/n_support_vectors", "train_acc", "val_acc", "hp_metric"])
    dual = [v for _, v in curves["solver/dual_objective"]]
    assert len(dual) >= 3 and all(b >= a * (1 - 1e-6) for a, b in zip(dual, dual[1:], strict=False))  # the dual only rises
    assert curves["solver/duality_gap"][-1][1] < 1e-2 and curves["val_acc"][-1][1] > 0.9
    assert curves["hp_metric"][-1][1] == curves["val_acc"][-1][1]
    # The same problems solved by SVC (its defaults, one-vs-one, in memory): the same pairwise decision
    # values, and the same per-class scores (votes plus confidences).
    X, y = dm.train_set.tensors
    X = X[:150].flatten(1).double()
    reference = SVC(C=2.0, gamma=0.02, tol=1e-4, device="cpu").fit(X, y[:150])
    x_val = dm.val_set.tensors[0].flatten(1).double()
    torch.testing.assert_close(model.decision_function(x_val), reference._decision(x_val), atol=2e-3, rtol=0)
    torch.testing.assert_close(model(x_val), reference.decision_function(x_val), atol=2e-3, rtol=0)
    assert (model(x_val).argmax(1).numpy() == reference.predict(x_val)).all()
    # The fitted model travels in the checkpoint.
    (ckpt,) = (tmp_path / "ckpt").glob("*.ckpt")
    restored = KernelSVMModule.load_from_checkpoint(ckpt)
    torch.testing.assert_close(restored(x_val), model(x_val))


def test_kernel_svr_module_solves_the_dual_step_by_step(tmp_path):
    from lightning_modules import KernelSVRModule, RegressionDataModule
    from torchsvm import SVR

    dm = RegressionDataModule(n_samples=400, batch_size=50)
    logger = TensorBoardLogger(tmp_path, name="tb")
    trainer = pl.Trainer(max_epochs=60, logger=logger, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, log_every_n_steps=1, accelerator="cpu",
                         callbacks=[ModelCheckpoint(dirpath=tmp_path / "ckpt")])
    model = KernelSVRModule(C=5.0, epsilon=0.3, gamma=0.1, n_train=None, working_set_size=32, tol=1e-4)
    trainer.fit(model, datamodule=dm)
    assert trainer.current_epoch < 59 and float(model.solver.gap.max()) <= 1e-4  # stopped by convergence
    curves = read_scalars(logger.log_dir, ["solver/dual_objective", "solver/duality_gap", "train_r2", "train_mae",
                                           "val_r2", "val_mae", "hp_metric"])
    dual = [v for _, v in curves["solver/dual_objective"]]
    assert len(dual) >= 3 and all(b >= a * (1 - 1e-6) for a, b in zip(dual, dual[1:], strict=False))  # the dual only rises
    assert abs(curves["solver/duality_gap"][-1][1]) < 1e-3 and curves["val_r2"][-1][1] > 0.8
    assert curves["hp_metric"][-1][1] == curves["val_r2"][-1][1]
    # The same problem solved by SVR in memory: the same predictions, and R^2 / MAE as scikit-learn computes them.
    X, y = dm.train_set.tensors
    reference = SVR(C=5.0, epsilon=0.3, gamma=0.1, tol=1e-4, device="cpu", kernel_dtype="float64").fit(X.double(), y)
    x_val, y_val = dm.val_set.tensors
    torch.testing.assert_close(model(x_val)[:, 0], reference.predict(x_val.double()), atol=2e-3, rtol=0)
    (result,) = trainer.test(model, datamodule=dm, verbose=False)
    x_test, y_test = dm.test_set.tensors
    assert result["test_r2"] == pytest.approx(reference.score(x_test.double(), y_test), abs=1e-3)
    assert result["test_mae"] == pytest.approx(float((reference.predict(x_test.double()) - y_test).abs().mean()), abs=1e-3)
    (ckpt,) = (tmp_path / "ckpt").glob("*.ckpt")
    torch.testing.assert_close(KernelSVRModule.load_from_checkpoint(ckpt)(x_val), model(x_val))


def test_regression_data_module_reads_files(tmp_path):
    import numpy as np

    from lightning_modules import RegressionDataModule

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 3)), rng.normal(size=50)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    np.savetxt(tmp_path / "d.csv", np.column_stack([X, y]), delimiter=",", header="a,b,c,target", comments="")
    for name in ("d.npz", "d.csv"):
        dm = RegressionDataModule(path=str(tmp_path / name), standardize=False)
        dm.setup("fit")
        n = len(dm.train_set) + len(dm.val_set) + len(dm.test_set)
        assert n == 50 and dm.train_set.tensors[0].shape[1] == 3
        assert sorted(torch.cat([dm.train_set.tensors[1], dm.val_set.tensors[1], dm.test_set.tensors[1]]).tolist()) \
            == pytest.approx(sorted(y.astype(np.float32).tolist()))
    np.savez(tmp_path / "bad.npz", features=X)
    with pytest.raises(ValueError, match="Expected arrays 'X' and 'y'"):
        RegressionDataModule(path=str(tmp_path / "bad.npz")).setup("fit")
    with pytest.raises(ValueError, match="Expected val_split \\+ test_split < 1"):
        RegressionDataModule(val_split=0.5, test_split=0.5)


def test_kernel_svm_module_errors():
    from lightning_modules import KernelSVMModule

    with pytest.raises(ValueError, match="Expected C > 0, got 0"):
        KernelSVMModule(C=0)
    with pytest.raises(ValueError, match="Expected gamma > 0, got -1"):
        KernelSVMModule(gamma=-1)
    with pytest.raises(ValueError, match="Expected kernel to be 'rbf', 'poly' or 'linear', got 'sigmoid'"):
        KernelSVMModule(kernel="sigmoid")
    with pytest.raises(RuntimeError, match="no fitted model yet"):
        KernelSVMModule()(torch.zeros(2, 784))
    with pytest.raises(ValueError, match="The 'multi_class' parameter of SVC must be a str among"):
        KernelSVMModule(multi_class="crammer")  # the estimator's own check
    with pytest.warns(FutureWarning, match="dtype is now kernel_dtype"):  # older checkpoints' hparams still load
        assert KernelSVMModule(dtype="float64").hparams.kernel_dtype == "float64"


def test_learn_rbf_gamma_script_lowers_the_validation_loss(tmp_path):
    result = load_script("learn_rbf_gamma").main(["--dataset", "moons", "--n", "150", "--steps", "8",
                                                  "--output-dir", str(tmp_path)])
    assert result["gamma"] < result["gamma0"] / 3  # from an overfitting gamma = 50 towards smoother
    assert result["val_loss"] < 0.8 * result["val_loss0"]
    assert (tmp_path / "learn_rbf_gamma.png").stat().st_size > 0


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
