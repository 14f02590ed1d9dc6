"""The ``torchsvm`` command: a LightningCLI over the project's LightningModules.

    torchsvm fit --config configs/two_layer_net.yaml --data.data_dir ../shared/data/mnist-10k
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.cli import LightningCLI

__all__ = ["TorchSVMCLI", "build_cli", "cli_main"]


class TorchSVMCLI(LightningCLI):
    """Any LightningModule of the project as ``--model``; any LightningDataModule as ``--data``,
    :class:`~lightning_modules.MNISTDataModule` when the config names none (its init args may
    then be given bare, as ``data: {dataset: mnist, ...}``)."""

    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.set_defaults({"data": {"class_path": "lightning_modules.MNISTDataModule"}})


def build_cli(args: list[str] | None = None, run: bool = True) -> LightningCLI:
    """Build (and by default run) the CLI (see :class:`TorchSVMCLI`)."""
    return TorchSVMCLI(
        pl.LightningModule,
        pl.LightningDataModule,
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
