"""``httpx.Auth`` that signs every request with Volcengine V4 over the exact body bytes."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator

import httpx

from ..protocol.signing import Credentials, format_xdate, sign

__all__ = ["VolcAuth"]


class VolcAuth(httpx.Auth):
    """``httpx.Auth`` that signs each request with Volcengine V4 over the exact body bytes.

    ``clock`` returns a POSIX timestamp; tests pin it to reproduce the reference vectors. ``body_sha256``
    signs a streamed body by its precomputed hash, so the body is never loaded to be signed (httpx reads a
    request's whole body for an auth that asks for it).
    """

    requires_request_body = True

    def __init__(
        self,
        credentials: Credentials,
        *,
        region: str = "cn-north-1",
        service: str = "cv",
        clock: Callable[[], float] = time.time,
        body_sha256: str | None = None,
    ) -> None:
        self.credentials = credentials
        self.body_sha256 = body_sha256
        self.requires_request_body = body_sha256 is None
        self.region = region
        self.service = service
        self._clock = clock

    def __repr__(self) -> str:
        return f"VolcAuth({self.credentials!r}, region={self.region!r}, service={self.service!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Sign ``request`` in place and send it once."""
        # Drop any stale signature (e.g. a retried request object) before computing a new one.
        for name in ("Authorization", "X-Date", "X-Content-Sha256", "X-Security-Token"):
            request.headers.pop(name, None)
        added = sign(
            method=request.method,
            path=request.url.path,
            query=request.url.params.multi_items(),
            headers=request.headers.multi_items(),
            body=b"" if self.body_sha256 else request.content,
            credentials=self.credentials,
            region=self.region,
            service=self.service,
            xdate=format_xdate(self._clock()),
            body_sha256=self.body_sha256,
        )
        request.headers.update(added)
        yield request
