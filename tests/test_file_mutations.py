"""LIBSVM files that are not quite right never crash the readers: a valid model written by LIBSVM itself and a
valid data file, mutated (lines dropped, duplicated or cut, tokens replaced by garbage, NaN, infinity, huge or
negative numbers), either load or raise a ValueError naming the file, in bounded time (hypothesis draws the
mutants; a failure prints the mutant it found)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_iris

from torchsvm.libsvm_format import load_data, load_model

svmutil = pytest.importorskip("libsvm.svmutil")

_X, _Y = load_iris(return_X_y=True)
_TOKENS = ["nan", "-nan", "inf", "-inf", "1e308", "1e999", "-1", "0", "2147483648", "99999999999999999999", "abc",
           "1:", ":1", "0:0", "-3:1", "1:nan", "1e9:1", "3.5", "", "SV", "rho", "nr_sv", "total_sv 1000000000",
           "nr_class 1000000", "label", "1:2:3", "4294967297:1"]


def _model_text(tmp: Path, kind: str) -> str:
    """A model LIBSVM itself wrote: a three-class C-SVC with Platt's sigmoids, or an epsilon-SVR."""
    options = "-s 0 -c 2 -g 0.4 -b 1 -q" if kind == "svc" else "-s 3 -c 2 -g 0.4 -q"
    y = _Y if kind == "svc" else _X[:, 3]
    path = tmp / f"{kind}.model"
    svmutil.svm_save_model(str(path), svmutil.svm_train(list(map(float, y)), _X[:, :3].tolist(), options))
    return path.read_text()


_DATA_TEXT = "".join(f"{int(y)} " + " ".join(f"{j + 1}:{v:g}" for j, v in enumerate(x)) + "\n"
                     for x, y in zip(_X[:60], _Y[:60], strict=True))


@st.composite
def _mutants(draw, text: str) -> str:
    """``text`` with one to three edits of its lines and tokens."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 3))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        edit = draw(st.sampled_from(["drop", "duplicate", "cut", "token", "swap"]))
        if edit == "drop":
            del lines[i]
        elif edit == "duplicate":
            lines.insert(i, lines[i])
        elif edit == "cut":
            lines[i] = lines[i][: draw(st.integers(0, max(0, len(lines[i]) - 1)))]
        elif edit == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        else:
            tokens = lines[i].split() or [""]
            k = draw(st.integers(0, len(tokens) - 1))
            tokens[k] = draw(st.sampled_from(_TOKENS))
            lines[i] = " ".join(tokens)
    return "\n".join(lines) + "\n"


def _reads_or_refuses(read, path: Path) -> None:
    start = time.perf_counter()
    try:
        read(path)
    except ValueError as err:
        assert str(path) in str(err), f"the message does not name the file: {err}"
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"{elapsed:.2f} s on {path.read_text()[:200]!r}"


def _load_and_predict(path: Path) -> None:
    """A model that loads also predicts (rows as wide as its support vectors, up to a hundred features)."""
    est = load_model(path, device="cpu")
    width = est.n_features_in_
    if width <= 100:
        X = np.zeros((5, width))
        X[:, : min(3, width)] = _X[:5, : min(3, width)]
        assert est.predict(X).shape == (5,)


_SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _every_mutant_reads_or_refuses(text: str, path: Path, read) -> None:
    """Hypothesis's mutants of ``text``, each written to ``path`` and read by ``read``."""

    @_SETTINGS
    @given(_mutants(text))
    def check(mutant: str) -> None:
        path.write_text(mutant)
        _reads_or_refuses(read, path)

    check()


@pytest.mark.parametrize("kind", ["svc", "svr"])
def test_mutated_model_files_load_or_raise_a_value_error(tmp_path, kind):
    _every_mutant_reads_or_refuses(_model_text(tmp_path, kind), tmp_path / "mutant.model", _load_and_predict)


def test_mutated_data_files_load_or_raise_a_value_error(tmp_path):
    _every_mutant_reads_or_refuses(_DATA_TEXT, tmp_path / "mutant.libsvm", load_data)


def test_a_count_with_nothing_behind_it_is_refused_before_allocating(tmp_path):
    text = _model_text(tmp_path, "svc")
    path = tmp_path / "huge.model"
    path.write_text(text.replace("total_sv", "total_sv 1000000000 #").replace("nr_sv", "nr_sv 999999990 5 5 #"))
    with pytest.raises(ValueError, match=str(path)):
        load_model(path, device="cpu")


