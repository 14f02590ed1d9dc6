"""The first build of torchsvm's compiled CPU loops, told to the user once, with its time.

numba compiles a loop on its first call and keeps the machine code in its cache (``cache=True``: the
package's ``__pycache__``, or ``NUMBA_CACHE_DIR``), so only the first process after an installation
pays: some seconds per solver. ``python -m torchsvm.precompile`` (run by the README's setup and the
Dockerfile) pays it at install time; where it was not run, the first build logs one notice on the
``torchsvm`` logger (a warning, shown without any logging set up) and, once built, its time.

Every module that defines compiled loops imports this one, so the notice is registered before any of
them can compile. numba fires ``"numba:compile"`` only on a cache miss, never for a cache load.
"""

from __future__ import annotations

import logging
import threading
import time

from numba.core import event

__all__ = ["builds"]

logger = logging.getLogger("torchsvm")


class _BuildNotice(event.Listener):
    """Counts the builds of torchsvm's loops; warns when the first starts and says when it ended."""

    def __init__(self) -> None:
        self.count = 0
        self.told = False
        self.started = 0.0
        self._depth = threading.local()  # a loop's build compiles the loops it calls inside it

    def _ours(self, ev: event.Event) -> bool:
        return getattr(ev.data["dispatcher"].py_func, "__module__", "").startswith("torchsvm.")

    def on_start(self, ev: event.Event) -> None:
        if not self._ours(ev):
            return
        depth = getattr(self._depth, "value", 0)
        self._depth.value = depth + 1
        if depth:
            return
        self.count += 1
        if not self.told:
            self.started = time.perf_counter()
            logger.warning(
                "torchsvm: compiling its CPU loops for this machine, the first use after installation (seconds per "
                "solver, cached for later processes; `python -m torchsvm.precompile` compiles them all ahead)."
            )

    def on_end(self, ev: event.Event) -> None:
        if not self._ours(ev):
            return
        self._depth.value -= 1
        if self._depth.value == 0 and not self.told:
            self.told = True
            logger.warning("torchsvm: compiled in %.1f s.", time.perf_counter() - self.started)


_notice = _BuildNotice()
event.register("numba:compile", _notice)


def builds() -> int:
    """How many of torchsvm's loops this process compiled (not loaded from the cache)."""
    return _notice.count

