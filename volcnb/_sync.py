"""Blocking calls without a second implementation.

``run_sync(coro)`` drives an async coroutine to completion from synchronous code:

* no loop running in this thread (scripts, the CLI): one private event loop per thread, kept for the
  life of the thread, so pooled httpx connections never outlive their loop (no ``asyncio.run`` per call);
* a loop already running (a Jupyter cell calling ``task.result()``): ``nest_asyncio`` is applied to that
  loop — only then, never at import — and the coroutine runs on it, so the kernel's widgets keep updating.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_local = threading.local()
_patched: set[int] = set()


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The loop running in this thread, if any."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def private_loop() -> asyncio.AbstractEventLoop:
    """This thread's private loop (created on first use)."""
    loop: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _local.loop = loop
    return loop


def _patch(loop: asyncio.AbstractEventLoop) -> None:
    if id(loop) in _patched:
        return
    import nest_asyncio  # only here: a blocking call met a running loop

    nest_asyncio.apply(loop)
    _patched.add(id(loop))


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion and return its result, inside or outside a running loop."""
    loop = running_loop()
    if loop is None:
        return private_loop().run_until_complete(coro)
    _patch(loop)
    return loop.run_until_complete(coro)
