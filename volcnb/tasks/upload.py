"""IVA upload handles: :class:`Upload`, resolved by the callback its item's analysis sends.

``up = await client.iva.add_image(task_id, "a.jpg")`` returns as soon as the service answers with the
``ImageID``; ``await up`` (or ``up.result()``) then waits for the item's callback, which a receiver
(:func:`volcnb.callbacks.serve`) hands to :func:`deliver`. Callbacks arrive on the receiver's thread, so a
handle's state is guarded by a lock; awaiting loops are woken with ``call_soon_threadsafe`` and views are
told on the loop the handle was made on (ipykernel drops display updates made from threads).
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Generator, Mapping
from typing import Any, Literal, cast

from .._exceptions import APIError, TaskTimeoutError, ValidationError, make_api_error
from .._sync import run_sync, running_loop
from ..http.iva import IvaUploads, Kind, Receipt
from . import ports

__all__ = ["Upload", "Uploads", "deliver", "receiver_active", "set_receiver_count"]


DEFAULT_WAIT = 600.0
"""Seconds ``await up`` waits for a callback by default."""

EARLY_KEEP, EARLY_SECONDS = 256, 600.0
"""Callbacks that arrive before their upload's reply (a race on a fast service) are kept this many, this long."""

Status = Literal["uploaded", "done", "failed"]


