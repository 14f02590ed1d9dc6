"""Samples sharded over the ranks of a ``torch.distributed`` process group.

Each rank holds its own rows of X (and of y, alpha, the gradient); a solver sums over its shard
and then across the ranks. :class:`Shards` is that sum plus the few other collectives the
sharded solvers need, each counted in bytes (what ``benchmarks/bench_distributed.py`` reports)
and each turning a failed collective (a rank that died, a timeout) into an error that names this
rank and the operation. :data:`LOCAL` is the same interface for one process: every collective
is the identity, so a solver written against it runs unchanged without a process group.

The process group is the user's: ``torchrun`` (or Lightning) launches the ranks and
``torch.distributed.init_process_group`` connects them (NCCL on GPUs, gloo on CPUs); its
``timeout`` bounds how long a rank waits for a peer that stopped.
"""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_module
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["Collectives", "LOCAL", "Shards", "ShardError", "block_of", "check_same", "gather_rows", "row_offsets", "run_local"]

T = TypeVar("T")


class ShardError(ValueError):
    """The ranks' shards disagree, or one rank's shard is invalid (raised on every rank alike)."""


class Collectives:
    """The collectives a sharded solver calls; this base is one process holding every row, where
    each is the identity (:data:`LOCAL`). :class:`Shards` runs them across a process group."""

    rank, world_size, distributed = 0, 1, False
    bytes_sent = 0

    def sum(self, t: Tensor) -> Tensor:
        return t

    def max(self, t: Tensor) -> Tensor:
        return t

    def min(self, t: Tensor) -> Tensor:
        return t

    def broadcast(self, t: Tensor) -> Tensor:
        return t

    def all_gather(self, t: Tensor) -> Tensor:
        return t.unsqueeze(0)

    def all_gather_object(self, obj: Any) -> list[Any]:
        return [obj]

    def agree(self, what: str, fn: Callable[[], T]) -> T:
        return fn()


LOCAL = Collectives()


def _nbytes(t: Tensor) -> int:
    return t.numel() * t.element_size()


