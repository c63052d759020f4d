"""The Starlette application: the 即梦AI异步接口 document's routes, plus health, users, images and OpenAPI."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ..sim._app import read_body
from ..sim._model import Reject
from ._openapi import openapi
from ._page import PAGE
from ._spec import MODELS, Limits, RequestError, upstream_prompt, validate
from ._store import Store, TaskRow
from ._worker import Worker

__all__ = ["create_app"]

PROVIDER = "volcengine_jimeng"
MAX_BODY = 64 * 1024
"""Bytes a create or user body may have (a prompt is at most a few KB); more is a 400 naming ``body``."""

BODY_TIMEOUT = 30.0
"""Seconds a body may stall while it is read."""


class _BadBody(ValueError):
    pass


async def _body(request: Request) -> bytes:
    """The body, read with the simulator's capped reader: refused past :data:`MAX_BODY` (never held whole)."""
    try:
        return await read_body(request, MAX_BODY, "RequestEntityTooLarge", BODY_TIMEOUT)
    except Reject as err:
        raise _BadBody(f"body: at most {MAX_BODY} bytes" if err.http == 413 else f"body: {err.message}") from None


BASE = "/api/v1"
_FONT = Path(__file__).resolve().parent.parent / "_fonts" / "VolcnbSansSC-Regular.ttf"


def _json(body: dict[str, Any], status: int) -> JSONResponse:
    return JSONResponse(body, status_code=status)


def _bad(message: str) -> JSONResponse:
    return _json({"error": "请求参数错误", "message": message}, 400)


class _Gateway:
    def __init__(self, store: Store, client: Any, limits: Limits, token: str | None, upstream: str) -> None:
        self.store, self.limits, self.token, self.upstream = store, limits, token, upstream
        self.worker = Worker(store, client, limits)
        self.started = time.time()

    def authorised(self, request: Request) -> bool:
        if not self.token:
            return True
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode())

    async def create(self, request: Request) -> Response:
        try:
            body = json.loads(await _body(request))
        except _BadBody as err:
            return _bad(str(err))
        except (ValueError, UnicodeDecodeError):
            return _bad("the body must be JSON (Content-Type: application/json)")
        try:
            params = validate(body, self.limits)
        except RequestError as err:
            return _bad(str(err))
        row = self.store.create(params["user_id"], params, limit=self.limits.per_user)
        if row is None:
            return _json({"error": "并发任务超限", "message": f"user_id {params['user_id']!r} already has "
                          f"{self.limits.per_user} unfinished tasks (每用户最多{self.limits.per_user}个并发任务); "
                          "wait for one to finish"}, 429)
        self.worker.wake()
        return _json({"success": True, "data": {"task_id": row.task_id, "status": "pending",
                                                "message": "任务已创建，正在处理中", "provider": PROVIDER,
                                                "system_task_id": row.system_task_id},
                      "message": "图像生成任务创建成功"}, 201)

    async def result(self, request: Request) -> Response:
        task_id = request.path_params.get("task_id", "").strip()
        if not task_id:
            return _json({"error": "任务ID不能为空"}, 400)
        row = self.store.get(task_id)
        if row is None:
            return _json({"error": "任务不存在", "message": f"no task {task_id[:100]!r}"}, 400)
        if row.status in ("pending", "processing"):
            message = "任务等待处理中，请稍后查询" if row.status == "pending" else "任务处理中，请稍后查询"
            return _json({"success": True, "data": {"task_id": row.task_id, "status": row.status,
                                                    "message": message}}, 202)
        if row.status == "failed":
            return _json({"error": "任务执行失败", "message": row.error or "火山引擎API错误",
                          "data": {"task_id": row.task_id, "status": "failed"}}, 500)
        return _json({"success": True, "data": self.completed(row, str(request.base_url).rstrip("/")),
                      "message": "任务完成"}, 200)

    def completed(self, row: TaskRow, base: str) -> dict[str, Any]:
        p = row.params
        urls = [f"{base}{BASE}/images/{i}.png" for i in row.images]
        revised = upstream_prompt(p)
        result = {"id": row.task_id, "type": "image", "image_url": urls[0], "provider": PROVIDER,
                  "duration": int(((row.finished or row.created) - row.created) * 1e9),
                  "cost": round(self.limits.prices.get(p["quality"], 0.0) * p["n"], 6),
                  "metadata": {"task_id": row.task_id, "model": p["model"], "req_key": MODELS[p["model"]],
                               "prompt": p["prompt"], "size": p["size"], "quality": p["quality"],
                               "style": p["style"], "n": p["n"], "created": int(row.created),
                               "data": [{"url": u, "revised_prompt": revised} for u in urls]}}
        return {"task_id": row.task_id, "status": "completed", "result": result, "image_url": urls[0]}

    async def image(self, request: Request) -> Response:
        png = self.store.image(request.path_params["image_id"])
        if png is None:
            return _json({"error": "图像不存在"}, 404)
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=86400, immutable"})

    async def health(self, request: Request) -> Response:
        return _json({"status": "ok", "ok": True, "success": True, "provider": PROVIDER, "upstream": self.upstream,
                      "uptime": round(time.time() - self.started, 3)}, 200)

    async def users(self, request: Request) -> Response:
        try:
            body = json.loads(await _body(request) or b"{}")
        except _BadBody as err:
            return _bad(str(err))
        except (ValueError, UnicodeDecodeError):
            return _bad("the body must be JSON")
        user_id = body.get("user_id") if isinstance(body, dict) else None
        if not isinstance(user_id, str) or not user_id.strip() or len(user_id) > 128:
            return _bad("Key: 'UserRequest.UserID' Error:Field validation for 'UserID' failed on the 'required' "
                        "tag (a string of 1–128 characters)")
        created, new = self.store.add_user(user_id)
        return _json({"success": True, "data": {"user_id": user_id, "created": int(created)},
                      "message": "用户创建成功" if new else "用户已存在"}, 201 if new else 200)

    async def user_tasks(self, request: Request) -> Response:
        rows = self.store.recent(request.path_params["user_id"])
        return _json({"success": True, "data": [{"task_id": r.task_id, "status": r.status, "prompt": r.params["prompt"],
                                                 "created": int(r.created), "error": r.error,
                                                 "image_url": f"{BASE}/images/{r.images[0]}.png" if r.images else None}
                                                for r in rows]}, 200)


