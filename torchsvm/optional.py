"""Imports of what an extra installs: a missing one is an ImportError that names the extra."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]


def require(module: str, extra: str, feature: str) -> ModuleType:
    """``import module`` for ``feature``; if it is missing, say which extra of torchsvm-gpu installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"{feature} needs {module.split('.')[0]}, which comes with the {extra!r} extra: "
            f"pip install 'torchsvm-gpu[{extra}]' (or bash scripts/setup_venv.sh in a checkout)"
        ) from err
