"""The simulator's vocabulary: keys, quotas, faults, counters, error replies, the request it is handed."""

from __future__ import annotations

import math
import random
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from ..protocol import wire

DEFAULT_ACCESS_KEY = "AKSIMvolcnbLOCAL"
DEFAULT_SECRET_KEY = "volcnb-simulator-secret"  # noqa: S105 - a public, documented test key
MAX_BODY = 20 * 1024 * 1024

#: HTTP status of each business code (as the documents print them; 50400 → 401 is inferred).
HTTP_STATUS = {10000: 200, 50429: 429, 50430: 429, 50500: 500, 50501: 500, 50400: 401, 50402: 404}
MESSAGES = {
    50200: "Request Invalid Args", 50201: "Request Missing Args", 50204: "Parse Args Error",
    50205: "Image Size Limited", 50206: "Image Empty", 50207: "Image Decode Error", 50213: "Request Body Size Limited",
    50429: "Request Has Reached API Limit, Please Try Later",
    50430: "Request Has Reached API Concurrent Limit, Please Try Later",
    50500: "Internal Error", 50501: "Internal RPC Error",
}


@dataclass
class ServiceTime:
    """Service-time distribution of a req_key: log-normal with this median and sigma."""

    median: float
    sigma: float = 0.3

    def sample(self, rng: random.Random) -> float:
        """One draw."""
        if self.sigma <= 0:
            return self.median
        return self.median * math.exp(rng.gauss(0.0, self.sigma))


@dataclass
class Quotas:
    """Per-access-key limits (inferred; the real quotas are per account and not published)."""

    submit_qps: float = 20.0
    max_unfinished: int = 200
    get_result_qps: float = 200.0


@dataclass
class Faults:
    """Fault injection: per-request probabilities, plus scripted sequences per action.

    Kinds: ``http_500`` (a non-JSON 500 from a "proxy", the request not processed), ``code_50500``
    (a JSON 50500 reply), ``drop`` (connection dropped before processing), ``drop_after`` (processed,
    then the connection is dropped before the reply completes), ``slow`` (reply delayed by
    ``slow_seconds``), ``malformed`` (a 200 whose body is not JSON), ``lost`` (GetResult: the task is
    forgotten and answers ``not_found`` from then on).
    """

    http_500: float = 0.0
    code_50500: float = 0.0
    drop: float = 0.0
    drop_after: float = 0.0
    slow: float = 0.0
    slow_seconds: float = 5.0
    malformed: float = 0.0
    lost: float = 0.0
    actions: frozenset[str] | None = None
    """Limit random faults to these actions (``None`` = all)."""
    script: dict[str, deque[str]] = field(default_factory=lambda: defaultdict(deque))
    """Scripted faults: ``script[action]`` is consumed one per request of that action ("ok" = none)."""

    KINDS = ("http_500", "code_50500", "drop", "drop_after", "slow", "malformed", "lost")

    def plan(self, action: str, *kinds: str) -> None:
        """Queue faults for the next requests of ``action`` (e.g. ``plan("CVSync2AsyncGetResult", "http_500")``)."""
        for k in kinds:
            if k != "ok" and k not in self.KINDS:
                raise ValueError(f"unknown fault {k!r}; one of {self.KINDS}")
        self.script[action].extend(kinds)

    def pick(self, action: str, rng: random.Random) -> str | None:
        """The fault for this request, if any."""
        queue = self.script.get(action)
        if queue:
            kind = queue.popleft()
            return None if kind == "ok" else kind
        if self.actions is not None and action not in self.actions:
            return None
        for kind in self.KINDS:
            rate = getattr(self, kind)
            if rate and rng.random() < rate:
                return kind
        return None


@dataclass
class Counters:
    """What the simulator saw (tests and benchmarks read these)."""

    submits: int = 0
    accepted: int = 0
    duplicates: int = 0
    polls: int = 0
    cancels: int = 0
    uploads: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    faults: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        # Not dataclasses.asdict: it cannot rebuild a defaultdict (TypeError on Python < 3.12).
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = dict(value) if isinstance(value, dict) else value
        return out


class Reject(Exception):  # noqa: N818 - internal control flow, never escapes the simulator
    """An error reply: a business code (service envelope) or a gateway error (ResponseMetadata)."""

    def __init__(self, code: int | str, message: str | None = None, *, http: int | None = None) -> None:
        self.code = code
        self.message = message or (MESSAGES.get(code, "Error") if isinstance(code, int) else str(code))
        self.http = http or (HTTP_STATUS.get(code, 400) if isinstance(code, int) else 400)
        super().__init__(self.message)


class Bucket:
    """A token bucket (rate limit)."""

    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        self.rate, self.clock = rate, clock
        self.tokens, self.stamp = max(rate, 1.0), clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(max(self.rate, 1.0), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass(frozen=True)
class Incoming:
    """The parts of an HTTP request the engine needs (the app fills it; no Starlette types here)."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: list[tuple[str, str]]
    body: bytes
    base_url: str
    body_sha256: str | None = None
    """The body's hash when it was streamed rather than kept (``body`` is then empty)."""


def envelope_error(code: int | str, message: str, request_id: str, action: str, version: str, service: str,
                   time_elapsed: str = "0ms") -> dict[str, Any]:
    """A reply body for an error: gateway ``ResponseMetadata`` for string codes, the service envelope for ints."""
    if isinstance(code, str):
        return {"ResponseMetadata": {"RequestId": request_id, "Action": action, "Version": version,
                                     "Service": service, "Region": wire.REGION,
                                     "Error": {"CodeN": _CODEN.get(code, 100000), "Code": code, "Message": message}}}
    return {"code": code, "data": None, "message": message, "request_id": request_id, "status": code,
            "time_elapsed": time_elapsed}


#: Numeric gateway codes as seen in third-party captures (inferred for the rest).
_CODEN = {"SignatureDoesNotMatch": 100010, "InvalidAccessKey": 100009, "MissingAuthenticationToken": 100001,
          "InvalidAuthorization": 100002, "InvalidTimestamp": 100005, "InvalidActionOrVersion": 100008,
          "MissingParameter": 100003, "InvalidParameter": 100004}


def request_id(now: float) -> str:
    """A request id in the documented shape: 34 characters, a 14-digit local timestamp and 20 upper-case hex
    digits (every example in the 同步转异步 and 人像保持 documents, e.g. ``2024092411365866C579D2A96A35DA62A9``)."""
    return time.strftime("%Y%m%d%H%M%S", time.localtime(now)) + secrets.token_hex(10).upper()


def elapsed(start: float) -> str:
    """``time_elapsed`` since ``start`` (``time.perf_counter()``), in the documents' ``23.099216ms`` form."""
    return f"{(time.perf_counter() - start) * 1000:.6f}ms"
