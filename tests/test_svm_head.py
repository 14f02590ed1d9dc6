import math

import pytest
import pytorch_lightning as pl
import torch

from lightning_modules import EpisodeDataModule, FewShotModule
from tests.idx import write_dataset
from torchsvm.functional import crammer_singer_dual, svm_dual
from torchsvm.kernels import RBF
from torchsvm.nn import ConvEmbedding, SVMHead


def episodes(B=3, n_way=4, k_shot=3, n_query=5, D=8, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(B, n_way, D, generator=g, dtype=torch.float64) * 2
    labels = torch.arange(n_way).repeat_interleave(k_shot).repeat(B, 1)
    q_labels = torch.arange(n_way).repeat_interleave(n_query).repeat(B, 1)
    noise = torch.randn(B, n_way * k_shot, D, generator=g, dtype=torch.float64)
    support = centers.gather(1, labels.unsqueeze(-1).expand(B, -1, D)) + noise
    noise = torch.randn(B, n_way * n_query, D, generator=g, dtype=torch.float64)
    query = centers.gather(1, q_labels.unsqueeze(-1).expand(B, -1, D)) + noise
    return support.to(device), labels.to(device), query.to(device), q_labels.to(device)


@pytest.mark.parametrize("kind", ["crammer_singer", "ovr", "prototype"])
def test_head_shapes_devices_and_gradients(device, kind):
    S, y, Q, qy = episodes(device=device)
    S.requires_grad_(True)
    head = SVMHead(kind, C=0.5, scale=2.0).to(device=device, dtype=torch.float64)
    logits = head(S, y, Q)
    assert logits.shape == (3, 20, 4) and logits.device == S.device and logits.dtype == torch.float64
    assert float((logits.argmax(-1) == qy).double().mean()) > 0.7  # separable clusters
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), qy.flatten())
    loss.backward()
    assert S.grad is not None and bool(torch.isfinite(S.grad).all()) and float(S.grad.abs().sum()) > 0
    assert head.scale.grad is not None
    # Unbatched inputs give unbatched logits.
    assert head(S[0].detach(), y[0], Q[0]).shape == (20, 4)


def test_heads_compute_their_formulas():
    S, y, Q, _ = episodes(B=2)
    K, Kq = S @ S.mT, Q @ S.mT
    cs = SVMHead("crammer_singer", C=0.3, scale=1.5, tol=1e-10)
    alpha = crammer_singer_dual(K, y, 0.3, tol=1e-10)
    torch.testing.assert_close(cs(S, y, Q), 1.5 * Kq @ alpha)
    ovr = SVMHead("ovr", C=0.3, learn_scale=False, tol=1e-10)
    for m in range(4):
        ym = torch.where(y == m, 1.0, -1.0).double()
        a, b = svm_dual(K, ym, 0.3, tol=1e-10)
        torch.testing.assert_close(ovr(S, y, Q)[..., m], (Kq @ (a * ym).unsqueeze(-1)).squeeze(-1) + b.unsqueeze(-1))
    proto = SVMHead("prototype", learn_scale=False)
    means = torch.stack([S[:, y[0] == m].mean(1) for m in range(4)], 1)  # (B, M, D)
    torch.testing.assert_close(proto(S, y, Q), -((Q.unsqueeze(2) - means.unsqueeze(1)) ** 2).sum(-1))


def test_head_with_an_rbf_kernel():
    S, y, Q, qy = episodes()
    logits = SVMHead("crammer_singer", C=1.0, kernel=RBF(0.05))(S, y, Q)
    assert float((logits.argmax(-1) == qy).double().mean()) > 0.7


