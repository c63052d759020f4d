"""The simulator's behaviour: signature checks, validation, quotas, the task life cycle, faults.

Semantics that the documents do not give are inferred and marked so here and in the README:

* **Life cycle** — ``in_queue`` for ``queue_time`` seconds, then ``generating`` for a service time drawn
  per req_key from a log-normal distribution, then ``done`` (once the output is also computed). The true
  finish time is recorded for benchmarks (``/sim/stats``); clients never see it.
* **Expiry** — after ``ttl`` (12 h, as the ``not_found`` text says) a task answers ``expired``; after
  ``purge_after`` (24 h, the submit page's validity) it is deleted and answers ``not_found``.
* **Quotas** (inferred) — per access key: ``submit_qps`` submits per second (50429), ``max_unfinished``
  unfinished tasks (50430), and a separate, higher ``get_result_qps`` for GetResult (50429).
* **Moderation** (our triggers) — see :data:`volcnb.sim._compute.RISK_TRIGGERS`.
* **Cancel** — ``CVCancelTask`` marks an unfinished task cancelled; GetResult then answers ``not_found``.
"""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import io
import multiprocessing
import os
import random
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from PIL import Image

from ..protocol.catalog import CAPABILITIES, get_capability, image_count
from ..protocol.options import aigc_issues, logo_issues
from ._compute import compute_safely, failure, image_risk, png, text_risk
from ._inputs import decode_images, json_body, loads_bounded
from ._iva import IvaDesk, check_upload
from ._model import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_SECRET_KEY,
    MESSAGES,
    Bucket,
    Counters,
    Faults,
    Incoming,
    Quotas,
    Reject,
    ServiceTime,
)
from ._store import Store, TaskRow
from ._verify import verify_signature

__all__ = ["Engine"]


