"""``GatewayClient``: a notebook's client of a Jimeng gateway (the 即梦AI异步接口 document's API).

Tasks come back as :class:`GatewayTask` handles (awaitable, ``.result()``), finishing as volcnb
:class:`~volcnb.Result` objects (``.images``, ``.save``, the picture in the notebook). At most ``max_in_flight``
(10, the document's per-user limit) unfinished tasks per user are in flight; a 429 is waited out, never raised.
"""

from __future__ import annotations

import asyncio
import html
import time
from collections.abc import Callable, Generator, Iterable
from typing import Any, cast

import httpx

from .._exceptions import VolcError
from .._sync import run_sync
from ..results import Result
from ..tasks import ports

__all__ = ["GatewayClient", "GatewayError", "GatewayTask"]



class GatewayError(VolcError):
    """The gateway refused a request (400/401) or the task failed (500 with the document's failed body)."""


_VIEW_STATUS = {"unsent": "submitting", "pending": "in_queue", "processing": "generating",
                "completed": "done", "failed": "failed"}
"""The document's task statuses in the words of volcnb's task views."""


class GatewayTask:
    """One gateway task: ``await task`` or ``task.result()`` gives its :class:`~volcnb.Result`.

    ``gateway_status`` is the document's (``pending``, ``processing``, ``completed``, ``failed``); ``status``
    says the same in volcnb's task vocabulary, so the task renders in the same live view as a CV task.
    """

    reconnecting = False
    request_id: str | None = None

    def __init__(self, client: GatewayClient, body: dict[str, Any]) -> None:
        self.client, self.body = client, body
        self.task_id: str | None = None
        self.gateway_status = "unsent"
        self.polls = 0
        self.error: BaseException | None = None
        self.view: Any = None
        self._result: Result | None = None
        self._started = time.monotonic()
        self._finished: float | None = None
        self._listeners: list[Callable[[Any], None]] = []
        self._runner: asyncio.Task[Result] | None = None

    @property
    def status(self) -> str:
        """``submitting``, ``in_queue``, ``generating``, ``done`` or ``failed``."""
        return _VIEW_STATUS.get(self.gateway_status, self.gateway_status)

    @property
    def req_key(self) -> str:
        """The label the views show: ``gateway doubao-seedream-3.0-t2i``."""
        return f"gateway {self.body.get('model', '')}"

    @property
    def done(self) -> bool:
        """True once the task completed or failed."""
        return self._finished is not None

    @property
    def elapsed(self) -> float:
        """Seconds from the submit to the end (or now)."""
        return (self._finished or time.monotonic()) - self._started

    @property
    def id_pairs(self) -> list[tuple[str, str]]:
        """``(label, id)`` pairs the views show."""
        return [("task_id", self.task_id or "(submitting)"), ("user_id", self.client.user_id)]

    def peek(self) -> Result | None:
        """The result if it has arrived (no request is sent)."""
        return self._result

    def on_change(self, callback: Callable[[Any], None]) -> None:
        """Call ``callback(task)`` on every status change (on the task's loop)."""
        self._listeners.append(callback)

    def _set(self, status: str, *, result: Result | None = None, error: BaseException | None = None) -> None:
        changed = status != self.gateway_status or result is not None or error is not None
        self.gateway_status, self._result, self.error = status, result or self._result, error or self.error
        if status in ("completed", "failed"):
            self._finished = self._finished or time.monotonic()
        if changed:
            ports.notify(self._listeners, self, "a gateway task")

    def _ensure(self) -> asyncio.Task[Result]:
        if self._runner is None:
            self._runner = asyncio.get_running_loop().create_task(self._drive())
        return self._runner

    async def _drive(self) -> Result:
        try:
            async with self.client._slot():
                self.task_id = await self.client._create(self.body)
                self._set("pending")
                result = await self.client._wait(self)
        except BaseException as exc:
            self._set("failed", error=exc)
            raise
        self._set("completed", result=result)
        return result

    def __await__(self) -> Generator[Any, None, Result]:
        return self._ensure().__await__()

    def result(self, timeout: float | None = None) -> Result:
        """Wait (blocking; works in a notebook too)."""
        async def wait() -> Result:
            return await asyncio.wait_for(asyncio.shield(self._ensure()), timeout)
        return run_sync(wait())

    def __repr__(self) -> str:
        return f"GatewayTask(task_id={self.task_id!r}, status={self.gateway_status!r})"

    def _repr_html_(self) -> str | None:
        shown = ports.presenter()
        return shown.html(cast(Any, self)) if shown is not None else f"<code>{html.escape(repr(self))}</code>"


