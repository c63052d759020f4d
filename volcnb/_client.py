"""The signed async client: credentials, endpoints, one retry loop, a blocking face.

``Client`` holds no global state: two clients with different keys coexist. Its HTTP connections live in
one ``httpx.AsyncClient`` per event loop (a pooled client must not outlive its loop), created lazily.
"""

from __future__ import annotations

import asyncio
import logging
import os
import weakref
from collections.abc import Mapping
from typing import Any, Literal

import httpx

from . import _wire
from ._auth import Credentials, VolcAuth
from ._exceptions import (
    AuthError,
    RequestTimeoutError,
    SubmitTimeoutError,
    SubmitUncertainError,
    TransportError,
    VolcError,
)
from ._retry import RetryPolicy, classify, retry_after_seconds
from ._sync import finish_on, run_sync
from ._wire import AigcMeta, ApiRequest, LogoInfo, Reply

__all__ = ["Client", "IVA", "SyncClient"]

log = logging.getLogger("volcnb")

USER_AGENT = "volcnb/0.1"
#: Pooled connections are dropped after this many idle seconds, below common server keep-alive
#: timeouts (uvicorn: 5 s, many gateways: 5–60 s), so a reused connection does not die mid-submit.
KEEPALIVE_EXPIRY = 2.0


class Client:
    """A client for the Volcengine visual async APIs (and, pointed at it, the volcnb simulator).

    Every argument is optional: keys come from ``VOLC_ACCESSKEY`` / ``VOLC_SECRETKEY`` /
    ``VOLC_SESSION_TOKEN`` like the official SDK. Calls are HTTPS by default. ``endpoint`` (e.g.
    ``"http://127.0.0.1:8000"``) sends every service to one base URL (the simulator over HTTP);
    ``transport`` is any ``httpx.AsyncBaseTransport`` (``httpx.ASGITransport`` for the in-process simulator).

    Usage::

        client = volcnb.Client()                     # keys from the environment
        task = client.submit("saliency_seg", "cat.jpg")
        res = await task                              # or task.result()
    """

    def __init__(
        self,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        *,
        region: str = _wire.REGION,
        endpoint: str | None = None,
        iva_endpoint: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        max_retries: int = 3,
        retry: RetryPolicy | None = None,
        keepalive_expiry: float = KEEPALIVE_EXPIRY,
    ) -> None:
        env_ak = os.environ.get("VOLC_ACCESSKEY", "")
        ak = access_key or env_ak
        sk = secret_key or os.environ.get("VOLC_SECRETKEY", "")
        # An STS token belongs to its temporary key pair: take the environment's only with the environment's key.
        token = session_token or (os.environ.get("VOLC_SESSION_TOKEN") or None if ak == env_ak else None)
        if not ak or not sk:
            raise AuthError(
                "no credentials: pass access_key= and secret_key=, set VOLC_ACCESSKEY / VOLC_SECRETKEY, "
                "or call volcnb.use_simulator() to work offline",
                code="MissingCredentials")
        self.credentials = Credentials(ak, sk, token)
        self.region = region
        self.cv_url = (endpoint or f"https://{_wire.CV_HOST}").rstrip("/")
        self.iva_url = (iva_endpoint or endpoint or f"https://{_wire.IVA_HOST}").rstrip("/")
        self.transport = transport
        self.timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self.retry = retry or RetryPolicy(max_retries=max_retries)
        self.keepalive_expiry = keepalive_expiry
        self._auth = {
            _wire.CV_SERVICE: VolcAuth(self.credentials, region=region, service=_wire.CV_SERVICE),
            _wire.IVA_SERVICE: VolcAuth(self.credentials, region=region, service=_wire.IVA_SERVICE),
        }
        self._http: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary())
        self.simulator: Any = None
        """The in-process simulator this client talks to, when made by :func:`volcnb.use_simulator`."""
        self.iva = IVA(self)
        """IVA uploads: ``await client.iva.add_image(task_id, image)``."""
        self.sync = SyncClient(self)
        """The same calls, blocking: ``client.sync.get_result(...)``."""

    def __repr__(self) -> str:
        where = "simulator (in-process)" if self.simulator is not None else self.cv_url
        return f"<volcnb.Client {where} access_key={self.credentials.access_key!r}>"

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
        return self.iva_url if req.service == _wire.IVA_SERVICE else self.cv_url

    async def _send_once(self, req: ApiRequest) -> httpx.Response:
        http = self._client_for_loop()
        return await http.post(
            self._url(req) + "/",
            params=req.query,
            content=req.body,
            headers={"Content-Type": req.content_type},
            auth=self._auth[req.service],
        )

    async def send(self, req: ApiRequest, *, openapi: bool = False) -> Any:
        """Send one API call with the retry policy; return the parsed reply or raise a typed error.

        Returns a :class:`Reply` for the CV envelope, or the ``Result`` dict when ``openapi`` (IVA).
        """
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                resp = await self._send_once(req)
                retry_after = retry_after_seconds(resp.headers)
                if openapi:
                    return _wire.parse_openapi_reply(resp.status_code, resp.content, req)
                return _wire.parse_service_reply(resp.status_code, resp.content, req)
            except (httpx.TransportError, VolcError) as exc:
                decision = classify(exc, idempotent=req.idempotent)
                if decision == "uncertain":
                    uncertain = (SubmitTimeoutError if isinstance(exc, httpx.TimeoutException)
                                 else SubmitUncertainError)
                    raise uncertain(
                        f"{req.action} failed after the request was sent ({_describe(exc)}); "
                        "the task MAY exist on the server and was not re-submitted to avoid paying twice",
                        req_key=req.req_key) from exc
                too_long = retry_after is not None and retry_after > self.retry.max_retry_after
                if decision == "retry" and attempt <= self.retry.max_retries and not too_long:
                    delay = self.retry.backoff(attempt, retry_after)
                    log.info("volcnb: %s attempt %d failed (%s); retrying in %.2fs", req.action, attempt,
                             _describe(exc), delay)
                    await self.retry.sleep(delay)
                    continue
                err = _as_volc_error(exc, req)
                if err is exc:
                    raise
                raise err from exc

    async def download(self, url: str, *, max_bytes: int = 64 * 1024 * 1024) -> bytes:
        """GET a result URL (unsigned), retrying transient failures; used at once since links expire."""
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = await self._client_for_loop().get(url)
                if resp.status_code >= 500:
                    raise httpx.HTTPStatusError("server error", request=resp.request, response=resp)
                if resp.status_code != 200:
                    raise TransportError(f"downloading {url} failed: HTTP {resp.status_code} "
                                         f"{_wire.snippet(resp.content, 80)!r}", status_code=resp.status_code,
                                         retryable=False)
                if len(resp.content) > max_bytes:
                    raise TransportError(f"downloading {url}: {len(resp.content)} bytes exceeds {max_bytes}",
                                         retryable=False)
                return resp.content
            except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                if attempt > self.retry.max_retries:
                    raise TransportError(f"downloading {url} failed: {_describe(exc)}") from exc
                await self.retry.sleep(self.retry.backoff(attempt))

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

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- the protocol -------------------------------------------------------------------------

    async def submit_task(self, req_key: str, params: Mapping[str, Any]) -> tuple[str, Reply]:
        """``CVSync2AsyncSubmitTask``: send the capability body as is; return ``(task_id, reply)``.

        This is the raw call (no input checks); :meth:`submit` is the friendly one.
        """
        reply = await self.send(_wire.build_submit(req_key, params))
        return _wire.submitted_task_id(reply), reply

    async def get_result(
        self,
        req_key: str,
        task_id: str,
        *,
        return_url: bool | None = None,
        logo_info: LogoInfo | None = None,
        aigc_meta: AigcMeta | None = None,
    ) -> Reply:
        """``CVSync2AsyncGetResult`` once (retried on transient faults); ``reply.data['status']`` says where it is."""
        req = _wire.build_get_result(req_key, task_id, return_url=return_url, logo_info=logo_info,
                                     aigc_meta=aigc_meta)
        reply: Reply = await self.send(req)
        return reply

    async def cancel_task(self, req_key: str, task_id: str) -> Reply:
        """``CVCancelTask`` (Version 2024-06-06). Known from the official SDK only; undocumented semantics."""
        reply: Reply = await self.send(_wire.build_cancel(req_key, task_id))
        return reply

    # --- the friendly layer (tasks) ----------------------------------------------------------

    def submit(self, req_key: str, image: Any = None, **params: Any) -> Any:
        """Validate, encode and submit; return a :class:`volcnb.Task` (awaitable, or ``.result()``)."""
        from ._tasks import submit as _submit

        return _submit(req_key, image, client=self, **params)

    def run(self, req_key: str, image: Any = None, **params: Any) -> Any:
        """Submit and wait: ``await client.run(...)`` or ``client.run(...).result()``."""
        from ._tasks import run as _run

        return _run(req_key, image, client=self, **params)


