#!/usr/bin/env bash
# bash scripts/setup_venv.sh [extras]   default "all" (the library, Lightning, the references); "dev" adds the
# test and lint tools, "docs" the documentation site's.
# Creates ./.venv (once) with Python 3.10+ and installs the project into it with pip.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[${1:-all}]"
# The compiled CPU loops, built once here rather than on the first fit (cached by numba; ~1 min).
.venv/bin/python -m torchsvm.precompile
