"""The simulator's HTTP face: Starlette routes over the engine, wrapped in the fault layer.

Routes::

    POST /?Action=…&Version=…     the Volcengine OpenAPI actions (CV sync-to-async, CVCancelTask, IVA uploads)
    GET  /sim/files/{token}        images returned with return_url=true (expire after 24 h)
    GET  /sim/stats[?tasks=1]      counters and true task timings (benchmarks only; not a Volcengine API)
    POST /sim/config               change faults / service times at run time (tests over HTTP)
    GET  /sim/health               liveness
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from ..protocol import wire
from ._engine import Engine
from ._faults import FAULT_KEY, FaultLayer
from ._model import HTTP_STATUS, Faults, Incoming, Reject, ServiceTime, envelope_error, loads, request_id

__all__ = ["ACTIONS", "apply_config", "create_app"]


@dataclass(frozen=True)
class _Call:
    """One API request as an action handler sees it."""

    sim: Engine
    request: Request
    access_key: str
    body: bytes
    fault: object


Handler = Callable[[_Call], Awaitable[tuple[int, str, Any]]]


async def _submit(call: _Call) -> tuple[int, str, Any]:
    return 10000, "Success", await asyncio.to_thread(call.sim.submit, call.access_key, call.body)


async def _get_result(call: _Call) -> tuple[int, str, Any]:
    return await asyncio.to_thread(call.sim.get_result, call.access_key, call.body, str(call.request.base_url),
                                   lose=call.fault == "lost")


async def _cancel(call: _Call) -> tuple[int, str, Any]:
    return 10000, "Success", await asyncio.to_thread(call.sim.cancel, call.access_key, call.body)


def _iva(kind: str) -> Handler:
    async def handle(call: _Call) -> tuple[int, str, Any]:
        form = await call.request.form(max_part_size=64 * 1024 * 1024)
        fields: dict[str, Any] = {}
        for key, value in form.multi_items():
            fields[key] = value if isinstance(value, str) else await value.read()
        return 10000, "Success", await asyncio.to_thread(call.sim.iva_upload, call.access_key, kind, fields)

    return handle


@dataclass(frozen=True)
class Action:
    """A routed API action: its version, service, envelope and handler."""

    version: str
    service: str
    handler: Handler
    openapi: bool = False
    """Replies in the OpenAPI envelope (``ResponseMetadata`` + ``Result``), else the CV service envelope."""


ACTIONS: dict[str, Action] = {
    wire.SUBMIT[0]: Action(wire.SUBMIT[1], wire.CV_SERVICE, _submit),
    wire.GET_RESULT[0]: Action(wire.GET_RESULT[1], wire.CV_SERVICE, _get_result),
    wire.CANCEL[0]: Action(wire.CANCEL[1], wire.CV_SERVICE, _cancel),
    wire.IVA_IMAGE[0]: Action(wire.IVA_VERSION, wire.IVA_SERVICE, _iva("image"), openapi=True),
    wire.IVA_VIDEO[0]: Action(wire.IVA_VERSION, wire.IVA_SERVICE, _iva("video"), openapi=True),
}
"""Every action the simulator answers, by ``Action`` query parameter."""


def _json(obj: Any, status: int = 200) -> Response:
    return Response(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), status_code=status,
                    media_type="application/json")


async def _dispatch(sim: Engine, request: Request, fault: object) -> Response:
    name = request.query_params.get("Action", "")
    version = request.query_params.get("Version", "")
    rid = request_id(sim.clock())
    action = ACTIONS.get(name)
    service = action.service if action else wire.CV_SERVICE
    if fault == "http_500":
        return PlainTextResponse("<html><body><h1>500 Internal Server Error</h1></body></html>", 500)
    try:
        if action is None or version != action.version:
            raise Reject("InvalidActionOrVersion", f"Could not find operation {name!r} for version {version!r}",
                         http=404)
        if request.method != "POST":  # the actions are POST only (a GET would carry no body)
            raise Reject("InvalidHttpMethod", f"{name} takes POST, not {request.method}", http=405)
        body = await request.body()
        incoming = Incoming(method=request.method, path=request.url.path,
                            query=list(request.query_params.multi_items()),
                            headers=list(request.headers.items()), body=body, base_url=str(request.base_url))
        ak = sim.authenticate(incoming, service)
        if fault == "code_50500":
            raise Reject(50500)
        start = time.perf_counter()
        code, message, data = await action.handler(_Call(sim, request, ak, body, fault))
        if action.openapi:
            return _json({"ResponseMetadata": {"RequestId": rid, "Action": name, "Version": version,
                                               "Service": service, "Region": wire.REGION}, "Result": data})
        if fault == "malformed":
            return Response(b'{"code": 10000, "data": {"status": "gener', status_code=200,
                            media_type="application/json")
        reply = {"code": code, "data": data, "message": message, "request_id": rid, "status": code,
                 "time_elapsed": f"{(time.perf_counter() - start) * 1000:.6f}ms"}
        return _json(reply, 200 if code == 10000 else HTTP_STATUS.get(code, 400))
    except Reject as r:
        sim.counters.rejected[str(r.code)] += 1
        return _json(envelope_error(r.code, r.message, rid, name, version, service), r.http)
    except Exception as exc:  # the simulator never crashes on input: anything unexpected is a 50500
        sim.counters.rejected["50500"] += 1
        return _json(envelope_error(50500, f"Internal Error: {type(exc).__name__}", rid, name, version, service),
                     500)


def create_app(sim: Engine) -> ASGIApp:
    """Build the ASGI app for ``sim`` (Starlette routes wrapped in the fault layer)."""

    async def api(request: Request) -> Response:
        fault = request.scope.get(FAULT_KEY)
        try:
            await request.body()  # read before any fault: a slow reply is processed, then delivered late
        except ClientDisconnect:
            return Response(status_code=499)
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
            apply_config(sim, loads(await request.body() or b"{}"))
        except (ValueError, TypeError, KeyError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse({"ok": True})

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "simulator": "volcnb"})

    app = Starlette(routes=[
        Route("/", api, methods=["POST", "GET", "PUT", "DELETE", "PATCH"]),
        Route("/sim/files/{token}", files, methods=["GET"]),
        Route("/sim/stats", stats, methods=["GET"]),
        Route("/sim/config", config, methods=["POST"]),
        Route("/sim/health", health, methods=["GET"]),
    ])
    return FaultLayer(app, sim)


def apply_config(sim: Engine, conf: dict[str, Any]) -> None:
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
