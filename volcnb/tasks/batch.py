"""Batches: many tasks of one capability, each finished exactly once, results streamed to disk.

A :class:`Batch` consumes its inputs lazily (a generator of 100,000 paths is never materialised), keeps at
most ``concurrency`` tasks unfinished and at most ``qps`` submits a second on top of the client's own
pacing, writes every finished result to ``out_dir`` at once (pictures plus one manifest line), and
journals every submit (:mod:`.journal`) so a dead process loses nothing and a re-run pays nothing twice.
One failure never stops the batch. A batch shows nothing itself: views listen to :meth:`Batch.on_change`
and to the items, which look like tasks (``status``, ``polls``, ``error``, ``on_change``).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
import warnings
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiolimiter import AsyncLimiter

from .._exceptions import (
    PossiblyCreatedError,
    SubmitUncertainError,
    TaskCancelledError,
    TaskExpiredError,
    TaskNotFoundError,
    TaskTimeoutError,
    ValidationError,
    VolcError,
    VolcnbWarning,
)
from .._memory import return_big_buffers
from .._sync import run_sync, running_loop
from ..results import Result
from .inputs import (
    describe,
    file_stem,
    fingerprint,
    iter_inputs,
    jsonable,
    open_input,
    prepare,
    reopen,
    split_item,
)
from .journal import Journal
from .polling import Poller
from .task import Task

if TYPE_CHECKING:
    from ..http.api import ApiClient

__all__ = ["DEFAULT_CONCURRENCY", "Batch", "BatchItem"]

DEFAULT_CONCURRENCY = 32
"""Unfinished tasks per batch unless ``concurrency=`` says otherwise (the client's cap and its backing
off on 50430 apply on top)."""
BATCH_DEADLINE = 1800.0
"""How long a batch waits for one task after its submit before reporting it as timed out (it stays in
the journal as unfinished, so :func:`volcnb.resume` picks it up)."""
PREPARED = 8
"""Submit bodies (base64 inputs, megabytes each) held at once: an item prepares its body only when it can
be sent soon, so a 50-slot batch of large images does not hold 50 bodies waiting for the qps ceiling."""
GALLERY = 8
"""How many of the latest results a batch keeps decoded for its view's gallery."""


class BatchItem:
    """One input of a batch and what became of it (looks like a task to the views).

    ``status``: ``pending`` (not yet submitted), ``submitting``, ``in_queue``, ``generating``, ``done``,
    ``failed``, ``cancelled``, ``expired``, ``invalid`` (refused before sending) or ``possibly_created``.
    ``reused`` is true when the journal already held this task (no new submit).
    """

    def __init__(self, batch: Batch, index: int, source: Any, label: str, params: dict[str, Any],
                 req_key: str | None = None) -> None:
        self.batch = batch
        self.index = index
        self.source: Any = source
        """The input as given (kept until the task is submitted, and for failed items, for a retry)."""
        self.label = label
        self.params = params
        self.req_key = req_key or batch.req_key
        self.client = batch.client
        self.status = "pending"
        self.task_id: str | None = None
        self.polls = 0
        self.error: VolcError | None = None
        self.files: list[str] = []
        self.reused = False
        self.entry_id: int | None = None
        self.submitted_at: float | None = None
        self.finished_at: float | None = None
        self._memory: Result | None = None  # only when the batch keeps results in memory (no out_dir)
        self._task: Task | None = None
        self._listeners: list[Callable[[BatchItem], None]] = []

    def __repr__(self) -> str:
        tid = f" task_id={self.task_id}" if self.task_id else ""
        err = f" error={self.error.message!r}" if self.error else ""
        return f"<volcnb.BatchItem #{self.index} {self.label} {self.status}{tid}{err}>"

    @property
    def done(self) -> bool:
        """Whether the item reached a state it leaves only by a retry."""
        return self.status not in ("pending", "submitting", "in_queue", "generating")

    def on_change(self, callback: Callable[[BatchItem], None]) -> None:
        """Call ``callback(item)`` after every change of state."""
        self._listeners.append(callback)

    def _set(self, status: str, error: VolcError | None = None) -> None:
        self.batch._counts[self.status] -= 1
        self.batch._counts[status] += 1
        self.status = status
        if error is not None:
            self.error = error
        if self.done:
            self.finished_at = time.time()
        for cb in list(self._listeners):
            try:
                cb(self)
            except Exception as exc:  # a broken view must never break the batch
                warnings.warn(f"volcnb: a batch listener failed: {exc!r}", VolcnbWarning, stacklevel=2)
        self.batch._changed(self)

    def result(self) -> Result | None:
        """The result (loaded from its files when the batch writes to disk), or ``None`` if not done."""
        if self.status != "done":
            return None
        if self._memory is not None:
            return self._memory
        sidecars = [f for f in self.files if f.endswith(".json")]
        if not sidecars:
            return None
        inputs = [open_input(self.source)] if self.source is not None else []
        return Result.load(sidecars[0], input_images=inputs)


