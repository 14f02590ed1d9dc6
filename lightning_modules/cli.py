"""The ``torchsvm`` command: a LightningCLI over the project's LightningModules.

    torchsvm fit --config configs/two_layer_net.yaml --data.data_dir ../shared/data/mnist-10k
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from typing import Any, NoReturn

import pytorch_lightning as pl
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

__all__ = ["TorchSVMCLI", "build_cli", "cli_main"]


class TorchSVMCLI(LightningCLI):
    """Any LightningModule of the project as ``--model``; any LightningDataModule as ``--data``,
    :class:`~lightning_modules.MNISTDataModule` when the config names none (its init args may
    then be given bare, as ``data: {dataset: mnist, ...}``)."""

    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.set_defaults({"data": {"class_path": "lightning_modules.MNISTDataModule"}})


class _Parser(LightningArgumentParser):
    """Lightning's parser, with one short line for a misspelled option of the model or the data
    (jsonargparse's own message for it ends in "Expected a <class 'NoneType'>")."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        super().error(_misspelled_option(message) or message, ex)


def _misspelled_option(message: str) -> str | None:
    """``--data.datadir: MNISTDataModule has no option 'datadir'; did you mean --data.data_dir? ...`` from
    jsonargparse's message for an init argument the class does not take; None for any other message."""
    found = re.search(r'Parser key "(\w+)".*?class_path \'([\w.]+)\':\s+Option \'(\w+)\' is not accepted', message, re.S)
    if found is None:
        return None
    key, class_path, option = found.groups()
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None
    names = [p.name for p in inspect.signature(cls).parameters.values()
             if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    close = difflib.get_close_matches(option, names, n=1)
    hint = f"; did you mean --{key}.{close[0]}?" if close else ""
    return f"--{key}.{option}: {name} has no option {option!r}{hint} Its options: {', '.join(names)}."


def build_cli(args: list[str] | None = None, run: bool = True) -> LightningCLI:
    """Build (and by default run) the CLI (see :class:`TorchSVMCLI`)."""
    return TorchSVMCLI(
        pl.LightningModule,
        pl.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        parser_class=_Parser,
        save_config_kwargs={"overwrite": True},
        args=args,
        run=run,
    )


def cli_main(args: list[str] | None = None) -> None:
    """Entry point of ``torchsvm {fit,validate,test,predict}``."""
    build_cli(args)


if __name__ == "__main__":
    cli_main()
