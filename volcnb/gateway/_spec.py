"""The 即梦AI异步接口 document's request: validation, and how a request maps onto the Jimeng t2i req_keys.

Decisions (see the README's gateway section): ``model`` → req_key by :data:`MODELS`; a ``size`` below the
t2i keys' 512 px minimum is generated at 512 and downscaled; ``n`` images are ``n`` upstream tasks (the t2i
keys return one image each); ``style`` is appended to the prompt in words, and that prompt as sent upstream
is the ``revised_prompt``; ``quality`` only prices the task (``cost`` = price[quality] × n, configurable).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["MODELS", "QUALITIES", "SIZES", "STYLES", "Limits", "RequestError", "upstream_prompt", "upstream_size",
           "validate"]

MODELS = {"doubao-seedream-3.0-t2i": "jimeng_t2i_v30", "doubao-seedream-3.1-t2i": "jimeng_t2i_v31"}
SIZES = ("256x256", "512x512", "1024x1024", "1024x1792", "1792x1024")
QUALITIES = ("standard", "hd")
STYLES = {"natural": "自然写实风格", "anime": "动漫风格", "cyberpunk": "赛博朋克风格", "realistic": "超写实摄影风格"}
UPSTREAM_MIN = 512
MAX_PROMPT = 780  # the t2i keys take 800; room for the style words
MAX_USER_ID = 128


@dataclass
class Limits:
    """The gateway's limits and prices (the document's: 10 unfinished per user, 4 images, 5 minutes)."""

    per_user: int = 10
    max_n: int = 4
    task_timeout: float = 300.0
    lease: float = 15.0  # seconds a claim on a task lasts unrenewed: a dead gateway's tasks are free after it
    prices: dict[str, float] = field(default_factory=lambda: {"standard": 0.02, "hd": 0.04})


class RequestError(ValueError):
    """A refused request: ``message`` names the field and the limit."""


def _required(name: str) -> RequestError:
    field_ = name[0].upper() + name[1:].replace("_id", "ID")
    return RequestError(f"Key: 'VolcengineImageRequest.{field_}' Error:Field validation for '{field_}' failed "
                        "on the 'required' tag")


def _text(body: dict[str, Any], name: str, limit: int) -> str:
    value = body.get(name)
    if value is None or value == "":
        raise _required(name)
    if not isinstance(value, str):
        raise RequestError(f"{name} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise _required(name)
    if len(value) > limit:
        raise RequestError(f"{name} is {len(value)} characters; at most {limit}")
    return value


def _choice(body: dict[str, Any], name: str, choices: Any, default: str | None) -> str | None:
    value = body.get(name, default)
    if value is None or (value == "" and default is None):
        return default
    if not isinstance(value, str) or value not in choices:
        raise RequestError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def validate(body: Any, limits: Limits) -> dict[str, Any]:
    """The normalised request, or :class:`RequestError` naming the field."""
    if not isinstance(body, dict):
        raise RequestError("the body must be a JSON object")
    params: dict[str, Any] = {"prompt": _text(body, "prompt", MAX_PROMPT),
                              "user_id": _text(body, "user_id", MAX_USER_ID)}
    params["model"] = _choice(body, "model", tuple(MODELS), "doubao-seedream-3.0-t2i")
    params["size"] = _choice(body, "size", SIZES, "1024x1024")
    params["quality"] = _choice(body, "quality", QUALITIES, "standard")
    params["style"] = _choice(body, "style", tuple(STYLES), None)
    n = body.get("n", 1)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= limits.max_n:
        raise RequestError(f"n must be an integer from 1 to {limits.max_n}; got {n!r}")
    params["n"] = n
    options = body.get("options", {})
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise RequestError(f"options must be an object, got {type(options).__name__}")
    seed = options.get("seed", -1)
    if isinstance(seed, bool) or not isinstance(seed, int) or not -1 <= seed < 2**32:
        raise RequestError(f"options.seed must be an integer from -1 to {2**32 - 1}; got {seed!r}")
    params["options"] = options
    return params


def upstream_prompt(params: dict[str, Any]) -> str:
    """The prompt as sent upstream (the ``revised_prompt``): the user's, plus the style in words."""
    style = params.get("style")
    return f"{params['prompt']}，{STYLES[style]}" if style else str(params["prompt"])


def upstream_size(size: str) -> tuple[int, int, int, int]:
    """``(width, height)`` generated upstream and ``(width, height)`` served (downscaled when smaller)."""
    w, h = (int(v) for v in size.split("x"))
    scale = max(1.0, UPSTREAM_MIN / min(w, h))
    return round(w * scale), round(h * scale), w, h
