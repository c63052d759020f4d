"""The checks of what the HTTP layer is given: ``Client(...)`` arguments and IVA uploads.

Each raises :class:`~volcnb.ValidationError` (or :class:`~volcnb.ArgumentTypeError`) naming the field and
the limit, before any connection is opened.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from typing import Any

import httpx
from PIL import Image

from .._exceptions import ArgumentTypeError, ValidationError
from ..protocol.retry import RetryPolicy
from ..protocol.submission import check_number, check_str, check_task_id
from .pacing import Pacer

__all__ = ["check_client_args", "check_iva_args", "check_iva_picture"]

#: Volcengine region names: ``cn-north-1``, ``cn-beijing``, ``ap-southeast-1``…
REGION_RE = re.compile(r"^[a-z]{2,}(-[a-z0-9]+)+$")


def check_client_args(*, access_key: object = None, secret_key: object = None, session_token: object = None,
                      region: object = "cn-north-1", transport: object = None, timeout: object = 30.0,
                      connect_timeout: object = 10.0, max_retries: object = 3, retry: object = None,
                      keepalive_expiry: object = 2.0, pacer: object = None) -> None:
    """Every ``volcnb.Client(...)`` argument by type and range (the endpoints are checked where they are read)."""
    for name, value in (("access_key", access_key), ("secret_key", secret_key), ("session_token", session_token)):
        if value is not None and not isinstance(value, str):
            raise ArgumentTypeError(f"{name} must be a string, got {type(value).__name__}", field=name,
                                    limit="string")  # the value itself may be a secret: never echoed
    if not REGION_RE.match(check_str(region, "region") or ""):
        raise ValidationError(f"region must look like 'cn-north-1', got {region!r}", field="region",
                              limit="region name")
    if transport is not None and not isinstance(transport, httpx.AsyncBaseTransport):
        raise ArgumentTypeError(f"transport must be an httpx async transport (httpx.AsyncBaseTransport), got "
                                f"{type(transport).__name__}", field="transport", limit="httpx.AsyncBaseTransport")
    check_number(timeout, "timeout", positive=True)
    check_number(connect_timeout, "connect_timeout", positive=True)
    check_number(max_retries, "max_retries", integer=True, minimum=0)
    check_number(keepalive_expiry, "keepalive_expiry", minimum=0)
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise ArgumentTypeError(f"retry must be a volcnb.RetryPolicy, got {type(retry).__name__}", field="retry",
                                limit="RetryPolicy")
    if pacer is not None and not isinstance(pacer, Pacer):
        raise ArgumentTypeError(f"pacer must be a volcnb.Pacer, got {type(pacer).__name__}", field="pacer",
                                limit="Pacer")


def check_iva_picture(data: bytes) -> None:
    """An IVA image upload must be a picture: Pillow names its format from the header (1 MB read at most)."""
    try:
        with Image.open(io.BytesIO(data[: 1 << 20])) as img:
            if img.format:
                return
    except Exception:  # noqa: S110 - any failure to identify means "not a picture"
        pass
    raise ValidationError(f"ImageFile is not a picture ({len(data)} bytes, starting {data[:8]!r}); send a JPEG, "
                          "PNG or another image format", field="ImageFile", limit="an image Pillow can identify")


def check_iva_args(task_id: object, *, name: object = None, desc: object = None,
                   algo_params: object = None) -> tuple[str, str | None, str | None, dict[str, Any] | None]:
    """``(TaskID, Name, Desc, AlgoParamConf)`` of an IVA upload, checked: the task id a string (an int is
    written as one), ``name``/``desc`` strings, ``algo_params`` a mapping with string keys."""
    tid = check_task_id(task_id, "TaskID")
    label = check_str(name, "name", optional=True, max_length=1024)
    text = check_str(desc, "desc", optional=True, empty=True, max_length=4096)
    if algo_params is None:
        return tid, label, text, None
    if not isinstance(algo_params, Mapping):
        raise ArgumentTypeError(f"algo_params must be a dict (AlgoParamConf), got {type(algo_params).__name__} "
                                f"{algo_params!r:.60}", field="algo_params", limit="dict")
    bad = [k for k in algo_params if not isinstance(k, str) or not k]
    if bad:
        raise ValidationError(f"algo_params keys must be non-empty strings, got {bad[0]!r}", field="algo_params",
                              limit="string keys")
    return tid, label, text, dict(algo_params)
