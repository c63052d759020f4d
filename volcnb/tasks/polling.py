"""When to poll: the interface between task handles and the polling strategy.

A :class:`Poller` is shared by all tasks of a client. A task's wait loop is::

    while True:
        await poller.pause(task)                  # the poller decides how long; it may wake a task early
        reply = await client.get_result(...)
        poller.record(task, status)               # what the poll saw, so the poller can learn

:class:`AdaptivePoller` is the default; :class:`FixedPoller` polls at a constant interval (baseline).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["BackoffPoller", "FixedPoller", "PollSubject", "Poller"]


class PollSubject(Protocol):
    """Everything a poller may read on a task."""

    @property
    def req_key(self) -> str:
        """The capability (pollers learn per req_key)."""

    @property
    def task_id(self) -> str | None:
        """The task id once submitted."""

    @property
    def polls(self) -> int:
        """GetResult calls made so far."""

    @property
    def submitted_at(self) -> float | None:
        """POSIX time of the submit; ``None`` when unknown (a re-attached task)."""

    @property
    def submitted_monotonic(self) -> float | None:
        """``time.monotonic()`` at the submit; ``None`` when unknown."""

    @property
    def deadline(self) -> float | None:
        """Seconds after the submit by which the caller stops waiting (a last poll lands before it)."""


class Poller(Protocol):
    """A polling strategy."""

    async def pause(self, task: PollSubject) -> None:
        """Wait until ``task`` should be polled next."""

    def record(self, task: PollSubject, status: str) -> None:
        """Tell the poller what a poll of ``task`` just saw (``in_queue``/``generating``/``done``)."""

    def forget(self, task: PollSubject) -> None:
        """``task`` stopped waiting (done, failed, cancelled or detached)."""


@dataclass
class FixedPoller:
    """Poll every ``interval`` seconds (the usual hand-written loop; kept as a baseline)."""

    interval: float = 3.0

    async def pause(self, task: PollSubject) -> None:
        """Sleep ``interval``."""
        await asyncio.sleep(self.interval)

    def record(self, task: PollSubject, status: str) -> None:
        """Nothing to learn."""

    def forget(self, task: PollSubject) -> None:
        """Nothing to forget."""


@dataclass
class BackoffPoller:
    """Geometric backoff with jitter: first poll after ``first``, then ×``factor`` up to ``cap``."""

    first: float = 0.5
    factor: float = 1.5
    cap: float = 10.0
    jitter: float = 0.1
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, polls: int) -> float:
        """The pause before poll number ``polls + 1``."""
        base = min(self.cap, self.first * self.factor**polls)
        return base * (1 + self.rng.uniform(-self.jitter, self.jitter))

    async def pause(self, task: PollSubject) -> None:
        """Sleep the backoff delay."""
        await asyncio.sleep(self.delay(task.polls))

    def record(self, task: PollSubject, status: str) -> None:
        """Nothing to learn."""

    def forget(self, task: PollSubject) -> None:
        """Nothing to forget."""
