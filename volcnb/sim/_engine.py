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
import binascii
import calendar
import concurrent.futures
import hashlib
import hmac
import io
import json
import math
import random
import secrets
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from PIL import Image, UnidentifiedImageError

from .. import _wire
from .._auth import canonical_request, parse_authorization, signable_headers, signature
from .._catalog import get_capability, image_count
from ._compute import Outcome, compute, image_risk, png, text_risk
from ._store import Store, TaskRow

DEFAULT_ACCESS_KEY = "AKSIMvolcnbLOCAL"
DEFAULT_SECRET_KEY = "volcnb-simulator-secret"  # noqa: S105 - a public, documented test key
MAX_BODY = 20 * 1024 * 1024
MAX_B64 = int(4.7 * 1024 * 1024)
MAX_B64_TOTAL = 8 * 1024 * 1024
IVA_MAX_FILE = 50 * 1024 * 1024

#: HTTP status of each business code (reference §8.3; 50400 → 401 is inferred).
HTTP_STATUS = {10000: 200, 50429: 429, 50430: 429, 50500: 500, 50501: 500, 50400: 401, 50402: 404}
MESSAGES = {
    50200: "Request Invalid Args", 50201: "Request Missing Args", 50204: "Parse Args Error",
    50205: "Image Size Limited", 50206: "Image Empty", 50207: "Image Decode Error", 50213: "Request Body Size Limited",
    50429: "Request Has Reached API Limit, Please Try Later",
    50430: "Request Has Reached API Concurrent Limit, Please Try Later",
    50500: "Internal Error", 50501: "Internal RPC Error",
}


@dataclass
class ServiceTime:
    """Service-time distribution of a req_key: log-normal with this median and sigma."""

    median: float
    sigma: float = 0.3

    def sample(self, rng: random.Random) -> float:
        """One draw."""
        if self.sigma <= 0:
            return self.median
        return self.median * math.exp(rng.gauss(0.0, self.sigma))


@dataclass
class Quotas:
    """Per-access-key limits (inferred; the real quotas are per account and not published)."""

    submit_qps: float = 20.0
    max_unfinished: int = 200
    get_result_qps: float = 200.0


@dataclass
class Faults:
    """Fault injection: per-request probabilities, plus scripted sequences per action.

    Kinds: ``http_500`` (a non-JSON 500 from a "proxy", the request not processed), ``code_50500``
    (a JSON 50500 reply), ``drop`` (connection dropped before processing), ``drop_after`` (processed,
    then the connection is dropped before the reply completes), ``slow`` (reply delayed by
    ``slow_seconds``), ``malformed`` (a 200 whose body is not JSON), ``lost`` (GetResult: the task is
    forgotten and answers ``not_found`` from then on).
    """

    http_500: float = 0.0
    code_50500: float = 0.0
    drop: float = 0.0
    drop_after: float = 0.0
    slow: float = 0.0
    slow_seconds: float = 5.0
    malformed: float = 0.0
    lost: float = 0.0
    actions: frozenset[str] | None = None
    """Limit random faults to these actions (``None`` = all)."""
    script: dict[str, deque[str]] = field(default_factory=lambda: defaultdict(deque))
    """Scripted faults: ``script[action]`` is consumed one per request of that action ("ok" = none)."""

    KINDS = ("http_500", "code_50500", "drop", "drop_after", "slow", "malformed", "lost")

    def plan(self, action: str, *kinds: str) -> None:
        """Queue faults for the next requests of ``action`` (e.g. ``plan("CVSync2AsyncGetResult", "http_500")``)."""
        for k in kinds:
            if k != "ok" and k not in self.KINDS:
                raise ValueError(f"unknown fault {k!r}; one of {self.KINDS}")
        self.script[action].extend(kinds)

    def pick(self, action: str, rng: random.Random) -> str | None:
        """The fault for this request, if any."""
        queue = self.script.get(action)
        if queue:
            kind = queue.popleft()
            return None if kind == "ok" else kind
        if self.actions is not None and action not in self.actions:
            return None
        for kind in self.KINDS:
            rate = getattr(self, kind)
            if rate and rng.random() < rate:
                return kind
        return None


