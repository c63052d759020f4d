"""Build requests and parse replies: no I/O.

Two envelopes exist: the gateway's ``{"ResponseMetadata": {..., "Error": {"Code", "Message"}}, "Result"}``,
checked first, and the CV service's ``{"code", "message", "request_id", "time_elapsed", "data"}`` with
``code == 10000`` on success. ``CVCancelTask`` (Version 2024-06-06) is known only from the official SDK's
action table: its request mirrors GetResult (``req_key`` + ``task_id``) and its reply is the service envelope.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .._exceptions import ProtocolError, TaskExpiredError, TaskNotFoundError, ValidationError, make_api_error
from .multipart import Field, StreamedBody, multipart, stream_multipart  # noqa: F401 - multipart: tests use wire.multipart
from .options import AigcMeta, LogoInfo, req_json

__all__ = ["ApiRequest", "OpenApiReply", "Reply", "build_cancel", "build_get_result", "build_iva_upload",
           "build_submit", "parse_openapi_reply", "parse_service_reply", "task_status"]

REGION = "cn-north-1"
CV_SERVICE, CV_HOST = "cv", "visual.volcengineapi.com"
IVA_SERVICE, IVA_HOST = "iva", "open.volcengineapi.com"

SUBMIT = ("CVSync2AsyncSubmitTask", "2022-08-31")
GET_RESULT = ("CVSync2AsyncGetResult", "2022-08-31")
CANCEL = ("CVCancelTask", "2024-06-06")
IVA_VERSION = "2022-05-13"
IVA_IMAGE = ("AddAsyncTaskImageData", IVA_VERSION)
IVA_VIDEO = ("AddAsyncTaskVideoData", IVA_VERSION)

SUCCESS = 10000
Status = Literal["queued", "submitting", "in_queue", "generating", "done", "failed", "cancelled", "not_found", "expired"]
SERVER_STATUSES = ("in_queue", "generating", "done", "not_found", "expired")


def dumps(obj: object) -> bytes:
    """Compact UTF-8 JSON; we hash and send these exact bytes."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class ApiRequest:
    """Everything needed to send one call: no I/O has happened yet."""

    action: str
    version: str
    service: str
    body: bytes
    content_type: str = "application/json"
    idempotent: bool = True
    """Safe to repeat after an ambiguous failure (GetResult yes, Submit no)."""
    task_id: str | None = None
    req_key: str | None = None
    stream: StreamedBody | None = field(default=None, repr=False)
    """A body streamed from disk (``body`` is then empty): its chunks, length and SHA-256."""

    @property
    def size(self) -> int:
        """Bytes in the body, streamed or not."""
        return self.stream.length if self.stream is not None else len(self.body)

    @property
    def query(self) -> dict[str, str]:
        """The URL query: ``Action`` and ``Version``."""
        return {"Action": self.action, "Version": self.version}


@dataclass(frozen=True)
class Reply:
    """A successful (``code == 10000``) service-envelope reply."""

    data: dict[str, Any]
    request_id: str | None = None
    time_elapsed: str | None = None
    message: str = "Success"
    status_code: int = 200
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class OpenApiReply:
    """A successful OpenAPI-envelope reply (IVA): ``Result`` and ``ResponseMetadata.RequestId``."""

    result: dict[str, Any]
    request_id: str | None = None
    status_code: int = 200


def build_submit(req_key: str, params: Mapping[str, Any]) -> ApiRequest:
    """``CVSync2AsyncSubmitTask``: the capability's own body, ``req_key`` first."""
    body = {"req_key": req_key, **{k: v for k, v in params.items() if k != "req_key"}}
    return ApiRequest(*SUBMIT, CV_SERVICE, dumps(body), idempotent=False, req_key=req_key)


def build_get_result(
    req_key: str,
    task_id: str,
    *,
    return_url: bool | None = None,
    logo_info: LogoInfo | None = None,
    aigc_meta: AigcMeta | None = None,
) -> ApiRequest:
    """``CVSync2AsyncGetResult`` with the optional ``req_json`` string."""
    body: dict[str, Any] = {"req_key": req_key, "task_id": task_id}
    rj = req_json(return_url=return_url, logo_info=logo_info, aigc_meta=aigc_meta)
    if rj is not None:
        body["req_json"] = rj
    return ApiRequest(*GET_RESULT, CV_SERVICE, dumps(body), task_id=task_id, req_key=req_key)


