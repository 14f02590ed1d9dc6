"""The ``torchsvm`` command: a LightningCLI over the project's LightningModules.

    torchsvm fit --config configs/two_layer_net.yaml --data.data_dir ../shared/data/mnist-10k
"""

from __future__ import annotations

import pytorch_lightning as pl
from pytorch_lightning.cli import LightningCLI

from lightning_modules.data import MNISTDataModule

__all__ = ["build_cli", "cli_main"]


def build_cli(args: list[str] | None = None, run: bool = True) -> LightningCLI:
    """Build (and by default run) the LightningCLI: any LightningModule of the project as ``--model``,
    ``MNISTDataModule`` as ``--data`` unless the config names another (``class_path``)."""
    return LightningCLI(
        pl.LightningModule,
        MNISTDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        args=args,
        run=run,
    )


def cli_main(args: list[str] | None = None) -> None:
    """Entry point of ``torchsvm {fit,validate,test,predict}``."""
    build_cli(args)


if __name__ == "__main__":
    cli_main()
