"""Run a function in several gloo processes on the CPU, for the sharded solvers' tests."""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_module
import tempfile
import time
import traceback
from datetime import timedelta
from typing import Any, Callable


def _worker(rank: int, world_size: int, init: str, timeout_s: float, fn: Callable, args: tuple, queue: Any) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world_size,
                            timeout=timedelta(seconds=timeout_s))
    try:
        queue.put((rank, True, fn(rank, world_size, *args)))
    except BaseException as err:  # reported to the parent, which raises
        queue.put((rank, False, f"{type(err).__name__}: {err}\n{traceback.format_exc()}"))
    finally:
        dist.destroy_process_group()


def run_ranks(fn: Callable, *args: Any, world_size: int = 2, timeout_s: float = 30.0) -> list[Any]:
    """``[fn(rank, world_size, *args) for each rank]``, each in its own process of one gloo group.

    ``fn`` must be importable (a module-level function). A rank that raises makes this raise
    ``RuntimeError`` with its traceback; a rank that exits without a result gives ``None``;
    ``timeout_s`` is the group's collective timeout (the parent waits at most three times that).
    """
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    with tempfile.TemporaryDirectory() as d:
        init = f"file://{d}/rendezvous"
        procs = [ctx.Process(target=_worker, args=(r, world_size, init, timeout_s, fn, args, queue))
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