def create_app(store: Store, client: Any, limits: Limits | None = None, *, token: str | None = None,
               upstream: str = "simulator") -> Starlette:
    """The gateway ASGI app over ``store``, driving tasks upstream through ``client``."""
    gw = _Gateway(store, client, limits or Limits(), token, upstream)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        gw.worker.start()
        yield
        await gw.worker.stop()

    async def page(request: Request) -> Response:
        return HTMLResponse(PAGE)

    async def font(request: Request) -> Response:  # CJK glyphs for browsers without a CJK font (a fixed file)
        return Response(await asyncio.to_thread(_FONT.read_bytes), media_type="font/ttf", headers={"Cache-Control": "max-age=86400"})

    async def spec(request: Request) -> Response:
        return _json(openapi(gw.limits), 200)

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        return _json({"error": "接口不存在" if status == 404 else "请求方法不支持", "message": request.url.path[:200]},
                     status)

    def guarded(handler: Any) -> Any:
        async def call(request: Request) -> Response:
            if not gw.authorised(request):
                return _json({"error": "未授权", "message": "send Authorization: Bearer <token>"}, 401)
            response: Response = await handler(request)
            return response
        return call

    routes = [
        Route("/", page), Route("/font.ttf", font), Route(f"{BASE}/openapi.json", spec), Route(f"{BASE}/health", gw.health),
        Route(f"{BASE}/ai/image/task", guarded(gw.create), methods=["POST"]),
        Route(f"{BASE}/ai/image/result", guarded(gw.result)), Route(f"{BASE}/ai/image/result/", guarded(gw.result)),
        Route(f"{BASE}/ai/image/result/{{task_id:path}}", guarded(gw.result)),
        Route(f"{BASE}/images/{{image_id}}.png", gw.image),  # unguarded: an <img> sends no token
        Route(f"{BASE}/users", guarded(gw.users), methods=["POST"]),
        Route(f"{BASE}/users/{{user_id}}/tasks", guarded(gw.user_tasks)),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: not_found})
    app.state.gateway = gw
    return app
