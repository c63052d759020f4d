"""The client paces itself: token buckets for submits and GetResult, a cap on unfinished tasks, AIMD.

One :class:`Pacer` per backend and access key (the service's quotas are per access key), shared by every
task, every batch and every event loop or thread the client is used from. Waiting is loop-agnostic: the
state sits behind a ``threading.Lock`` held for microseconds, a waiter sleeps on its own loop until its
turn is due, and a grant crosses loops with ``call_soon_threadsafe``. (``aiolimiter`` binds its waiters
to one loop, which a notebook kernel plus ``_sync``'s private loops per thread would break.)

* Rates start a little under the inferred quotas (18 submits/s against 20/s, 180 GetResult/s against
  200/s) so loopback jitter does not cost 50429s.
* AIMD: a 50429 halves the rate and drains the bucket; a ``Retry-After`` also holds every waiter that
  long (capped); each success adds back 5 % of the ceiling, so a batch is back near its quota in ~10
  successes. A 50430 shrinks the unfinished-task cap the same way, each accepted submit grows it again.
* Waiters are served first come, first served.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_MAX_UNFINISHED", "DEFAULT_POLL_RATE", "DEFAULT_SUBMIT_RATE", "Pacer", "TokenBucket",
           "UnfinishedCap", "shared_pacer"]

DEFAULT_SUBMIT_RATE = 18.0
"""Submits per second, a little under the inferred quota of 20/s per access key."""
DEFAULT_POLL_RATE = 180.0
"""GetResult calls per second, a little under the inferred 200/s."""
DEFAULT_MAX_UNFINISHED = 200
"""Unfinished tasks per access key (the inferred 50430 limit)."""
MAX_HOLD = 10.0
"""A ``Retry-After`` holds the waiters at most this long (longer ones are the retry loop's to refuse)."""

Clock = Callable[[], float]


@dataclass(eq=False)
class _Waiter:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]
    granted: bool = False


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class _Queue:
    """FIFO waiters granted by ``_grantable`` under the lock; shared by the bucket and the cap."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[_Waiter] = deque()

    def _grantable(self) -> bool:  # under the lock
        raise NotImplementedError

    def _consume(self) -> None:  # under the lock
        raise NotImplementedError

    def _refund(self) -> None:  # under the lock
        raise NotImplementedError

    def _eta(self, position: int) -> float:  # under the lock: seconds until the waiter at ``position`` is due
        raise NotImplementedError

    def _pump(self) -> None:  # under the lock
        while self._queue and self._grantable():
            w = self._queue.popleft()
            self._consume()
            w.granted = True
            try:
                w.loop.call_soon_threadsafe(_wake, w.future)
            except RuntimeError:  # its loop closed while it waited: nobody takes this grant
                self._refund()

    @property
    def waiting(self) -> int:
        """How many callers wait right now."""
        return len(self._queue)

    async def _acquire(self, on_wait: Callable[[], None] | None) -> float:
        loop = asyncio.get_running_loop()
        with self._lock:
            if not self._queue and self._grantable():
                self._consume()
                return 0.0
            w = _Waiter(loop, loop.create_future())
            self._queue.append(w)
        if on_wait is not None:
            on_wait()
        start = time.monotonic()
        try:
            while True:
                with self._lock:
                    self._pump()
                    if w.granted:
                        break
                    delay = max(0.001, self._eta(self._queue.index(w)))
                try:
                    await asyncio.wait_for(asyncio.shield(w.future), timeout=delay)
                    break
                except asyncio.TimeoutError:
                    continue
        except BaseException:
            with self._lock:
                if w.granted:
                    self._refund()  # granted, but the caller went away
                elif w in self._queue:
                    self._queue.remove(w)
            raise
        return time.monotonic() - start


class TokenBucket(_Queue):
    """A thread-safe, loop-agnostic token bucket with additive-increase / multiplicative-decrease.

    ``rate`` tokens per second up to ``burst``; ``ceiling`` is where recovery stops (the configured rate).
    ``rate=None`` means unlimited.
    """

    def __init__(self, rate: float | None, *, burst: float = 5.0, floor: float = 0.5, clock: Clock = time.monotonic
                 ) -> None:
        super().__init__()
        self.ceiling = rate
        self.rate = rate
        self.burst = max(1.0, burst)
        self.floor = floor
        self._clock = clock
        self._tokens = self.burst
        self._stamp = clock()
        self._hold_until = 0.0
        self._last_cut = -1e9
        self.cuts = 0
        """How many times a 50429 cut the rate."""

    def __repr__(self) -> str:
        rate = "unlimited" if self.rate is None else f"{self.rate:.3g}/s (ceiling {self.ceiling:.3g}/s)"
        return f"<TokenBucket {rate} waiting={self.waiting}>"

    def _refill(self) -> float:
        now = self._clock()
        if self.rate is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        return now

    def _grantable(self) -> bool:
        if self.rate is None:
            return True
        now = self._refill()
        return now >= self._hold_until and self._tokens >= 1.0

    def _consume(self) -> None:
        if self.rate is not None:
            self._tokens -= 1.0

    def _refund(self) -> None:
        if self.rate is not None:
            self._tokens = min(self.burst, self._tokens + 1.0)

    def _eta(self, position: int) -> float:
        if self.rate is None:
            return 0.0
        now = self._refill()
        return max(self._hold_until - now, 0.0) + max(0.0, position + 1 - self._tokens) / self.rate

    async def take(self, on_wait: Callable[[], None] | None = None) -> float:
        """Wait for a token (first come, first served); return the seconds waited. ``on_wait`` is called
        once if the caller has to wait."""
        return await self._acquire(on_wait)

    def penalize(self, retry_after: float | None = None) -> None:
        """The service said 50429: halve the rate (once per burst of refusals), drain, honour ``Retry-After``."""
        with self._lock:
            now = self._refill()
            if self.rate is not None and now - self._last_cut > 1.0 / max(self.rate, 1e-9):
                self.rate = max(self.floor, self.rate / 2)
                self._last_cut = now
                self.cuts += 1
            self._tokens = min(self._tokens, 0.0)
            if retry_after:
                self._hold_until = max(self._hold_until, now + min(retry_after, MAX_HOLD))

    def reward(self) -> None:
        """A call went through: recover 5 % of the ceiling."""
        with self._lock:
            if self.rate is not None and self.ceiling is not None and self.rate < self.ceiling:
                self.rate = min(self.ceiling, self.rate + 0.05 * self.ceiling)


class UnfinishedCap(_Queue):
    """At most ``limit`` unfinished tasks; a slot is taken before a submit and given back once the task is
    seen finished (or the submit failed). AIMD on 50430."""

    def __init__(self, limit: int | None = DEFAULT_MAX_UNFINISHED) -> None:
        super().__init__()
        self.ceiling = limit
        self.limit: float | None = float(limit) if limit is not None else None
        self._held: set[Hashable] = set()
        self._anonymous = 0

    def __repr__(self) -> str:
        return f"<UnfinishedCap {self.unfinished}/{self.limit} waiting={self.waiting}>"

    @property
    def unfinished(self) -> int:
        """Tasks submitted through this cap and not yet seen finished."""
        return len(self._held) + self._anonymous

    def _grantable(self) -> bool:
        return self.limit is None or self.unfinished < max(1, int(self.limit))

    def _consume(self) -> None:
        self._anonymous += 1

    def _refund(self) -> None:
        self._anonymous = max(0, self._anonymous - 1)
        self._pump()

    def _eta(self, position: int) -> float:
        return 1.0  # released by others, not by time; re-checked every second as a safety net

    async def admit(self, *, wait: bool = True, on_wait: Callable[[], None] | None = None) -> float:
        """Take a slot, waiting for one when the cap is reached (``wait=False``: take it regardless)."""
        if not wait:
            with self._lock:
                self._consume()
            return 0.0
        return await self._acquire(on_wait)

    def bind(self, task_id: str) -> None:
        """The submit holding an anonymous slot was accepted as ``task_id``."""
        with self._lock:
            self._anonymous = max(0, self._anonymous - 1)
            self._held.add(task_id)
            if self.limit is not None and self.ceiling is not None:
                self.limit = min(float(self.ceiling), self.limit + 0.1)

    def abandon(self) -> None:
        """The submit holding an anonymous slot failed: no task exists."""
        with self._lock:
            self._refund()

    def finished(self, task_id: str) -> None:
        """``task_id`` is finished (done, failed, cancelled, expired, not found or dropped)."""
        with self._lock:
            if task_id in self._held:
                self._held.discard(task_id)
                self._pump()

    def penalize(self) -> None:
        """The service said 50430: lower the cap below what we hold."""
        with self._lock:
            if self.limit is not None:
                self.limit = max(1.0, min(self.limit, self.unfinished * 0.9))


@dataclass
class Pacer:
    """The rate controller of one backend + access key: ``submits`` and ``polls`` buckets, the ``unfinished`` cap.

    Usage::

        client.pacer                                   # shared by every task of every client on this key
        volcnb.Client(pacer=volcnb.Pacer(submit_rate=5))   # a stricter quota
        volcnb.Client(pacer=volcnb.Pacer(submit_rate=None, poll_rate=None, max_unfinished=None))  # off
    """

    submit_rate: float | None = DEFAULT_SUBMIT_RATE
    poll_rate: float | None = DEFAULT_POLL_RATE
    max_unfinished: int | None = DEFAULT_MAX_UNFINISHED
    submits: TokenBucket = field(init=False)
    polls: TokenBucket = field(init=False)
    unfinished: UnfinishedCap = field(init=False)

    def __post_init__(self) -> None:
        self.submits = TokenBucket(self.submit_rate, burst=5.0)
        self.polls = TokenBucket(self.poll_rate, burst=20.0)
        self.unfinished = UnfinishedCap(self.max_unfinished)

    def __repr__(self) -> str:
        return f"<Pacer submits={self.submits!r} polls={self.polls!r} unfinished={self.unfinished!r}>"


_shared: dict[Hashable, Pacer] = {}
_by_transport: weakref.WeakKeyDictionary[Any, dict[str, Pacer]] = weakref.WeakKeyDictionary()
_shared_lock = threading.Lock()


def shared_pacer(base_url: str, access_key: str, transport: object | None = None) -> Pacer:
    """The one :class:`Pacer` for ``access_key`` at ``base_url`` (or behind that ``transport`` object)."""
    with _shared_lock:
        if transport is None:
            return _shared.setdefault((base_url, access_key), Pacer())
        per = _by_transport.setdefault(transport, {})
        return per.setdefault(access_key, Pacer())
