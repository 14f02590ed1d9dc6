"""The one build step pyproject.toml cannot declare: ``torchsvm-accel.pth`` at the top of site-packages.

Python runs a ``.pth`` file's ``import`` lines at every start-up; this one installs the scikit-learn
accelerator (``torchsvm.accel.install()``) when the environment variable ``TORCHSVM_ACCEL`` is set and
not ``0``, and costs one dictionary lookup when it is not. A regular wheel gets the file through
``build_py``; an editable install (``pip install -e .``, the README's setup) through ``editable_wheel``.
"""

from __future__ import annotations

import os
from typing import Any

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

PTH_NAME = "torchsvm-accel.pth"
PTH_LINE = ('import os; os.environ.get("TORCHSVM_ACCEL", "0") not in ("", "0") '
            'and __import__("torchsvm.accel").accel.install()\n')


class BuildPyWithPth(build_py):
    def run(self) -> None:
        super().run()
        with open(os.path.join(self.build_lib, PTH_NAME), "w") as f:
            f.write(PTH_LINE)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), os.path.join(self.build_lib, PTH_NAME)]


class _WithPth:
    """setuptools' editable strategy (how the wheel reaches the sources), writing the .pth as well."""

    def __init__(self, strategy: Any) -> None:
        self.strategy = strategy

    def __call__(self, wheel: Any, files: list[str], mapping: Any) -> None:
        self.strategy(wheel, files, mapping)
        wheel.writestr(PTH_NAME, PTH_LINE.encode())

    def __enter__(self) -> _WithPth:
        self.strategy.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.strategy.__exit__(*exc)


class EditableWheelWithPth(editable_wheel):
    # setuptools (>= 64) builds an editable wheel through _select_strategy; the test suite checks that the
    # installed environment has the file, so a setuptools that changes this hook is noticed.
    def _select_strategy(self, *args: Any, **kwargs: Any) -> Any:
        return _WithPth(super()._select_strategy(*args, **kwargs))


setup(cmdclass={"build_py": BuildPyWithPth, "editable_wheel": EditableWheelWithPth})
