"""Blocking calls without a second implementation.

``run_sync(coro)`` drives an async coroutine to completion from synchronous code:

* no loop running in this thread (scripts, the CLI): one private event loop per thread, kept for the
  life of the thread, so pooled httpx connections never outlive their loop (no ``asyncio.run`` per call);
* a loop already running (a Jupyter cell calling ``task.result()``): ``nest_asyncio2`` is applied to that
  loop — only then, never at import — and the coroutine runs on it, so the kernel's widgets keep updating.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_local = threading.local()
_patched: set[int] = set()
_loops: list[asyncio.AbstractEventLoop] = []


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
        _loops.append(loop)
    return loop


@atexit.register
def _close_private_loops() -> None:
    """Finish background work politely at interpreter exit (no "unclosed event loop" warnings)."""
    for loop in _loops:
        if loop.is_closed() or loop.is_running():
            continue
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in pending:
            t.cancel()
        try:
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def _patch(loop: asyncio.AbstractEventLoop) -> None:
    if id(loop) in _patched:
        return
    import nest_asyncio2  # only here: a blocking call met a running loop

    nest_asyncio2.apply(loop)
    _patched.add(id(loop))


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion and return its result, inside or outside a running loop."""
    loop = running_loop()
    if loop is None:
        return private_loop().run_until_complete(coro)
    _patch(loop)
    return loop.run_until_complete(coro)


_background: set[asyncio.Task[Any]] = set()  # tasks finish_on() scheduled on a running loop (kept referenced)


def finish_on(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any]) -> None:
    """Run ``coro`` on ``loop`` (the loop it belongs to), from any thread, never blocking a running loop.

    This thread's running loop: scheduled as a task. A loop running in another thread: handed over to it.
    A loop at rest: run to completion here, or in a helper thread if another loop runs in this one (a
    running loop cannot drive a second one). A closed loop: nothing to do (``coro`` is closed unrun).
    """
    running = running_loop()
    if loop.is_closed():
        coro.close()
    elif loop is running:
        task = loop.create_task(coro)
        _background.add(task)
        task.add_done_callback(_background.discard)
    elif loop.is_running():
        asyncio.run_coroutine_threadsafe(coro, loop)
    elif running is None:
        loop.run_until_complete(coro)
    else:
        helper = threading.Thread(target=loop.run_until_complete, args=(coro,), daemon=True)
        helper.start()
        helper.join(10.0)

