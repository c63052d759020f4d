"""volcnb: Volcengine's visual-AI asynchronous APIs, pleasant from Jupyter.

Usage::

    import volcnb
    res = await volcnb.run("saliency_seg", "cat.jpg")   # a live progress view, then the images inline
    res.overlay()                                      # segmentation contours drawn over the input

With no ``VOLC_ACCESSKEY``/``VOLC_SECRETKEY`` the embedded simulator answers (and says so).
"""

from __future__ import annotations

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
    SubmitUncertainError,
    TaskCancelledError,
    TaskExpiredError,
    TaskNotFoundError,
    TaskTimeoutError,
    TransportError,
    ValidationError,
    VolcError,
)
from ._polling import BackoffPoller, FixedPoller
from ._retry import RetryPolicy
from ._tasks import Task, VolcnbWarning, run, submit
from ._wire import AigcMeta, LogoInfo

__version__ = "0.1.0"

__all__ = [
    "APIError",
    "AigcMeta",
    "AuthError",
    "BackoffPoller",
    "CAPABILITIES",
    "Capability",
    "Client",
    "ConcurrencyLimitError",
    "ContentRiskError",
    "Credentials",
    "FixedPoller",
    "get_capability",
    "get_default_client",
    "InvalidArgumentError",
    "IVA",
    "LogoInfo",
    "Param",
    "ProtocolError",
    "RateLimitError",
    "RequestTimeoutError",
    "RetryPolicy",
    "run",
    "ServerError",
    "set_default_client",
    "SignatureError",
    "submit",
    "SubmitUncertainError",
    "SyncClient",
    "Task",
    "TaskCancelledError",
    "TaskExpiredError",
    "TaskNotFoundError",
    "TaskTimeoutError",
    "TransportError",
    "use_simulator",
    "ValidationError",
    "VolcAuth",
    "VolcError",
    "VolcnbWarning",
]
