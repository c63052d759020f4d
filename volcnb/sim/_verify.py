"""Verifying Volcengine V4 signatures with the client's own signing functions (they cannot drift apart)."""

from __future__ import annotations

import calendar
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..protocol import wire
from ..protocol.signing import canonical_request, parse_authorization, signable_headers, signature
from ._model import Incoming, Reject

__all__ = ["Claim", "check_body", "check_headers", "verify_signature"]


@dataclass(frozen=True)
class Claim:
    """What the ``Authorization`` header claims, checked against everything but the body."""

    access_key: str
    secret: str
    xdate: str
    region: str
    service: str
    names: tuple[str, ...]
    signature: str


def check_headers(headers: Sequence[tuple[str, str]], service: str, keys: Mapping[str, str], now: float,
                  max_skew: float) -> Claim:
    """The signature's claim, checked from the headers alone (before a large body is read)."""
    lower = {k.lower(): v for k, v in headers}
    auth = lower.get("authorization")
    if not auth:
        raise Reject("MissingAuthenticationToken", "Request is missing Authentication Token", http=401)
    parsed = parse_authorization(auth)
    if parsed is None:
        raise Reject("InvalidAuthorization", "Authorization header is malformed", http=401)
    ak, scope, names, sig = parsed
    secret = keys.get(ak)
    if secret is None:
        raise Reject("InvalidAccessKey", f"The access key {ak!r} is not valid", http=401)
    xdate = lower.get("x-date", "")
    try:
        stamp = calendar.timegm(time.strptime(xdate, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        raise Reject("InvalidTimestamp", f"X-Date {xdate!r} is not YYYYMMDDTHHMMSSZ", http=401) from None
    if abs(now - stamp) > max_skew:
        raise Reject("SignatureDoesNotMatch",
                     f"The request has expired: X-Date {xdate} differs from the server time by more than "
                     f"{int(max_skew)} s", http=401)
    date, _, rest = scope.partition("/")
    parts = rest.split("/")
    if date != xdate[:8] or len(parts) != 3 or parts[2] != "request":
        raise Reject("SignatureDoesNotMatch", f"credential scope {scope!r} does not match X-Date", http=401)
    region, svc = parts[0], parts[1]
    if svc != service:
        raise Reject("SignatureDoesNotMatch",
                     f"credential scope service is {svc!r}, this endpoint is service {service!r}", http=401)
    if region != wire.REGION:
        raise Reject("SignatureDoesNotMatch",
                     f"credential scope region is {region!r}, this endpoint is region {wire.REGION!r}", http=401)
    return Claim(ak, secret, xdate, region, svc, tuple(names), sig)


def check_body(claim: Claim, req: Incoming) -> str:
    """Finish :func:`check_headers`: the body hash and the signature over the exact body; the access key."""
    headers = {k.lower(): v for k, v in req.headers}
    body_hash = req.body_sha256 or hashlib.sha256(req.body).hexdigest()
    if headers.get("x-content-sha256", body_hash) != body_hash:
        raise Reject("SignatureDoesNotMatch", "X-Content-Sha256 does not match the body", http=401)
    available = signable_headers(req.headers)
    names = claim.names
    if any(n not in available for n in names) or "host" not in names or "x-date" not in names:
        raise Reject("SignatureDoesNotMatch", "SignedHeaders must include host and x-date and only sent headers",
                     http=401)
    signed = {n: available[n] for n in names}
    canonical, _ = canonical_request(req.method, req.path, req.query, signed, body_hash)
    expected = signature(claim.secret, claim.xdate, claim.region, claim.service, canonical)
    if not hmac.compare_digest(expected, claim.signature):
        raise Reject("SignatureDoesNotMatch",
                     "The request signature we calculated does not match the signature you provided. "
                     "Check your Secret Access Key and signing method.", http=401)
    return claim.access_key


def verify_signature(req: Incoming, service: str, keys: Mapping[str, str], now: float, max_skew: float) -> str:
    """Verify the V4 signature over the exact body; return the access key or raise a gateway error."""
    return check_body(check_headers(req.headers, service, keys, now, max_skew), req)
