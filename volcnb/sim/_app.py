"""The simulator's HTTP face: a Starlette app, plus a raw ASGI layer that injects connection faults.

Routes::

    POST /?Action=…&Version=…     the Volcengine OpenAPI actions (CV sync-to-async, CVCancelTask, IVA uploads)
    GET  /sim/files/{token}        images returned with return_url=true (expire after 24 h)
    GET  /sim/stats[?tasks=1]      counters and true task timings (benchmarks only; not a Volcengine API)
    POST /sim/config               change faults / service times at run time (tests over HTTP)
    GET  /sim/health               liveness

Dropped connections need a real server: under ``httpx.ASGITransport`` (in-process) a "drop" shows up as
an incomplete response instead. Fault, timeout and streaming tests therefore run over uvicorn.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import _wire
from ._engine import Faults, Incoming, Reject, ServiceTime, Simulator, envelope_error, request_id

CV_ACTIONS = {
    _wire.SUBMIT[0]: _wire.SUBMIT[1],
    _wire.GET_RESULT[0]: _wire.GET_RESULT[1],
    _wire.CANCEL[0]: _wire.CANCEL[1],
}
IVA_ACTIONS = {_wire.IVA_IMAGE[0]: _wire.IVA_VERSION, _wire.IVA_VIDEO[0]: _wire.IVA_VERSION}
FAULT_KEY = "volcnb.fault"


def _json(obj: Any, status: int = 200) -> Response:
    return Response(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), status_code=status,
                    media_type="application/json")


def create_app(sim: Simulator) -> ASGIApp:
    """Build the ASGI app for ``sim`` (Starlette routes wrapped in the fault layer)."""

    async def api(request: Request) -> Response:
        fault = request.scope.get(FAULT_KEY)
        try:
            await request.body()  # read before any fault: a slow reply is processed, then delivered late
        except ClientDisconnect:
            return Response(status_code=499)
        response = await handle(request, fault)
        if fault == "slow":
            await asyncio.sleep(sim.faults.slow_seconds)
        return response

    async def handle(request: Request, fault: object) -> Response:
        action = request.query_params.get("Action", "")
        version = request.query_params.get("Version", "")
        rid = request_id(sim.clock())
        service = "iva" if action in IVA_ACTIONS else "cv"
        if fault == "http_500":
            return PlainTextResponse("<html><body><h1>500 Internal Server Error</h1></body></html>", 500)
        try:
            expected = CV_ACTIONS.get(action) or IVA_ACTIONS.get(action)
            if expected is None or version != expected:
                raise Reject("InvalidActionOrVersion",
                             f"Could not find operation {action!r} for version {version!r}", http=404)
            body = await request.body()
            incoming = Incoming(method=request.method, path=request.url.path, query=list(request.query_params.multi_items()),
                                headers=[(k, v) for k, v in request.headers.items()], body=body,
                                base_url=str(request.base_url))
            ak = sim.authenticate(incoming, service)
            if fault == "code_50500":
                raise Reject(50500)
            if service == "iva":
                form = await request.form(max_part_size=64 * 1024 * 1024)
                fields: dict[str, Any] = {}
                for key, value in form.multi_items():
                    fields[key] = value if isinstance(value, str) else await value.read()
                kind = "image" if action == _wire.IVA_IMAGE[0] else "video"
                result = await asyncio.to_thread(sim.iva_upload, ak, kind, fields)
                return _json({"ResponseMetadata": {"RequestId": rid, "Action": action, "Version": version,
                                                   "Service": service, "Region": _wire.REGION},
                              "Result": result})
            start = time.perf_counter()
            if action == _wire.SUBMIT[0]:
                data = await asyncio.to_thread(sim.submit, ak, body)
                code, message = 10000, "Success"
            elif action == _wire.GET_RESULT[0]:
                code, message, data = await asyncio.to_thread(
                    sim.get_result, ak, body, str(request.base_url), lose=fault == "lost")
            else:
                data = await asyncio.to_thread(sim.cancel, ak, body)
                code, message = 10000, "Success"
            elapsed = f"{(time.perf_counter() - start) * 1000:.6f}ms"
            reply: dict[str, Any] = {"code": code, "data": data, "message": message, "request_id": rid,
                                     "status": code, "time_elapsed": elapsed}
            status = 200 if code == 10000 else _http_for(code)
            if fault == "malformed":
                return Response(b'{"code": 10000, "data": {"status": "gener', status_code=200,
                                media_type="application/json")
            return _json(reply, status)
        except Reject as r:
            sim.counters.rejected[str(r.code)] += 1
            return _json(envelope_error(r.code, r.message, rid, action, version, service), r.http)
        except Exception as exc:  # the simulator never crashes on input: anything unexpected is a 50500
            sim.counters.rejected["50500"] += 1
            return _json(envelope_error(50500, f"Internal Error: {type(exc).__name__}", rid, action, version,
                                        service), 500)

    async def files(request: Request) -> Response:
        token = request.path_params["token"]
        f = await asyncio.to_thread(sim.store.get_file, token)
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
            conf = json.loads(await request.body() or b"{}")
            apply_config(sim, conf)
        except (ValueError, TypeError, KeyError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse({"ok": True})

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "simulator": "volcnb"})

    app = Starlette(routes=[
        Route("/", api, methods=["POST", "GET"]),
        Route("/sim/files/{token}", files, methods=["GET"]),
        Route("/sim/stats", stats, methods=["GET"]),
        Route("/sim/config", config, methods=["POST"]),
        Route("/sim/health", health, methods=["GET"]),
    ])
    return FaultLayer(app, sim)


def _http_for(code: int) -> int:
    from ._engine import HTTP_STATUS

    return HTTP_STATUS.get(code, 400)


def apply_config(sim: Simulator, conf: dict[str, Any]) -> None:
    """Apply a ``/sim/config`` document: ``{"faults": {...}, "plan": {action: [kinds]}, "service_times":
    {req_key: [median, sigma]}, "queue_time": s, "quotas": {...}}``."""
    if "faults" in conf:
        f = conf["faults"]
        new = Faults(**{k: v for k, v in f.items() if k != "actions"})
        if f.get("actions") is not None:
            new.actions = frozenset(f["actions"])
        sim.faults = new
    for action, kinds in (conf.get("plan") or {}).items():
        sim.faults.plan(action, *kinds)
    for req_key, st in (conf.get("service_times") or {}).items():
        median, sigma = (st, 0.3) if isinstance(st, (int, float)) else (st[0], st[1])
        sim.set_service_time(req_key, ServiceTime(float(median), float(sigma)))
    if "queue_time" in conf:
        sim.queue_time = float(conf["queue_time"])
    for k, v in (conf.get("quotas") or {}).items():
        setattr(sim.quotas, k, type(getattr(sim.quotas, k))(v))


class FaultLayer:
    """Raw ASGI wrapper: picks the fault for each API request and performs connection drops itself."""

    def __init__(self, app: ASGIApp, sim: Simulator) -> None:
        self.app, self.sim = app, sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != "/":
            await self.app(scope, receive, send)
            return
        action = ""
        for part in scope.get("query_string", b"").decode("latin-1").split("&"):
            if part.startswith("Action="):
                action = part[len("Action="):]
        kind = self.sim.faults.pick(action, self.sim.rng)
        if kind is None:
            await self.app(scope, receive, send)
            return
        self.sim.counters.faults[kind] += 1
        if kind == "drop":
            await _drain(receive)
            await _drop(send)
            return
        if kind == "drop_after":
            async def swallow(message: Message) -> None:
                return None

            await self.app(scope, receive, swallow)
            await _drop(send)
            return
        scope = dict(scope)
        scope[FAULT_KEY] = kind
        await self.app(scope, receive, send)


async def _drain(receive: Receive) -> None:
    while True:
        msg = await receive()
        if msg["type"] != "http.request" or not msg.get("more_body"):
            return


async def _drop(send: Send) -> None:
    """Start a response, send part of it, and give up: the server then closes the connection."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"512")]})
    await send({"type": "http.response.body", "body": b'{"code":', "more_body": True})
