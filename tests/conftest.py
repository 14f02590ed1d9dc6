"""Shared fixtures: the device parameter, seeding, and the ../shared data sets."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TORCHSVM_SHARED_DATA", ROOT.parent / "shared" / "data"))

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _stop_the_run(signum: int, frame: object) -> None:
    pytest.exit(f"stopped by signal {signal.Signals(signum).name}", returncode=128 + signum)


def pytest_configure(config: pytest.Config) -> None:
    """A SIGTERM stops the whole run (Lightning's trainer calls the handler it finds installed, then
    re-raises what it raises), instead of becoming a SIGTERMException inside one test."""
    signal.signal(signal.SIGTERM, _stop_the_run)


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    """Every test that takes it runs on the CPU, and on CUDA when a GPU is present."""
    return torch.device(request.param)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _shared(sub: str) -> Path:
    path = SHARED_DATA / sub
    if not path.is_dir():
        pytest.skip(f"shared data set not found at {path} (see ../shared/README.md)")
    return path


@pytest.fixture
def mnist_dir() -> Path:
    """Root holding MNIST/raw: the real-digit mnist-10k (8,000 train / 2,000 test)."""
    return _shared("mnist-10k")


@pytest.fixture
def fashion_dir() -> Path:
    """Root holding FashionMNIST/raw: the complete Fashion-MNIST."""
    return _shared("fashion-mnist")


def load_script(name: str):
    """Import ``scripts/<name>.py`` as a module (scripts are not a package)."""
    import importlib.util
    import sys

    module_name = f"torchsvm_scripts_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up while the script loads
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tiny_data(tmp_path) -> Path:
    """A small IDX data set (200 training, 50 test images) in torchvision's layout."""
    from tests.idx import write_dataset

    return write_dataset(tmp_path / "data", n_train=200, n_test=50)
