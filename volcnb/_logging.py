"""``VOLCNB_LOG=debug|info``: volcnb's log records on stderr, without configuring ``logging`` yourself.

The ``volcnb`` logger says at INFO what a user waits for (retries, rate-limit waits) and at DEBUG every
call (action, req_key, task id, HTTP status, task status, duration, bytes sent). Records never hold keys,
signatures or image bytes. Plain ``logging`` configuration works as well; this only adds a handler.
"""

from __future__ import annotations

import logging
import os

__all__ = ["LOG_VARIABLE", "configure_from_environment"]

LOG_VARIABLE = "VOLCNB_LOG"
"""The environment variable: ``debug`` or ``info`` (anything else: leave ``logging`` alone)."""
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO}


def configure_from_environment() -> int | None:
    """Add one stderr handler to the ``volcnb`` logger at the level ``$VOLCNB_LOG`` names; return it."""
    level = _LEVELS.get(os.environ.get(LOG_VARIABLE, "").strip().lower())
    if level is None:
        return None
    logger = logging.getLogger("volcnb")
    logger.setLevel(level)
    if not any(getattr(h, "_volcnb", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        handler._volcnb = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    return level