class Shards(Collectives):
    """The ranks of ``process_group`` (default: the default group), each holding a shard of the rows.

    Args:
        process_group: an initialized ``torch.distributed`` group, or None for the default group.

    Raises:
        RuntimeError: no process group is initialized.
    """

    distributed = True

    def __init__(self, process_group: dist.ProcessGroup | None = None) -> None:
        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError(
                "distributed=True needs an initialized process group: launch with torchrun and call "
                "torch.distributed.init_process_group() before fit (see docs/guide/distributed.md)"
            )
        self.group = process_group
        self.rank = dist.get_rank(process_group)
        self.world_size = dist.get_world_size(process_group)
        self.bytes_sent = 0  # payload bytes this rank handed to collectives
        # NCCL reduces CUDA tensors only: small host-side tensors (counts) travel through this device.
        nccl = dist.get_backend(process_group) == "nccl"
        self.device = torch.device("cuda", torch.cuda.current_device()) if nccl else torch.device("cpu")

    def _movable(self, t: Tensor) -> Tensor:
        return t.contiguous() if t.device.type == self.device.type else t.to(self.device)

    def _run(self, op: str, nbytes: int, call: Callable[[], Any]) -> None:
        """Run one collective, counting ``nbytes`` sent; a failure names this rank and the operation."""
        self.bytes_sent += nbytes
        try:
            call()
        except RuntimeError as err:  # gloo / NCCL: a peer closed its connection, or the group's timeout
            raise RuntimeError(
                f"rank {self.rank} of {self.world_size}: {op} failed; another rank has stopped or timed out "
                f"(the wait is bounded by init_process_group(timeout=...)): {err}"
            ) from err

    def _reduce(self, t: Tensor, how: dist.ReduceOp.RedOpType, name: str) -> Tensor:
        u = self._movable(t)
        self._run(f"all_reduce({name}) of {tuple(u.shape)}", _nbytes(u), lambda: dist.all_reduce(u, how, group=self.group))
        return u.to(t.device)

    def sum(self, t: Tensor) -> Tensor:
        """The sum over ranks of ``t``, on ``t``'s device (``t`` itself may be overwritten)."""
        return self._reduce(t, dist.ReduceOp.SUM, "sum")

    def max(self, t: Tensor) -> Tensor:
        return self._reduce(t, dist.ReduceOp.MAX, "max")

    def min(self, t: Tensor) -> Tensor:
        return self._reduce(t, dist.ReduceOp.MIN, "min")

    def broadcast(self, t: Tensor) -> Tensor:
        """Rank 0's ``t`` on every rank."""
        u = self._movable(t)
        src = dist.get_global_rank(self.group, 0) if self.group is not None else 0
        self._run(f"broadcast of {tuple(u.shape)}", _nbytes(u), lambda: dist.broadcast(u, src, group=self.group))
        return u.to(t.device)

    def all_gather(self, t: Tensor) -> Tensor:
        """``(world_size, *t.shape)``: every rank's ``t``, in rank order (equal shapes on every rank)."""
        u = self._movable(t)
        out = u.new_empty(self.world_size, *u.shape)
        self._run(f"all_gather of {tuple(u.shape)}", _nbytes(u),
                  lambda: dist.all_gather_single(out.view(-1), u.view(-1), group=self.group))
        return out.to(t.device)

    def all_gather_object(self, obj: Any) -> list[Any]:
        out: list[Any] = [None] * self.world_size
        # A small pickled record: counted as 64 bytes, not exactly.
        self._run("all_gather_object", 64, lambda: dist.all_gather_object(out, obj, group=self.group))
        return out

    def agree(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` (a local check) on every rank; if it raised on any rank, raise on every rank.

        A rank whose own shard is bad must not leave the others waiting in the next collective:
        the outcomes are exchanged first, and each rank raises a :class:`ShardError` naming the
        ranks that failed and their messages.
        """
        value: T | None = None
        failure: str | None = None
        try:
            value = fn()
        except (ValueError, TypeError) as err:
            failure = f"{type(err).__name__}: {err}"
        failures = self.all_gather_object(failure)
        bad = [f"rank {r}: {msg}" for r, msg in enumerate(failures) if msg is not None]
        if bad:
            raise ShardError(f"{what} failed on {len(bad)} of {self.world_size} ranks; " + "; ".join(bad))
        return value  # type: ignore[return-value]  # fn returned on every rank (a None value is fn's own)


def check_same(values: list[Any], expected: str) -> None:
    """Raise ``ShardError("<expected>, got rank 0: v0, rank 1: v1, ...")`` unless every rank's value
    (``values``, in rank order, as an all-gather gives them) is the same."""
    if len(set(values)) > 1:
        raise ShardError(f"{expected}, got " + ", ".join(f"rank {r}: {v}" for r, v in enumerate(values)))


def block_of(n: int, rank: int, world_size: int) -> slice:
    """Rank ``rank``'s contiguous block of ``n`` rows split over ``world_size`` ranks (the first
    ``n % world_size`` take one more): the blocks in rank order are the rows in order."""
    size, extra = divmod(n, world_size)
    start = rank * size + min(rank, extra)
    return slice(start, start + size + (rank < extra))


def row_offsets(shards: Collectives, n_rows: int, device: torch.device) -> Tensor:
    """``(world_size + 1,)`` start of each rank's rows in the concatenation of the shards (rank order)."""
    counts = shards.all_gather(torch.tensor([n_rows], dtype=torch.long, device=device)).view(-1)
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)])


def gather_rows(shards: Collectives, rows: Tensor) -> tuple[Tensor, slice]:
    """Every rank's ``rows`` ``(n_r, ...)`` (n_r may differ), concatenated in rank order, and where this
    rank's own sit in it. Two collectives: the counts, then the rows padded to the largest count."""
    if not shards.distributed:
        return rows, slice(0, rows.shape[0])
    counts = shards.all_gather(torch.tensor([rows.shape[0]], device=rows.device)).view(-1).tolist()
    if max(counts) == 0:
        return rows, slice(0, 0)
    padded = rows.new_zeros(max(counts), *rows.shape[1:])
    padded[: rows.shape[0]] = rows
    every = torch.cat([part[:n] for part, n in zip(shards.all_gather(padded), counts, strict=True)])
    first = sum(counts[: shards.rank])
    return every, slice(first, first + rows.shape[0])


def _worker(rank: int, world_size: int, backend: str, init: str, timeout_s: float, fn: Callable, args: tuple,
            queue: Any) -> None:
    if backend == "nccl":
        torch.cuda.set_device(rank)
    dist.init_process_group(backend, init_method=init, rank=rank, world_size=world_size,
                            timeout=timedelta(seconds=timeout_s))
    try:
        queue.put((rank, True, fn(rank, world_size, *args)))
    except Exception as err:  # reported to the parent, which raises
        queue.put((rank, False, f"{type(err).__name__}: {err}\n{traceback.format_exc()}"))
    finally:
        dist.destroy_process_group()


def run_local(fn: Callable, *args: Any, world_size: int = 2, backend: str = "gloo",
              timeout_s: float = 30.0) -> list[Any]:
    """``[fn(rank, world_size, *args) for each rank]``, each rank in its own process of one process
    group on this machine: a way to try sharded fits, test them and benchmark them without torchrun.

    ``fn`` must be importable (a module-level function: the processes are spawned) and its result
    picklable. ``backend="nccl"`` puts rank r on GPU r. A rank that raises makes this raise
    ``RuntimeError`` with its traceback; a rank that exits without a result gives ``None``;
    ``timeout_s`` is the group's collective timeout (this waits at most three times that, plus
    a minute for the processes to start).
    """
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    with tempfile.TemporaryDirectory() as d:
        init = f"file://{d}/rendezvous"
        procs = [ctx.Process(target=_worker, args=(r, world_size, backend, init, timeout_s, fn, args, queue))
                 for r in range(world_size)]
        for p in procs:
            p.start()
        results: dict[int, Any] = {}
        deadline = time.monotonic() + 3 * timeout_s + 60  # + start-up: each process imports torch
        try:
            while len(results) < world_size and time.monotonic() < deadline:
                try:
                    rank, ok, value = queue.get(timeout=0.5)
                except queue_module.Empty:
                    if all(not p.is_alive() for p in procs) and queue.empty():
                        break  # the ranks left without reporting
                    continue
                if not ok:
                    raise RuntimeError(f"rank {rank} failed: {value}")
                results[rank] = value
            else:
                if len(results) < world_size:
                    raise TimeoutError(f"ranks {sorted(set(range(world_size)) - set(results))} gave no result "
                                       f"within {3 * timeout_s + 60:.0f} s")
        finally:
            for p in procs:
                p.join(5)
                if p.is_alive():
                    p.kill()
    return [results.get(r) for r in range(world_size)]
