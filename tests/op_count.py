"""Count dispatched torch ops and host synchronizations, to hold solver steps to a budget without a GPU.

On CUDA every dispatched op is (about) one kernel launch, and a sync stalls the launch queue, so
these counts are what a GPU step costs in overhead; they are measured here on the CPU.
"""

from __future__ import annotations

from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode

# Ops that copy a value to the host, or size their output by the data (the host must wait).
_SYNC_OPS = {"_local_scalar_dense", "nonzero", "masked_select", "unique", "_unique2", "unique_consecutive"}


# Ops that make a view or a CPU scalar: no kernel launch on CUDA.
_NO_LAUNCH = {"unsqueeze", "squeeze", "view", "expand", "diagonal", "t", "transpose", "permute", "select", "slice",
              "alias", "as_strided", "scalar_tensor", "lift_fresh", "detach", "_unsafe_view", "unbind", "split"}


class OpCounter(TorchDispatchMode):
    """``with OpCounter() as c: ...`` then ``c.ops`` (every aten op) and ``c.syncs`` (host syncs) by name."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()
        self.syncs: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        self.ops[name] += 1
        if name in _SYNC_OPS or (name.startswith("index") and _has_bool_index(args)):
            self.syncs[name] += 1
        return func(*args, **(kwargs or {}))

    @property
    def n_ops(self) -> int:
        return sum(self.ops.values())

    @property
    def n_launches(self) -> int:
        """Ops that run a kernel (views and CPU scalars left out)."""
        return sum(n for name, n in self.ops.items() if name not in _NO_LAUNCH)

    @property
    def n_syncs(self) -> int:
        return sum(self.syncs.values())


def _has_bool_index(args: tuple) -> bool:
    """``x[mask]`` dispatches ``index`` with a bool tensor among its indices: its size is the data's."""
    indices = args[1] if len(args) > 1 and isinstance(args[1], (list, tuple)) else ()
    return any(isinstance(t, torch.Tensor) and t.dtype == torch.bool for t in indices)
