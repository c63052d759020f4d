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
import math
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
from ._model import (
    HTTP_STATUS,
    IVA_MAX_BODY,
    MAX_BODY,
    Faults,
    Incoming,
    Reject,
    ServiceTime,
    envelope_error,
    loads,
    request_id,
)

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
        try:
            form = await call.request.form(max_part_size=64 * 1024 * 1024)
        except Exception as exc:  # a torn or boundary-less multipart body is the client's error
            raise Reject("InvalidParameter", f"the multipart/form-data body cannot be parsed ({exc})"[:200],
                         http=400) from None
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


async def _read_capped(request: Request, cap: int, *, openapi: bool) -> bytes:
    """The body, refused as soon as it passes ``cap`` bytes (from Content-Length, or while reading)."""
    def too_big(n: int) -> Reject:
        if openapi:
            return Reject("RequestEntityTooLarge", f"the request body is over {cap:,} bytes", http=413)
        return Reject(50213, f"Request Body Size Limited: over {cap:,} bytes")

    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise too_big(int(declared))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise too_big(size)
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # Starlette's own cache: request.form() (the IVA uploads) reads it from there
    return body


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
        sim.check_headers(list(request.headers.items()), service)  # unsigned: refused before reading a byte
        body = await _read_capped(request, IVA_MAX_BODY if action.openapi else MAX_BODY, openapi=action.openapi)
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
    except ClientDisconnect:
        raise
    except Exception as exc:  # the simulator never crashes on input: anything unexpected is a 50500
        sim.counters.rejected["50500"] += 1
        return _json(envelope_error(50500, f"Internal Error: {type(exc).__name__}", rid, name, version, service),
                     500)


def create_app(sim: Engine) -> ASGIApp:
    """Build the ASGI app for ``sim`` (Starlette routes wrapped in the fault layer)."""

    async def api(request: Request) -> Response:
        fault = request.scope.get(FAULT_KEY)
        try:  # the body is read inside, after the header checks and under its size cap
            response = await _dispatch(sim, request, fault)
        except ClientDisconnect:
            return Response(status_code=499)
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


def apply_config(sim: Engine, conf: Any) -> None:  # long: one check per documented field, then apply all
    """Apply a ``/sim/config`` document: ``{"faults": {...}, "plan": {action: [kinds]}, "service_times":
    {req_key: median | [median, sigma]}, "queue_time": s, "quotas": {...}}``.

    Every field is checked first (a ``ValueError`` naming it); nothing is applied unless all are valid.
    """
    def number(value: Any, field: str, *, lo: float = 0.0, hi: float = math.inf) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
            raise ValueError(f"{field} must be a number in [{lo:g}, {hi:g}], got {value!r:.40}")
        return float(value)

    def mapping(value: Any, field: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValueError(f"{field} must be an object, got {type(value).__name__}")
        return value

    conf = mapping(conf, "the config")
    unknown = set(conf) - {"faults", "plan", "service_times", "queue_time", "quotas"}
    if unknown:
        raise ValueError(f"unknown config field(s): {', '.join(sorted(map(str, unknown)))}")
    faults = None
    if "faults" in conf:
        f = mapping(conf["faults"], "faults")
        faults = Faults()
        for k, v in f.items():
            if k == "actions":
                if v is not None and not (isinstance(v, list) and all(isinstance(a, str) for a in v)):
                    raise ValueError("faults.actions must be a list of action names or null")
                faults.actions = frozenset(v) if v is not None else None
            elif k in Faults.KINDS:
                setattr(faults, k, number(v, f"faults.{k}", hi=1.0))
            elif k == "slow_seconds":
                faults.slow_seconds = number(v, "faults.slow_seconds", hi=600.0)
            else:
                raise ValueError(f"faults.{k} is not a fault setting")
    plan = mapping(conf.get("plan") or {}, "plan")
    for action, kinds in plan.items():
        if not (isinstance(kinds, list) and all(k == "ok" or k in Faults.KINDS for k in kinds)):
            raise ValueError(f"plan.{action} must be a list of {', '.join(('ok', *Faults.KINDS))}")
    times = {}
    for req_key, st in mapping(conf.get("service_times") or {}, "service_times").items():
        pair = [st, 0.3] if not isinstance(st, list) else st
        if len(pair) != 2:
            raise ValueError(f"service_times.{req_key} must be a median or [median, sigma]")
        times[req_key] = ServiceTime(number(pair[0], f"service_times.{req_key}", hi=86400.0),
                                     number(pair[1], f"service_times.{req_key} sigma", hi=5.0))
    queue_time = number(conf["queue_time"], "queue_time", hi=3600.0) if "queue_time" in conf else None
    quotas = {}
    for k, v in mapping(conf.get("quotas") or {}, "quotas").items():
        if k not in ("submit_qps", "max_unfinished", "get_result_qps"):
            raise ValueError(f"quotas.{k} is not a quota")
        value = number(v, f"quotas.{k}", lo=0.0 if k == "max_unfinished" else 1e-3, hi=1e12)
        quotas[k] = int(value) if k == "max_unfinished" else value
    if faults is not None:
        sim.faults = faults
    for action, kinds in plan.items():
        sim.faults.plan(action, *kinds)
    for req_key, service_time in times.items():
        sim.set_service_time(req_key, service_time)
    if queue_time is not None:
        sim.queue_time = queue_time
    for k, v in quotas.items():
        setattr(sim.quotas, k, v)
