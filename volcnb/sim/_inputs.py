"""What the simulator reads from a request body: JSON within its limits, input pictures within theirs.

The limits are the protocol's own (:data:`volcnb.protocol.images.DEFAULT_LIMITS`), checked again here:
the simulator never trusts a client.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Callable
from typing import Any

from PIL import Image, UnidentifiedImageError

from ..protocol.images import DEFAULT_LIMITS
from ._model import MAX_BODY, Reject, loads

__all__ = ["FileLookup", "decode_images", "fetch_url", "json_body", "open_image"]

FileLookup = Callable[[str], "bytes | None"]
"""Bytes of a file the simulator serves (``/sim/files/{token}``), if it exists and has not expired."""

MAX_B64 = DEFAULT_LIMITS.max_base64_chars
MAX_B64_TOTAL = DEFAULT_LIMITS.max_total_base64_chars or 0


def json_body(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_BODY:
        raise Reject(50213, f"Request Body Size Limited: {len(body)} bytes > {MAX_BODY}")
    try:
        obj = loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        why = str(exc) if "nested deeper" in str(exc) else "the body is not valid JSON"
        raise Reject(50204, f"Parse Args Error: {why}") from None
    if not isinstance(obj, dict):
        raise Reject(50204, "Parse Args Error: the body must be a JSON object")
    return obj

def decode_images(body: dict[str, Any], files: FileLookup) -> list[Image.Image]:
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
                raise Reject(50205, f"binary_data_base64[{i}] is {len(s)} bytes; the limit is 4.7 MB")
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

def open_image(raw: bytes, name: str) -> Image.Image:
    """Decode one input picture; its format and sides are read from the header first, so a pixel bomb
    (a huge header over a few bytes of data) is refused before anything is decoded."""
    try:
        img = Image.open(io.BytesIO(raw))
    except Image.DecompressionBombError:
        raise Reject(50205, f"Image Size Limited: {name} is far larger than 4096×4096 px") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise Reject(50207, f"Image Decode Error: {name} is not a decodable image") from None
    fmt = img.format
    if fmt not in ("JPEG", "PNG", "BMP"):
        raise Reject(50207, f"Image Decode Error: {name} is {fmt}; JPG, PNG or BMP only")
    w, h = img.size
    if not (128 <= w <= 4096 and 128 <= h <= 4096):
        raise Reject(50205, f"Image Size Limited: {name} is {w}×{h}; each side must be 128–4096 px")
    try:
        img.load()
    except (OSError, ValueError, Image.DecompressionBombError):
        raise Reject(50207, f"Image Decode Error: {name} is not a decodable image") from None
    return img.convert("RGBA") if img.mode in ("RGBA", "LA", "P") else img.convert("RGB")


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

