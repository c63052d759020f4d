"""The simulator's HTTP face: Starlette routes over the engine, wrapped in the fault layer.

Routes::

    POST /?Action=…&Version=…     the Volcengine OpenAPI actions (CV sync-to-async, CVCancelTask, IVA uploads)
    GET  /sim/files/{token}        images returned with return_url=true (expire after 24 h)
    GET  /sim/stats[?tasks=1]      counters and true task timings (benchmarks only; not a Volcengine API)
    POST /sim/config               change faults / service times / IVA callbacks at run time (tests over HTTP)
    POST /sim/iva/tasks            "create" an IVA async task: {"TaskID"?, "CallbackURL"?} (the console's part)
    GET  /sim/health               liveness

IVA uploads are never held in memory: the body goes through the multipart parser as it arrives (file parts
spooled to disk by it), hashed chunk by chunk and capped while it streams; the signature is checked against
that hash before the upload is acted on.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message

from ..protocol import wire
from ..protocol.images import IVA_MAX_IMAGE_BYTES
from ._config import apply_config, check_url
from ._engine import Engine
from ._faults import FAULT_KEY, FaultLayer
from ._inputs import loads_bounded
from ._model import (
    HTTP_STATUS,
    MAX_BODY,
    Incoming,
    Reject,
    elapsed,
    envelope_error,
    request_id,
)
from ._verify import check_body, check_headers

__all__ = ["ACTIONS", "create_app", "read_body"]


@dataclass(frozen=True)
class _Call:
    """One API request as an action handler sees it."""

    sim: Engine
    request: Request
    access_key: str
    body: bytes
    fault: object
    form: Any = None
    """An IVA upload's parsed form (its files spooled to disk)."""


Handler = Callable[[_Call], Awaitable[tuple[int, str, Any]]]

MULTIPART_SLACK = 1024 * 1024
"""Room for the ``Request`` field, part headers and boundaries on top of an IVA file's own cap."""


async def _submit(call: _Call) -> tuple[int, str, Any]:
    return 10000, "Success", await asyncio.to_thread(call.sim.submit, call.access_key, call.body)


async def _get_result(call: _Call) -> tuple[int, str, Any]:
    return await asyncio.to_thread(call.sim.get_result, call.access_key, call.body, str(call.request.base_url),
                                   lose=call.fault == "lost")


async def _cancel(call: _Call) -> tuple[int, str, Any]:
    return 10000, "Success", await asyncio.to_thread(call.sim.cancel, call.access_key, call.body)


def _iva(kind: str) -> Handler:
    async def handle(call: _Call) -> tuple[int, str, Any]:
        fields = {key: value for key, value in call.form.multi_items()}
        return 10000, "Success", await asyncio.to_thread(call.sim.iva_upload, call.access_key, kind, fields)

    return handle


class _Spool:
    """The request body as the multipart parser reads it: hashed, counted against the cap, timed per chunk."""

    def __init__(self, request: Request, cap: int, timeout: float) -> None:
        self.upstream, self.cap, self.timeout = request.receive, cap, timeout
        self.digest = hashlib.sha256()
        self.size = 0
        self.finished = False

    async def receive(self) -> Message:
        try:
            message = await asyncio.wait_for(self.upstream(), self.timeout)
        except asyncio.TimeoutError:
            raise Reject("RequestTimeout", f"the request body stalled for {self.timeout:g} s", http=408) from None
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            self.size += len(chunk)
            if self.size > self.cap:
                raise Reject(50213, f"Request Body Size Limited: over {self.cap} bytes; this action takes at most "
                             f"{self.cap} bytes", http=413)
            self.digest.update(chunk)
            self.finished = not message.get("more_body", False)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()
        return message

    async def drain(self) -> None:
        """Read (and hash) what the parser left, so the signature is checked over the whole body."""
        while not self.finished:
            await self.receive()


