"""Task handles: awaitable and blocking, resumable by id, keeping results safe once paid for.

A task is polled by one runner (an ``asyncio.Task`` on the current loop); ``await task``,
``task.wait()`` and ``task.result()`` all wait on that runner, so several waiters never double the polls.
A task shows nothing by itself: views listen to :meth:`Task.on_change`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import warnings
import weakref
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._exceptions import (
    FetchOptionsError,
    InvalidArgumentError,
    TaskCancelledError,
    TaskExpiredError,
    TaskNotFoundError,
    TaskTimeoutError,
    VolcError,
    VolcnbWarning,
)
from .._sync import run_sync, running_loop
from ..protocol import wire
from ..protocol.options import AigcMeta, LogoInfo
from ..protocol.retry import classify
from ..protocol.submission import check_bool
from ..protocol.wire import Reply, Status
from ..results import Result
from .adaptive import AdaptivePoller
from .arguments import OnTimeout, check_attach, check_wait
from .polling import Poller
from .pollmodels import ModelStore
from .ports import default_client, presenter

if TYPE_CHECKING:
    from ..http.api import ApiClient

__all__ = ["DEFAULT_DEADLINE", "OnTimeout", "Task", "poller_for", "set_poller"]

DEFAULT_DEADLINE = 300.0
"""Default overall deadline of a wait, seconds (images; the API's own task validity is 12 h)."""
TERMINAL: frozenset[str] = frozenset({"done", "failed", "cancelled", "not_found", "expired"})

_pollers: weakref.WeakKeyDictionary[ApiClient, Poller] = weakref.WeakKeyDictionary()


def set_poller(client: ApiClient, poller: Poller) -> None:
    """Make ``poller`` decide when the tasks of ``client`` poll (``volcnb.Client(poller=...)``)."""
    _pollers[client] = poller


def poller_for(client: ApiClient) -> Poller:
    """The poller shared by the tasks of ``client`` (an :class:`AdaptivePoller` unless one was set)."""
    poller = _pollers.get(client)
    if poller is None:
        poller = _pollers[client] = AdaptivePoller(store=_store(client))
    return poller


def _store(client: ApiClient) -> ModelStore | None:
    """The default learned-model file for this backend (none for an in-process simulator, whose identity
    ends with the process; none when the folder cannot be written)."""
    if client.is_simulator:
        return None
    try:
        return ModelStore(client.backend_id)
    except (OSError, sqlite3.Error):
        return None


class Task:
    """A handle on one asynchronous task: ``await task``, ``task.result()``, ``await task.cancel()``.

    Attributes: ``req_key``, ``task_id`` (``None`` while the submit is in flight), ``status``
    (``submitting``/``in_queue``/``generating``/``done``/``failed``/``cancelled``), ``polls``,
    ``created_at``/``submitted_at``/``finished_at`` (POSIX seconds), ``request_id``, ``error``.
    Twins: each coroutine method has a blocking ``*_sync`` twin; ``result()`` is the blocking ``wait()``.
    """

    def __init__(
        self,
        req_key: str,
        *,
        client: ApiClient,
        body: dict[str, Any] | None = None,
        task_id: str | None = None,
        input_images: Sequence[Any] = (),
        deadline: float = DEFAULT_DEADLINE,
        poller: Poller | None = None,
        fetch_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.req_key = req_key
        self.client = client
        self.task_id = task_id
        self.status: Status = "in_queue" if task_id else "submitting"
        self.deadline: float | None = deadline
        self.polls = 0
        self.created_at = time.time()
        self.submitted_at: float | None = time.time() if task_id else None
        self.submitted_monotonic: float | None = time.monotonic() if task_id else None
        self.finished_at: float | None = None
        self.request_id: str | None = None
        self.error: VolcError | None = None
        self.history: list[tuple[float, str]] = [(self.created_at, self.status)]
        self.input_images = list(input_images)
        self.fetch_options: dict[str, Any] = dict(fetch_options or {})
        self._body = body
        self._poller = poller
        self._result: Result | None = None
        self._runner: asyncio.Task[Result] | None = None
        self._submitting: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[Task], None]] = []
        self.view: Any = None
        """The progress view shown for this task, if any (set by whoever showed it)."""
        self.reconnecting = False
        """True while polls fail for transient reasons (the service unreachable, 5xx, throttled) and are retried
        until the task's deadline; ``last_error`` says why."""
        self.last_error: VolcError | None = None
        """The last transient error a poll met (kept after it cleared, for the record)."""
        self._started = time.monotonic()
        self.wait_timeout: float | None = None
        """What a wait without ``timeout`` waits at most (``None``: the ``deadline``); ``submit(timeout=...)``."""
        self.on_timeout: OnTimeout = "raise"
        """What a wait without ``on_timeout`` does when it times out; ``submit(on_timeout=...)``."""

    # --- construction --------------------------------------------------------------------------

    @classmethod
    def attach(cls, req_key: str, task_id: str, *, client: ApiClient | None = None, display: bool | None = None,
               deadline: float = DEFAULT_DEADLINE) -> Task:
        """Re-attach to a task submitted earlier (another process, before a kernel restart).

        Nothing is sent until you wait or refresh; a finished task's result is fetched as it is. Bad
        arguments raise :class:`~volcnb.ValidationError` at once.
        """
        key, tid, limit = check_attach(req_key, task_id, client=client, display=display, deadline=deadline)
        task = cls(key, client=client or default_client(), task_id=tid, deadline=limit)
        task.submitted_at = None  # unknown: submitted by someone else
        shown = presenter()
        if shown is not None:
            shown.show(task, display)
        return task

    def start(self) -> None:
        """Send the submit: at once when no event loop runs (blocking), else scheduled on the running loop
        (returns immediately; the task then polls in the background so its view moves)."""
        loop = running_loop()
        if loop is None:  # blocking: nothing could free an unfinished-task slot while we wait, so don't
            run_sync(self._submit(wait_for_slot=False))
            return
        sub = loop.create_task(self._submit(wait_for_slot=True), name="volcnb-submit")
        sub.add_done_callback(_retrieve)
        self._submitting = sub
        self._ensure_runner()

    # --- state ---------------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """Whether the task reached a terminal state (done, failed or cancelled)."""
        return self.status in TERMINAL

    @property
    def elapsed(self) -> float:
        """Seconds since the task was created (or until it finished)."""
        end = self.finished_at or time.time()
        return max(0.0, end - self.created_at)

    def peek(self) -> Result | None:
        """The result if the task is done, else ``None`` (never waits, never polls)."""
        return self._result if self.status == "done" else None

    def on_change(self, callback: Callable[[Task], None]) -> None:
        """Call ``callback(task)`` after every state change (runs on the event loop)."""
        self._listeners.append(callback)

    def _set(self, status: Status) -> None:
        self.status = status
        self.history.append((time.time(), status))
        self._notify()

    def _notify(self) -> None:
        for cb in list(self._listeners):
            try:
                cb(self)
            except Exception as exc:  # a broken view must never break the task
                warnings.warn(f"volcnb: a task listener failed: {exc!r}", VolcnbWarning, stacklevel=2)

    def __repr__(self) -> str:
        tid = self.task_id or "(submitting)"
        extra = f" error={self.error.message!r}" if self.error else ""
        return (f"<volcnb.Task {self.req_key} task_id={tid} status={self.status} polls={self.polls} "
                f"elapsed={self.elapsed:.1f}s{extra}>")

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))

    def _repr_html_(self) -> str | None:
        shown = presenter()
        return shown.html(self) if shown is not None else None

    # --- submit --------------------------------------------------------------------------------

    async def _submit(self, *, wait_for_slot: bool = False) -> None:
        if self.task_id is not None:
            return
        assert self._body is not None
        try:
            task_id, reply = await self.client.submit_task(self.req_key, self._body, wait_for_slot=wait_for_slot,
                                                           on_queued=self._queued)
        except VolcError as err:
            self._fail(err)
            raise
        self.task_id = task_id
        self.request_id = reply.request_id
        self.submitted_at = time.time()
        self.submitted_monotonic = time.monotonic()
        self._body = None  # the inputs are no longer needed; do not keep megabytes of base64 around
        # A handle dropped before its task is seen finished gives its unfinished-task slot back.
        weakref.finalize(self, self.client.pacer.unfinished.finished, task_id)
        self._set("in_queue")

    def _queued(self, waiting: bool) -> None:
        """The pacer holds the submit locally (``queued``) or lets it go (``submitting``)."""
        if self.task_id is None:
            self._set("queued" if waiting else "submitting")

    async def submitted(self) -> str:
        """Wait until the submit has landed; return the task id."""
        if self.task_id is None:
            if self._submitting is not None:
                await asyncio.shield(self._submitting)
            else:
                await self._submit()
        assert self.task_id is not None
        return self.task_id

    def _fail(self, err: VolcError, status: Status = "failed") -> None:
        if err.task_id is None:
            err.task_id = self.task_id
        self.error = err
        self.finished_at = time.time()
        self._set(status)

    # --- polling -------------------------------------------------------------------------------

    def _poller_for(self) -> Poller:
        if self._poller is None:
            self._poller = poller_for(self.client)
        return self._poller

    async def refresh(self) -> Status:
        """Ask the service once where the task is; update and return ``status``."""
        await self.submitted()
        if self.done:
            return self.status
        await self._poll_once()
        return self.status

    def refresh_sync(self) -> Status:
        """Blocking :meth:`refresh`."""
        return run_sync(self.refresh())

    def _deadline_left(self) -> float:
        """Seconds until the task's own deadline (counted from its submit, or from the attach)."""
        if self.deadline is None:
            return float("inf")
        start = self.submitted_monotonic if self.submitted_monotonic is not None else self._started
        return start + self.deadline - time.monotonic()

    async def _ask(self, options: Mapping[str, Any]) -> Reply:
        """One GetResult, retried through outages until the task's deadline (GetResult is idempotent).

        Transport errors, 5xx and 50429/50430/50500/50501 set :attr:`reconnecting` and are retried with
        capped, jittered backoff; anything else (and the deadline) raises.
        """
        assert self.task_id is not None
        policy = self.client.retry
        attempt = 0
        while True:
            try:
                reply = await self.client.get_result(self.req_key, self.task_id, retry=False, **options)
            except VolcError as err:
                self.polls += 1
                left = self._deadline_left()
                if classify(err, idempotent=True) != "retry" or left <= 0:
                    raise
                attempt += 1
                self.reconnecting, self.last_error = True, err
                self._notify()
                await policy.sleep(min(left, policy.backoff(attempt, err.retry_after, cap=policy.reconnect_cap)))
                continue
            self.polls += 1
            if self.reconnecting:
                self.reconnecting = False
                self._notify()
            return reply

    async def _poll_once(self) -> Reply:
        assert self.task_id is not None
        options = _fetch_kwargs(self.fetch_options)
        try:
            reply = await self._ask(options)
            status = wire.task_status(reply, task_id=self.task_id, req_key=self.req_key)
        except TaskNotFoundError as err:  # expired too: the handle ends at once, keeping the task id
            self._fail(err, "expired" if isinstance(err, TaskExpiredError) else "not_found")
            raise
        except InvalidArgumentError as err:
            if options and not err.task_failed:
                raise await self._options_refused(err, options) from err
            self._fail(err)
            raise
        except VolcError as err:
            self._fail(err)
            raise
        self.request_id = reply.request_id or self.request_id
        if status == "done":
            self._result = await self._build_result(reply, self.fetch_options)
            self.finished_at = time.time()
            self._set("done")
        elif status != self.status:
            self._set(status)
        else:
            self._notify()
        return reply

    async def _options_refused(self, err: InvalidArgumentError, options: Mapping[str, Any]) -> FetchOptionsError:
        """GetResult refused the fetch options: learn the task's status without them, keep it, explain."""
        try:
            probe = await self._ask({})
            status: Status = wire.task_status(probe, task_id=self.task_id, req_key=self.req_key)
        except VolcError:
            status = self.status
        if status != self.status:
            self._set(status)
        wire_options = _jsonable_options(options)
        refused = FetchOptionsError(
            f"GetResult refused the fetch options {wire_options} of {self.req_key} task {self.task_id} "
            f"({err.message}); the task is {status} and nothing is lost: fetch it again with other options, "
            f"await task.fetch(logo_info=...) or volcnb.Task.attach({self.req_key!r}, {self.task_id!r}).fetch(...)",
            code=err.code, request_id=err.request_id, task_id=self.task_id, status_code=err.status_code,
            req_key=self.req_key, options=wire_options, status=status)
        self.error = refused
        self._notify()
        return refused

    async def _drive(self) -> Result:
        poller = self._poller_for()
        try:
            await self.submitted()
            while not self.done and self.error is None:
                await poller.pause(self)
                await self._poll_once()
                poller.record(self, self.status)
        finally:
            poller.forget(self)
        if self.error is not None:
            raise self.error
        assert self._result is not None
        return self._result

    def _ensure_runner(self) -> asyncio.Task[Result]:
        loop = asyncio.get_running_loop()
        runner = self._runner
        if runner is not None and (runner.done() or runner.get_loop() is loop):
            if not (runner.done() and runner.cancelled()):
                return runner
        runner = loop.create_task(self._drive(), name=f"volcnb-task-{self.task_id or 'submitting'}")
        runner.add_done_callback(_retrieve)
        self._runner = runner
        return runner

    # --- waiting -------------------------------------------------------------------------------

    async def wait(self, timeout: float | None = None, on_timeout: OnTimeout | None = None) -> Result | None:
        """Wait for the result, at most ``timeout`` seconds (default: the task's ``deadline``).

        On timeout: ``"raise"`` raises :class:`TaskTimeoutError` (the task keeps running on the server),
        ``"detach"`` returns ``None`` and lets the handle keep polling in the background where a loop keeps
        running (a notebook), ``"cancel"`` cancels the task on the server and raises.
        """
        timeout, on_timeout = check_wait(self.wait_timeout if timeout is None else timeout,
                                         self.on_timeout if on_timeout is None else on_timeout)
        if self._result is not None:
            return self._result
        if self.error is not None:
            raise self.error
        limit = self.deadline if timeout is None else timeout
        runner = self._ensure_runner()
        try:
            return await asyncio.wait_for(asyncio.shield(runner), timeout=limit)
        except asyncio.TimeoutError:
            if on_timeout == "detach":
                return None
            if on_timeout == "cancel":
                await self.cancel()
            else:
                runner.cancel()
                if self._runner is runner:  # a later wait starts a fresh runner, not this cancelling one
                    self._runner = None
            raise TaskTimeoutError(
                f"{self.req_key} task {self.task_id} not done after {limit:g} s (status {self.status}); it keeps "
                f"running on the server: volcnb.Task.attach({self.req_key!r}, {self.task_id!r}) to come back",
                task_id=self.task_id, req_key=self.req_key) from None
        except asyncio.CancelledError:
            if self.status == "cancelled" and self.error is not None:
                raise self.error from None
            raise

    def __await__(self) -> Generator[Any, None, Result]:
        async def _wait() -> Result:
            res = await self.wait()
            assert res is not None
            return res

        return _wait().__await__()

    def result(self, timeout: float | None = None, on_timeout: OnTimeout | None = None) -> Result:
        """Block until the result is ready (works in scripts and inside a running notebook loop)."""
        check_wait(timeout, on_timeout or "raise")
        if self._result is not None:
            return self._result
        res = run_sync(self.wait(timeout, on_timeout))
        if res is None:
            raise TaskTimeoutError(f"{self.req_key} task {self.task_id} detached before it finished",
                                   task_id=self.task_id, req_key=self.req_key)
        return res

    async def cancel(self) -> None:
        """Cancel the task on the server (``CVCancelTask``) and stop waiting for it locally."""
        if self.done:
            return
        if self._submitting is not None and not self._submitting.done():
            await asyncio.shield(self._submitting)
        err = TaskCancelledError(f"{self.req_key} task {self.task_id} was cancelled", code="cancelled",
                                 task_id=self.task_id, req_key=self.req_key)
        if self.task_id is not None:
            await self.client.cancel_task(self.req_key, self.task_id)
        self._fail(err, "cancelled")
        if self._runner is not None and not self._runner.done():
            self._runner.cancel()

    def cancel_sync(self) -> None:
        """Blocking :meth:`cancel`."""
        run_sync(self.cancel())

    # --- results ------------------------------------------------------------------------------

    async def _build_result(self, reply: Reply, options: Mapping[str, Any]) -> Result:
        urls = wire.result_images(reply.data)[1]
        downloads: dict[str, bytes] = {}
        if urls:  # links expire (1–24 h): fetch them now, while they work
            blobs = await asyncio.gather(*(self.client.download(u) for u in urls))
            downloads = dict(zip(urls, blobs, strict=True))
        assert self.task_id is not None
        return Result.from_data(req_key=self.req_key, task_id=self.task_id, data=reply.data,
                                request_id=reply.request_id, time_elapsed=reply.time_elapsed, downloads=downloads,
                                input_images=self.input_images, options=_jsonable_options(options))

    async def fetch(
        self,
        *,
        return_url: bool | None = None,
        logo_info: LogoInfo | Mapping[str, Any] | None = None,
        aigc_meta: AigcMeta | Mapping[str, Any] | None = None,
    ) -> Result:
        """Query the SAME task again with other GetResult options (never re-submits).

        ``logo_info``/``aigc_meta`` may be plain dicts. Waits for the task first if it is not done yet.
        After a :class:`~volcnb.FetchOptionsError` this is how to fetch the task with options that work.
        """
        options = fetch_options(return_url=return_url, logo_info=logo_info, aigc_meta=aigc_meta)
        if isinstance(self.error, FetchOptionsError):
            self.error, self.fetch_options = None, options
            if self._runner is not None and self._runner.done():
                self._runner = None  # it ended with the refusal: a new one polls with the new options
            if self.status != "done":  # poll on with the new options
                res = await self.wait()
                assert res is not None
                return res
        elif self._result is None:
            await self.wait()
        assert self.task_id is not None
        kwargs = _fetch_kwargs(options)
        try:
            reply = await self._ask(kwargs)
            status = wire.task_status(reply, task_id=self.task_id, req_key=self.req_key)
        except InvalidArgumentError as err:
            if kwargs and not err.task_failed:
                raise await self._options_refused(err, kwargs) from err
            raise
        if status != "done":  # pragma: no cover - a done task stays done until it expires
            raise VolcError(f"task {self.task_id} is {status}", task_id=self.task_id)
        res = await self._build_result(reply, options)
        if self._result is None:  # the first result this handle got (its own options were refused)
            self._result, self.finished_at = res, time.time()
            self._notify()
        return res

    def fetch_sync(self, **options: Any) -> Result:
        """Blocking :meth:`fetch`."""
        return run_sync(self.fetch(**options))


def fetch_options(
    *,
    return_url: bool | None = None,
    logo_info: LogoInfo | Mapping[str, Any] | None = None,
    aigc_meta: AigcMeta | Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Checked GetResult options (plain dicts become :class:`LogoInfo` / :class:`AigcMeta`)."""
    return {
        "return_url": check_bool(return_url, "return_url"),
        "logo_info": LogoInfo.coerce(logo_info) if logo_info is not None else None,
        "aigc_meta": AigcMeta.coerce(aigc_meta) if aigc_meta is not None else None,
    }


def _fetch_kwargs(options: Mapping[str, Any]) -> dict[str, Any]:
    return {k: options[k] for k in ("return_url", "logo_info", "aigc_meta") if options.get(k) is not None}


def _jsonable_options(options: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in options.items():
        if v is None:
            continue
        out[k] = v.to_json() if isinstance(v, (LogoInfo, AigcMeta)) else v
    return out


def _retrieve(fut: asyncio.Future[Any]) -> None:
    # Mark a background runner's exception as retrieved: it is re-raised to waiters and shown in the view.
    if not fut.cancelled():
        fut.exception()
