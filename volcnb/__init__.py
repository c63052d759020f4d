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

from . import _logging, callbacks, gateway
from ._backend import Backend, backend
from ._exceptions import (
    APIError,
    ArgumentTypeError,
    AuthError,
    ConcurrencyLimitError,
    ContentRiskError,
    FetchOptionsError,
    InvalidArgumentError,
    PossiblyCreatedError,
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
    VolcnbWarning,
)
from ._many import map, resume, status, sweep
from ._verbs import Client, Run, get_default_client, run, set_default_client, submit, use_simulator
from .gateway import GatewayClient, GatewayError, GatewayTask
from .http.auth import VolcAuth
from .http.iva import IvaUploads
from .http.pacing import Pacer
from .protocol.catalog import CAPABILITIES, Capability, Param, get_capability
from .protocol.options import AigcMeta, LogoInfo
from .protocol.retry import RetryPolicy
from .protocol.signing import Credentials
from .results import Result, SegmentationResult
from .tasks import AdaptivePoller, BackoffPoller, FixedPoller, Task
from .tasks.batch import Batch, BatchItem
from .tasks.journal import Journal
from .tasks.pollmodels import ModelStore
from .tasks.upload import Upload, Uploads

__version__ = "0.1.0"

_logging.configure_from_environment()

__all__ = [
    "AdaptivePoller",
    "AigcMeta",
    "APIError",
    "ArgumentTypeError",
    "AuthError",
    "Backend",
    "backend",
    "BackoffPoller",
    "Batch",
    "BatchItem",
    "BatchView",
    "callbacks",
    "CAPABILITIES",
    "Capability",
    "Client",
    "compare",
    "compare_watermarks",
    "compare_watermarks_async",
    "ConcurrencyLimitError",
    "ContentRiskError",
    "Credentials",
    "FetchOptionsError",
    "FixedPoller",
    "gateway",
    "GatewayClient",
    "GatewayError",
    "GatewayTask",
    "get_capability",
    "get_default_client",
    "InvalidArgumentError",
    "IvaUploads",
    "Journal",
    "LogoInfo",
    "map",
    "ModelStore",
    "overlay_contours",
    "overlay_contours_image",
    "Pacer",
    "Param",
    "PossiblyCreatedError",
    "ProtocolError",
    "RateLimitError",
    "RequestTimeoutError",
    "Result",
    "resume",
    "RetryPolicy",
    "run",
    "Run",
    "SegmentationResult",
    "ServerError",
    "set_default_client",
    "show_mask",
    "show_segmentation",
    "SignatureError",
    "status",
    "submit",
    "SubmitTimeoutError",
    "SubmitUncertainError",
    "sweep",
    "Task",
    "TaskCancelledError",
    "TaskExpiredError",
    "TaskNotFoundError",
    "TaskTimeoutError",
    "TaskView",
    "TransportError",
    "Upload",
    "Uploads",
    "use_simulator",
    "ValidationError",
    "VolcAuth",
    "VolcError",
    "VolcnbWarning",
]

#: Names that pull in matplotlib / ipywidgets, imported on first use to keep ``import volcnb`` fast.
_LAZY = {
    "overlay_contours": "display.viz",
    "overlay_contours_image": "display.viz",
    "show_mask": "display.viz",
    "show_segmentation": "display.viz",
    "compare_watermarks": "display.compare",
    "compare_watermarks_async": "display.compare",
    "compare": "display.compare",
    "TaskView": "display.widgets",
    "BatchView": "display.widgets",
}

if TYPE_CHECKING:
    from .display.compare import compare, compare_watermarks, compare_watermarks_async
    from .display.viz import overlay_contours, overlay_contours_image, show_mask, show_segmentation
    from .display.widgets import BatchView, TaskView


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'volcnb' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