async def _spool_form(request: Request, cap: int, timeout: float) -> tuple[Any, str, Reject | None]:
    """``(form, body SHA-256, the parse error)`` of a multipart body, never held in memory."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise Reject(50213, f"Request Body Size Limited: {declared} bytes; this action takes at most {cap} bytes",
                     http=413)
    spool = _Spool(request, cap, timeout)
    form: Any = None
    error: Reject | None = None
    try:
        form = await Request(request.scope, spool.receive).form(max_part_size=MULTIPART_SLACK)
    except (HTTPException, MultiPartException, ValueError, UnicodeDecodeError) as exc:
        detail = getattr(exc, "detail", None) or getattr(exc, "message", None) or type(exc).__name__
        error = Reject("InvalidParameter", f"the multipart/form-data body is malformed: {detail}", http=400)
    await spool.drain()
    return form, spool.digest.hexdigest(), error


@dataclass(frozen=True)
class Action:
    """A routed API action: its version, service, envelope, handler and body cap."""

    version: str
    service: str
    handler: Handler
    openapi: bool = False
    """Replies in the OpenAPI envelope (``ResponseMetadata`` + ``Result``), else the CV service envelope."""
    max_body: int | None = MAX_BODY
    """Largest body accepted, bytes (``None``: the engine's ``max_video_bytes`` plus multipart room)."""
    streamed: bool = False
    """A multipart upload: parsed as it streams in (files spooled to disk), never read into memory."""

    def cap(self, sim: Engine) -> int:
        """The body cap for this action on ``sim``."""
        return self.max_body if self.max_body is not None else sim.max_video_bytes + MULTIPART_SLACK


ACTIONS: dict[str, Action] = {
    wire.SUBMIT[0]: Action(wire.SUBMIT[1], wire.CV_SERVICE, _submit),
    wire.GET_RESULT[0]: Action(wire.GET_RESULT[1], wire.CV_SERVICE, _get_result),
    wire.CANCEL[0]: Action(wire.CANCEL[1], wire.CV_SERVICE, _cancel),
    wire.IVA_IMAGE[0]: Action(wire.IVA_VERSION, wire.IVA_SERVICE, _iva("image"), openapi=True,
                              max_body=IVA_MAX_IMAGE_BYTES + MULTIPART_SLACK, streamed=True),
    wire.IVA_VIDEO[0]: Action(wire.IVA_VERSION, wire.IVA_SERVICE, _iva("video"), openapi=True, max_body=None,
                              streamed=True),
}
"""Every action the simulator answers, by ``Action`` query parameter."""

#: Gateway codes for the business codes an OpenAPI (IVA) action can meet: IVA errors are always gateway errors.
_GATEWAY_CODES = {50213: ("RequestEntityTooLarge", 413), 50429: ("RequestLimitExceeded", 429),
                  50500: ("InternalError", 500)}


def _json(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), status_code=status,
                    media_type="application/json", headers=headers)


async def read_body(request: Request, cap: int, code: int | str, timeout: float) -> bytes:
    """The body, refused once it exceeds ``cap`` (from Content-Length before reading, else while reading)."""
    def too_large(size: int | str) -> Reject:
        return Reject(code, f"Request Body Size Limited: {size} bytes; this action takes at most {cap} bytes",
                      http=413)

    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise too_large(int(declared))
    chunks: list[bytes] = []
    size = 0
    stream = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), timeout)
        except StopAsyncIteration:
            return b"".join(chunks)
        except asyncio.TimeoutError:
            raise Reject("RequestTimeout", f"the request body stalled for {timeout:g} s", http=408
                         ) from None
        size += len(chunk)
        if size > cap:
            raise too_large(f"over {cap}")
        chunks.append(chunk)


async def _body(sim: Engine, request: Request, action: Action) -> tuple[bytes, Any, str | None, Reject | None]:
    """``(body, form, hash, parse error)``: a multipart upload is parsed as it streams, anything else read."""
    if action.streamed:
        form, digest, malformed = await _spool_form(request, action.cap(sim), sim.body_timeout)
        return b"", form, digest, malformed
    return await read_body(request, action.cap(sim), 50213, sim.body_timeout), None, None, None


