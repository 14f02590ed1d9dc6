"""The SVM LightningModules (linear and kernel, classification and regression) and the SVM scripts."""


import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger

from lightning_modules import MNISTDataModule
from lightning_modules.history import read_scalars
from tests.conftest import load_script


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



def _kernel_fit(model, dm, root, max_steps: int, ckpt_path=None):
    logger = TensorBoardLogger(root, name="tb")
    trainer = pl.Trainer(max_steps=max_steps, max_epochs=100, logger=logger, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, log_every_n_steps=1, accelerator="cpu",
                         callbacks=[ModelCheckpoint(dirpath=root / "ckpt", save_last=True)])
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    return trainer, read_scalars(logger.log_dir, ["solver/kkt_violation", "solver/dual_objective"])


@pytest.mark.parametrize("module", ["svm", "svr"])
def test_kernel_module_resumes_where_the_checkpoint_stopped(tiny_data, tmp_path, module):
    """--ckpt_path continues the dual from the checkpoint's iterate: the resumed steps are the uninterrupted
    fit's, value for value; a checkpoint of another problem is refused, naming the difference."""
    from lightning_modules import KernelSVMModule, KernelSVRModule, RegressionDataModule

    if module == "svm":
        dm = MNISTDataModule(data_dir=str(tiny_data), batch_size=8, download=False)
        make = lambda **kw: KernelSVMModule(**{**dict(C=2.0, gamma=0.02, n_train=150, working_set_size=8,  # noqa: E731
                                                     tol=1e-6), **kw})
    else:
        dm = RegressionDataModule(n_samples=200, batch_size=8)
        make = lambda **kw: KernelSVRModule(**{**dict(C=5.0, epsilon=0.3, gamma=0.1, n_train=None,  # noqa: E731
                                                     working_set_size=8, tol=1e-6), **kw})
    _, whole = _kernel_fit(make(), dm, tmp_path / "whole", max_steps=6)
    _, first = _kernel_fit(make(), dm, tmp_path / "part", max_steps=2)
    ckpt = tmp_path / "part" / "ckpt" / "last.ckpt"
    resumed_model = make()
    trainer, rest = _kernel_fit(resumed_model, dm, tmp_path / "rest", max_steps=6, ckpt_path=ckpt)
    assert trainer.global_step == 6
    for name in ("solver/kkt_violation", "solver/dual_objective"):
        assert rest[name] and not set(dict(first[name])) & set(dict(rest[name]))  # the resumed run's own steps
        steps = dict(first[name]) | dict(rest[name])
        assert sorted(steps) == [step for step, _ in whole[name]]  # every step logged once
        assert [steps[s] for s, _ in whole[name]] == [v for _, v in whole[name]], name  # equal, not close
    with pytest.raises(ValueError, match=r"belongs to another problem.*C: checkpoint 2.0, now 3.0"
                       if module == "svm" else r"belongs to another problem.*C: checkpoint 5.0, now 3.0"):
        _kernel_fit(make(C=3.0), dm, tmp_path / "other", max_steps=6, ckpt_path=ckpt)
    if module == "svm":  # the same hyperparameters on other training rows
        from tests.idx import write_dataset

        other = MNISTDataModule(data_dir=str(write_dataset(tmp_path / "data2", n_train=200, n_test=50, seed=1)),
                                batch_size=8, download=False)
        with pytest.raises(ValueError, match=r"belongs to another problem.*training rows: checkpoint"):
            _kernel_fit(make(), other, tmp_path / "other-rows", max_steps=6, ckpt_path=ckpt)