class Batch:
    """Many tasks of one capability: ``await batch`` or ``batch.result()``; ``batch.results`` in input order.

    Made by :func:`volcnb.map` (and :func:`volcnb.resume`, :func:`volcnb.sweep`); see there.
    """

    def __init__(
        self,
        req_key: str,
        inputs: Any = None,
        *,
        client: ApiClient,
        concurrency: int | None = None,
        qps: float | None = None,
        out_dir: str | os.PathLike[str] | None = None,
        fresh: bool = False,
        journal: Journal | None = None,
        params: Mapping[str, Any] | None = None,
        fetch_options: Mapping[str, Any] | None = None,
        deadline: float = BATCH_DEADLINE,
        poller: Poller | None = None,
        label: str | None = None,
        batch_id: str | None = None,
        entries: Iterable[Any] | None = None,
    ) -> None:
        _check(concurrency, qps, deadline)
        self.req_key = req_key
        self.client = client
        self.concurrency = concurrency or DEFAULT_CONCURRENCY
        self.qps = float(qps) if qps else None
        self.fresh = fresh
        self.journal = journal
        self.params = dict(params or {})
        self.fetch_options = dict(fetch_options or {})
        self.deadline = float(deadline)
        self.poller = poller
        self.backend = client.backend_id
        self.items: list[BatchItem] = []
        self.total: int | None = None
        self.label = label or req_key
        self.swept: list[str] = []
        """Names of the parameters a :func:`volcnb.sweep` varied (for :func:`volcnb.compare`)."""
        self.started_at = time.monotonic()
        self.finished_at: float | None = None
        self.cancelled = False
        self.latest: deque[Result] = deque(maxlen=GALLERY)
        """The last finished results, decoded (the view's gallery); older ones live on disk only."""
        self._entries = list(entries) if entries is not None else []
        self._inputs: Iterator[Any] | None = None
        if entries is None:
            items, self.total = iter_inputs(inputs)
            self._inputs = items
        else:  # resume(): journaled entries, no inputs
            self.total = len(self._entries)
        self.out_dir = Path(out_dir).resolve() if out_dir is not None else None
        batch_id = self._register(batch_id)
        self.batch_id = batch_id
        self._listeners: list[Callable[[Batch], None]] = []
        self._runner: asyncio.Task[Batch] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._bodies = asyncio.Semaphore(PREPARED)  # made again per run, on that run's loop
        self._counts: Counter[str] = Counter()

    def _register(self, batch_id: str | None) -> str | None:
        """Record the batch in the journal (or find it there); choose ``out_dir`` if none was given."""
        if self.journal is None:
            return batch_id
        recorded = self.journal.batch(batch_id) if batch_id else None
        if recorded is None:
            batch_id = batch_id or uuid.uuid4().hex[:12]
            if self.out_dir is None:  # results stream to disk: default beside the journal
                self.out_dir = self.journal.folder / "batches" / batch_id
            self.journal.new_batch(batch_id, self.backend, self.req_key, self.label, str(self.out_dir))
        elif self.out_dir is None and recorded["out_dir"]:
            self.out_dir = Path(recorded["out_dir"])
        return batch_id

    # --- state -------------------------------------------------------------------------------

    def __repr__(self) -> str:
        return (f"<volcnb.Batch {self.label} {self.summary()} batch_id={self.batch_id} "
                f"out_dir={self.out_dir}>")

    def __len__(self) -> int:
        return len(self.items)

    def counts(self) -> Counter[str]:
        """Items per status (pending ones not yet read from the inputs are not counted)."""
        return Counter({s: n for s, n in self._counts.items() if n > 0})

    def summary(self) -> str:
        """``42/100 done · 8 generating · 1 failed``."""
        c = self._counts
        total = self.total if self.total is not None else len(self.items)
        parts = [f"{c.get('done', 0)}/{total}{'' if self.total is not None else '+'} done"]
        for status in ("submitting", "in_queue", "generating", "failed", "possibly_created", "expired",
                       "invalid", "cancelled"):
            if c.get(status):
                parts.append(f"{c[status]} {status.replace('_', ' ')}")
        return " · ".join(parts)

    @property
    def done(self) -> bool:
        """Whether every item has ended (the inputs are consumed and nothing is in flight)."""
        return self.finished_at is not None

    def throughput(self) -> float:
        """Finished items per second since the batch started."""
        ended = sum(n for s, n in self._counts.items() if s not in ("pending", "submitting", "in_queue",
                                                                    "generating"))
        elapsed = (self.finished_at or time.monotonic()) - self.started_at
        return ended / elapsed if elapsed > 0 else 0.0

    def eta(self) -> float | None:
        """Seconds to go at the current throughput (``None`` when unknown)."""
        rate = self.throughput()
        if self.total is None or rate <= 0:
            return None
        ended = sum(n for s, n in self._counts.items() if s not in ("pending", "submitting", "in_queue",
                                                                    "generating"))
        return max(0.0, (self.total - ended) / rate)

    def on_change(self, callback: Callable[[Batch], None]) -> None:
        """Call ``callback(batch)`` after items are added or change state."""
        self._listeners.append(callback)

    def _changed(self, item: BatchItem | None) -> None:
        for cb in list(self._listeners):
            try:
                cb(self)
            except Exception as exc:
                warnings.warn(f"volcnb: a batch listener failed: {exc!r}", VolcnbWarning, stacklevel=2)

    @property
    def results(self) -> list[Result | None]:
        """Results in input order (``None`` where an item did not finish); loaded from disk one by one."""
        return [item.result() for item in self.items]

    @property
    def failed(self) -> list[tuple[Any, VolcError]]:
        """``(input, error)`` for every item that ended without a result."""
        return [(i.source if i.source is not None else i.label, i.error) for i in self.items
                if i.status not in ("done", "pending", "submitting", "in_queue", "generating")
                and i.error is not None]

    @property
    def possibly_created(self) -> list[BatchItem]:
        """Items whose submit may have created a task nobody knows the id of (never resubmitted by volcnb)."""
        return [i for i in self.items if i.status == "possibly_created"]

    # --- running -----------------------------------------------------------------------------

    def start(self) -> Batch:
        """Start on the running loop (a notebook: returns at once, the view moves); without one the batch
        runs when it is awaited or ``result()`` is called."""
        loop = running_loop()
        if loop is not None:
            self._ensure_runner()
        return self

    def _ensure_runner(self) -> asyncio.Task[Batch]:
        loop = asyncio.get_running_loop()
        if self._runner is None or (self._runner.get_loop() is not loop and not self._runner.done()):
            self._runner = loop.create_task(self._run(), name=f"volcnb-batch-{self.batch_id}")
            self._runner.add_done_callback(_retrieve)
        return self._runner

    async def _run(self, items: Iterable[BatchItem] | None = None) -> Batch:
        """Drive ``items`` (default: the inputs, read lazily) with the batch's ceilings until all ended."""
        self.finished_at = None
        return_big_buffers()
        slots = asyncio.Semaphore(self.concurrency)
        limiter = AsyncLimiter(1, 1.0 / self.qps) if self.qps else None
        self._bodies = asyncio.Semaphore(PREPARED)
        try:
            try:
                for item in (self._new_items() if items is None else items):
                    if self.cancelled:
                        break
                    await slots.acquire()
                    job = asyncio.get_running_loop().create_task(self._one(item, slots, limiter))
                    self._inflight.add(job)
                    job.add_done_callback(self._inflight.discard)
            finally:  # the inputs failed (or we were cancelled): what was submitted still finishes
                while self._inflight:
                    await asyncio.gather(*list(self._inflight), return_exceptions=True)
        finally:
            self.finished_at = time.monotonic()
            self._changed(None)
        return self

    def _new_items(self) -> Iterator[BatchItem]:
        if self._entries:
            entries, self._entries = self._entries, []
            for entry in entries:
                item = BatchItem(self, entry.idx if entry.idx is not None else len(self.items), reopen(entry.item),
                                 entry.item, dict(entry.params), req_key=entry.req_key)
                item.entry_id, item.task_id = entry.id, entry.task_id
                self.items.append(item)
                self._counts["pending"] += 1
                yield item
            return
        if self._inputs is None:
            return
        for raw in self._inputs:
            if self.cancelled:
                return
            source, params = split_item(raw, self.params)
            item = BatchItem(self, len(self.items), source, describe(source), params)
            self.items.append(item)
            self._counts["pending"] += 1
            self._changed(item)
            yield item
        self._inputs = None

    async def _one(self, item: BatchItem, slots: asyncio.Semaphore, limiter: AsyncLimiter | None) -> None:
        try:
            task = await self._task_for(item, limiter)
            if task is not None:
                await self._follow(item, task)
        except Exception as exc:  # one item never stops the batch
            err = exc if isinstance(exc, VolcError) else VolcError(f"{type(exc).__name__}: {exc}")
            item._set("failed", err)
            self._journal(item, "failed", error=err.message)
        finally:
            item._task = None
            slots.release()

    async def _task_for(self, item: BatchItem, limiter: AsyncLimiter | None) -> Task | None:
        """A task for the item: re-attached from the journal, or newly submitted; ``None`` if it ended."""
        if item.entry_id is not None:  # resume(): an entry already journaled
            entry = self.journal.get(item.entry_id) if self.journal else None
            if entry is not None and entry.possibly_created:
                item._set("possibly_created", _possibly(item))
                return None
            assert item.task_id is not None
            return self._attach(item, item.task_id)
        async with self._bodies:
            return await self._submit(item, limiter)

    async def _submit(self, item: BatchItem, limiter: AsyncLimiter | None) -> Task | None:
        try:
            body, _ = await asyncio.to_thread(prepare, self.req_key, item.source, item.params)
        except ValidationError as err:
            item._set("invalid", err)
            return None
        key = fingerprint(self.backend, self.req_key, body)
        if self.journal is not None and not self.fresh:
            entry = self.journal.latest(self.backend, key)
            if entry is not None:
                return self._reuse(item, entry)
        if self.journal is not None:
            item.entry_id = self.journal.intent(backend=self.backend, req_key=self.req_key, fingerprint=key,
                                                item=item.label, params=jsonable(item.params),
                                                batch_id=self.batch_id, idx=item.index)
        if limiter is not None:
            await limiter.acquire()
        task = Task(self.req_key, client=self.client, body=body, deadline=self.deadline, poller=self.poller,
                    fetch_options=self.fetch_options)
        del body
        item._task = task
        item._set("submitting")
        try:
            item.task_id = await task.submitted()
        except SubmitUncertainError as err:
            item._set("possibly_created", PossiblyCreatedError(
                f"{item.label}: the submit was sent but its answer was lost ({err.message}); the task may exist. "
                "volcnb does not resubmit it by itself: batch.retry_failed() does", task_id=None,
                req_key=self.req_key))
            return None
        except VolcError as err:
            item._set("failed", err)
            self._journal(item, "failed", error=err.message)
            return None
        item.submitted_at = time.time()
        if self.journal is not None and item.entry_id is not None:
            self.journal.landed(item.entry_id, item.task_id)
        item._set("in_queue")
        return task

    def _reuse(self, item: BatchItem, entry: Any) -> Task | None:
        item.reused = True
        item.entry_id, item.task_id = entry.id, entry.task_id
        if entry.possibly_created:
            item._set("possibly_created", _possibly(item))
            return None
        if entry.state == "done" and all(Path(f).exists() for f in entry.files) and entry.files:
            item.files = list(entry.files)
            item._set("done")
            self._manifest(item)
            return None
        if entry.ended and entry.state != "done":
            item._set(entry.state, _ended_error(entry))
            return None
        assert entry.task_id is not None
        return self._attach(item, entry.task_id)

    def _attach(self, item: BatchItem, task_id: str) -> Task:
        task = Task(item.req_key, client=self.client, task_id=task_id, deadline=self.deadline, poller=self.poller,
                    fetch_options=self.fetch_options)
        item._task = task
        item.task_id = task_id
        item._set("in_queue")
        return task

    async def _follow(self, item: BatchItem, task: Task) -> None:
        def moved(t: Task) -> None:
            item.polls = t.polls
            if t.status in ("in_queue", "generating") and t.status != item.status:
                item._set(t.status)
                self._journal(item, t.status)

        task.on_change(moved)
        try:
            res = await task.wait(timeout=self.deadline)
        except (TaskExpiredError, TaskNotFoundError) as err:
            item._set("expired", err)
            self._journal(item, "expired", error=err.message)
            return
        except TaskCancelledError as err:
            item._set("cancelled", err)
            self._journal(item, "cancelled", error=err.message)
            return
        except TaskTimeoutError as err:  # still running on the service: stays unfinished in the journal
            item._set("failed", err)
            return
        except VolcError as err:
            item._set("failed", err)
            self._journal(item, "failed", error=err.message)
            return
        assert res is not None
        item.polls = task.polls
        if self.out_dir is not None:
            prefix = f"{item.index:05d}_{file_stem(item.label)}"
            paths = await asyncio.to_thread(res.save, self.out_dir, prefix=prefix)
            item.files = [str(p) for p in paths] + [str(self.out_dir / f"{prefix}.json")]
        else:
            item._memory = res
        self.latest.append(res)
        if not isinstance(item.source, str):  # bytes or pictures: megabytes a finished item no longer needs
            item.source = None
        item._set("done")
        self._journal(item, "done", files=item.files)
        self._manifest(item)

    def _journal(self, item: BatchItem, state: str, *, files: list[str] | None = None,
                 error: str | None = None) -> None:
        if self.journal is not None and item.entry_id is not None:
            self.journal.update(item.entry_id, state, files=files, error=error)

    def _manifest(self, item: BatchItem) -> None:
        if self.out_dir is None:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        line = {"index": item.index, "input": item.label, "task_id": item.task_id, "status": item.status,
                "files": item.files, "reused": item.reused, "polls": item.polls,
                "submitted_at": item.submitted_at, "finished_at": item.finished_at}
        with open(self.out_dir / "manifest.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")

    # --- waiting -----------------------------------------------------------------------------

    async def wait(self) -> Batch:
        """Run (or wait for) the batch; return it. Interrupted, it says how to pick the tasks up again."""
        runner = self._ensure_runner()
        try:
            return await asyncio.shield(runner)
        except asyncio.CancelledError:
            self._interrupted()
            raise

    def __await__(self) -> Generator[Any, None, Batch]:
        return self.wait().__await__()

    def result(self) -> Batch:
        """Blocking :meth:`wait` (works in scripts and inside a notebook cell)."""
        try:
            return run_sync(self.wait())
        except KeyboardInterrupt:
            self._interrupted()
            raise

    def _interrupted(self) -> None:
        submitted = sum(1 for i in self.items if i.task_id and not i.done)
        where = f"the journal ({self.journal.path})" if self.journal is not None else "nowhere (journal=False)"
        warnings.warn(f"volcnb: batch {self.batch_id} interrupted; {submitted} submitted tasks keep running on the "
                      f"service and are recorded in {where}: volcnb.resume() picks them up",
                      VolcnbWarning, stacklevel=3)

    async def cancel(self) -> None:
        """Stop submitting and cancel the unfinished tasks on the service."""
        self.cancelled = True
        tasks = [i._task for i in self.items if i._task is not None and not i._task.done]
        await asyncio.gather(*(t.cancel() for t in tasks), return_exceptions=True)

    def cancel_sync(self) -> None:
        """Blocking :meth:`cancel`."""
        run_sync(self.cancel())

    def retry_failed(self) -> Batch:
        """Submit again every item that ended without a result (possibly-created and expired ones too, on
        your word); the batch is then awaitable again and its results fill in place."""
        again = [i for i in self.items if i.status in ("failed", "possibly_created", "expired", "cancelled")]
        if not again:
            return self
        for item in again:
            if item.source is None:
                raise ValidationError(f"item #{item.index} ({item.label}) cannot be submitted again: its input is "
                                      "not a path or URL that can be read again", field="inputs")
        self.fresh, self.cancelled = True, False
        for item in again:
            item.entry_id, item.task_id, item.error, item.reused, item.files = None, None, None, False, []
            item._set("pending")
        loop = running_loop()
        if loop is None:
            run_sync(self._run(again))
        else:
            self._runner = loop.create_task(self._run(again), name=f"volcnb-batch-{self.batch_id}-retry")
            self._runner.add_done_callback(_retrieve)
        return self