class Upload:
    """One uploaded IVA item (image or video): its id now, its analysis when the callback arrives.

    ``await up`` → the callback's ``Result`` object (a dict); a failed item raises its error. ``up.result(
    timeout=...)`` blocks instead. ``status``: ``"uploaded"`` (waiting for the callback), ``"done"``, ``"failed"``.
    Renders in the task views (``volcnb.TaskView(up)``, ``volcnb.BatchView(ups)``) and as an HTML card.
    """

    def __init__(self, receipt: Receipt, *, client: Any = None, started: float | None = None) -> None:
        self.receipt = receipt
        self.client = client
        self.status: Status = "uploaded"
        self.callback: dict[str, Any] | None = None
        """The whole callback body, once it arrived."""
        self.data: dict[str, Any] | None = None
        """The callback's ``Result`` (the item's analysis), once it arrived."""
        self.error: APIError | None = None
        self.started_at = started if started is not None else time.monotonic()
        self.uploaded_at = time.monotonic()
        self.finished_at: float | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._listeners: list[Callable[[Any], None]] = []
        self._loop = running_loop()

    # --- what the views read ---------------------------------------------------------------------------

    @property
    def kind(self) -> Kind:
        """``image`` or ``video``."""
        return self.receipt.kind

    @property
    def item_id(self) -> str:
        """The ``ImageID`` / ``VideoID`` the service gave."""
        return self.receipt.item_id

    @property
    def iva_task_id(self) -> str:
        """The IVA task this item was added to."""
        return self.receipt.iva_task_id

    @property
    def name(self) -> str:
        """The item's ``Name``."""
        return self.receipt.name

    @property
    def request_id(self) -> str | None:
        """The upload's ``RequestId``."""
        return self.receipt.request_id

    polls = 0
    reconnecting = False
    view: Any = None

    @property
    def done(self) -> bool:
        """True once the callback arrived (done or failed)."""
        return self._done.is_set()

    @property
    def image_id(self) -> str | None:
        """The ``ImageID`` (images only)."""
        return self.item_id if self.kind == "image" else None

    @property
    def video_id(self) -> str | None:
        """The ``VideoID`` (videos only)."""
        return self.item_id if self.kind == "video" else None

    @property
    def req_key(self) -> str:
        """The label the views show: ``iva image a.jpg``."""
        return f"iva {self.kind} {self.name}"

    @property
    def task_id(self) -> str:
        """The item's id (what the views show as the id)."""
        return self.item_id

    @property
    def elapsed(self) -> float:
        """Seconds from the upload's start to its callback (or now)."""
        return (self.finished_at or time.monotonic()) - self.started_at

    @property
    def id_pairs(self) -> list[tuple[str, str]]:
        """``(label, id)`` pairs the views show."""
        pairs = [(f"{self.kind}_id", self.item_id), ("iva TaskID", self.iva_task_id)]
        return pairs + ([("request_id", self.request_id)] if self.request_id else [])

    def stats_text(self) -> str:
        """``1.2 s · callback received`` for the views."""
        state = {"uploaded": "waiting for the callback", "done": "callback received",
                 "failed": "callback: failed"}[self.status]
        return f"{self.elapsed:.1f} s · {self.receipt.size:,} bytes sent · {state}"

    def peek(self) -> None:
        """No pictures: an IVA result is an analysis (see :attr:`data`)."""
        return None

    def on_change(self, callback: Callable[[Any], None]) -> None:
        """Call ``callback(upload)`` when the callback arrives (on the loop the upload was made on)."""
        self._listeners.append(callback)

    def __repr__(self) -> str:
        return (f"<volcnb.Upload {self.kind} {self.name!r} {self.kind}_id={self.item_id} "
                f"iva_task_id={self.iva_task_id} status={self.status}>")

    def _repr_html_(self) -> str | None:
        shown = ports.presenter()
        return shown.html(cast(Any, self)) if shown is not None else None

    # --- waiting -----------------------------------------------------------------------------------------

    def __await__(self) -> Generator[Any, None, dict[str, Any]]:
        return self.wait().__await__()

    async def wait(self, timeout: float | None = DEFAULT_WAIT) -> dict[str, Any]:
        """The item's analysis once its callback arrives (``timeout`` seconds at most; ``None``: no limit)."""
        if not self._done.is_set():
            self._need_receiver()
            loop = asyncio.get_running_loop()
            fut: asyncio.Future[None] = loop.create_future()
            with self._lock:
                if not self._done.is_set():
                    self._waiters.append((loop, fut))
                else:
                    fut.set_result(None)
            try:
                await asyncio.wait_for(asyncio.shield(fut), timeout)
            except asyncio.TimeoutError:
                raise self._timeout(timeout) from None
        return self._outcome()

    def result(self, timeout: float | None = DEFAULT_WAIT) -> dict[str, Any]:
        """Blocking :meth:`wait` (the receiver runs in its own thread, so a blocked cell still gets it)."""
        if running_loop() is not None and not self._done.is_set():
            return run_sync(self.wait(timeout))
        if not self._done.is_set():
            self._need_receiver()
            if not self._done.wait(timeout):
                raise self._timeout(timeout)
        return self._outcome()

    def _need_receiver(self) -> None:
        if not receiver_active():
            raise ValidationError(
                f"no callback receiver is running in this process, so nothing can resolve {self.kind} "
                f"{self.item_id}: start one with `async with volcnb.callbacks.serve() as cb:` and set cb.url as "
                "the IVA task's callback address", field="callbacks", limit="an active receiver")

    def _timeout(self, timeout: float | None) -> TaskTimeoutError:
        return TaskTimeoutError(f"no callback for {self.kind} {self.item_id} within {timeout} s (is cb.url the "
                                "IVA task's callback address?)", task_id=self.item_id)

    def _outcome(self) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        return dict(self.data or {})

    # --- resolution (any thread) ---------------------------------------------------------------------------

    def resolve(self, body: Mapping[str, Any]) -> bool:
        """Settle from a callback body and wake whoever waits; False if it was settled already."""
        if not self._settle(body):
            return False
        self._wake()
        return True

    def _settle(self, body: Mapping[str, Any]) -> bool:
        with self._lock:
            if self._done.is_set():
                return False
            self.callback = dict(body)
            if body.get("Status") == "success":
                self.status, self.data = "done", dict(body.get("Result") or {})
            else:
                err = body.get("Error") or {}
                self.status = "failed"
                self.error = make_api_error(str(err.get("Code") or "Failed"), str(err.get("Message") or ""),
                                            task_id=self.item_id)
            self.finished_at = time.monotonic()
            self._done.set()
        return True

    def _wake(self) -> None:
        with self._lock:
            waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            _call_on(loop, _settle, fut)
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._notify)
        else:
            self._notify()

    def _notify(self) -> None:
        ports.notify(self._listeners, self, "an upload")


def _settle(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _call_on(loop: asyncio.AbstractEventLoop, fn: Callable[[asyncio.Future[None]], None],
             fut: asyncio.Future[None]) -> None:
    if not loop.is_closed():
        loop.call_soon_threadsafe(fn, fut)


# --- the registry: ids -> handles, for the receiver ------------------------------------------------------

_lock = threading.Lock()
_handles: weakref.WeakValueDictionary[str, Upload] = weakref.WeakValueDictionary()
_early: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
_receivers = 0


def set_receiver_count(delta: int) -> None:
    """A receiver started (+1) or stopped (-1)."""
    global _receivers
    with _lock:
        _receivers = max(0, _receivers + delta)


def receiver_active() -> bool:
    """Whether a callback receiver runs in this process."""
    return _receivers > 0


Outcome = Literal["matched", "repeated", "unknown"]


def register(up: Upload) -> None:
    """Make ``up`` findable by its id; settle it now if its callback came first."""
    with _lock:
        _handles[up.item_id] = up
        early = _early.pop(up.item_id, None)
    if early is not None:
        up.resolve(early[1])


def deliver(body: Mapping[str, Any], noted: Callable[[Outcome], None] | None = None) -> Outcome:
    """Hand a checked callback body to its upload: ``matched``, ``repeated`` (settled before) or ``unknown``.

    ``noted(outcome)`` is called before anyone waiting is woken (a receiver's counters are then up to date)."""
    item = str(body["DataID"])
    note = noted or (lambda _outcome: None)
    with _lock:
        up = _handles.get(item)
        if up is None:
            now = time.monotonic()
            _early[item] = (now, dict(body))
            while _early and (len(_early) > EARLY_KEEP or next(iter(_early.values()))[0] < now - EARLY_SECONDS):
                _early.popitem(last=False)
            note("unknown")
            return "unknown"
    if not up._settle(body):
        note("repeated")
        return "repeated"
    note("matched")
    up._wake()
    return "matched"


class Uploads(IvaUploads):
    """``client.iva``: ``up = await client.iva.add_image(iva_task_id, "a.jpg", name="a.jpg")`` → :class:`Upload`.

    ``add_video`` streams a file from disk. Each returns once the service gave the item's id; ``await up``
    waits for its callback (a receiver must run: :func:`volcnb.callbacks.serve`). ``display``: show a view
    in a notebook (``None``: where it makes sense, as for tasks).
    """

    async def upload(self, kind: Kind, task_id: str, media: Any, *, display: bool | None = None,
                     **kwargs: Any) -> Upload:
        """Upload one item and return its handle."""
        started = time.monotonic()
        receipt = await self.add(kind, task_id, media, **kwargs)
        up = Upload(receipt, client=self._client, started=started)
        register(up)
        shown = ports.presenter()
        if shown is not None and display is not False:
            shown.show(cast(Any, up), display)
        return up

    async def add_image(self, task_id: str, image: Any, **kwargs: Any) -> Upload:
        """Upload an image (path, bytes, PIL image, or an ``http(s)`` URL); its :class:`Upload`."""
        return await self.upload("image", task_id, image, **kwargs)

    async def add_video(self, task_id: str, video: Any, **kwargs: Any) -> Upload:
        """Upload a video (a path is streamed from disk; bytes, or an ``http(s)`` URL); its :class:`Upload`."""
        return await self.upload("video", task_id, video, **kwargs)

    def add_image_sync(self, task_id: str, image: Any, **kwargs: Any) -> Upload:
        """Blocking :meth:`add_image`."""
        return run_sync(self.add_image(task_id, image, **kwargs))

    def add_video_sync(self, task_id: str, video: Any, **kwargs: Any) -> Upload:
        """Blocking :meth:`add_video`."""
        return run_sync(self.add_video(task_id, video, **kwargs))
