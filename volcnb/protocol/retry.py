"""The one retry policy: jittered exponential backoff with a cap, honouring ``Retry-After``.

What is retried is decided in :func:`classify`, in one place:

* GetResult / Cancel (idempotent): transport errors, HTTP 5xx, codes 50429, 50430, 50500, 50501.
* Submit and uploads (not idempotent, the API has no idempotency key): only where no task can exist —
  the connection was never established, or a JSON reply with 50429/50430/50500/50501 (a non-10000 reply
  carries no task_id). After an ambiguous failure (connection lost or read timeout after sending, a
  non-JSON 5xx) we raise :class:`SubmitUncertainError` instead of risking a second paid task.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Literal

from .._exceptions import NOT_ADMITTED, APIError, ProtocolError, TransportError, VolcError

__all__ = ["Decision", "RetryPolicy", "classify", "retry_after_seconds"]

Decision = Literal["retry", "raise", "uncertain"]


@dataclass
class RetryPolicy:
    """Backoff settings. ``sleep`` and ``rng`` are injectable so tests run with zero waits."""

    max_retries: int = 3
    """Retries after the first attempt (so up to ``max_retries + 1`` sends)."""
    base: float = 0.5
    """First backoff, seconds."""
    cap: float = 20.0
    """Longest backoff, seconds."""
    max_retry_after: float = 120.0
    """A server ``Retry-After`` longer than this is not waited for: the error is raised."""
    reconnect_cap: float = 5.0
    """Longest pause between two polls of a task while the service is unreachable (polls are retried until
    the task's deadline, not a fixed count: a short cap finds the service soon after it is back)."""
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def backoff(self, attempt: int, retry_after: float | None = None, *, cap: float | None = None) -> float:
        """Delay before retry number ``attempt`` (1-based): equal jitter on ``base·2^(n-1)``, capped at ``cap``
        (default :attr:`cap`)."""
        # Clamp the exponent: 2 ** 1100 does not fit a float, and the cap is reached long before.
        ceiling = min(self.cap if cap is None else cap, self.base * (2 ** min(attempt - 1, 64)))
        delay: float = ceiling / 2 + self.rng.uniform(0, ceiling / 2)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Parse ``Retry-After`` (seconds or an HTTP date); ``None`` if absent or invalid."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = _dt.datetime.now(when.tzinfo or _dt.timezone.utc)
    return max(0.0, (when - now).total_seconds())


def classify(exc: VolcError, *, idempotent: bool) -> Decision:
    """Decide what to do after a failed attempt (transport failures arrive as :class:`TransportError`)."""
    if isinstance(exc, TransportError):
        if not exc.retryable:
            return "raise"
        if not exc.sent:
            return "retry"  # the request provably never reached the server
        return "retry" if idempotent else "uncertain"
    if isinstance(exc, APIError):
        if exc.task_failed:
            return "raise"  # the task itself failed; asking again will not change it
        if isinstance(exc.code, int) and exc.code in NOT_ADMITTED:
            return "retry"
        if idempotent and exc.status_code is not None and exc.status_code >= 500 and not isinstance(exc.code, int):
            return "retry"
        return "raise"
    if isinstance(exc, ProtocolError):
        # Not the documented JSON (a proxy page, a crash, a garbled body): for a submit we cannot know
        # whether the task was admitted; a query can simply be asked again.
        if not idempotent:
            return "uncertain"
        transient = exc.status_code is None or exc.status_code >= 500 or exc.status_code == 200
        return "retry" if transient else "raise"
    return "raise"
