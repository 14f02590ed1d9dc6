#!/usr/bin/env python
"""Train and test the two-layer network (hand-written FC/ReLU/softmax) on MNIST or Fashion-MNIST.

    python scripts/train_two_layer_net.py --data-dir ../shared/data/mnist-10k --epochs 10

Writes TensorBoard logs and the last checkpoint under --output-dir (``tensorboard/version_N``),
and ``two_layer_net.png`` there: training loss and train/test accuracy per epoch. The last
line printed is ``test_acc=<value>``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on training machines
import matplotlib.pyplot as plt  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
from pytorch_lightning.loggers import TensorBoardLogger  # noqa: E402

from lightning_modules import ClassifierModule, MNISTDataModule, TestAccuracyPerEpoch  # noqa: E402
from lightning_modules.history import read_scalars  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist")
    p.add_argument("--data-dir", default=None, help="root holding MNIST/raw or FashionMNIST/raw "
                   "(default: $TORCHSVM_DATA_DIR, else ./data)")
    p.add_argument("--no-download", action="store_true", help="fail instead of downloading missing files")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--hidden", type=int, default=1024, help="hidden layer width")
    p.add_argument("--optimizer", choices=["sgd", "adam"], default="adam")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--accelerator", choices=["auto", "cpu", "gpu"], default="auto")
    p.add_argument("--precision", default=None, help="Lightning precision, e.g. bf16-mixed on a GPU")
    p.add_argument("--output-dir", default="outputs/two_layer_net")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--limit-batches", type=float, default=None,
                   help="batches per epoch and per evaluation (a smoke test uses 1)")
    p.add_argument("--log-every", type=int, default=10, help="log the training loss every N steps")
    p.add_argument("--quiet", action="store_true", help="no progress bars or Lightning banners")
    args = p.parse_args(argv)
    if args.epochs < 1:
        p.error(f"--epochs must be >= 1, got {args.epochs}")
    return args


def plot_history(log_dir: Path, path: Path, title: str) -> None:
    """Training loss and train/val/test accuracy per epoch, from the run's TensorBoard events."""
    curves = read_scalars(log_dir, ["train_loss_epoch", "train_acc", "val_acc", "test_acc_epoch"])
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    if "train_loss_epoch" in curves:
        values = [v for _, v in curves["train_loss_epoch"]]
        ax_loss.plot(range(1, len(values) + 1), values, marker="o", label="train")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="training loss")
    for tag, label in (("train_acc", "train"), ("val_acc", "validation"), ("test_acc_epoch", "test")):
        if tag in curves:
            values = [v for _, v in curves[tag]]
            ax_acc.plot(range(1, len(values) + 1), values, marker="o", label=label)
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> float:
    args = parse_args(argv)
    loggers = [logging.getLogger(name) for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric")]
    levels = [logger.level for logger in loggers]
    if args.quiet:
        for logger in loggers:
            logger.setLevel(logging.WARNING)
    try:
        return _run(args)
    finally:  # a caller's process (a notebook, the tests) keeps its own logging levels
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _run(args: argparse.Namespace) -> float:
    pl.seed_everything(args.seed, verbose=not args.quiet)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)

    data = MNISTDataModule(
        data_dir=args.data_dir, dataset=args.dataset, batch_size=args.batch_size,
        num_workers=args.num_workers, download=not args.no_download, normalize=True, seed=args.seed,
    )
    model = ClassifierModule(hidden_features=args.hidden, optimizer=args.optimizer, lr=args.lr,
                             weight_decay=args.weight_decay)
    # Each run gets its own version_N folder: earlier logs and checkpoints are never overwritten.
    logger = TensorBoardLogger(save_dir=out, name="tensorboard")
    limit = {} if args.limit_batches is None else {
        "limit_train_batches": args.limit_batches, "limit_val_batches": args.limit_batches,
        "limit_test_batches": args.limit_batches, "num_sanity_val_steps": 0}
    trainer = pl.Trainer(
        max_epochs=args.epochs, accelerator=args.accelerator, devices=1, precision=args.precision,
        logger=logger, callbacks=[TestAccuracyPerEpoch()], log_every_n_steps=args.log_every,
        enable_progress_bar=not args.quiet, enable_model_summary=not args.quiet, **limit,
    )
    trainer.fit(model, datamodule=data)
    results = trainer.test(model, datamodule=data, verbose=not args.quiet)
    test_acc = float(results[0]["test_acc"])

    plot_path = out / "two_layer_net.png"
    plot_history(Path(logger.log_dir), plot_path,
                 f"TwoLayerNet on {args.dataset}: test accuracy {test_acc:.4f}")
    if not args.quiet:
        # The command that works whether or not the venv is active: this Python's own TensorBoard.
        print(f"TensorBoard logs: {logger.log_dir}  ({sys.executable} -m tensorboard.main --logdir {out})")
        print(f"plot: {plot_path}")
    print(f"test_acc={test_acc:.4f}")
    return test_acc


if __name__ == "__main__":
    main()
