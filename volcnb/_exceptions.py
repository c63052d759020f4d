"""The volcnb error tree.

::

    VolcError                        code, message, request_id, task_id, status_code, retryable, resubmittable
    ├── APIError                     the service answered with an error envelope (business code or gateway error)
    │   ├── AuthError                50400 / 50402 / gateway auth errors (InvalidAccessKey, AccessDenied…)
    │   │   └── SignatureError       SignatureDoesNotMatch, stale X-Date (InvalidTimestamp…)
    │   ├── InvalidArgumentError     502xx input errors, 60102 no face…
    │   │   └── FetchOptionsError    GetResult refused the fetch options (logo_info…) of a task: nothing lost
    │   ├── ContentRiskError         504xx/505xx moderation (post 50511/50516/50517/50519: resubmittable)
    │   ├── RateLimitError           50429 submits per second (retryable)
    │   │   └── ConcurrencyLimitError  50430 unfinished-task limit (retryable)
    │   ├── ServerError              50500 / 50501 (retryable)
    │   ├── TaskNotFoundError        data.status == "not_found" (no such task, or older than 12 h)
    │   │   └── TaskExpiredError     data.status == "expired"
    │   └── TaskCancelledError       the task was cancelled (CVCancelTask)
    ├── ProtocolError                a non-JSON or malformed reply (keeps the HTTP status and a short snippet)
    ├── TransportError               the request did not complete (connection refused, reset, timed out)
    │   ├── RequestTimeoutError      … and it was a timeout (also a builtin ``TimeoutError``)
    │   └── SubmitUncertainError     a submit failed after it was sent: the task MAY exist (never retried)
    │       └── SubmitTimeoutError   … by a read timeout (also ``TimeoutError``)
    ├── TaskTimeoutError             a wait's deadline passed (also ``TimeoutError``); the task keeps running
    └── ValidationError              bad input caught before any request (also ``ValueError``); names field and limit
        └── ArgumentTypeError        … because it has the wrong type (also ``TypeError``)

Two different "try again"s: ``retryable`` means the same request may succeed if sent again (the client
does so itself wherever that cannot pay twice); ``resubmittable`` means submitting the task anew may
succeed (post-generation moderation, an expired task): the user's call, never automatic.

Every error carries the task id when one is known, so a user can re-attach with ``Task.attach``.
Messages are readable UTF-8 text, never a ``b'...'`` repr, and never contain a secret.
"""

from __future__ import annotations

import sys
import warnings
from typing import ClassVar

__all__ = [
    "APIError",
    "ArgumentTypeError",
    "AuthError",
    "ConcurrencyLimitError",
    "ContentRiskError",
    "FetchOptionsError",
    "InvalidArgumentError",
    "PossiblyCreatedError",
    "ProtocolError",
    "RateLimitError",
    "RequestTimeoutError",
    "ServerError",
    "SignatureError",
    "SubmitTimeoutError",
    "SubmitUncertainError",
    "TaskCancelledError",
    "TaskExpiredError",
    "TaskNotFoundError",
    "TaskTimeoutError",
    "TransportError",
    "ValidationError",
    "VolcError",
    "VolcnbWarning",
]


class VolcnbWarning(UserWarning):
    """A doubtful request that is still sent (unknown req_key, a documents' contradiction, a misplaced option)."""


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning issued by the caller point at the first frame outside volcnb
    (the user's line), however deep inside the package the caller sits."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and _in_volcnb(frame.f_globals.get("__name__", "")):
        back = frame.f_back
        if back is None:
            break
        frame = back
        level += 1
    return level


def _in_volcnb(module: object) -> bool:
    return isinstance(module, str) and (module == "volcnb" or module.startswith("volcnb."))


def warn_user(message: str, category: type[Warning] = VolcnbWarning) -> None:
    """``warnings.warn`` pointing at the user's line (the first frame outside volcnb)."""
    warnings.warn(message, category, stacklevel=user_stacklevel())


class VolcError(Exception):
    """Base of every volcnb error.

    Attributes mirror what the service said: ``code`` (int business code, or the gateway's string code
    such as ``"SignatureDoesNotMatch"``), ``message``, ``request_id``, ``task_id``, ``status_code`` (HTTP),
    ``retryable`` (sending the same request again later can succeed), ``resubmittable`` (submitting the
    task anew can succeed) and ``task_failed`` (the task itself ended with this error: asking again will
    not change it).
    """

    default_retryable: ClassVar[bool] = False
    default_resubmittable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        code: int | str | None = None,
        request_id: str | None = None,
        task_id: str | None = None,
        status_code: int | None = None,
        retryable: bool | None = None,
        resubmittable: bool | None = None,
        req_key: str | None = None,
        task_failed: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.request_id = request_id
        self.task_id = task_id
        self.status_code = status_code
        self.req_key = req_key
        self.retryable = self.default_retryable if retryable is None else retryable
        self.resubmittable = self.default_resubmittable if resubmittable is None else resubmittable
        self.task_failed = task_failed
        self.retry_after: float | None = None
        """The server's ``Retry-After`` (seconds), when the reply carried one."""

    def __str__(self) -> str:
        parts = [self.message]
        extra = []
        if self.code is not None:
            extra.append(f"code={self.code}")
        if self.status_code is not None:
            extra.append(f"http={self.status_code}")
        if self.task_id:
            extra.append(f"task_id={self.task_id}")
        if self.request_id:
            extra.append(f"request_id={self.request_id}")
        if extra:
            parts.append("(" + ", ".join(extra) + ")")
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code!r}, task_id={self.task_id!r})"

    def __reduce__(self) -> tuple[object, ...]:
        # Keep attributes across pickling (multiprocessing, notebook caches).
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


