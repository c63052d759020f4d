"""volcnb: Volcengine's visual-AI asynchronous APIs, pleasant from Jupyter.

Usage::

    import volcnb
    res = await volcnb.run("saliency_seg", "cat.jpg")   # a live progress view, then the images inline
    res.overlay()                                      # segmentation contours drawn over the input

With no ``VOLC_ACCESSKEY``/``VOLC_SECRETKEY`` the embedded simulator answers (and says so).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._auth import Credentials, VolcAuth
from ._backend import get_default_client, set_default_client, use_simulator
from ._catalog import CAPABILITIES, Capability, Param, get_capability
from ._client import IVA, Client, SyncClient
from ._exceptions import (
    APIError,
    AuthError,
    ConcurrencyLimitError,
    ContentRiskError,
    InvalidArgumentError,
    ProtocolError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    SignatureError,
    SubmitTimeoutError,
    SubmitUncertainError,
    TaskCancelledError,
    TaskExpiredError,
    TaskNotFoundError,
    TaskTimeoutError,
    TransportError,
    ValidationError,
    VolcError,
)
from ._polling import AdaptivePoller, BackoffPoller, FixedPoller
from ._retry import RetryPolicy
from ._tasks import Task, VolcnbWarning, run, submit
from ._wire import AigcMeta, LogoInfo

__version__ = "0.1.0"

__all__ = [
    "AdaptivePoller",
    "AigcMeta",
    "APIError",
    "AuthError",
    "BackoffPoller",
    "BatchView",
    "CAPABILITIES",
    "Capability",
    "Client",
    "compare",
    "compare_watermarks",
    "ConcurrencyLimitError",
    "ContentRiskError",
    "Credentials",
    "FixedPoller",
    "get_capability",
    "get_default_client",
    "InvalidArgumentError",
    "IVA",
    "LogoInfo",
    "overlay_contours",
    "overlay_contours_image",
    "Param",
    "ProtocolError",
    "RateLimitError",
    "RequestTimeoutError",
    "RetryPolicy",
    "run",
    "ServerError",
    "set_default_client",
    "show_mask",
    "show_segmentation",
    "SignatureError",
    "submit",
    "SubmitTimeoutError",
    "SubmitUncertainError",
    "SyncClient",
    "Task",
    "TaskCancelledError",
    "TaskExpiredError",
    "TaskNotFoundError",
    "TaskTimeoutError",
    "TaskView",
    "TransportError",
    "use_simulator",
    "ValidationError",
    "VolcAuth",
    "VolcError",
    "VolcnbWarning",
]

#: Names that pull in matplotlib / ipywidgets, imported on first use to keep ``import volcnb`` fast.
_LAZY = {
    "overlay_contours": "viz",
    "overlay_contours_image": "viz",
    "show_mask": "viz",
    "show_segmentation": "viz",
    "compare_watermarks": "viz",
    "compare": "viz",
    "TaskView": "widgets",
    "BatchView": "widgets",
}

if TYPE_CHECKING:
    from .viz import (
        compare,
        compare_watermarks,
        overlay_contours,
        overlay_contours_image,
        show_mask,
        show_segmentation,
    )
    from .widgets import BatchView, TaskView


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'volcnb' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