def build_cancel(req_key: str, task_id: str) -> ApiRequest:
    """``CVCancelTask`` (2024-06-06; known from the SDK only)."""
    return ApiRequest(*CANCEL, CV_SERVICE, dumps({"req_key": req_key, "task_id": task_id}), task_id=task_id,
                      req_key=req_key)


def build_iva_upload(
    kind: Literal["image", "video"],
    task_id: str,
    *,
    name: str,
    url: str | None = None,
    file: tuple[str, bytes | pathlib.Path, str] | None = None,
    desc: str | None = None,
    algo_params: Mapping[str, Any] | None = None,
    boundary: str | None = None,
) -> ApiRequest:
    """``AddAsyncTaskImageData`` / ``AddAsyncTaskVideoData`` as the IVA document gives them.

    Exactly one of ``url`` (``Source=url``) or ``file`` (``Source=file``, sent as ``ImageFile``/``VideoFile``).
    A file given as a path stays on disk: the request carries a :class:`StreamedBody`, hashed here in one
    pass (so call this off the event loop for large files).
    """
    if not task_id:
        raise ValidationError("TaskID can not be empty", field="TaskID", limit="non-empty")
    if not name:
        raise ValidationError("the image/video Name can not be empty", field="Name", limit="non-empty")
    if (url is None) == (file is None):
        raise ValidationError("give exactly one of url= or a file", field="Source", limit="url xor file")
    info: dict[str, Any] = {"Name": name, "Source": "url" if url is not None else "file"}
    if url is not None:
        info["Url"] = url
    if desc:
        info["Desc"] = desc
    key = "Image" if kind == "image" else "Video"
    request: dict[str, Any] = {"TaskID": task_id, key: info}
    if algo_params:
        request["AlgoParamConf"] = dict(algo_params)
    fields: list[Field] = [
        ("Request", json.dumps(request, ensure_ascii=False, separators=(",", ":")))]
    if file is not None:
        fields.append(("ImageFile" if kind == "image" else "VideoFile", file))
    streamed = stream_multipart(fields, boundary)
    action = IVA_IMAGE if kind == "image" else IVA_VIDEO
    on_disk = any(not isinstance(s, bytes) for s in streamed.segments)
    body = b"" if on_disk else streamed.read()
    # An upload creates an ImageID/VideoID: repeating it after an ambiguous failure could duplicate data.
    return ApiRequest(*action, IVA_SERVICE, body, content_type=streamed.content_type, idempotent=False,
                      task_id=task_id, stream=streamed if on_disk else None)


# --- parsing -------------------------------------------------------------------------------------


def snippet(content: bytes, limit: int = 200) -> str:
    """A short, printable excerpt of a reply body for error messages."""
    text = content[:limit].decode("utf-8", "replace")
    return text + ("…" if len(content) > limit else "")


def load_json(status_code: int, content: bytes, request: ApiRequest | None = None) -> dict[str, Any]:
    """Decode a reply body as a JSON object or raise :class:`ProtocolError`."""
    task_id = request.task_id if request else None
    try:
        obj = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError(
            f"the server replied HTTP {status_code} with a body that is not JSON: {snippet(content)!r}",
            snippet=snippet(content), status_code=status_code, task_id=task_id,
            retryable=status_code >= 500) from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"expected a JSON object, got {type(obj).__name__}: {snippet(content)!r}",
                            snippet=snippet(content), status_code=status_code, task_id=task_id)
    return obj


def gateway_error(obj: Mapping[str, Any], status_code: int, request: ApiRequest | None = None) -> Exception | None:
    """The error in ``ResponseMetadata.Error``, if the reply carries one (checked before anything else)."""
    meta = obj.get("ResponseMetadata")
    if not isinstance(meta, dict):
        return None
    err = meta.get("Error")
    if not isinstance(err, dict) or not (err.get("Code") or err.get("CodeN")):
        return None
    code = err.get("Code") or str(err.get("CodeN"))
    return make_api_error(
        str(code), str(err.get("Message") or code), request_id=meta.get("RequestId"),
        task_id=request.task_id if request else None, status_code=status_code,
        req_key=request.req_key if request else None)