def _rebuild(cls: type[VolcError], message: str, state: dict[str, object]) -> VolcError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class APIError(VolcError):
    """The service answered with an error: a non-10000 business code or a gateway ``ResponseMetadata.Error``."""


class AuthError(APIError):
    """Authentication or permission failure (50400 ``Access Denied``, unknown access key, no entitlement)."""


class SignatureError(AuthError):
    """The request signature was rejected (``SignatureDoesNotMatch``, a stale or malformed ``X-Date``)."""


class InvalidArgumentError(APIError):
    """The service rejected a parameter or input (502xx, 60102 no face detected, …)."""


class FetchOptionsError(InvalidArgumentError):
    """GetResult refused the fetch options (``logo_info``, ``aigc_meta``, ``return_url``) of a task.

    The task itself is untouched (and paid for): ``task_id`` is kept, the handle keeps the last status the
    service reported (never ``failed``), and ``await task.fetch(...)`` with other options fetches it again.
    ``options`` are the refused options (wire form); ``status`` what the service last said about the task.
    """

    def __init__(self, message: str, *, options: dict[str, object] | None = None, status: str | None = None,
                 **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.options = dict(options or {})
        self.status = status


class ContentRiskError(APIError):
    """Content moderation refused the input or the output (50411–50413, 50511–50522).

    Post-generation refusals (50511, 50516, 50517, 50519) are ``resubmittable``: submitting again (ideally
    with another seed) can pass. Input refusals are not.
    """


class RateLimitError(APIError):
    """50429: too many requests per second for this access key. Retry after a pause."""

    default_retryable = True
    default_resubmittable = True


class ConcurrencyLimitError(RateLimitError):
    """50430: too many unfinished tasks for this access key. Retry once some finish."""


class ServerError(APIError):
    """50500 / 50501: an internal error of the service. Usually transient."""

    default_retryable = True
    default_resubmittable = True


class TaskNotFoundError(APIError):
    """GetResult said ``not_found``: no such task for this req_key, or it is older than the 12 h validity."""


class TaskExpiredError(TaskNotFoundError):
    """GetResult said ``expired``: the task is too old to fetch; submit again."""

    default_resubmittable = True


class TaskCancelledError(APIError):
    """The task was cancelled (by :meth:`Task.cancel` or ``CVCancelTask``)."""


class ProtocolError(VolcError):
    """The reply was not the JSON envelope the API documents (keeps the HTTP status and a snippet)."""

    def __init__(self, message: str, *, snippet: str = "", **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.snippet = snippet


class TransportError(VolcError):
    """The HTTP exchange failed (connection refused or reset, DNS, timeout).

    ``sent`` is False when the request provably never reached the server (refused connection, connect
    timeout): then even a submit can be sent again.
    """

    default_retryable = True

    def __init__(self, message: str, *, sent: bool = True, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.sent = sent


class RequestTimeoutError(TransportError, TimeoutError):
    """An HTTP request timed out (connect or read)."""


class SubmitUncertainError(TransportError):
    """A submit failed after its body was sent: the task may exist on the server.

    It is never retried automatically (the API has no idempotency key, so a retry could pay twice).
    Check your console or wait and re-submit deliberately.
    """

    default_retryable = False


class SubmitTimeoutError(SubmitUncertainError, TimeoutError):
    """A submit timed out after it was sent (the task MAY exist); also a builtin ``TimeoutError``."""


class PossiblyCreatedError(SubmitUncertainError):
    """The submit was sent but no answer came back (or the process died first): the task MAY exist.

    volcnb never resubmits it on its own (the API has no idempotency key, so that could pay twice):
    check the console, then ``batch.retry_failed()`` or ``volcnb.map(..., fresh=True)`` to submit again.
    """


class TaskTimeoutError(VolcError, TimeoutError):
    """A wait's deadline passed before the task finished; the task itself keeps running."""


class ValidationError(VolcError, ValueError):
    """Bad input caught before any request was sent. ``field`` names the parameter, ``limit`` the rule."""

    def __init__(self, message: str, *, field: str, limit: str | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.field = field
        self.limit = limit


class ArgumentTypeError(ValidationError, TypeError):
    """An argument of the wrong type (``name=123``, ``client="x"``); also a builtin ``TypeError``."""


# --- the code table -----------------------------------------------------------------------------

#: Post-generation moderation codes: the docs mark them "可重试" (submitting again may pass).
POST_RISK_RESUBMITTABLE = frozenset({50511, 50516, 50517, 50519})
RISK_CODES = frozenset({50411, 50412, 50413, 50511, 50512, 50513, 50514, 50516, 50517, 50518, 50519, 50520, 50521, 50522})
#: Codes that mean "not admitted, nothing was created": the client re-sends even a submit after them.
NOT_ADMITTED = frozenset({50429, 50430, 50500, 50501})

#: Names of the common business codes for messages.
CODE_NAMES: dict[int, str] = {
    50200: "ECReqInvalidArgs",
    50201: "ECReqMissingArgs",
    50204: "ECParseArgs",
    50205: "ECImageSizeLimited",
    50206: "ECImageEmpty",
    50207: "ECImageDecodeError",
    50209: "ECVideoEmpty",
    50210: "ECVideoDecodeError",
    50211: "ECVideoSizeLimited",
    50213: "ECReqBodySizeLimited",
    50214: "ECVideoTimeTooLong",
    50215: "ECRPCProcess",
    50400: "ECAuth",
    50402: "ECReqMethod",
    50429: "ECReqLimit",
    50430: "ECReqConcurrentLimit",
    50500: "ECInternal",
    50501: "ECRPCInternal",
    60102: "ECJPFaceDetect",
}

#: Gateway (``ResponseMetadata.Error.Code``) string codes that are about the signature.
SIGNATURE_CODES = frozenset(
    {"SignatureDoesNotMatch", "InvalidTimestamp", "RequestExpired", "InvalidAuthorization", "MissingAuthenticationToken",
     "InvalidSecurityToken"}
)


def error_class_for_code(code: int | str) -> type[APIError]:
    """Map a business code (int) or gateway code (str) to its error class."""
    if isinstance(code, str):
        if code in SIGNATURE_CODES or "Signature" in code:
            return SignatureError
        if code.startswith(("InvalidAccessKey", "AccessDenied", "Unauthorized", "Forbidden", "InvalidCredential")):
            return AuthError
        if code in ("FlowLimitExceeded", "RequestLimitExceeded", "Throttling"):
            return RateLimitError
        if code.startswith(("InvalidParameter", "MissingParameter", "InvalidAction", "InvalidVersion")):
            return InvalidArgumentError
        if code in ("InternalError", "ServiceUnavailable", "InternalServiceError"):
            return ServerError
        return APIError
    if code in RISK_CODES:
        return ContentRiskError
    if code == 50429:
        return RateLimitError
    if code == 50430:
        return ConcurrencyLimitError
    if code in (50500, 50501):
        return ServerError
    if code in (50400, 50401, 50402, 50403):
        return AuthError
    if 50200 <= code < 50300 or code == 60102:
        return InvalidArgumentError
    return APIError


def make_api_error(
    code: int | str,
    message: str,
    *,
    request_id: str | None = None,
    task_id: str | None = None,
    status_code: int | None = None,
    req_key: str | None = None,
) -> APIError:
    """Build the right :class:`APIError` subclass for a code, with ``retryable`` set from the docs."""
    cls = error_class_for_code(code)
    resubmittable: bool | None = None
    if cls is ContentRiskError:
        resubmittable = code in POST_RISK_RESUBMITTABLE
    if isinstance(code, int) and code in CODE_NAMES and CODE_NAMES[code] not in message:
        message = f"{message} [{CODE_NAMES[code]}]" if message else CODE_NAMES[code]
    return cls(
        message or "error",
        code=code,
        request_id=request_id,
        task_id=task_id,
        status_code=status_code,
        resubmittable=resubmittable,
        req_key=req_key,
    )
