"""Volcengine V4 request signing (HMAC-SHA256), byte-compatible with the official SDK's ``SignerV4``.

Pure functions: :func:`sign` computes the headers to add; the simulator verifies with the same
:func:`canonical_request` / :func:`signature`, so client and server cannot drift apart. The canonical
request is AWS SigV4's with algorithm ``HMAC-SHA256``, scope terminator ``request`` and the raw secret key.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

__all__ = ["Credentials", "canonical_request", "parse_authorization", "sign", "signature"]

ALGORITHM = "HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
DEFAULT_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"


@dataclass(frozen=True)
class Credentials:
    """An access-key pair, optionally with an STS session token.

    The secret key and the session token never appear in ``repr``/``str``: only the access key
    and whether a token is present.
    """

    access_key: str
    """The access key id (``AK``); public, appears in the ``Authorization`` header."""
    secret_key: str = field(repr=False)
    """The secret key (``SK``); never printed."""
    session_token: str | None = field(default=None, repr=False)
    """An STS session token, sent as ``X-Security-Token`` when set; never printed."""

    def __repr__(self) -> str:
        token = ", session_token=***" if self.session_token else ""
        return f"Credentials(access_key={self.access_key!r}, secret_key=***{token})"

    __str__ = __repr__


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def format_xdate(timestamp: float) -> str:
    """``X-Date`` for a POSIX timestamp: UTC ``YYYYMMDDTHHMMSSZ``."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(timestamp))


def canonical_query(items: Iterable[tuple[str, str]]) -> str:
    """Sort by key (stable, so repeated keys keep their order) and percent-encode RFC 3986 style."""
    ordered = sorted(items, key=lambda kv: kv[0])
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in ordered)


def canonical_uri(path: str) -> str:
    """The SDK's ``norm_uri``: ``quote(path)`` with ``/`` kept; empty path is ``/``."""
    return quote(path or "/").replace("%2F", "/").replace("+", "%20")


def signable_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The headers the SDK signs: ``Content-Type``, ``Content-Md5``, ``Host`` and every ``X-*`` header.

    Names are lowercased; a ``:80``/``:443`` port is stripped from ``host`` in the canonical form only.
    """
    out: dict[str, str] = {}
    for name, value in headers:
        low = name.lower()
        if low in ("content-type", "content-md5", "host") or low.startswith("x-"):
            out[low] = value
    host = out.get("host")
    if host and ":" in host:
        name, _, port = host.rpartition(":")
        if port in ("80", "443"):
            out["host"] = name
    return out


def canonical_request(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    signed: Mapping[str, str],
    body_sha256: str,
) -> tuple[str, str]:
    """Return ``(canonical_request, signed_header_names)`` for already-lowercased signed headers."""
    names = sorted(signed)
    canonical_headers = "".join(f"{n}:{signed[n]}\n" for n in names)
    signed_names = ";".join(names)
    text = "\n".join(
        [method.upper(), canonical_uri(path), canonical_query(query), canonical_headers, signed_names, body_sha256]
    )
    return text, signed_names


def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """kSigning = HMAC(HMAC(HMAC(HMAC(SK, date), region), service), "request")."""
    k = _hmac(secret_key.encode("utf-8"), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "request")


def signature(secret_key: str, xdate: str, region: str, service: str, canonical: str) -> str:
    """Hex signature of a canonical request."""
    scope = f"{xdate[:8]}/{region}/{service}/request"
    string_to_sign = "\n".join(
        [ALGORITHM, xdate, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()]
    )
    key = signing_key(secret_key, xdate[:8], region, service)
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def sign(
    *,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Iterable[tuple[str, str]],
    body: bytes,
    credentials: Credentials,
    region: str,
    service: str,
    xdate: str,
    body_sha256: str | None = None,
) -> dict[str, str]:
    """Compute the headers to add to a request: ``X-Date``, ``X-Content-Sha256``, ``Authorization``.

    ``headers`` are those that will be sent (``Host`` and ``Content-Type`` included). Like the SDK,
    a non-GET request without ``Content-Type`` gets the form content type, which is returned too.
    ``body_sha256``: the hex SHA-256 of a body streamed later (``body`` is then ignored).
    """
    headers = list(headers)
    added: dict[str, str] = {}
    present = {n.lower() for n, _ in headers}
    if method.upper() != "GET" and "content-type" not in present:
        added["Content-Type"] = DEFAULT_CONTENT_TYPE
    added["X-Date"] = xdate
    if credentials.session_token:
        added["X-Security-Token"] = credentials.session_token
    body_hash = body_sha256 or hashlib.sha256(body).hexdigest()
    added["X-Content-Sha256"] = body_hash
    signed = signable_headers([*headers, *added.items()])
    canonical, signed_names = canonical_request(method, path, query, signed, body_hash)
    sig = signature(credentials.secret_key, xdate, region, service, canonical)
    scope = f"{xdate[:8]}/{region}/{service}/request"
    added["Authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={signed_names}, Signature={sig}"
    )
    return added


def parse_authorization(value: str) -> tuple[str, str, list[str], str] | None:
    """Split an ``Authorization`` header into ``(access_key, scope, signed_header_names, signature)``.

    Returns ``None`` when the header is not a well-formed ``HMAC-SHA256`` one.
    """
    if not value.startswith(ALGORITHM + " "):
        return None
    fields: dict[str, str] = {}
    for part in value[len(ALGORITHM) + 1 :].split(","):
        key, sep, val = part.strip().partition("=")
        if not sep:
            return None
        fields[key] = val
    try:
        credential, names, sig = fields["Credential"], fields["SignedHeaders"], fields["Signature"]
    except KeyError:
        return None
    ak, sep, scope = credential.partition("/")
    if not sep or not ak or not names:
        return None
    return ak, scope, names.split(";"), sig
