"""Lightning under DDP on the CPU (gloo, 2 processes by ddp_spawn): metrics over all ranks.

Each test trains on one process, then evaluates the same weights on one and on two processes:
the figures must agree, since every evaluation sample (or episode) is seen exactly once and the
means and sums are taken over all ranks. Kept small: each 2-process run starts two Pythons.
"""

import pytest
import pytorch_lightning as pl
import torch

from lightning_modules import ClassifierModule, EpisodeDataModule, FewShotModule, LinearSVMModule, MNISTDataModule
from torchsvm.nn import ConvEmbedding
from tests.idx import write_dataset

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


def test_classifier_and_linear_svm_test_metrics_on_one_and_two_processes(data, tmp_path):
    dm = MNISTDataModule(data_dir=str(data), batch_size=16, download=False)
    for model in (ClassifierModule(hidden_features=8), LinearSVMModule(lr=0.05)):
        _trainer(1, tmp_path, max_epochs=1).fit(model, datamodule=dm)
        one = _trainer(1, tmp_path).test(model, datamodule=dm, verbose=False)[0]
        two = _trainer(2, tmp_path).test(model, datamodule=dm, verbose=False)[0]
        assert set(one) == set(two)
        for key in one:  # 51 test images: 26 + 25 on two ranks, each seen once
            assert two[key] == pytest.approx(one[key], rel=1e-5, abs=1e-6), key


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


def test_kernel_svm_module_refuses_several_processes_clearly(data, tmp_path):
    from lightning_modules import KernelSVMModule

    dm = MNISTDataModule(data_dir=str(data), batch_size=64, download=False)
    # ddp_spawn re-raises the child's RuntimeError as a ProcessRaisedException carrying its message.
    with pytest.raises(Exception, match="KernelSVMModule solves its dual on one process; got a trainer with 2"):
        _trainer(2, tmp_path, max_epochs=1).fit(KernelSVMModule(n_train=100), datamodule=dm)
