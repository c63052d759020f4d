"""The low-level API client: credentials, endpoints, pooled connections, one retry loop.

``ApiClient`` holds no global state: two clients with different keys coexist. Its HTTP connections live
in one ``httpx.AsyncClient`` per event loop (a pooled client must not outlive its loop), created lazily.
Every call goes through :meth:`ApiClient._retrying`, which asks :func:`volcnb.protocol.retry.classify`
what to do after a failure; result downloads included.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from .._exceptions import (
    ArgumentTypeError,
    AuthError,
    ConcurrencyLimitError,
    RateLimitError,
    RequestTimeoutError,
    SubmitTimeoutError,
    SubmitUncertainError,
    TransportError,
    ValidationError,
    VolcError,
)
from .._sync import finish_on, run_sync
from ..protocol import wire
from ..protocol.multipart import StreamedBody
from ..protocol.options import AigcMeta, LogoInfo
from ..protocol.retry import RetryPolicy, classify, retry_after_seconds
from ..protocol.submission import check_bool, check_str, check_task_id
from ..protocol.wire import ApiRequest, OpenApiReply, Reply
from .auth import VolcAuth
from .checks import check_client_args
from .credentials import find_credentials
from .iva import IvaUploads
from .pacing import Pacer, TokenBucket, shared_pacer

__all__ = ["ApiClient"]

log = logging.getLogger("volcnb")
T = TypeVar("T")

USER_AGENT = "volcnb/0.1"
#: Pooled connections are dropped after this many idle seconds, below common server keep-alive
#: timeouts (uvicorn: 5 s, many gateways: 5–60 s), so a reused connection does not die mid-submit.
KEEPALIVE_EXPIRY = 2.0
#: Failures where the request provably never reached the server.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def check_endpoint(url: str, name: str = "endpoint") -> str:
    """An ``http(s)://host[:port]`` base URL without a trailing slash, or a :class:`ValidationError`."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError(f"{name} must be an http(s) URL such as 'http://127.0.0.1:8000', got {url!r}",
                              field=name, limit="http(s)://host[:port]")
    return url.rstrip("/")


