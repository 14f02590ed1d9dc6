"""Lightning under DDP on the CPU (gloo, 2 processes by ddp_spawn): metrics over all ranks.

Each test trains on one process, then evaluates the same weights on one and on two processes:
the figures must agree, since every evaluation sample (or episode) is seen exactly once and the
means and sums are taken over all ranks. Kept small: each 2-process run starts two Pythons.
"""

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from lightning_modules import ClassifierModule, EpisodeDataModule, FewShotModule, LinearSVMModule, MNISTDataModule
from tests.idx import write_dataset
from torchsvm.nn import ConvEmbedding

pytestmark = [
    pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("ddp") / "data", n_train=230, n_test=51)  # odd splits


def _trainer(devices: int, root, **kwargs) -> pl.Trainer:
    return pl.Trainer(accelerator="cpu", devices=devices, strategy="ddp_spawn" if devices > 1 else "auto",
                      logger=False, enable_progress_bar=False, enable_model_summary=False,
                      enable_checkpointing=False, default_root_dir=root, **kwargs)


@pytest.mark.slow
def test_classifier_and_linear_svm_test_metrics_on_one_and_two_processes(data, tmp_path):
    dm = MNISTDataModule(data_dir=str(data), batch_size=16, download=False)
    for model in (ClassifierModule(hidden_features=8), LinearSVMModule(lr=0.05)):
        _trainer(1, tmp_path, max_epochs=1).fit(model, datamodule=dm)
        one = _trainer(1, tmp_path).test(model, datamodule=dm, verbose=False)[0]
        two = _trainer(2, tmp_path).test(model, datamodule=dm, verbose=False)[0]
        assert set(one) == set(two)
        for key in one:  # 51 test images: 26 + 25 on two ranks, each seen once
            assert two[key] == pytest.approx(one[key], rel=1e-5, abs=1e-6), key


@pytest.mark.slow
def test_linear_svm_training_set_statistics_are_sums_over_ranks(data, tmp_path):
    dm = MNISTDataModule(data_dir=str(data), batch_size=16, download=False, train_subset=103)  # 93 train rows
    results = []
    for devices in (1, 2):
        trainer = _trainer(devices, tmp_path, max_epochs=1, limit_val_batches=0)
        trainer.fit(LinearSVMModule(lr=0.0, C=2.0), datamodule=dm)  # w = 0: every hinge is 1
        results.append({k: float(v) for k, v in trainer.callback_metrics.items()})
    for r in results:
        assert r["objective"] == pytest.approx(2.0 * 93 * 10)  # C N K: each row counted once
        assert r["support_vectors/class_3"] == 93.0
    assert results[0]["train_acc"] == pytest.approx(results[1]["train_acc"])


@pytest.mark.slow
def test_few_shot_episode_accuracy_on_one_and_two_processes(data, tmp_path):
    dm = EpisodeDataModule(data_dir=str(data), download=False, n_way=3, k_shot=2, n_query=2,
                           train_classes=[0, 1, 2, 3], test_classes=[5, 6, 7], episodes_per_batch=2,
                           train_episodes=4, val_episodes=5, test_episodes=7, test_shots=[2, 1])
    model = FewShotModule(embedding=ConvEmbedding(8, channels=4), head="crammer_singer")
    _trainer(1, tmp_path, max_epochs=1, limit_val_batches=0).fit(model, datamodule=dm)
    model.eval()
    one = _trainer(1, tmp_path).test(model, datamodule=dm, verbose=False)
    two = _trainer(2, tmp_path).test(model, datamodule=dm, verbose=False)
    merged = [{k: v for r in res for k, v in r.items()} for res in (one, two)]
    for key in ("test_acc", "test_acc_ci95", "test_acc_1shot", "test_acc_1shot_ci95"):
        assert merged[1][key] == pytest.approx(merged[0][key], rel=1e-5, abs=1e-6), key


def _fit_to_checkpoint(model, dm, devices: int, root) -> tuple[pl.LightningModule, dict]:
    """Fit on ``devices`` processes; the model as read back from the last checkpoint (written by rank 0
    only), and the last logged figures."""
    ckpt = ModelCheckpoint(dirpath=root / f"ckpt{devices}", save_last=True)
    trainer = pl.Trainer(accelerator="cpu", devices=devices, strategy="ddp_spawn" if devices > 1 else "auto",
                         logger=False, enable_progress_bar=False, enable_model_summary=False, max_epochs=200,
                         limit_val_batches=0, callbacks=[ckpt], default_root_dir=root)
    trainer.fit(model, datamodule=dm)
    # ddp_spawn hands back the weights, not the callback's state: read the file where save_last puts it.
    return type(model).load_from_checkpoint(root / f"ckpt{devices}" / "last.ckpt"), {
        k: float(v) for k, v in trainer.callback_metrics.items()}


@pytest.mark.slow
@pytest.mark.parametrize("module", ["svm", "svr"])
def test_kernel_modules_solve_one_dual_over_two_processes(module, data, tmp_path):
    """Each rank owns half of the training rows; the sharded solve equals the one-process solve to
    tol, and the checkpoint (written once) tests alike on one and on two processes."""
    from lightning_modules import KernelSVMModule, KernelSVRModule, RegressionDataModule

    if module == "svm":
        dm = MNISTDataModule(data_dir=str(data), batch_size=32, download=False)
        make = lambda: KernelSVMModule(C=2.0, gamma=0.02, n_train=151, working_set_size=16, tol=1e-5)  # noqa: E731
    else:
        dm = RegressionDataModule(n_samples=300, batch_size=32)
        make = lambda: KernelSVRModule(C=5.0, gamma=0.5, n_train=151, working_set_size=16, tol=1e-5)  # noqa: E731
    (one, m1), (two, m2) = (_fit_to_checkpoint(make(), dm, d, tmp_path) for d in (1, 2))
    for key in ("solver/dual_objective", "solver/n_support_vectors"):
        assert m2[key] == pytest.approx(m1[key], rel=1e-5), key
    assert m2["solver/kkt_violation"] <= 1e-5
    train_key = "train_acc" if module == "svm" else "train_r2"
    assert m2[train_key] == pytest.approx(m1[train_key], abs=1e-3)
    # The support vectors in row order either way (rank 0 holds the first block); coefficients to tol.
    torch.testing.assert_close(two.sv, one.sv)
    torch.testing.assert_close(two.coef, one.coef, atol=2e-3, rtol=0)
    torch.testing.assert_close(two.intercept, one.intercept, atol=2e-4, rtol=0)
    reference = _trainer(1, tmp_path).test(one, datamodule=dm, verbose=False)[0]
    single = _trainer(1, tmp_path).test(two, datamodule=dm, verbose=False)[0]
    double = _trainer(2, tmp_path).test(two, datamodule=dm, verbose=False)[0]
    for key in single:
        assert double[key] == pytest.approx(single[key], rel=1e-5, abs=1e-6), key
        assert single[key] == pytest.approx(reference[key], abs=2e-3), key  # the two fits agree to tol


def _solver_state_after(model, dm, root, max_steps: int, ckpt_path=None) -> dict:
    """Fit on two processes up to ``max_steps`` (from ``ckpt_path`` if given); the last checkpoint's solver state."""
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp_spawn", logger=False, enable_progress_bar=False,
                         enable_model_summary=False, max_steps=max_steps, max_epochs=100, limit_val_batches=0,
                         callbacks=[ModelCheckpoint(dirpath=root, save_last=True)], default_root_dir=root)
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    return torch.load(root / "last.ckpt", weights_only=False)["dual_solver"]["state"]


@pytest.mark.slow
def test_kernel_module_resumes_a_sharded_fit(data, tmp_path):
    """A checkpoint of a two-process fit holds every rank's rows of the iterate: resumed on two processes,
    the fit reaches the uninterrupted fit's iterate exactly."""
    from lightning_modules import KernelSVMModule

    dm = MNISTDataModule(data_dir=str(data), batch_size=8, download=False)
    make = lambda: KernelSVMModule(C=2.0, gamma=0.02, n_train=151, working_set_size=8, tol=1e-7)  # noqa: E731
    whole = _solver_state_after(make(), dm, tmp_path / "whole", max_steps=5)
    _solver_state_after(make(), dm, tmp_path / "part", max_steps=2)
    resumed = _solver_state_after(make(), dm, tmp_path / "rest", max_steps=5, ckpt_path=tmp_path / "part" / "last.ckpt")
    assert len(whole["parts"]) == len(resumed["parts"]) == 45  # the one-vs-one pairs of 10 classes
    for a, b in zip(whole["parts"], resumed["parts"], strict=True):
        assert a["alpha"].shape[1] == b["alpha"].shape[1] and a["n_iter"] == b["n_iter"]
        assert torch.equal(a["alpha"], b["alpha"]) and torch.equal(a["G"], b["G"])


@pytest.mark.slow
def test_process_group_destroyed_at_exit(tmp_path):
    """A gloo group alive at interpreter exit aborts the process now and then (SIGABRT, about once in 20
    two-process runs here): importing lightning_modules registers its destruction. A handler registered
    before the import runs after it (atexit is last-in, first-out) and sees the group gone."""
    import subprocess
    import sys

    script = f"""
import atexit, torch.distributed as dist
atexit.register(lambda: print("initialized at exit:", dist.is_initialized()))
import lightning_modules
dist.init_process_group("gloo", init_method="file://{tmp_path / 'store'}", rank=0, world_size=1)
dist.all_reduce(__import__("torch").ones(3))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "initialized at exit: False" in out.stdout
