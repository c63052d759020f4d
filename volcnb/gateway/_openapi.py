"""The OpenAPI 3 document of the gateway's routes (served at ``/api/v1/openapi.json``; it drives the fuzz)."""

from __future__ import annotations

from typing import Any

from ._spec import MODELS, QUALITIES, SIZES, STYLES, Limits

__all__ = ["openapi"]

_ERROR = {"type": "object", "required": ["error"],
          "properties": {"error": {"type": "string"}, "message": {"type": "string"}}}
_FAILED = {"type": "object", "required": ["error", "message", "data"],
           "properties": {"error": {"type": "string"}, "message": {"type": "string"},
                          "data": {"type": "object", "properties": {"task_id": {"type": "string"},
                                                                    "status": {"const": "failed"}}}}}
_OK = {"type": "object", "required": ["success", "data"],
       "properties": {"success": {"const": True}, "data": {"type": "object"}, "message": {"type": "string"}}}


def _reply(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def openapi(limits: Limits) -> dict[str, Any]:
    """The document, with the configured limits."""
    request = {"type": "object", "required": ["prompt", "user_id"], "properties": {
        "prompt": {"type": "string", "minLength": 1, "maxLength": 780},
        "user_id": {"type": "string", "minLength": 1, "maxLength": 128},
        "model": {"type": "string", "enum": list(MODELS), "default": "doubao-seedream-3.0-t2i"},
        "size": {"type": "string", "enum": list(SIZES), "default": "1024x1024"},
        "quality": {"type": "string", "enum": list(QUALITIES), "default": "standard"},
        "style": {"type": "string", "enum": list(STYLES)},
        "n": {"type": "integer", "minimum": 1, "maximum": limits.max_n, "default": 1},
        "options": {"type": "object", "properties": {"seed": {"type": "integer", "minimum": -1}}}}}
    task_id = {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}}
    return {"openapi": "3.0.3", "info": {"title": "volcnb Jimeng gateway (即梦AI异步接口)", "version": "2.0.0"},
            "servers": [{"url": "/"}],
            "paths": {
                "/api/v1/ai/image/task": {"post": {
                    "operationId": "createTask",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
                    "responses": {"201": _reply("created, pending", _OK), "400": _reply("bad parameter", _ERROR),
                                  "429": _reply(f"{limits.per_user} unfinished tasks already", _ERROR)}}},
                "/api/v1/ai/image/result/{task_id}": {"get": {
                    "operationId": "getResult", "parameters": [task_id],
                    "responses": {"200": _reply("completed", _OK), "202": _reply("pending or processing", _OK),
                                  "400": _reply("empty or unknown id", _ERROR),
                                  "500": _reply("the task failed", _FAILED)}}},
                "/api/v1/health": {"get": {"operationId": "health", "responses": {"200": {"description": "ok"}}}},
                "/api/v1/users": {"post": {
                    "operationId": "createUser",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "required": ["user_id"], "properties": {"user_id": {"type": "string"}}}}}},
                    "responses": {"201": _reply("created", _OK), "200": _reply("exists", _OK),
                                  "400": _reply("bad user_id", _ERROR)}}},
            }}