@dataclass
class Counters:
    """What the simulator saw (tests and benchmarks read these)."""

    submits: int = 0
    accepted: int = 0
    duplicates: int = 0
    polls: int = 0
    cancels: int = 0
    uploads: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    faults: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        # Not dataclasses.asdict: it cannot rebuild a defaultdict (TypeError on Python < 3.12).
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = dict(value) if isinstance(value, dict) else value
        return out


class Reject(Exception):  # noqa: N818 - internal control flow, never escapes the simulator
    """An error reply: a business code (service envelope) or a gateway error (ResponseMetadata)."""

    def __init__(self, code: int | str, message: str | None = None, *, http: int | None = None) -> None:
        self.code = code
        self.message = message or (MESSAGES.get(code, "Error") if isinstance(code, int) else str(code))
        self.http = http or (HTTP_STATUS.get(code, 400) if isinstance(code, int) else 400)
        super().__init__(self.message)


class _Bucket:
    """A token bucket (rate limit)."""

    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        self.rate, self.clock = rate, clock
        self.tokens, self.stamp = max(rate, 1.0), clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(max(self.rate, 1.0), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass(frozen=True)
class Incoming:
    """The parts of an HTTP request the engine needs (the app fills it; no Starlette types here)."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: list[tuple[str, str]]
    body: bytes
    base_url: str


class Simulator:
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
    ) -> None:
        self.keys = dict(keys or {DEFAULT_ACCESS_KEY: DEFAULT_SECRET_KEY})
        self.store = Store(db)
        self.service_times: dict[str, ServiceTime] = {}
        for cap_key in ("saliency_seg", "entity_seg", "img2img_anime_accelerated_maintain_id",
                        "img2img_anime_accelerated_maintain_id_for_smart_drawing_anime", "jimeng_t2i_v30",
                        "jimeng_t2i_v31", "jimeng_t2i_v40"):
            cap = get_capability(cap_key)
            if cap:
                self.service_times[cap_key] = ServiceTime(*cap.service_time)
        for k, v in (service_times or {}).items():
            self.set_service_time(k, v)
        self.queue_time = queue_time
        self.ttl, self.purge_after, self.url_ttl = ttl, purge_after, url_ttl
        self.quotas = quotas or Quotas()
        self.faults = faults or Faults()
        self.clock = clock
        self.max_clock_skew = max_clock_skew
        self.rng = random.Random(seed)
        self.counters = Counters()
        self._submit_buckets: dict[str, _Bucket] = {}
        self._poll_buckets: dict[str, _Bucket] = {}
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="volcnb-sim")
        self._futures: dict[str, concurrent.futures.Future[None]] = {}
        self._lock = threading.Lock()
        self._last_purge = float("-inf")
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
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.store.close()

    def app(self) -> Any:
        """The Starlette ASGI application serving this simulator."""
        from ._app import create_app

        return create_app(self)

    def stats(self, *, tasks: bool = False) -> dict[str, Any]:
        """Counters, and with ``tasks`` every task's true timings (for benchmarks only)."""
        out: dict[str, Any] = {"counters": self.counters.snapshot(), "now": self.clock(),
                               "tasks_stored": self.store.count("tasks"), "uploads_stored": self.store.count("uploads")}
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

    # --- authentication -----------------------------------------------------------------------

    def authenticate(self, req: Incoming, service: str) -> str:
        """Verify the V4 signature over the exact body; return the access key or raise a gateway error."""
        headers = {k.lower(): v for k, v in req.headers}
        auth = headers.get("authorization")
        if not auth:
            raise Reject("MissingAuthenticationToken", "Request is missing Authentication Token", http=401)
        parsed = parse_authorization(auth)
        if parsed is None:
            raise Reject("InvalidAuthorization", "Authorization header is malformed", http=401)
        ak, scope, names, sig = parsed
        secret = self.keys.get(ak)
        if secret is None:
            raise Reject("InvalidAccessKey", f"The access key {ak!r} is not valid", http=401)
        xdate = headers.get("x-date", "")
        try:
            stamp = calendar.timegm(time.strptime(xdate, "%Y%m%dT%H%M%SZ"))
        except ValueError:
            raise Reject("InvalidTimestamp", f"X-Date {xdate!r} is not YYYYMMDDTHHMMSSZ", http=401) from None
        if abs(self.clock() - stamp) > self.max_clock_skew:
            raise Reject("SignatureDoesNotMatch",
                         f"The request has expired: X-Date {xdate} differs from the server time by more than "
                         f"{int(self.max_clock_skew)} s", http=401)
        date, _, rest = scope.partition("/")
        parts = rest.split("/")
        if date != xdate[:8] or len(parts) != 3 or parts[2] != "request":
            raise Reject("SignatureDoesNotMatch", f"credential scope {scope!r} does not match X-Date", http=401)
        region, svc = parts[0], parts[1]
        if svc != service:
            raise Reject("SignatureDoesNotMatch",
                         f"credential scope service is {svc!r}, this endpoint is service {service!r}", http=401)
        body_hash = hashlib.sha256(req.body).hexdigest()
        if headers.get("x-content-sha256", body_hash) != body_hash:
            raise Reject("SignatureDoesNotMatch", "X-Content-Sha256 does not match the body", http=401)
        available = signable_headers(req.headers)
        if any(n not in available for n in names) or "host" not in names or "x-date" not in names:
            raise Reject("SignatureDoesNotMatch", "SignedHeaders must include host and x-date and only sent headers",
                         http=401)
        signed = {n: available[n] for n in names}
        canonical, _ = canonical_request(req.method, req.path, req.query, signed, body_hash)
        expected = signature(secret, xdate, region, svc, canonical)
        if not hmac.compare_digest(expected, sig):
            raise Reject("SignatureDoesNotMatch",
                         "The request signature we calculated does not match the signature you provided. "
                         "Check your Secret Access Key and signing method.", http=401)
        return ak

    # --- CV actions -----------------------------------------------------------------------------

    def _json_body(self, body: bytes) -> dict[str, Any]:
        if len(body) > MAX_BODY:
            raise Reject(50213, f"Request Body Size Limited: {len(body)} bytes > {MAX_BODY}")
        try:
            obj = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise Reject(50204, "Parse Args Error: the body is not valid JSON") from None
        if not isinstance(obj, dict):
            raise Reject(50204, "Parse Args Error: the body must be a JSON object")
        return obj

    def _decode_images(self, body: dict[str, Any]) -> list[Image.Image]:
        b64 = body.get("binary_data_base64")
        urls = body.get("image_urls")
        if b64 is not None and not isinstance(b64, list):
            raise Reject(50200, "binary_data_base64 must be an array of strings")
        if urls is not None and not isinstance(urls, list):
            raise Reject(50200, "image_urls must be an array of strings")
        if b64 and urls:
            raise Reject(50200, "give binary_data_base64 or image_urls, not both")
        images: list[Image.Image] = []
        if b64:
            total = 0
            for i, s in enumerate(b64):
                if not isinstance(s, str) or not s:
                    raise Reject(50206, f"binary_data_base64[{i}] is empty")
                total += len(s)
                if len(s) > MAX_B64:
                    raise Reject(50205, f"binary_data_base64[{i}] is {len(s)} bytes; the limit is 4.7 MB")
                if total > MAX_B64_TOTAL:
                    raise Reject(50205, "the images together exceed 8 MB of base64")
                try:
                    raw = base64.b64decode(s, validate=True)
                except (binascii.Error, ValueError):
                    raise Reject(50207, f"binary_data_base64[{i}] is not valid base64") from None
                images.append(self._open_image(raw, f"binary_data_base64[{i}]"))
        elif urls:
            for i, u in enumerate(urls):
                images.append(self._fetch_url(u, i))
        return images

    def _open_image(self, raw: bytes, name: str) -> Image.Image:
        try:
            img = Image.open(io.BytesIO(raw))
            fmt = img.format
            img.load()
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
            raise Reject(50207, f"Image Decode Error: {name} is not a decodable image") from None
        if fmt not in ("JPEG", "PNG", "BMP"):
            raise Reject(50207, f"Image Decode Error: {name} is {fmt}; JPG, PNG or BMP only")
        w, h = img.size
        if not (128 <= w <= 4096 and 128 <= h <= 4096):
            raise Reject(50205, f"Image Size Limited: {name} is {w}×{h}; each side must be 128–4096 px")
        return img.convert("RGBA") if img.mode in ("RGBA", "LA", "P") else img.convert("RGB")

    def _fetch_url(self, url: Any, i: int) -> Image.Image:
        name = f"image_urls[{i}]"
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise Reject(50200, f"{name} must be an http(s) URL")
        token = url.rsplit("/sim/files/", 1)[-1] if "/sim/files/" in url else None
        if token:
            f = self.store.get_file(token)
            if f and f[2] > self.clock():
                return self._open_image(f[0], name)
        # Offline by design: the simulator fetches only from loopback (test servers) and its own files.
        host = url.split("/")[2].split(":")[0] if url.count("/") >= 2 else ""
        if host not in ("127.0.0.1", "localhost", "::1", "[::1]"):
            raise Reject(50207, f"Image Decode Error: {name} could not be downloaded (the simulator is offline "
                                "and fetches only loopback URLs; send binary_data_base64)")
        import httpx

        try:
            r = httpx.get(url, timeout=10.0)
            r.raise_for_status()
        except httpx.HTTPError as exc:
            raise Reject(50207, f"Image Decode Error: {name} download failed: {exc}") from None
        return self._open_image(r.content, name)

    def submit(self, ak: str, body: bytes) -> dict[str, Any]:
        """``CVSync2AsyncSubmitTask``."""
        self.counters.submits += 1
        obj = self._json_body(body)
        req_key = obj.get("req_key")
        if not req_key:
            raise Reject(50201, "Request Missing Args: req_key")
        if not isinstance(req_key, str) or get_capability(req_key) is None:
            raise Reject(50200, f"Request Invalid Args: req_key {req_key!r} is not supported")
        cap = get_capability(req_key)
        assert cap is not None
        bucket = self._submit_buckets.setdefault(ak, _Bucket(self.quotas.submit_qps, self.clock))
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
        images = self._decode_images(obj)
        if cap.min_images and not images:
            raise Reject(50206, "Image Empty: this req_key needs an image")
        verdict = text_risk(obj)
        if verdict:
            raise Reject(*verdict)
        if image_risk(images):
            raise Reject(50411, "Pre Img Risk Not Pass")
        notes = [i.message for i in issues if i.severity == "warning"]
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
                images = self._decode_images(row.body)
            outcome = compute(row.req_key, row.body, images, row.notes, task_id=row.task_id)
        except Reject as r:
            outcome = Outcome(code=r.code if isinstance(r.code, int) else 50500, message=r.message)
        except Exception as exc:  # a bug in a capability must not lose the task: it fails visibly
            outcome = Outcome(code=50501, message=f"Internal RPC Error: {type(exc).__name__}: {exc}")
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
        obj = self._json_body(body)
        req_key, task_id = obj.get("req_key"), obj.get("task_id")
        if not req_key:
            raise Reject(50201, "Request Missing Args: req_key")
        if not task_id:
            raise Reject(50201, "Request Missing Args: task_id")
        if not isinstance(req_key, str) or not isinstance(task_id, str):
            raise Reject(50200, "req_key and task_id must be strings")
        bucket = self._poll_buckets.setdefault(ak, _Bucket(self.quotas.get_result_qps, self.clock))
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
            data["binary_data_base64"] = None
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
            conf = json.loads(raw)
        except ValueError:
            raise Reject(50204, "Parse Args Error: req_json is not valid JSON") from None
        if not isinstance(conf, dict):
            raise Reject(50204, "Parse Args Error: req_json must encode an object")
        rurl = conf.get("return_url")
        if rurl is not None and not isinstance(rurl, bool):
            raise Reject(50200, "req_json.return_url must be a bool")
        logo = conf.get("logo_info")
        if logo is not None:
            if not isinstance(logo, dict):
                raise Reject(50200, "req_json.logo_info must be an object")
            _check_logo(logo)
        meta = conf.get("aigc_meta")
        if meta is not None and (not isinstance(meta, dict) or not meta.get("producer_id")):
            raise Reject(50201, "req_json.aigc_meta.producer_id is required")
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
        obj = self._json_body(body)
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
        raw = form.get("Request")
        if not isinstance(raw, str):
            raise Reject("MissingParameter", "form field Request (a JSON string) is required", http=400)
        try:
            req = json.loads(raw)
        except ValueError:
            raise Reject("InvalidParameter", "Request is not valid JSON", http=400) from None
        if not isinstance(req, dict):
            raise Reject("InvalidParameter", "Request must be a JSON object", http=400)
        task_id = req.get("TaskID")
        if not isinstance(task_id, str) or not task_id:
            raise Reject("InvalidParameter", "task id can not be null", http=400)
        key = "Image" if kind == "image" else "Video"
        info = req.get(key)
        if not isinstance(info, dict):
            raise Reject("MissingParameter", f"Request.{key} is required", http=400)
        name = info.get("Name")
        if not isinstance(name, str) or not name:
            raise Reject("InvalidParameter", f"{kind} name can not be null", http=400)
        source = info.get("Source")
        if source not in ("url", "file"):
            raise Reject("InvalidParameter", f"{key}.Source must be 'url' or 'file'", http=400)
        algo = req.get("AlgoParamConf")
        if algo is not None and not isinstance(algo, dict):
            raise Reject("InvalidParameter", "AlgoParamConf must be an object", http=400)
        size = 0
        file_field = "ImageFile" if kind == "image" else "VideoFile"
        if source == "url":
            url = info.get("Url")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise Reject("InvalidParameter", f"{key}.Url must be an http(s) URL when Source is url", http=400)
        else:
            data = form.get(file_field)
            if not isinstance(data, bytes | bytearray) or not data:
                raise Reject("MissingParameter", f"form file {file_field} is required when Source is file", http=400)
            size = len(data)
            if kind == "image":
                if size > IVA_MAX_FILE:
                    raise Reject("InvalidParameter", f"{file_field} is {size} bytes; the limit is 50 MB", http=400)
                try:
                    Image.open(io.BytesIO(bytes(data))).verify()
                except Exception:
                    raise Reject("InvalidParameter", f"{file_field} is not a decodable image", http=400) from None
        upload_id = str(uuid.uuid4())
        self.store.add_upload(upload_id, kind, task_id, ak, req, size, self.clock())
        self.counters.uploads += 1
        return {"ImageID" if kind == "image" else "VideoID": upload_id}


def _check_logo(logo: dict[str, Any]) -> None:
    add = logo.get("add_logo")
    if add is not None and not isinstance(add, bool):
        raise Reject(50200, "logo_info.add_logo must be a bool")
    pos = logo.get("position", 0)
    if isinstance(pos, bool) or pos not in (0, 1, 2, 3):
        raise Reject(50200, f"logo_info.position must be 0–3, got {pos!r}")
    lang = logo.get("language", 0)
    if isinstance(lang, bool) or lang not in (0, 1):
        raise Reject(50200, f"logo_info.language must be 0 or 1, got {lang!r}")
    op = logo.get("opacity", 0.3)
    if isinstance(op, bool) or not isinstance(op, (int, float)) or not 0 <= op <= 1:
        raise Reject(50200, f"logo_info.opacity must be within 0–1, got {op!r}")
    text = logo.get("logo_text_content")
    if text is not None:
        if not isinstance(text, str) or len(text) > 50:
            raise Reject(50200, "logo_info.logo_text_content must be a string of at most 50 characters")
        from .._font import missing_glyphs

        missing = missing_glyphs(text)
        if missing:
            raise Reject(50200, f"logo_info.logo_text_content has characters the watermark font cannot draw: "
                                f"{''.join(missing)!r}")


def envelope_error(code: int | str, message: str, request_id: str, action: str, version: str, service: str
                   ) -> dict[str, Any]:
    """A reply body for an error: gateway ``ResponseMetadata`` for string codes, the service envelope for ints."""
    if isinstance(code, str):
        return {"ResponseMetadata": {"RequestId": request_id, "Action": action, "Version": version,
                                     "Service": service, "Region": _wire.REGION,
                                     "Error": {"CodeN": _CODEN.get(code, 100000), "Code": code, "Message": message}}}
    return {"code": code, "data": None, "message": message, "request_id": request_id, "status": code,
            "time_elapsed": "0.1ms"}


#: Numeric gateway codes as seen in third-party captures (inferred for the rest).
_CODEN = {"SignatureDoesNotMatch": 100010, "InvalidAccessKey": 100009, "MissingAuthenticationToken": 100001,
          "InvalidAuthorization": 100002, "InvalidTimestamp": 100005, "InvalidActionOrVersion": 100008,
          "MissingParameter": 100003, "InvalidParameter": 100004}


def request_id(now: float) -> str:
    """A request id in the service's shape: timestamp plus 18 hex digits."""
    return time.strftime("%Y%m%d%H%M%S", time.localtime(now)) + secrets.token_hex(9).upper()