_LIBSVM_READS = """
import json, sys
import numpy as np
from libsvm import svmutil
model = svmutil.svm_load_model(sys.argv[1])
if model is None:
    sys.exit(3)
X = np.load(sys.argv[2])
labels, _, _ = svmutil.svm_predict([0.0] * len(X), X.tolist(), model, "-q")
print(json.dumps(labels))
"""


@pytest.mark.slow
def test_mutants_that_load_here_read_as_libsvm_reads_them(tmp_path):
    """A mutated SVC model that loads here predicts what LIBSVM's own reader makes of the same file (LIBSVM runs in
    a child process: its C reader may crash on a mutant; a mutant it cannot read is not compared)."""
    import json
    import subprocess
    import sys

    text = _model_text(tmp_path, "svc")
    path, rows = tmp_path / "mutant.model", tmp_path / "X.npy"
    np.save(rows, _X[:, :3])
    compared = []

    @settings(max_examples=40, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(_mutants(text))
    def check(mutant: str) -> None:
        path.write_text(mutant)
        try:
            ours = load_model(path, device="cpu", n_features=3)
        except ValueError:
            return  # refused here: allowed whatever LIBSVM does
        child = subprocess.run([sys.executable, "-c", _LIBSVM_READS, str(path), str(rows)], capture_output=True,
                               text=True, timeout=60)
        if child.returncode != 0:
            return  # LIBSVM cannot read it (or crashed): nothing to compare
        compared.append(1)
        np.testing.assert_array_equal(ours.predict(_X[:, :3]), np.asarray(json.loads(child.stdout)),
                                      err_msg=mutant[:400])

    check()
    assert compared  # some mutants were read both ways


@st.composite
def _byte_mutants(draw, data: bytes) -> bytes:
    """``data`` with one to three byte-level edits: a byte changed, a run deleted, duplicated or cut off, random
    bytes inserted (what a damaged download or disk gives a pickle or a checkpoint)."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        if not out:
            break
        i = draw(st.integers(0, len(out) - 1))
        edit = draw(st.sampled_from(["byte", "delete", "duplicate", "cut", "insert"]))
        n = draw(st.integers(1, 64))
        if edit == "byte":
            out[i] = draw(st.integers(0, 255))
        elif edit == "delete":
            del out[i : i + n]
        elif edit == "duplicate":
            out[i:i] = out[i : i + n]
        elif edit == "cut":
            del out[i:]
        else:
            out[i:i] = draw(st.binary(min_size=1, max_size=n))
    return bytes(out)


def _every_byte_mutant_reads_or_refuses(data: bytes, path: Path, read, examples: int) -> None:
    @settings(_SETTINGS, max_examples=examples)
    @given(_byte_mutants(data))
    def check(mutant: bytes) -> None:
        path.write_bytes(mutant)
        _reads_or_refuses(read, path)

    check()


def test_mutated_pickled_estimators_load_or_raise_a_value_error(tmp_path):
    """``torchsvm export --pickle``'s reader: a damaged pickle of a fitted SVC (probability sigmoids, sparse-free)
    gives a module or a ValueError naming the file, in under a second."""
    import pickle

    from lightning_modules.export import module_from_pickle
    from torchsvm import SVC

    est = SVC(device="cpu").fit(_X, _Y)
    _every_byte_mutant_reads_or_refuses(pickle.dumps(est), tmp_path / "mutant.pkl", module_from_pickle, 150)


def test_mutated_checkpoints_load_or_raise_a_value_error(tiny_data, tmp_path):
    """``torchsvm export --ckpt``'s reader on a damaged Lightning checkpoint of the linear SVM module."""
    import pytorch_lightning as pl

    from lightning_modules import LinearSVMModule, MNISTDataModule
    from lightning_modules.export import module_from_checkpoint

    dm = MNISTDataModule(data_dir=str(tiny_data), batch_size=32, download=False)
    trainer = pl.Trainer(max_steps=2, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, num_sanity_val_steps=0, limit_val_batches=0, accelerator="cpu")
    trainer.fit(LinearSVMModule(num_features=784, num_classes=10), datamodule=dm)
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    data = (tmp_path / "last.ckpt").read_bytes()
    _every_byte_mutant_reads_or_refuses(data, tmp_path / "mutant.ckpt", module_from_checkpoint, 60)
