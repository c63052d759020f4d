"""What the simulator reads from a request body: JSON within its limits, input pictures within theirs.

The limits are the protocol's own (:data:`volcnb.protocol.images.DEFAULT_LIMITS`), checked again here:
the simulator never trusts a client. JSON is measured before it is parsed (size, then nesting depth), and a
picture's dimensions are read from its header before any pixel is decoded.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
from collections.abc import Callable, Iterable
from struct import error as struct_error
from typing import Any

import numpy as np
from PIL import Image

from ..protocol.images import DEFAULT_LIMITS
from ._model import MAX_BODY, Reject

__all__ = ["MAX_JSON_DEPTH", "FileLookup", "decode_images", "fetch_url", "image_header", "json_body", "loads_bounded",
           "open_image"]

FileLookup = Callable[[str], "bytes | None"]
"""Bytes of a file the simulator serves (``/sim/files/{token}``), if it exists and has not expired."""

MAX_B64 = DEFAULT_LIMITS.max_base64_chars
MAX_B64_TOTAL = DEFAULT_LIMITS.max_total_base64_chars or 0
STRICT_B64 = 4_700_000
"""4.7 MB read as decimal megabytes: between this and :data:`MAX_B64` (MiB) a picture is accepted with a note."""
MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays/objects accepted in any JSON the simulator parses (inferred; no document gives one)."""

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_OPEN, _CLOSE = np.frombuffer(b"[{", np.uint8), np.frombuffer(b"]}", np.uint8)


def json_depth(raw: bytes) -> int:
    """Deepest ``[``/``{`` nesting of ``raw`` outside strings, measured without parsing (C speed on 20 MB)."""
    skeleton = np.frombuffer(_STRING.sub(b'""', raw), np.uint8)
    if not skeleton.size:
        return 0
    step = np.isin(skeleton, _OPEN).astype(np.int32) - np.isin(skeleton, _CLOSE).astype(np.int32)
    return int(np.cumsum(step).max(initial=0))