class Engine:
    """A faithful local Volcengine: CV sync-to-async + IVA uploads, with quotas, expiry and faults.

    ``keys`` maps access keys to secret keys (default: one documented local pair). ``db`` keeps tasks in a
    SQLite file so they survive a restart. ``clock`` is injectable (tests jump 12 h ahead).
    """

    def __init__(
        self,
        *,
        keys: Mapping[str, str] | None = None,
        db: str | None = None,
        service_times: Mapping[str, ServiceTime | float] | None = None,
        queue_time: float = 0.05,
        ttl: float = 12 * 3600,
        purge_after: float = 24 * 3600,
        url_ttl: float = 24 * 3600,
        quotas: Quotas | None = None,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.time,
        max_clock_skew: float = 15 * 60,
        seed: int | None = None,
        workers: int = 2,
        processes: int = 0,
        max_video_bytes: int = 256 * 1024 * 1024,
        body_timeout: float = 30.0,
        iva_task_ids: Iterable[str] | None = None,
        iva_callback: str | None = None,
    ) -> None:
        self.keys = dict(keys or {DEFAULT_ACCESS_KEY: DEFAULT_SECRET_KEY})
        self.store = Store(db)
        self.service_times: dict[str, ServiceTime] = {}
        for cap_key, cap in CAPABILITIES.items():
            self.service_times[cap_key] = ServiceTime(*cap.service_time)
        for k, v in (service_times or {}).items():
            self.set_service_time(k, v)
        self.queue_time = queue_time
        self.ttl, self.purge_after, self.url_ttl = ttl, purge_after, url_ttl
        self.quotas = quotas or Quotas()
        self.faults = faults or Faults()
        self.clock = clock
        self.max_clock_skew = max_clock_skew
        self.max_video_bytes = max_video_bytes
        """Largest IVA video accepted (no document gives one; the body is refused while it is read)."""
        self.body_timeout = body_timeout
        """Seconds a request body may stall between two chunks before it is answered 408 (half-sent bodies)."""
        self.rng = random.Random(seed)
        self.counters = Counters()
        self._submit_buckets: dict[str, Bucket] = {}
        self._poll_buckets: dict[str, Bucket] = {}
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(workers, processes),
                                                           thread_name_prefix="volcnb-sim")
        # Outputs computed in other processes: the GIL no longer caps a served simulator at one core.
        self._procs = (concurrent.futures.ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                                                              initializer=_exit_with_parent, initargs=(os.getpid(),))
                       if processes > 0 else None)
        self._futures: dict[str, concurrent.futures.Future[None]] = {}
        self.iva = IvaDesk(self._pool, task_ids=iva_task_ids, callback=iva_callback,
                           max_video_bytes=lambda: self.max_video_bytes)
        """IVA async tasks: accepted TaskIDs, callback URLs, the items' analysis and callbacks."""
        self._lock = threading.Lock()
        self._last_purge = float("-inf")
        self.instance_id = self.store.instance_id()
        """Who issued these task ids: stable across restarts with a ``db``, fresh for an in-memory store."""
        for row in self.store.pending_computation():  # never lose an accepted task across a restart
            self._schedule(row)

    def __repr__(self) -> str:
        return f"<volcnb Simulator keys={sorted(self.keys)} db={self.store.path!r} tasks={self.store.count('tasks')}>"

    # --- configuration ------------------------------------------------------------------------

    def set_service_time(self, req_key: str, median: ServiceTime | float, sigma: float = 0.3) -> None:
        """Set the service-time distribution of ``req_key`` (a :class:`ServiceTime` or a median)."""
        self.service_times[req_key] = median if isinstance(median, ServiceTime) else ServiceTime(float(median), sigma)

    def close(self) -> None:
        """Stop the workers and close the store.

        Running computations finish; queued ones are dropped (with a ``db`` they are recomputed at the next
        start, so nothing accepted is lost).
        """
        self.iva.close()
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._procs is not None:
            self._procs.shutdown(wait=True, cancel_futures=True)
        self.store.close()

    def stats(self, *, tasks: bool = False) -> dict[str, Any]:
        """Counters, and with ``tasks`` every task's true timings (for benchmarks only)."""
        out: dict[str, Any] = {"counters": self.counters.snapshot(), "now": self.clock(),
                               "tasks_stored": self.store.count("tasks"), "uploads_stored": self.store.count("uploads"),
                               "iva_callbacks": {**self.iva.sender.stats(), "unconfigured": self.iva.unconfigured}}
        if tasks:
            out["tasks"] = [
                {"task_id": t, "req_key": rk, "submitted_at": s, "finished_at": f, "state": st}
                for t, rk, s, f, st in self.store.timings()]
        return out

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Block until every scheduled computation has finished (tests)."""
        with self._lock:
            futures = list(self._futures.values())
        concurrent.futures.wait(futures, timeout=timeout)

    def authenticate(self, req: Incoming, service: str) -> str:
        """Verify the V4 signature over the exact body; return the access key or raise a gateway error."""
        return verify_signature(req, service, self.keys, self.clock(), self.max_clock_skew)

    def _images(self, body: dict[str, Any], notes: list[str] | None = None) -> list[Image.Image]:
        return decode_images(body, self._served_file, notes)

    def _served_file(self, token: str) -> bytes | None:
        f = self.store.get_file(token)
        return f[0] if f and f[2] > self.clock() else None

    # --- CV actions -----------------------------------------------------------------------------

    def submit(self, ak: str, body: bytes) -> dict[str, Any]:
        """``CVSync2AsyncSubmitTask``."""
        self.counters.submits += 1
        obj = json_body(body)
        req_key = obj.get("req_key")
        if not req_key:
            raise Reject(50201, "Request Missing Args: req_key")
        if not isinstance(req_key, str) or get_capability(req_key) is None:
            raise Reject(50200, f"Request Invalid Args: req_key {req_key!r} is not supported")
        cap = get_capability(req_key)
        assert cap is not None
        bucket = self._submit_buckets.setdefault(ak, Bucket(self.quotas.submit_qps, self.clock))
        if not bucket.take():
            raise Reject(50429)
        now = self.clock()
        if self.store.unfinished(ak, now) >= self.quotas.max_unfinished:
            raise Reject(50430)
        issues = cap.check({k: v for k, v in obj.items() if k != "req_key"}, image_count(obj))
        errors = [i for i in issues if i.severity == "error"]
        if errors:
            e = errors[0]
            raise Reject(e.code, f"{MESSAGES.get(e.code, 'Request Invalid Args')}: {e.message}")
        notes = [i.message for i in issues if i.severity == "warning"]
        images = self._images(obj, notes)
        if cap.min_images and not images:
            raise Reject(50206, "Image Empty: this req_key needs an image")
        verdict = text_risk(obj)
        if verdict:
            raise Reject(*verdict)
        if image_risk(images):
            raise Reject(50411, "Pre Img Risk Not Pass")
        digest = hashlib.sha256(body).hexdigest()
        if self.store.has_body(ak, digest):
            self.counters.duplicates += 1
        task_id = str(7_000_000_000_000_000_000 + secrets.randbelow(10**18))
        st = self.service_times.get(req_key, ServiceTime(2.0))
        start = now + self.queue_time
        row = TaskRow(task_id=task_id, access_key=ak, req_key=req_key, body=obj, body_hash=digest, submitted_at=now,
                      start_at=start, finish_at=start + st.sample(self.rng), notes=notes)
        self.store.add_task(row)
        self.counters.accepted += 1
        self._schedule(row, images)
        return {"task_id": task_id}

    def _schedule(self, row: TaskRow, images: list[Image.Image] | None = None) -> None:
        fut = self._pool.submit(self._compute, row, images)
        with self._lock:
            self._futures[row.task_id] = fut
        task_id = row.task_id
        fut.add_done_callback(lambda _f: self._forget(task_id))

    def _forget(self, task_id: str) -> None:
        with self._lock:
            self._futures.pop(task_id, None)

    def _compute(self, row: TaskRow, images: list[Image.Image] | None) -> None:
        try:
            if images is None:
                images = self._images(row.body)
        except Exception as exc:  # a bad stored input fails its task visibly; it is never lost
            outcome = failure(exc)
        else:
            args = (row.req_key, row.body, images, row.notes, row.task_id)
            outcome = self._procs.submit(compute_safely, *args).result() if self._procs else compute_safely(*args)
        self.store.finish_task(row.task_id, computed_at=self.clock(), code=outcome.code, message=outcome.message,
                               result=outcome.result, outputs=outcome.outputs, notes=outcome.notes)

    def _status(self, row: TaskRow, now: float) -> str:
        if row.state in ("cancelled", "lost"):
            return "not_found"
        if now - row.submitted_at > self.ttl:
            return "expired"
        if now < row.start_at:
            return "in_queue"
        if row.computed_at is None or now < row.finish_at:
            return "generating"
        return "done"

    def get_result(self, ak: str, body: bytes, base_url: str, *, lose: bool = False) -> tuple[int, str, dict[str, Any]]:
        """``CVSync2AsyncGetResult``: ``(code, message, data)``."""
        self.counters.polls += 1
        obj = json_body(body)
        req_key, task_id = obj.get("req_key"), obj.get("task_id")
        if not req_key:
            raise Reject(50201, "Request Missing Args: req_key")
        if not task_id:
            raise Reject(50201, "Request Missing Args: task_id")
        if not isinstance(req_key, str) or not isinstance(task_id, str):
            raise Reject(50200, "req_key and task_id must be strings")
        bucket = self._poll_buckets.setdefault(ak, Bucket(self.quotas.get_result_qps, self.clock))
        if not bucket.take():
            raise Reject(50429)
        options = self._req_json(obj.get("req_json"))
        now = self.clock()
        if self.purge_after and now - self._last_purge > 60:
            self._last_purge = now
            self.store.purge(now - self.purge_after)
        row = self.store.get_task(task_id)
        if row is None or row.access_key != ak or row.req_key != req_key:
            return 10000, "Success", {"status": "not_found"}
        if lose:
            self.store.set_state(task_id, "lost")
            return 10000, "Success", {"status": "not_found"}
        status = self._status(row, now)
        if status != "done":
            return 10000, "Success", {"status": status}
        if row.code != 10000:
            return row.code, row.message, {"status": "done"}
        data = dict(row.result or {})
        outputs = [self._watermark(b, options.get("logo_info")) for b in self.store.outputs(task_id)]
        if options.get("return_url"):
            urls = []
            for b in outputs:
                token = secrets.token_urlsafe(18)
                self.store.add_file(token, b, "image/png", now + self.url_ttl)
                urls.append(f"{base_url.rstrip('/')}/sim/files/{token}")
            data["image_urls"] = urls
            data["binary_data_base64"] = [""] * len(urls)  # the documented type is an array; the example shows [""]
        else:
            data["binary_data_base64"] = [base64.b64encode(b).decode("ascii") for b in outputs]
        if options.get("aigc_meta"):
            data["aigc_meta_tagged"] = True
        data["status"] = "done"
        return 10000, "Success", data

    def _req_json(self, raw: Any) -> dict[str, Any]:
        if raw is None or raw == "":
            return {}
        if not isinstance(raw, str):
            raise Reject(50200, "req_json must be a JSON *string* (serialised), not an object")
        try:
            conf = loads_bounded(raw, "req_json")
        except ValueError as exc:
            raise Reject(50204, f"Parse Args Error: {exc}") from None
        if not isinstance(conf, dict):
            raise Reject(50204, "Parse Args Error: req_json must encode an object")
        rurl = conf.get("return_url")
        if rurl is not None and not isinstance(rurl, bool):
            raise Reject(50200, "req_json.return_url must be a bool")
        for name, rules in (("logo_info", logo_issues), ("aigc_meta", aigc_issues)):
            value = conf.get(name)
            if value is None:
                continue
            if not isinstance(value, dict):
                raise Reject(50200, f"req_json.{name} must be an object")
            errors = [i for i in rules(value, field=f"req_json.{name}") if i.severity == "error"]
            if errors:
                raise Reject(errors[0].code, f"{MESSAGES.get(errors[0].code, 'Request Invalid Args')}: "
                                             f"{errors[0].message}")
        return conf

    def _watermark(self, data: bytes, logo: dict[str, Any] | None) -> bytes:
        if not logo or not logo.get("add_logo"):
            return data
        from ._watermark import apply_logo

        img = Image.open(io.BytesIO(data))
        img.load()
        out = apply_logo(img, position=int(logo.get("position", 0)), language=int(logo.get("language", 0)),
                         opacity=float(logo.get("opacity", 0.3)), text=logo.get("logo_text_content") or None)
        return png(out)

    def cancel(self, ak: str, body: bytes) -> dict[str, Any]:
        """``CVCancelTask``: cancel an unfinished task (semantics inferred; the SDK is the only source)."""
        self.counters.cancels += 1
        obj = json_body(body)
        req_key, task_id = obj.get("req_key"), obj.get("task_id")
        if not req_key or not task_id:
            raise Reject(50201, "Request Missing Args: req_key and task_id")
        row = self.store.get_task(str(task_id))
        if row is None or row.access_key != ak or row.req_key != req_key or row.state != "active":
            return {"status": "not_found"}
        if self._status(row, self.clock()) == "done":
            return {"status": "done"}
        self.store.set_state(row.task_id, "cancelled")
        return {"status": "cancelled"}

    # --- IVA --------------------------------------------------------------------------------------

    def iva_upload(self, ak: str, kind: str, form: Mapping[str, Any]) -> dict[str, Any]:
        """``AddAsyncTaskImageData`` / ``AddAsyncTaskVideoData``: validate the ``Request`` JSON and the file."""
        item = check_upload(kind, form)
        upload_id = str(uuid.uuid4())
        self.iva.accept(item, upload_id)
        self.store.add_upload(upload_id, kind, item.task_id, ak, item.request, item.size, self.clock())
        self.counters.uploads += 1
        return {"ImageID" if kind == "image" else "VideoID": upload_id}


def _exit_with_parent(parent: int) -> None:
    """In a compute worker: exit as soon as the simulator that started it is gone (even SIGKILLed)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="volcnb-sim-parent-watch", daemon=True).start()
