"""The checks of what a task handle is given: attach arguments, deadlines, wait options, the client.

Each raises :class:`~volcnb.ValidationError` (or :class:`~volcnb.ArgumentTypeError`) naming the field and
the limit before anything is sent; ``volcnb.submit``/``run``, ``Task.attach`` and the CLI call them.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from .._exceptions import ArgumentTypeError, ValidationError
from ..http.api import ApiClient
from ..protocol.submission import check_bool, check_number, check_req_key, check_task_id

__all__ = ["OnTimeout", "WAIT_OPTIONS", "check_attach", "check_client", "check_deadline", "check_poller",
           "check_wait"]

OnTimeout = Literal["raise", "detach", "cancel"]
WAIT_OPTIONS = frozenset({"timeout", "on_timeout"})
"""Options of the wait, never sent to the service (``volcnb.run(..., timeout=60)``)."""


def check_deadline(deadline: object, field: str = "deadline") -> float:
    """A deadline in seconds: a finite number > 0."""
    value = check_number(deadline, field, positive=True)
    assert value is not None
    return value


def check_wait(timeout: object = None, on_timeout: object = "raise") -> tuple[float | None, OnTimeout]:
    """``(timeout, on_timeout)`` of a wait: ``timeout`` > 0 seconds or ``None``; one of the three policies."""
    limit = check_number(timeout, "timeout", optional=True, positive=True)
    choices = get_args(OnTimeout)
    if on_timeout not in choices or not isinstance(on_timeout, str):
        raise ValidationError(f"on_timeout must be one of {', '.join(map(repr, choices))}, got {on_timeout!r}",
                              field="on_timeout", limit="/".join(choices))
    return limit, on_timeout  # type: ignore[return-value]


def check_client(client: object) -> ApiClient | None:
    """``None`` (the default client) or a :class:`volcnb.Client`."""
    if client is not None and not isinstance(client, ApiClient):
        raise ArgumentTypeError(f"client must be a volcnb.Client (or None for the default), got "
                                f"{type(client).__name__} {client!r:.60}", field="client", limit="volcnb.Client")
    return client


def check_poller(poller: object) -> Any:
    """``None`` or an object with the poller methods ``pause``, ``record``, ``forget``."""
    if poller is not None and not all(callable(getattr(poller, m, None)) for m in ("pause", "record", "forget")):
        raise ArgumentTypeError(f"poller must be a volcnb poller (AdaptivePoller, BackoffPoller, FixedPoller, or "
                                f"anything with pause/record/forget), got {type(poller).__name__}", field="poller",
                                limit="Poller")
    return poller


def check_attach(req_key: object, task_id: object, *, client: object = None, display: object = None,
                 deadline: object = 300.0) -> tuple[str, str, float]:
    """``(req_key, task_id, deadline)`` for ``Task.attach``, checked (``client``/``display`` too)."""
    key = check_req_key(req_key)
    tid = check_task_id(task_id)
    check_client(client)
    check_bool(display, "display")
    return key, tid, check_deadline(deadline)