class ApiClient:
    """The signed calls of the Volcengine visual async APIs, with retries; no task handles.

    Every argument is optional: keys are found as the official SDK finds them
    (:func:`volcnb.http.credentials.find_credentials`). Calls are HTTPS by default. ``endpoint`` (e.g.
    ``"http://127.0.0.1:8000"``) sends every service to one base URL (the simulator over HTTP);
    ``transport`` is any ``httpx.AsyncBaseTransport`` (``httpx.ASGITransport`` for the in-process simulator).
    """

    def __init__(
        self,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        *,
        region: str = wire.REGION,
        endpoint: str | None = None,
        iva_endpoint: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        max_retries: int = 3,
        retry: RetryPolicy | None = None,
        keepalive_expiry: float = KEEPALIVE_EXPIRY,
        pacer: Pacer | None = None,
    ) -> None:
        check_client_args(access_key=access_key, secret_key=secret_key, session_token=session_token, region=region, transport=transport, timeout=timeout, connect_timeout=connect_timeout,
                          max_retries=max_retries, retry=retry, keepalive_expiry=keepalive_expiry, pacer=pacer)
        found = find_credentials(access_key, secret_key, session_token)
        if found is None:
            raise AuthError(
                "no credentials: pass access_key= and secret_key=, set VOLC_ACCESSKEY / VOLC_SECRETKEY, "
                "write ~/.volc/credentials, or call volcnb.use_simulator() to work offline",
                code="MissingCredentials")
        self.credentials = found.credentials
        self.key_source = found.source
        """Where the keys were found (``"arguments"``, ``"~/.volc/credentials"``, …); never a secret."""
        self.region = region
        self.cv_url = check_endpoint(endpoint or f"https://{wire.CV_HOST}")
        self.iva_url = check_endpoint(iva_endpoint or endpoint or f"https://{wire.IVA_HOST}", "iva_endpoint")
        self.transport = transport
        self.timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self.retry = retry or RetryPolicy(max_retries=max_retries)
        self.keepalive_expiry = keepalive_expiry
        self.pacer = pacer or shared_pacer(self.cv_url, self.credentials.access_key, transport)
        """The rate controller shared by every client, task and batch on this backend and access key."""
        self._auth = {
            wire.CV_SERVICE: VolcAuth(self.credentials, region=region, service=wire.CV_SERVICE),
            wire.IVA_SERVICE: VolcAuth(self.credentials, region=region, service=wire.IVA_SERVICE),
        }
        self._http: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary())
        self.simulator: Any = None
        """The in-process simulator this client talks to, when made by :func:`volcnb.use_simulator`."""
        self.iva = IvaUploads(self)
        """IVA uploads: ``await client.iva.add_image(task_id, image)``."""

    def __repr__(self) -> str:
        where = "simulator (in-process)" if self.simulator is not None else self.cv_url
        return f"<volcnb.{type(self).__name__} {where} access_key={self.credentials.access_key!r}>"

    @property
    def backend_id(self) -> str:
        """Which service this client talks to, as stores that outlive a process tell backends apart: the
        in-process simulator by its instance id, anything else by base URL and access key id (never a secret)."""
        if self.simulator is not None:
            return f"sim:{self.simulator.instance_id}"
        return f"{self.cv_url}|{self.credentials.access_key}"

    @property
    def is_simulator(self) -> bool:
        """True for a client made by :func:`volcnb.use_simulator`."""
        return self.simulator is not None

    # --- HTTP plumbing ------------------------------------------------------------------------

    def _client_for_loop(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        http = self._http.get(loop)
        if http is None or http.is_closed:
            kwargs: dict[str, Any] = {
                "timeout": self.timeout,
                "headers": {"User-Agent": USER_AGENT},
                "limits": httpx.Limits(max_connections=100, max_keepalive_connections=20,
                                       keepalive_expiry=self.keepalive_expiry),
            }
            if self.transport is not None:
                kwargs["transport"] = self.transport
            http = httpx.AsyncClient(**kwargs)
            self._http[loop] = http
        return http

    def _url(self, req: ApiRequest) -> str:
        return self.iva_url if req.service == wire.IVA_SERVICE else self.cv_url

    async def _post(self, req: ApiRequest) -> httpx.Response:
        headers = {"Content-Type": req.content_type}
        if req.service == wire.IVA_SERVICE:
            # The IVA document's headers; outside the signed set (the SDK signs Content-Type, Host, X-*).
            headers.update(Region=self.region, Service=wire.IVA_SERVICE)
        content: bytes | AsyncIterator[bytes] = req.body
        auth = self._auth[req.service]
        if req.stream is not None:  # from disk: signed by its precomputed hash, sent with its length
            content = _stream(req.stream)
            headers["Content-Length"] = str(req.stream.length)
            auth = VolcAuth(self.credentials, region=self.region, service=req.service,
                            body_sha256=req.stream.sha256)
        try:
            return await self._client_for_loop().post(
                self._url(req) + "/", params=req.query, content=content, headers=headers, auth=auth)
        except httpx.TransportError as exc:
            raise _transport_error(exc, req.action, req.task_id, req.req_key) from exc

    async def _retrying(self, label: str, attempt: Callable[[], Awaitable[T]], *, idempotent: bool,
                        task_id: str | None = None, req_key: str | None = None, retry: bool = True) -> T:
        """Run ``attempt`` until it succeeds or :func:`classify` says to stop; the one retry loop.

        Every attempt first passes the pacer (:meth:`_call`), so a retry after a 50429 also waits its turn.
        ``retry=False``: one attempt (the task poll loop retries by itself, until the task's deadline).
        """
        tries = 0
        while True:
            try:
                return await attempt()
            except VolcError as exc:
                decision = classify(exc, idempotent=idempotent)
                if decision == "uncertain":
                    uncertain = SubmitTimeoutError if isinstance(exc, RequestTimeoutError) else SubmitUncertainError
                    raise uncertain(
                        f"{label} failed after the request was sent ({exc.message}); the task MAY exist on the "
                        "server and was not re-submitted to avoid paying twice", req_key=req_key
                    ) from (exc.__cause__ or exc)
                too_long = exc.retry_after is not None and exc.retry_after > self.retry.max_retry_after
                tries += 1
                if retry and decision == "retry" and tries <= self.retry.max_retries and not too_long:
                    delay = self.retry.backoff(tries, exc.retry_after)
                    log.info("volcnb: %s attempt %d failed (%s); retrying in %.2fs", label, tries, exc.message,
                             delay)
                    await self.retry.sleep(delay)
                    continue
                if exc.task_id is None:
                    exc.task_id = task_id
                raise

    def _bucket(self, req: ApiRequest) -> TokenBucket | None:
        if req.service != wire.CV_SERVICE:
            return None
        return self.pacer.submits if req.action == wire.SUBMIT[0] else self.pacer.polls

    async def _call(self, req: ApiRequest, parse: Callable[[int, bytes, ApiRequest], T], *, retry: bool = True,
                    on_queued: Callable[[bool], None] | None = None) -> T:
        bucket = self._bucket(req)

        async def attempt() -> T:
            if bucket is not None:
                waited = await bucket.take((lambda: on_queued(True)) if on_queued else None)
                if waited and on_queued:
                    on_queued(False)
                if waited > 0.05:
                    log.info("volcnb: %s %s waited %.2f s for the client's rate limit (%s)", req.action,
                             req.task_id or req.req_key or "", waited, bucket)
            started = time.perf_counter()
            resp = await self._post(req)
            try:
                out = parse(resp.status_code, resp.content, req)
            except VolcError as err:
                log.debug("volcnb: %s %s task_id=%s -> HTTP %d, code %s (%.0f ms)", req.action, req.req_key or "",
                          req.task_id or err.task_id or "-", resp.status_code, err.code,
                          (time.perf_counter() - started) * 1000)
                err.retry_after = retry_after_seconds(resp.headers)
                if isinstance(err, ConcurrencyLimitError):
                    self.pacer.unfinished.penalize()
                elif isinstance(err, RateLimitError) and bucket is not None:
                    bucket.penalize(err.retry_after)
                raise
            if bucket is not None:
                bucket.reward()
            if log.isEnabledFor(logging.DEBUG):
                log.debug("volcnb: %s %s task_id=%s -> HTTP %d%s (%.0f ms, %d bytes sent)", req.action,
                          req.req_key or "", req.task_id or _task_id_of(out) or "-", resp.status_code,
                          _status_of(out), (time.perf_counter() - started) * 1000, req.size)
            return out

        return await self._retrying(req.action, attempt, idempotent=req.idempotent, task_id=req.task_id,
                                    req_key=req.req_key, retry=retry)

    async def send_cv(self, req: ApiRequest, *, retry: bool = True,
                      on_queued: Callable[[bool], None] | None = None) -> Reply:
        """Send a CV-service call (service envelope), paced, with the retry policy; raise a typed error."""
        return await self._call(req, wire.parse_service_reply, retry=retry, on_queued=on_queued)

    async def send_openapi(self, req: ApiRequest) -> OpenApiReply:
        """Send an OpenAPI call (IVA; ``ResponseMetadata`` envelope) with the retry policy."""
        return await self._call(req, wire.parse_openapi_reply)

    async def download(self, url: str, *, max_bytes: int = 64 * 1024 * 1024) -> bytes:
        """GET a result URL (unsigned) under the same retry decision; used at once since links expire."""

        async def attempt() -> bytes:
            try:
                resp = await self._client_for_loop().get(url)
            except httpx.TransportError as exc:
                raise _transport_error(exc, f"downloading {url}") from exc
            if resp.status_code != 200:
                transient = resp.status_code >= 500 or resp.status_code == 429
                err = TransportError(f"downloading {url} failed: HTTP {resp.status_code} "
                                     f"{wire.snippet(resp.content, 80)!r}", status_code=resp.status_code,
                                     retryable=transient)
                err.retry_after = retry_after_seconds(resp.headers)
                raise err
            if len(resp.content) > max_bytes:
                raise TransportError(f"downloading {url}: {len(resp.content)} bytes exceeds {max_bytes}",
                                     retryable=False)
            return resp.content

        return await self._retrying("download", attempt, idempotent=True)

    async def aclose(self) -> None:
        """Close the pooled connections of the running loop (and, without blocking it, of other loops)."""
        loop = asyncio.get_running_loop()
        http = self._http.pop(loop, None)
        if http is not None:
            await http.aclose()
        self.close()

    def close(self) -> None:
        """Close the pooled connections of every event loop this client has used; safe to call twice.

        The client stays usable: a later call opens new connections. ``with volcnb.Client(...) as c:`` and
        ``async with`` close on exit.
        """
        for loop, http in list(self._http.items()):
            del self._http[loop]
            if not http.is_closed:
                finish_on(loop, http.aclose())

    # --- the protocol -------------------------------------------------------------------------

    async def submit_task(self, req_key: str, params: Mapping[str, Any], *, wait_for_slot: bool = False,
                          on_queued: Callable[[bool], None] | None = None) -> tuple[str, Reply]:
        """``CVSync2AsyncSubmitTask``: send the capability body as is; return ``(task_id, reply)``.

        This is the raw call (no input checks); ``volcnb.submit`` is the friendly one. It is paced (a token
        of ``pacer.submits``) and counted among the unfinished tasks; ``wait_for_slot=True`` also waits
        while ``pacer.unfinished`` is full (only where polls run meanwhile to free slots: a blocking call
        would wait forever). ``on_queued(True/False)`` is told when the call waits locally and when it goes.
        """
        check_str(req_key, "req_key")
        if not isinstance(params, Mapping):
            raise ArgumentTypeError(f"params must be a dict of the capability's parameters, got "
                                    f"{type(params).__name__}", field="params", limit="dict")
        cap = self.pacer.unfinished
        await cap.admit(wait=wait_for_slot, on_wait=(lambda: on_queued(True)) if on_queued else None)
        try:
            reply = await self.send_cv(wire.build_submit(req_key, params), on_queued=on_queued)
            task_id = wire.submitted_task_id(reply)
        except BaseException:
            cap.abandon()
            raise
        cap.bind(task_id)
        return task_id, reply

    async def get_result(
        self,
        req_key: str,
        task_id: str,
        *,
        return_url: bool | None = None,
        logo_info: LogoInfo | Mapping[str, Any] | None = None,
        aigc_meta: AigcMeta | Mapping[str, Any] | None = None,
        retry: bool = True,
    ) -> Reply:
        """``CVSync2AsyncGetResult`` once (paced; retried on transient faults unless ``retry=False``);
        ``reply.data['status']`` says where the task is. ``logo_info``/``aigc_meta`` may be plain dicts."""
        req_key, task_id = check_str(req_key, "req_key") or "", check_task_id(task_id)
        check_bool(return_url, "return_url")
        req = wire.build_get_result(
            req_key, task_id, return_url=return_url,
            logo_info=LogoInfo.coerce(logo_info) if logo_info is not None else None,
            aigc_meta=AigcMeta.coerce(aigc_meta) if aigc_meta is not None else None)
        try:
            reply = await self.send_cv(req, retry=retry)
        except VolcError as err:
            if err.task_failed:
                self.pacer.unfinished.finished(task_id)
            raise
        if reply.data.get("status") in ("done", "not_found", "expired"):
            self.pacer.unfinished.finished(task_id)
        return reply

    async def cancel_task(self, req_key: str, task_id: str) -> Reply:
        """``CVCancelTask`` (Version 2024-06-06). Known from the official SDK only; undocumented semantics."""
        req_key, task_id = check_str(req_key, "req_key") or "", check_task_id(task_id)
        reply = await self.send_cv(wire.build_cancel(req_key, task_id))
        self.pacer.unfinished.finished(task_id)
        return reply

    def submit_task_sync(self, req_key: str, params: Mapping[str, Any]) -> tuple[str, Reply]:
        """Blocking :meth:`submit_task`."""
        return run_sync(self.submit_task(req_key, params))

    def get_result_sync(self, req_key: str, task_id: str, **options: Any) -> Reply:
        """Blocking :meth:`get_result`."""
        return run_sync(self.get_result(req_key, task_id, **options))

    def cancel_task_sync(self, req_key: str, task_id: str) -> Reply:
        """Blocking :meth:`cancel_task`."""
        return run_sync(self.cancel_task(req_key, task_id))


async def _stream(body: StreamedBody) -> AsyncIterator[bytes]:
    """A streamed body's chunks, each read off the event loop (a notebook's kernel never waits on the disk)."""
    chunks = body.chunks()
    while True:
        chunk = await asyncio.to_thread(next, chunks, None)
        if chunk is None:
            return
        yield chunk


def _transport_error(exc: httpx.TransportError, label: str, task_id: str | None = None,
                     req_key: str | None = None) -> TransportError:
    """The volcnb error for an httpx failure: a timeout or not, and whether the request may have arrived."""
    text = str(exc) or type(exc).__name__
    cls = RequestTimeoutError if isinstance(exc, httpx.TimeoutException) else TransportError
    return cls(f"{label} failed: {type(exc).__name__}: {text}", sent=not isinstance(exc, _NEVER_SENT),
               task_id=task_id, req_key=req_key)


def _task_id_of(reply: object) -> str:
    data = getattr(reply, "data", None)
    return str(data.get("task_id") or "") if isinstance(data, dict) else ""


def _status_of(reply: object) -> str:
    data = getattr(reply, "data", None)
    status = data.get("status") if isinstance(data, dict) else None
    return f", status {status}" if status else ""
