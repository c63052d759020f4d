"""Picture bytes: PNG/JPEG encoding and mode normalisation, one implementation shared by every layer."""

from __future__ import annotations

import io
from typing import Literal

from PIL import Image

__all__ = ["encode", "jpeg", "png", "web_mode"]

_PNG_MODES = ("1", "L", "LA", "RGB", "RGBA", "P", "I", "I;16")


def web_mode(img: Image.Image) -> Image.Image:
    """``img`` in a mode every front end shows (L, LA, RGB, RGBA); palette images keep transparency."""
    if img.mode in ("1", "L", "LA", "RGB", "RGBA"):
        return img
    if img.mode == "P":
        return img.convert("RGBA")
    return img.convert("RGBA" if "A" in img.getbands() or "transparency" in img.info else "RGB")


def png(img: Image.Image, *, fast: bool = False) -> bytes:
    """PNG bytes (``fast``: light compression, for servers that encode many pictures)."""
    if img.mode not in _PNG_MODES:
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
    buf = io.BytesIO()
    if fast:
        img.save(buf, "PNG", optimize=False, compress_level=3)
    else:
        img.save(buf, "PNG")
    return buf.getvalue()


def jpeg(img: Image.Image, quality: int = 85, *, subsampling: int | None = None) -> bytes:
    """JPEG bytes of an image without alpha (converted to RGB or L first when needed)."""
    if img.mode not in ("L", "RGB"):
        img = img.convert("RGB")
    buf = io.BytesIO()
    if subsampling is None:
        img.save(buf, "JPEG", quality=quality)
    else:
        img.save(buf, "JPEG", quality=quality, subsampling=subsampling)
    return buf.getvalue()


def encode(img: Image.Image, fmt: Literal["PNG", "JPEG"], *, quality: int = 95) -> bytes:
    """``png(img)`` or a high-quality ``jpeg(img)`` (4:4:4)."""
    return png(img) if fmt == "PNG" else jpeg(img, quality, subsampling=0)
