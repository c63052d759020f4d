"""A checked submit body from what a user passes, and the argument checks every entry point shares.

Everything the service would refuse for its type or shape raises :class:`~volcnb.ValidationError` here,
before any request (:class:`~volcnb.ArgumentTypeError` when it is the type); doubts become
:class:`~volcnb.VolcnbWarning`, pointing at the user's line. The CLI and the servers call the same checks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from PIL import Image

from .._exceptions import ArgumentTypeError, ValidationError, warn_user
from .catalog import get_capability, image_count, suggest_req_key
from .images import encode_images

__all__ = ["check_bool", "check_number", "check_params", "check_req_key", "check_str", "check_task_id",
           "prepare_submit"]


def _type_name(value: object) -> str:
    return type(value).__name__


def check_str(value: object, field: str, *, optional: bool = False, empty: bool = False,
              max_length: int | None = None) -> str | None:
    """``value`` as a string (``None`` allowed when ``optional``; blank refused unless ``empty``)."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{field} must be a string, got {_type_name(value)} {value!r:.60}", field=field,
                                limit="string")
    if not empty and not value.strip():
        raise ValidationError(f"{field} must not be empty", field=field, limit="non-empty string")
    if max_length is not None and len(value) > max_length:
        raise ValidationError(f"{field} is {len(value)} characters; at most {max_length}", field=field,
                              limit=f"<= {max_length} characters")
    return value


def check_bool(value: object, field: str, *, optional: bool = True) -> bool | None:
    """``value`` as ``True``/``False`` (or ``None`` when ``optional``); ``"no"``, ``1`` and the like refused."""
    if value is None and optional:
        return None
    if not isinstance(value, bool):
        raise ArgumentTypeError(f"{field} must be True or False, got {_type_name(value)} {value!r:.60}",
                                field=field, limit="bool")
    return value


def check_number(value: object, field: str, *, optional: bool = False, positive: bool = False,
                 minimum: float | None = None, integer: bool = False) -> float | None:
    """A finite number (an ``int`` when ``integer``), ``> 0`` when ``positive``, ``>= minimum``."""
    if value is None and optional:
        return None
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise ArgumentTypeError(f"{field} must be {'an integer' if integer else 'a number'}, got "
                                f"{_type_name(value)} {value!r:.60}", field=field,
                                limit="int" if integer else "number")
    number = float(value)
    if not math.isfinite(number):
        raise ValidationError(f"{field} must be finite, got {value!r}", field=field, limit="finite")
    if positive and number <= 0:
        raise ValidationError(f"{field} must be > 0, got {value!r}", field=field, limit="> 0")
    if minimum is not None and number < minimum:
        raise ValidationError(f"{field} must be >= {minimum:g}, got {value!r}", field=field,
                              limit=f">= {minimum:g}")
    return number


def check_req_key(req_key: object) -> str:
    """A non-empty ``req_key`` string; an unknown one is warned about (and sent), a near miss named."""
    key = check_str(req_key, "req_key")
    assert key is not None
    if get_capability(key) is None:
        guess = suggest_req_key(key)
        hint = f" (did you mean {guess!r}?)" if guess else ""
        warn_user(f"volcnb does not know req_key {key!r}{hint}; parameters are sent as given")
    return key


def check_task_id(task_id: object, field: str = "task_id") -> str:
    """A task id: a non-empty string without spaces (an ``int`` is accepted and written as a string)."""
    if isinstance(task_id, int) and not isinstance(task_id, bool) and task_id >= 0:
        return str(task_id)
    tid = check_str(task_id, field)
    assert tid is not None
    if tid != tid.strip() or any(c.isspace() for c in tid):
        raise ValidationError(f"{field} must not contain spaces, got {tid!r}", field=field, limit="no spaces")
    return tid


def check_params(req_key: str, params: Mapping[str, Any]) -> None:
    """The capability's parameter names must be identifiers (``**{"": 1}`` and the like are refused)."""
    for name in params:
        if not isinstance(name, str) or not name:
            raise ValidationError(f"{req_key}: parameter names must be non-empty strings, got {name!r}",
                                  field=str(name), limit="parameter name")


def prepare_submit(req_key: str, image: Any, params: Mapping[str, Any]
                   ) -> tuple[dict[str, Any], list[Image.Image | None]]:
    """``(body, decoded input pictures)`` for a submit of ``req_key``; raises before anything is sent.

    ``auto_resize`` among ``params`` is volcnb's own option (never sent): downsize oversized local pictures.
    """
    key = check_req_key(req_key)
    params = dict(params)
    auto_resize = bool(check_bool(params.pop("auto_resize", None), "auto_resize"))
    check_params(key, params)
    body = {k: v for k, v in params.items() if v is not None}
    originals: list[Image.Image | None] = []
    if image is not None:
        enc = encode_images(image, auto_resize=auto_resize)
        body.update(enc.params())
        originals = list(enc.originals)
    cap = get_capability(key)
    if cap is None:
        return body, originals
    for issue in cap.check(body, image_count(body)):
        message = issue.message if issue.message.startswith(key) else f"{key}: {issue.message}"
        if issue.severity == "error":
            raise ValidationError(message, field=issue.field, limit=issue.limit)
        warn_user(message)
    return body, originals