def _check(concurrency: Any, qps: Any, deadline: Any) -> None:
    if concurrency is not None and (isinstance(concurrency, bool) or not isinstance(concurrency, int)
                                    or concurrency < 1):
        raise ValidationError(f"concurrency must be an integer ≥ 1, got {concurrency!r}", field="concurrency",
                              limit="≥ 1")
    if qps is not None and (isinstance(qps, bool) or not isinstance(qps, (int, float)) or not qps > 0):
        raise ValidationError(f"qps must be a number > 0, got {qps!r}", field="qps", limit="> 0")
    if isinstance(deadline, bool) or not isinstance(deadline, (int, float)) or not deadline > 0:
        raise ValidationError(f"deadline must be a number of seconds > 0, got {deadline!r}", field="deadline",
                              limit="> 0")


def _possibly(item: BatchItem) -> PossiblyCreatedError:
    return PossiblyCreatedError(
        f"{item.label}: an earlier submit was sent but never answered (the process died or the connection "
        "broke); the task may exist. volcnb does not resubmit it by itself: batch.retry_failed() or fresh=True",
        req_key=item.req_key)


def _ended_error(entry: Any) -> VolcError:
    message = entry.error or f"task {entry.task_id} ended as {entry.state}"
    if entry.state == "expired":
        return TaskExpiredError(f"{message} (journaled earlier; fresh=True or batch.retry_failed() submits it "
                                "again)", task_id=entry.task_id, req_key=entry.req_key)
    return VolcError(message, task_id=entry.task_id, req_key=entry.req_key)


def _retrieve(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()