class IVA:
    """IVA (智能视频分析) uploads to an existing async analysis task (seed 001), multipart/form-data."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def add_image(
        self,
        task_id: str,
        image: Any,
        *,
        name: str | None = None,
        desc: str | None = None,
        algo_params: Mapping[str, Any] | None = None,
    ) -> str:
        """Upload an image (path, bytes, PIL image, or an ``http(s)`` URL) and return its ``ImageID``."""
        from ._images import iva_payload

        name, url, file = iva_payload(image, name, kind="image")
        req = _wire.build_iva_upload("image", task_id, name=name, url=url, file=file, desc=desc,
                                     algo_params=algo_params)
        result = await self._client.send(req, openapi=True)
        return str(result.get("ImageID", ""))

    async def add_video(
        self,
        task_id: str,
        video: Any,
        *,
        name: str | None = None,
        desc: str | None = None,
        algo_params: Mapping[str, Any] | None = None,
    ) -> str:
        """Upload a video (path, bytes, or an ``http(s)`` URL) and return its ``VideoID``."""
        from ._images import iva_payload

        name, url, file = iva_payload(video, name, kind="video")
        req = _wire.build_iva_upload("video", task_id, name=name, url=url, file=file, desc=desc,
                                     algo_params=algo_params)
        result = await self._client.send(req, openapi=True)
        return str(result.get("VideoID", ""))


class SyncClient:
    """The blocking face of a :class:`Client`: the same verbs, run with :func:`volcnb._sync.run_sync`."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def submit_task(self, req_key: str, params: Mapping[str, Any]) -> tuple[str, Reply]:
        """Blocking :meth:`Client.submit_task`."""
        return run_sync(self._client.submit_task(req_key, params))

    def get_result(self, req_key: str, task_id: str, **options: Any) -> Reply:
        """Blocking :meth:`Client.get_result`."""
        return run_sync(self._client.get_result(req_key, task_id, **options))

    def cancel_task(self, req_key: str, task_id: str) -> Reply:
        """Blocking :meth:`Client.cancel_task`."""
        return run_sync(self._client.cancel_task(req_key, task_id))

    def add_image(self, task_id: str, image: Any, **kwargs: Any) -> str:
        """Blocking :meth:`IVA.add_image`."""
        return run_sync(self._client.iva.add_image(task_id, image, **kwargs))

    def add_video(self, task_id: str, video: Any, **kwargs: Any) -> str:
        """Blocking :meth:`IVA.add_video`."""
        return run_sync(self._client.iva.add_video(task_id, video, **kwargs))


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, VolcError) else text


def _as_volc_error(exc: BaseException, req: ApiRequest) -> VolcError:
    if isinstance(exc, VolcError):
        if exc.task_id is None:
            exc.task_id = req.task_id
        return exc
    kind: Literal["timeout", "other"] = "timeout" if isinstance(exc, httpx.TimeoutException) else "other"
    cls = RequestTimeoutError if kind == "timeout" else TransportError
    return cls(f"{req.action} failed: {_describe(exc)}", task_id=req.task_id, req_key=req.req_key)