def test_head_errors():
    S, y, Q, _ = episodes()
    head = SVMHead()
    with pytest.raises(ValueError, match="every class present"):
        head(S, torch.where(y == 3, 0, y), Q, n_way=4)
    with pytest.raises(ValueError, match=r"support_labels in \[0, 2\]"):
        head(S, y, Q, n_way=3)
    with pytest.raises(ValueError, match="Expected support to be finite"):
        head(S * float("nan"), y, Q)
    with pytest.raises(ValueError, match="same B and D"):
        head(S, y, Q[..., :3])
    with pytest.raises(ValueError, match="Expected integer support_labels"):
        head(S, y.double(), Q)
    with pytest.raises(ValueError, match="Expected kind"):
        SVMHead("svm")
    with pytest.raises(ValueError, match="Expected C > 0"):
        SVMHead(C=0)


def test_head_inside_a_network():
    """The README's example: a head in a user's own module, trained by a plain loop."""

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 8))
            self.head = SVMHead("crammer_singer", C=0.1)

        def forward(self, support, labels, query):
            B, N, Q = support.shape[0], support.shape[1], query.shape[1]
            return self.head(self.embed(support).reshape(B, N, -1), labels, self.embed(query).reshape(B, Q, -1))

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    S, y, Q, qy = (t.float() if t.is_floating_point() else t for t in episodes(seed=1))
    losses = []
    for _ in range(15):
        loss = torch.nn.functional.cross_entropy(net(S, y, Q).flatten(0, 1), qy.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]


@pytest.fixture
def episode_data(tmp_path):
    return write_dataset(tmp_path / "data", n_train=200, n_test=100)  # 20 / 10 images per digit


@pytest.mark.parametrize("head", ["crammer_singer", "prototype"])
def test_module_fit_and_test_on_tiny_episodes(episode_data, tmp_path, head):
    dm = EpisodeDataModule(data_dir=str(episode_data), download=False, n_way=3, k_shot=2, n_query=3,
                           train_classes=[0, 1, 2, 3], test_classes=[5, 6, 7], episodes_per_batch=2,
                           train_episodes=4, val_episodes=4, test_episodes=6, test_shots=[2, 1])
    module = FewShotModule(embedding=ConvEmbedding(16, channels=4), head=head)
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", enable_progress_bar=False, enable_model_summary=False,
                         logger=pl.loggers.TensorBoardLogger(tmp_path, name="tb"), num_sanity_val_steps=0,
                         default_root_dir=tmp_path)
    trainer.fit(module, datamodule=dm)
    assert {"train_loss_epoch", "train_acc", "train_acc_ci95", "val_acc", "val_acc_ci95", "hp_metric"} <= set(
        trainer.callback_metrics)
    assert "val_acc" in trainer.progress_bar_metrics  # shown beside the loss, not only in TensorBoard
    (results,) = [trainer.test(module, datamodule=dm, verbose=False)]
    # Each loader's figures under that loader only (the 1-shot accuracy is not in the 2-shot column).
    assert set(results[0]) == {"test_acc", "test_acc_ci95", "test_acc_2shot", "test_acc_2shot_ci95"}
    assert set(results[1]) == {"test_acc_1shot", "test_acc_1shot_ci95"}
    metrics = {k: v for r in results for k, v in r.items()}
    assert {"test_acc", "test_acc_ci95", "test_acc_2shot", "test_acc_1shot", "test_acc_1shot_ci95"} <= set(metrics)
    assert metrics["test_acc"] == metrics["test_acc_2shot"] and 0.0 <= metrics["test_acc"] <= 1.0
    # The interval is 1.96 std / sqrt(6 episodes): bounded by 1.96 / (2 sqrt(6)) * sqrt(6 / 5).
    assert 0.0 <= metrics["test_acc_ci95"] <= 1.96 * 0.5 * math.sqrt(6 / 5) / math.sqrt(6) + 1e-9