def loads_bounded(raw: bytes | str, name: str = "the body") -> Any:
    """Parse JSON whose depth was measured first; ``ValueError`` naming ``name`` and the limit otherwise."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    depth = json_depth(data)
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"{name} nests {depth} levels deep; at most {MAX_JSON_DEPTH} are accepted")
    try:
        return json.loads(raw)
    except RecursionError:  # never reached within the depth limit; kept so nothing deep can ever crash a request
        raise ValueError(f"{name} nests too deeply") from None
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"{name} is not valid JSON") from None


def json_body(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_BODY:
        raise Reject(50213, f"Request Body Size Limited: {len(body)} bytes > {MAX_BODY}")
    try:
        obj = loads_bounded(body)
    except ValueError as exc:
        raise Reject(50204, f"Parse Args Error: {exc}") from None
    if not isinstance(obj, dict):
        raise Reject(50204, "Parse Args Error: the body must be a JSON object")
    return obj


def decode_images(body: dict[str, Any], files: FileLookup, notes: list[str] | None = None) -> list[Image.Image]:
    """The input pictures of a submit body, checked; ``notes`` collects what is accepted but ambiguous."""
    b64 = body.get("binary_data_base64")
    urls = body.get("image_urls")
    if b64 is not None and not isinstance(b64, list):
        raise Reject(50200, "binary_data_base64 must be an array of strings")
    if urls is not None and not isinstance(urls, list):
        raise Reject(50200, "image_urls must be an array of strings")
    if b64 and urls:
        raise Reject(50200, "give binary_data_base64 or image_urls, not both")
    images: list[Image.Image] = []
    if b64:
        total = 0
        for i, s in enumerate(b64):
            if not isinstance(s, str) or not s:
                raise Reject(50206, f"binary_data_base64[{i}] is empty")
            total += len(s)
            if len(s) > MAX_B64:
                raise Reject(50205, f"binary_data_base64[{i}] is {len(s)} characters; the limit is 4.7 MB "
                                    f"({MAX_B64} characters, reading MB as MiB)")
            if len(s) > STRICT_B64 and notes is not None:
                notes.append(f"binary_data_base64[{i}] is {len(s)} characters: over 4.7 MB read as 4,700,000 "
                             f"and within it read as MiB ({MAX_B64}); accepted here, the service may refuse it")
            if total > MAX_B64_TOTAL:
                raise Reject(50205, "the images together exceed 8 MB of base64")
            try:
                raw = base64.b64decode(s, validate=True)
            except (binascii.Error, ValueError):
                raise Reject(50207, f"binary_data_base64[{i}] is not valid base64") from None
            images.append(open_image(raw, f"binary_data_base64[{i}]"))
    elif urls:
        for i, u in enumerate(urls):
            images.append(fetch_url(u, i, files))
    return images


def image_header(raw: bytes, name: str, formats: Iterable[str] = DEFAULT_LIMITS.formats) -> Image.Image:
    """The picture with only its header read (one of ``formats``): size and format known, no pixel decoded.

    Pillow's own plugins parse the header; ``Image.open`` is not used, so no decompression-bomb warning
    fires and a 30000×30000 header costs nothing.
    """
    Image.init()
    prefix = raw[:16]
    for fmt in formats:
        factory, accept = Image.OPEN[fmt]
        if accept is None or accept(prefix):
            try:
                img: Image.Image = factory(io.BytesIO(raw), "")
            except (SyntaxError, OSError, ValueError, EOFError, struct_error, IndexError, KeyError):
                raise Reject(50207, f"Image Decode Error: {name} is not a decodable image") from None
            return img
    other = next((f for f, (_, acc) in Image.OPEN.items() if acc is not None and _accepts(acc, prefix)), None)
    kind = f"{other}" if other else "not a recognised image"
    raise Reject(50207, f"Image Decode Error: {name} is {kind}; JPG, PNG or BMP only")


def _accepts(accept: Callable[[bytes], Any], prefix: bytes) -> bool:
    try:
        return bool(accept(prefix))
    except Exception:  # a plugin's sniffer on a short prefix: not this format
        return False


def open_image(raw: bytes, name: str) -> Image.Image:
    img = image_header(raw, name)
    w, h = img.size
    lo, hi = DEFAULT_LIMITS.min_side, DEFAULT_LIMITS.max_side
    if not (lo <= w <= hi and lo <= h <= hi):  # before decoding: the sides bound the pixels (≤ 4096² = 16.8 Mpx)
        raise Reject(50205, f"Image Size Limited: {name} is {w}×{h}; each side must be {lo}–{hi} px")
    try:
        img.load()
    except (OSError, ValueError, SyntaxError, EOFError, struct_error, IndexError, KeyError):
        raise Reject(50207, f"Image Decode Error: {name} is not a decodable image") from None
    return img.convert("RGBA") if img.mode in ("RGBA", "LA", "P", "PA") else img.convert("RGB")


def fetch_url(url: Any, i: int, files: FileLookup) -> Image.Image:
    name = f"image_urls[{i}]"
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise Reject(50200, f"{name} must be an http(s) URL")
    token = url.rsplit("/sim/files/", 1)[-1] if "/sim/files/" in url else None
    if token:
        data = files(token)
        if data is not None:
            return open_image(data, name)
    # Offline by design: the simulator fetches only from loopback (test servers) and its own files.
    host = url.split("/")[2].split(":")[0] if url.count("/") >= 2 else ""
    if host not in ("127.0.0.1", "localhost", "::1", "[::1]"):
        raise Reject(50207, f"Image Decode Error: {name} could not be downloaded (the simulator is offline "
                            "and fetches only loopback URLs; send binary_data_base64)")
    import httpx

    try:
        r = httpx.get(url, timeout=10.0)
        r.raise_for_status()
    except httpx.HTTPError as exc:
        raise Reject(50207, f"Image Decode Error: {name} download failed: {exc}") from None
    return open_image(r.content, name)

