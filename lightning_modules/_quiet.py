"""Silence what is not the user's business in Lightning's output, keep every warning that is.

Two known messages only, matched by their text: Lightning's advert for its cloud logger ("Tip: ...
litlogger", an INFO line on every run) and torch's FutureWarning about ``LeafSpec``, which Lightning's
own pytree helper triggers once per process (nothing a user can act on). Installed when
``lightning_modules`` is imported, so spawned DDP processes get it too.
"""

from __future__ import annotations

import logging
import warnings

__all__ = ["install"]

_ADVERTS = ("Tip: For seamless cloud logging",)


class _DropAdverts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(advert in message for advert in _ADVERTS)


def install() -> None:
    """Add the advert filter to Lightning's rank-zero logger and the warning filter (idempotent)."""
    logger = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    if not any(isinstance(f, _DropAdverts) for f in logger.filters):
        logger.addFilter(_DropAdverts())
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning)