def test_episodes_are_fixed_and_new_each_training_epoch(episode_data):
    dm = EpisodeDataModule(data_dir=str(episode_data), download=False, n_way=3, k_shot=2, n_query=3,
                           train_classes=[0, 1, 2, 3], test_classes=[5, 6, 7], episodes_per_batch=2, train_episodes=4)
    dm.setup("fit")
    support, s_labels, query, q_labels = dm.val_set[0]
    assert support.shape == (6, 1, 28, 28) and s_labels.tolist() == [0, 0, 1, 1, 2, 2] and query.shape[0] == 9
    assert torch.equal(dm.val_set[0][0], support)  # validation episodes are fixed
    loader = dm.train_dataloader()
    first = torch.cat([b[0] for b in loader])
    loader.sampler.set_epoch(1)
    assert not torch.equal(first, torch.cat([b[0] for b in loader]))  # new episodes in a new epoch
    with pytest.raises(ValueError, match="disjoint"):
        EpisodeDataModule(train_classes=[0, 1], test_classes=[1, 2], n_way=2)
    with pytest.raises(ValueError, match="Expected k_shot \\+ n_query <= 20"):
        EpisodeDataModule(data_dir=str(episode_data), download=False, n_way=3, k_shot=10, n_query=11,
                          train_classes=[0, 1, 2, 3], test_classes=[5, 6, 7]).setup("fit")


def test_augmentation_warps_training_batches_only(episode_data):
    """augment=True deforms training episodes on their way to the module (about the background of
    standardized images too); validation and test episodes pass unchanged."""
    for normalize in (False, True):
        dm = EpisodeDataModule(data_dir=str(episode_data), download=False, n_way=3, k_shot=2, n_query=3,
                               train_classes=[0, 1, 2, 3], test_classes=[5, 6, 7], augment=True, normalize=normalize)
        dm.setup("fit")
        batch = next(iter(dm.train_dataloader()))

        class Stage:  # what on_after_batch_transfer reads of the trainer
            training = True

        dm.trainer = Stage()
        support, s_labels, query, q_labels = dm.on_after_batch_transfer(batch, 0)
        assert support.shape == batch[0].shape and torch.equal(s_labels, batch[1]) and torch.equal(q_labels, batch[3])
        assert not torch.equal(support, batch[0]) and not torch.equal(query, batch[2])
        # A blank image stays blank: the warp pads with the background's value.
        blank = torch.full_like(batch[0][:, :1], float(batch[0].min()))
        assert torch.allclose(dm._augment(blank), blank, atol=1e-5)
        Stage.training = False
        assert all(torch.equal(a, b) for a, b in zip(dm.on_after_batch_transfer(batch, 0), batch, strict=True))


def test_feature_map_embedding_and_cosine_schedule(episode_data, tmp_path):
    assert ConvEmbedding(None, channels=4)(torch.zeros(2, 1, 28, 28)).shape == (2, 4 * 49)
    with pytest.raises(ValueError, match="out_features"):
        ConvEmbedding(0)
    with pytest.raises(ValueError, match="lr_schedule"):
        FewShotModule(lr_schedule="step")
    dm = EpisodeDataModule(data_dir=str(episode_data), download=False, n_way=3, k_shot=2, n_query=3,
                           train_classes=[0, 1, 2, 3], test_classes=[5, 6, 7], episodes_per_batch=2, train_episodes=4,
                           val_episodes=2, augment=True)
    module = FewShotModule(embedding_dim=None, channels=4, lr_schedule="cosine", lr=0.01)
    lr = pl.callbacks.LearningRateMonitor(logging_interval="step")
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", enable_progress_bar=False, enable_model_summary=False,
                         logger=pl.loggers.CSVLogger(tmp_path), callbacks=[lr], num_sanity_val_steps=0,
                         log_every_n_steps=1, enable_checkpointing=False)
    trainer.fit(module, datamodule=dm)
    rates = lr.lrs["lr-Adam"]  # one per step: 2 epochs of 2 batches
    assert len(rates) == 4 and rates[0] == pytest.approx(0.01) and rates == sorted(rates, reverse=True)
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)  # annealed to 0
