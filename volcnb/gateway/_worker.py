"""Driving accepted tasks upstream: claim a lease, submit (or re-attach) the t2i tasks, download the images.

Upstream is volcnb's own client (``jimeng_t2i_*`` through CVSync2Async): the real service when keys are
configured, else a persistent simulator (its tasks in SQLite next to the gateway's, so a restart finds them).
The client's own slot waiting (50430) and pacing (50429) keep tasks beyond the account's caps ``pending``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import secrets
import time
from typing import Any

from PIL import Image

from .._exceptions import VolcError
from ..tasks.task import Task
from ._spec import MODELS, Limits, upstream_prompt, upstream_size
from ._store import Store, TaskRow

__all__ = ["Worker"]


class Worker:
    """Claims unfinished tasks from the store and drives each to completed/failed."""

    def __init__(self, store: Store, client: Any, limits: Limits, *, concurrency: int = 64) -> None:
        self.store, self.client, self.limits = store, client, limits
        self.owner = secrets.token_hex(8)
        self._running: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._concurrency = concurrency
        self._loop_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the claim loop on the running event loop."""
        self._loop_task = asyncio.get_running_loop().create_task(self._loop(), name="volcnb-gateway-worker")

    def wake(self) -> None:
        """A task was created: claim now rather than at the next tick."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop claiming and driving (leases simply expire)."""
        for t in [self._loop_task, *self._running.values()]:
            if t is not None:
                t.cancel()
        for t in [self._loop_task, *self._running.values()]:
            if t is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t

    async def _loop(self) -> None:
        last_renew = 0.0
        while True:
            free = self._concurrency - len(self._running)
            if free > 0:
                for row in await asyncio.to_thread(self.store.claim, self.owner, lease=self.limits.lease, limit=free):
                    driver = asyncio.create_task(self._drive(row))
                    self._running[row.task_id] = driver
                    driver.add_done_callback(self._forget)
            if time.monotonic() - last_renew > self.limits.lease / 3:
                await asyncio.to_thread(self.store.renew, self.owner, list(self._running), lease=self.limits.lease)
                last_renew = time.monotonic()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=0.5)
            self._wake.clear()

    def _forget(self, driver: asyncio.Task[None]) -> None:
        for tid, t in list(self._running.items()):
            if t is driver:
                del self._running[tid]

    async def _drive(self, row: TaskRow) -> None:
        left = row.created + self.limits.task_timeout - time.time()
        try:
            await asyncio.wait_for(self._generate(row), timeout=max(left, 0.001))
        except asyncio.TimeoutError:
            self._finish(row, "failed", error=f"任务超时: 超过 {self.limits.task_timeout:g} 秒未完成")
        except VolcError as err:
            self._finish(row, "failed", error=f"火山引擎API错误: {err.message}")
        except asyncio.CancelledError:
            raise
        except Exception as err:  # a broken reply or picture: the task fails, the gateway carries on
            self._finish(row, "failed", error=f"火山引擎API错误: {type(err).__name__}: {err}")

    async def _generate(self, row: TaskRow) -> None:
        p = row.params
        req_key = MODELS[p["model"]]
        uw, uh, w, h = upstream_size(p["size"])
        seed = int(p["options"].get("seed", -1))
        tasks: list[Task] = []
        for i in range(p["n"]):
            if i < len(row.upstream):
                tasks.append(Task.attach(req_key, row.upstream[i], client=self.client, display=False))
                continue
            task = self.client.submit(req_key, prompt=upstream_prompt(p), width=uw, height=uh,
                                      seed=seed if seed < 0 else seed + i, display=False)
            row.upstream.append(await task.submitted())
            await asyncio.to_thread(self.store.update, row.task_id, status="processing", upstream=row.upstream)
            tasks.append(task)
        if row.status == "pending":
            row.status = "processing"
            await asyncio.to_thread(self.store.update, row.task_id, status="processing")
        results = await asyncio.gather(*tasks)
        ids = []
        for n, res in enumerate(results):
            image = res.images[0].convert("RGB")
            if image.size != (w, h):
                image = image.resize((w, h), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            image.save(buf, "PNG")
            ids.append(f"{row.task_id}_{n}")
            await asyncio.to_thread(self.store.put_image, ids[-1], row.task_id, buf.getvalue())
        self._finish(row, "completed", images=ids)

    def _finish(self, row: TaskRow, status: str, *, images: list[str] | None = None, error: str | None = None) -> None:
        self.store.update(row.task_id, status=status, images=images or [], error=error, finished=time.time())