async def _dispatch(sim: Engine, request: Request, fault: object) -> Response:
    name = request.query_params.get("Action", "")
    version = request.query_params.get("Version", "")
    rid = request_id(sim.clock())
    start = time.perf_counter()
    action = ACTIONS.get(name)
    service = action.service if action else wire.CV_SERVICE
    headers: dict[str, str] = {}
    try:
        if request.method != "POST":
            raise Reject("InvalidHttpMethod", f"{request.method} is not allowed: the OpenAPI actions take POST",
                         http=405)
        if action is None or version != action.version:
            raise Reject("InvalidActionOrVersion", f"Could not find operation {name!r} for version {version!r}",
                         http=404)
        claim = check_headers(list(request.headers.items()), service, sim.keys, sim.clock(), sim.max_clock_skew)
        body, form, digest, malformed = await _body(sim, request, action)
        if fault == "http_500":
            return PlainTextResponse("<html><body><h1>500 Internal Server Error</h1></body></html>", 500)
        incoming = Incoming(method=request.method, path=request.url.path,
                            query=list(request.query_params.multi_items()),
                            headers=list(request.headers.items()), body=body, base_url=str(request.base_url),
                            body_sha256=digest)
        ak = check_body(claim, incoming)
        if malformed is not None:
            raise malformed
        if fault == "code_50500":
            raise Reject(50500)
        try:
            code, message, data = await action.handler(_Call(sim, request, ak, body, fault, form))
        finally:
            if form is not None:
                await form.close()
        if action.openapi:
            return _json({"ResponseMetadata": {"RequestId": rid, "Action": name, "Version": version,
                                               "Service": service, "Region": wire.REGION}, "Result": data})
        if fault == "malformed":
            return Response(b'{"code": 10000, "data": {"status": "gener', status_code=200,
                            media_type="application/json")
        reply = {"code": code, "data": data, "message": message, "request_id": rid, "status": code,
                 "time_elapsed": elapsed(start)}
        return _json(reply, 200 if code == 10000 else HTTP_STATUS.get(code, 400))
    except ClientDisconnect:
        return Response(status_code=499)
    except Reject as r:
        err = r
    except Exception as exc:  # the simulator never crashes on input: anything unexpected is a 50500
        err = Reject(50500, f"Internal Error: {type(exc).__name__}", http=500)
    if action is not None and action.openapi and isinstance(err.code, int):
        gateway, status = _GATEWAY_CODES.get(err.code, ("InvalidParameter", 400))
        err = Reject(gateway, err.message, http=status)
    if err.http in (408, 413):
        headers["Connection"] = "close"  # the rest of the body is never read
    sim.counters.rejected[str(err.code)] += 1
    return _json(envelope_error(err.code, err.message, rid, name, version, service, elapsed(start)), err.http,
                 headers)


def _iva_tasks(sim: Engine) -> Callable[[Request], Awaitable[Response]]:
    """``POST /sim/iva/tasks``: an IVA async task, as the console would create it."""

    async def iva_tasks(request: Request) -> Response:
        try:
            body = await read_body(request, 64 * 1024, "RequestEntityTooLarge", sim.body_timeout)
            doc = loads_bounded(body or b"{}", "the IVA task")
            if not isinstance(doc, dict) or set(doc) - {"TaskID", "CallbackURL"}:
                raise ValueError("the IVA task is a JSON object with optional TaskID and CallbackURL")
            task_id, url = doc.get("TaskID"), doc.get("CallbackURL")
            if task_id is not None and (not isinstance(task_id, str) or not task_id or len(task_id) > 256):
                raise ValueError("TaskID must be a non-empty string of at most 256 characters")
            check_url(url, "CallbackURL")
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        except Reject as r:
            return JSONResponse({"error": r.message}, r.http)
        tid = sim.iva.create_task(task_id, url)
        return JSONResponse({"TaskID": tid, "CallbackURL": sim.iva.callbacks.get(tid, sim.iva.callback)})

    return iva_tasks


def create_app(sim: Engine) -> ASGIApp:
    """Build the ASGI app for ``sim`` (Starlette routes wrapped in the fault layer)."""

    async def api(request: Request) -> Response:
        fault = request.scope.get(FAULT_KEY)
        response = await _dispatch(sim, request, fault)
        if fault == "slow":
            await asyncio.sleep(sim.faults.slow_seconds)
        return response

    async def files(request: Request) -> Response:
        f = await asyncio.to_thread(sim.store.get_file, request.path_params["token"])
        if f is None:
            return PlainTextResponse("NoSuchKey", 404)
        data, mime, expires = f
        if expires <= sim.clock():
            return PlainTextResponse("AccessDenied: Request has expired", 403)
        return Response(data, media_type=mime)

    async def stats(request: Request) -> Response:
        return JSONResponse(sim.stats(tasks=request.query_params.get("tasks") in ("1", "true")))

    async def config(request: Request) -> Response:
        try:
            body = await read_body(request, MAX_BODY, "RequestEntityTooLarge", sim.body_timeout)
            apply_config(sim, loads_bounded(body or b"{}", "the configuration"))
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        except Reject as r:
            return JSONResponse({"error": r.message}, r.http)
        return JSONResponse({"ok": True})

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "simulator": "volcnb"})

    app = Starlette(routes=[
        Route("/", api, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
        Route("/sim/files/{token}", files, methods=["GET"]),
        Route("/sim/stats", stats, methods=["GET"]),
        Route("/sim/config", config, methods=["POST"]),
        Route("/sim/iva/tasks", _iva_tasks(sim), methods=["POST"]),
        Route("/sim/health", health, methods=["GET"]),
    ])
    return FaultLayer(app, sim)