class GatewayClient:
    """A client of a gateway at ``base_url`` (e.g. ``http://127.0.0.1:8080/api/v1``) for ``user_id``.

    Usage::

        gw = volcnb.GatewayClient("http://127.0.0.1:8080/api/v1", user_id="user_123")
        res = await gw.run("一只可爱的橘猫在樱花树下玩耍", size="1024x1024", style="anime")
    """

    def __init__(self, base_url: str, *, user_id: str, token: str | None = None, poll_interval: float = 1.0,
                 max_in_flight: int = 10, model: str = "doubao-seedream-3.0-t2i", timeout: float = 30.0) -> None:
        if not isinstance(user_id, str) or not user_id:
            raise ValueError("user_id must be a non-empty string")
        self.base_url, self.user_id, self.model = base_url.rstrip("/"), user_id, model
        self.poll_interval, self.max_in_flight = poll_interval, max_in_flight
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = timeout
        self._sem: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        self._http: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None
        self.waited_429 = 0  # how many creates were refused with 429 and retried

    def __repr__(self) -> str:
        return f"GatewayClient({self.base_url!r}, user_id={self.user_id!r})"

    async def aclose(self) -> None:
        """Close the HTTP connections (``async with GatewayClient(...) as gw:`` does it for you)."""
        if self._http is not None:
            await self._http[1].aclose()
            self._http = None

    async def __aenter__(self) -> GatewayClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _loop_bound(self) -> tuple[asyncio.Semaphore, httpx.AsyncClient]:
        loop = asyncio.get_running_loop()
        if self._sem is None or self._sem[0] is not loop:
            self._sem = (loop, asyncio.Semaphore(self.max_in_flight))
        if self._http is None or self._http[0] is not loop:
            self._http = (loop, httpx.AsyncClient(headers=self._headers, timeout=self._timeout))
        return self._sem[1], self._http[1]

    def _slot(self) -> asyncio.Semaphore:
        return self._loop_bound()[0]

    def submit(self, prompt: str, *, size: str | None = None, style: str | None = None, quality: str | None = None,
               n: int | None = None, model: str | None = None, display: bool | None = None,
               **options: Any) -> GatewayTask:
        """A task handle (sent when awaited, or at once on a running loop), shown live in a notebook
        (``display=False``: not shown)."""
        body: dict[str, Any] = {"prompt": prompt, "user_id": self.user_id, "model": model or self.model}
        for key, value in (("size", size), ("style", style), ("quality", quality), ("n", n)):
            if value is not None:
                body[key] = value
        if options:
            body["options"] = options
        task = GatewayTask(self, body)
        try:
            task._ensure()
        except RuntimeError:  # no running loop: sent by .result()
            pass
        shown = ports.presenter()
        if shown is not None and display is not False:
            task.view = shown.show(cast(Any, task), display)
        return task

    async def run(self, prompt: str, **params: Any) -> Result:
        """Submit and wait for the :class:`~volcnb.Result`."""
        return await self.submit(prompt, **params)

    async def map(self, prompts: Iterable[str], *, display: bool | None = None,
                  **params: Any) -> list[Result | BaseException]:
        """Many prompts, at most ``max_in_flight`` unfinished at once, one progress view for all of them;
        results (or errors) in input order."""
        tasks = [self.submit(p, display=False, **params) for p in prompts]
        if display is not False:
            from ..display.widgets import show_batch

            show_batch(cast(Any, tasks), title=f"gateway · {self.user_id} · {len(tasks)} prompts")
        return list(await asyncio.gather(*(t._ensure() for t in tasks), return_exceptions=True))

    async def _create(self, body: dict[str, Any]) -> str:
        _, http = self._loop_bound()
        delay = 0.5
        while True:
            reply = await http.post(f"{self.base_url}/ai/image/task", json=body)
            if reply.status_code == 201:
                return str(reply.json()["data"]["task_id"])
            if reply.status_code != 429:
                raise _error(reply)
            self.waited_429 += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _wait(self, task: GatewayTask) -> Result:
        _, http = self._loop_bound()
        while True:
            reply = await http.get(f"{self.base_url}/ai/image/result/{task.task_id}")
            task.polls += 1
            if reply.status_code == 200:
                data = reply.json()["data"]
                urls = [d["url"] for d in data["result"]["metadata"]["data"]]
                downloads = {u: (await http.get(u)).content for u in urls}
                return Result(req_key=data["result"]["metadata"]["model"], task_id=str(task.task_id),
                              data={**data["result"], "image_urls": urls}, downloads=downloads)
            if reply.status_code != 202:
                raise _error(reply, task.task_id)
            task._set(str(reply.json()["data"]["status"]))
            await asyncio.sleep(self.poll_interval)


def _error(reply: httpx.Response, task_id: str | None = None) -> GatewayError:
    try:
        body = reply.json()
    except ValueError:
        body = {"error": reply.text[:200]}
    return GatewayError(f"{reply.status_code} {body.get('error')}: {body.get('message', '')}".strip(),
                        code=reply.status_code, task_id=task_id)
