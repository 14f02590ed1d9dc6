"""The ``torchsvm`` command: a LightningCLI over the project's LightningModules.

    torchsvm fit --config two_layer_net --data.data_dir ../shared/data/mnist-10k

``--config`` takes a path or the name of a shipped config (``configs/NAME.yaml``, installed with the
package).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

import pytorch_lightning as pl
import torch
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.utilities import rank_zero_info

__all__ = ["TorchSVMCLI", "build_cli", "cli_main", "cpu_thread_share", "resolve_config_names", "shipped_configs"]


class TorchSVMCLI(LightningCLI):
    """Any LightningModule of the project as ``--model``; any LightningDataModule as ``--data``,
    :class:`~lightning_modules.MNISTDataModule` when the config names none (its init args may
    then be given bare, as ``data: {dataset: mnist, ...}``)."""

    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.set_defaults({"data": {"class_path": "lightning_modules.MNISTDataModule"}})

    def parse_arguments(self, parser: Any, args: Any) -> None:
        super().parse_arguments(parser, args)
        # What the command asked of the model, before Lightning puts a --ckpt_path checkpoint's hyperparameters in
        # its place (LightningCLI._parse_ckpt_path): before_instantiate_classes compares the two.
        self._asked_model = _model_arguments(self.config)

    def before_instantiate_classes(self) -> None:
        _refuse_other_configuration(self._asked_model, _model_arguments(self.config), self.config)
        config = self.config[self.subcommand] if self.subcommand else self.config
        share = cpu_thread_share(config["trainer"], _usable_cores())
        if share:
            rank_zero_info(f"torchsvm: each of the CPU processes gets {share['OMP_NUM_THREADS']} thread(s): "
                           + " ".join(f"{k}={v}" for k, v in share.items()) + " (set them yourself to choose otherwise).")
            _apply_thread_share(share)


_THREAD_VARS = ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")


def _model_arguments(config: Any) -> dict[str, Any]:
    """The model's class path and init arguments in a parsed config (of its subcommand, if any)."""
    sub = config.get("subcommand")
    model = (config[sub] if sub else config).get("model")
    if model is None or not hasattr(model, "get"):
        return {}
    init = model.get("init_args")
    args = init.as_dict() if hasattr(init, "as_dict") else dict(init or {})
    return {"class_path": model.get("class_path"), **args}


def _refuse_other_configuration(asked: dict[str, Any], used: dict[str, Any], config: Any) -> None:
    """Lightning resumes a --ckpt_path fit with the checkpoint's model arguments, whatever the command says: a
    command that asks for others (``--model.C 5``) is refused, naming the differences, rather than silently
    run with the checkpoint's."""
    differ = [f"{key}: checkpoint {used.get(key)!r}, command {asked.get(key)!r}"
              for key in sorted(asked.keys() & used.keys()) if asked[key] != used[key]]
    if differ:
        sub = config.get("subcommand")
        path = (config[sub] if sub else config).get("ckpt_path")
        raise ValueError(f"--ckpt_path {path}: the checkpoint was written with other model arguments than this command "
                         "gives; resume with the configuration it was written with, or drop --ckpt_path to start a "
                         "new fit. Differences: " + "; ".join(differ))


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _processes_per_node(devices: Any) -> int:
    if isinstance(devices, (list, tuple)):
        return len(devices)
    if isinstance(devices, int) or (isinstance(devices, str) and devices.strip().isdigit()):
        return int(devices)
    return 1  # "auto" and "-1" on the CPU mean one process


def cpu_thread_share(trainer: Any, cores: int, environ: Any = None) -> dict[str, str]:
    """The thread counts each of several CPU processes on one machine should start with, as environment
    variables: ``cores // processes`` (at least 1) for torch's OpenMP pool and numba's, leaving out any
    the user set. Empty unless the trainer runs more than one process on the CPU.

    Why the environment: every process otherwise sizes both pools to all cores and they fight (the
    figures are in docs/guide/training.md); the pools read these variables when they start, and launched
    processes inherit them, whereas ``set_num_threads`` in each process at fit start was measured no better."""
    environ = os.environ if environ is None else environ
    accelerator = str(trainer.get("accelerator", "auto")).lower()
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    processes = _processes_per_node(trainer.get("devices", "auto"))
    if not on_cpu or processes < 2:
        return {}
    threads = str(max(1, cores // processes))
    return {name: threads for name in _THREAD_VARS if name not in environ}


def _apply_thread_share(share: dict[str, str]) -> None:
    os.environ.update(share)  # for the processes the strategy launches (they inherit the environment)
    # This process may be one of them (strategy "ddp" keeps rank 0 here), and both libraries are loaded.
    if "OMP_NUM_THREADS" in share:
        torch.set_num_threads(int(share["OMP_NUM_THREADS"]))
    numba = sys.modules.get("numba")
    if "NUMBA_NUM_THREADS" in share and numba is not None:
        numba.set_num_threads(min(int(share["NUMBA_NUM_THREADS"]), numba.config.NUMBA_NUM_THREADS))


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


# configs/ inside the package: in a wheel the files, in a checkout a link to the top-level configs/.
CONFIG_DIR = Path(__file__).parent / "configs"


def shipped_configs() -> dict[str, Path]:
    """The configs that come with torchsvm, by name (``two_layer_net`` -> its YAML file)."""
    return {path.stem: path.resolve() for path in sorted(CONFIG_DIR.glob("*.yaml"))}


def resolve_config_names(args: list[str]) -> list[str]:
    """``--config NAME`` (no such file, no folder or suffix in it) -> ``--config`` the shipped config's path.

    Raises:
        ValueError: a bare name that no shipped config has (the message lists them).
    """
    out = list(args)
    for k, arg in enumerate(args):
        if arg == "--config" and k + 1 < len(args):
            at, value, prefix = k + 1, args[k + 1], ""
        elif arg.startswith("--config="):
            at, value, prefix = k, arg.split("=", 1)[1], "--config="
        else:
            continue
        if Path(value).exists() or any(c in value for c in "/\\{") or value.endswith((".yaml", ".yml", ".json")):
            continue  # a path, or inline YAML: LightningCLI's own
        configs = shipped_configs()
        if value not in configs:
            raise ValueError(f"--config {value}: no such file, and no shipped config of that name "
                             f"(shipped: {', '.join(configs) or 'none found'})")
        out[at] = prefix + str(configs[value])
    return out


def build_cli(args: list[str] | None = None, run: bool = True) -> LightningCLI:
    """Build (and by default run) the CLI (see :class:`TorchSVMCLI`); ``args`` as the command line's
    (default ``sys.argv[1:]``), shipped config names resolved."""
    if args is None:  # rewritten in place: LightningCLI warns when given args beside a command line
        try:
            sys.argv[1:] = resolve_config_names(sys.argv[1:])
        except ValueError as err:
            raise SystemExit(f"torchsvm: error: {err}") from None
    else:
        args = resolve_config_names(args)
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
    """Entry point of ``torchsvm {fit,validate,test,predict}`` and ``torchsvm export`` (a fitted model to a
    file: :mod:`lightning_modules.export`)."""
    argv = sys.argv[1:] if args is None else args
    if argv[:1] == ["export"]:
        # Loaded for this subcommand only (it imports every LightningModule and the exporters); no circle.
        from lightning_modules.export import export_main

        export_main(argv[1:])
        return
    build_cli(args)


if __name__ == "__main__":
    cli_main()
