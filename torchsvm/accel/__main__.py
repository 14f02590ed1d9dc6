"""``python -m torchsvm.accel [--log] script.py [args]`` or ``python -m torchsvm.accel [--log] -m module [args]``:
run a script or module unchanged, with scikit-learn's SVM classes on torchsvm."""

from __future__ import annotations

import runpy
import sys

from torchsvm.accel import install


def main(argv: list[str]) -> None:
    log = bool(argv) and argv[0] == "--log"
    argv = argv[1:] if log else argv
    if not argv or argv == ["-m"]:
        sys.exit("usage: python -m torchsvm.accel [--log] script.py [args] | -m module [args]")
    install(log=log or None)
    if argv[0] == "-m":
        sys.argv = argv[1:]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = argv
        runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