def parse_service_reply(status_code: int, content: bytes, request: ApiRequest | None = None) -> Reply:
    """Parse the CV service envelope; raise the typed error for a gateway error or a non-10000 code."""
    obj = load_json(status_code, content, request)
    err = gateway_error(obj, status_code, request)
    if err is not None:
        raise err
    code = obj.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        raise ProtocolError(f"reply has no integer 'code': {snippet(content)!r}", snippet=snippet(content),
                            status_code=status_code, task_id=request.task_id if request else None)
    data = obj.get("data")
    if code != SUCCESS:
        error = make_api_error(code, str(obj.get("message") or ""), request_id=obj.get("request_id"),
                               task_id=request.task_id if request else None, status_code=status_code,
                               req_key=request.req_key if request else None)
        # A GetResult whose data says "done" reports the TASK's failure: asking again will not change it.
        error.task_failed = isinstance(data, dict) and data.get("status") == "done"
        raise error
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProtocolError(f"'data' should be an object, got {type(data).__name__}", snippet=snippet(content),
                            status_code=status_code)
    return Reply(data=data, request_id=obj.get("request_id"), time_elapsed=_str_or_none(obj.get("time_elapsed")),
                 message=str(obj.get("message") or ""), status_code=status_code, raw=obj)


def parse_openapi_reply(status_code: int, content: bytes, request: ApiRequest | None = None) -> OpenApiReply:
    """Parse the OpenAPI envelope (IVA): raise on ``ResponseMetadata.Error``, return ``Result``."""
    obj = load_json(status_code, content, request)
    err = gateway_error(obj, status_code, request)
    if err is not None:
        raise err
    result = obj.get("Result")
    if not isinstance(result, dict):
        raise ProtocolError(f"reply has no 'Result' object: {snippet(content)!r}", snippet=snippet(content),
                            status_code=status_code)
    meta = obj.get("ResponseMetadata")
    rid = meta.get("RequestId") if isinstance(meta, dict) else None
    return OpenApiReply(result=result, request_id=str(rid) if rid else None, status_code=status_code)


def _str_or_none(v: object) -> str | None:
    return None if v is None else str(v)


def submitted_task_id(reply: Reply) -> str:
    """The ``data.task_id`` of a submit reply."""
    tid = reply.data.get("task_id")
    if not isinstance(tid, (str, int)) or isinstance(tid, bool) or not str(tid):
        raise ProtocolError("submit reply has code 10000 but no data.task_id", status_code=reply.status_code,
                            request_id=reply.request_id)
    return str(tid)


_RESULT_KEYS = ("binary_data_base64", "image_urls", "video_url", "bbox", "contours_point", "mask")


def task_status(reply: Reply, *, task_id: str | None = None, req_key: str | None = None) -> Status:
    """The task status of a GetResult reply.

    ``in_queue``/``generating``/``done`` pass through; ``not_found``/``expired`` raise the typed errors
    (keeping the task id). A 10000 reply with no ``data.status`` but with results counts as ``done``
    (the documents' own examples look like that); one with neither is a protocol error.
    """
    status = reply.data.get("status")
    if status == "not_found":
        raise TaskNotFoundError(
            f"task {task_id} was not found for req_key {req_key!r}: no such task, or older than 12 h",
            code="not_found", request_id=reply.request_id, task_id=task_id, req_key=req_key)
    if status == "expired":
        raise TaskExpiredError(f"task {task_id} has expired; submit it again", code="expired",
                               request_id=reply.request_id, task_id=task_id, req_key=req_key)
    if status == "in_queue":
        return "in_queue"
    if status == "generating":
        return "generating"
    if status == "done":
        return "done"
    if status is None and any(reply.data.get(k) for k in _RESULT_KEYS):
        return "done"
    raise ProtocolError(f"unknown task status {status!r} in GetResult reply", status_code=reply.status_code,
                        request_id=reply.request_id, task_id=task_id)


def result_images(data: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """``(base64 strings, urls)`` of a done task, empty entries skipped."""
    b64 = [s for s in (data.get("binary_data_base64") or []) if isinstance(s, str) and s]
    urls = [s for s in (data.get("image_urls") or []) if isinstance(s, str) and s]
    return b64, urls


def response_data(data: Mapping[str, Any]) -> Any:
    """``data.response_data`` decoded from its JSON string (or ``None``)."""
    raw = data.get("response_data")
    if isinstance(raw, str) and raw:
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw
