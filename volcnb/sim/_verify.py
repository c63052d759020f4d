"""Verifying Volcengine V4 signatures with the client's own signing functions (they cannot drift apart)."""

from __future__ import annotations

import calendar
import hashlib
import hmac
import time
from collections.abc import Mapping

from ..protocol.signing import canonical_request, parse_authorization, signable_headers, signature
from ..protocol.wire import REGION
from ._model import Incoming, Reject

__all__ = ["verify_headers", "verify_signature"]


def verify_headers(headers: list[tuple[str, str]], service: str, keys: Mapping[str, str], now: float,
                   max_skew: float) -> str:
    """What the headers alone can tell (credential, key, date, scope), checked before a body is read."""
    return _check_headers({k.lower(): v for k, v in headers}, service, keys, now, max_skew)[0]


def _check_headers(headers: Mapping[str, str], service: str, keys: Mapping[str, str], now: float,
                   max_skew: float) -> tuple[str, str, str, str, str, list[str], str]:
    auth = headers.get("authorization")
    if not auth:
        raise Reject("MissingAuthenticationToken", "Request is missing Authentication Token", http=401)
    parsed = parse_authorization(auth)
    if parsed is None:
        raise Reject("InvalidAuthorization", "Authorization header is malformed", http=401)
    ak, scope, names, sig = parsed
    secret = keys.get(ak)
    if secret is None:
        raise Reject("InvalidAccessKey", f"The access key {ak!r} is not valid", http=401)
    xdate = headers.get("x-date", "")
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
    if region != REGION:
        raise Reject("SignatureDoesNotMatch",
                     f"credential scope region is {region!r}; this endpoint serves region {REGION!r}", http=401)
    if svc != service:
        raise Reject("SignatureDoesNotMatch",
                     f"credential scope service is {svc!r}, this endpoint is service {service!r}", http=401)
    return ak, secret, xdate, region, svc, list(names), sig


def verify_signature(req: Incoming, service: str, keys: Mapping[str, str], now: float, max_skew: float) -> str:
    """Verify the V4 signature over the exact body; return the access key or raise a gateway error."""
    headers = {k.lower(): v for k, v in req.headers}
    ak, secret, xdate, region, svc, names, sig = _check_headers(headers, service, keys, now, max_skew)
    body_hash = hashlib.sha256(req.body).hexdigest()
    if headers.get("x-content-sha256", body_hash) != body_hash:
        raise Reject("SignatureDoesNotMatch", "X-Content-Sha256 does not match the body", http=401)
    available = signable_headers(req.headers)
    if any(n not in available for n in names) or "host" not in names or "x-date" not in names:
        raise Reject("SignatureDoesNotMatch", "SignedHeaders must include host and x-date and only sent headers",
                     http=401)
    signed = {n: available[n] for n in names}
    canonical, _ = canonical_request(req.method, req.path, req.query, signed, body_hash)
    expected = signature(secret, xdate, region, svc, canonical)
    if not hmac.compare_digest(expected, sig):
        raise Reject("SignatureDoesNotMatch",
                     "The request signature we calculated does not match the signature you provided. "
                     "Check your Secret Access Key and signing method.", http=401)
    return ak

