"""Input images: turn what a notebook user holds into what the API takes, checking the documented limits first.

The CV capabilities take their pictures as ``binary_data_base64`` (a list of base64 strings) or as
``image_urls`` (a list of http(s) links), never both (the 人像保持 document: "与image_urls二选一传入"). The limits
checked here are the ones the documents print (人像保持; 主体分割/智能分割):

* formats JPG (JPEG), PNG and BMP (:data:`DEFAULT_LIMITS.formats <ImageLimits.formats>`), decided by
  decoding the bytes with Pillow, never by a file name;
* each side 128–4096 px;
* each image at most 4.7 MB *of base64 text*, where 1 MB = 1024 × 1024, so at most
  ``int(4.7 * 1024 * 1024) = 4,928,307`` base64 characters (the docs say "base64格式下单张图片最大4.7Mb",
  so the unit is the encoded string, and we read "Mb" as MiB, the stricter common reading of the two
  binary/decimal choices that matter here);
* two or more images together at most 8 MB of base64 (``8 * 1024 * 1024 = 8,388,608`` characters).

How each kind of input is sent:

* a file path or bytes in an accepted format: the **original bytes, unchanged** (no re-encoding, so EXIF
  and JPEG quality survive exactly);
* a PIL image or a numpy array: encoded by us, losslessly as **PNG** (alpha kept, the service sees exactly
  your pixels, which keeps masks aligned). Two exceptions, both to stay under the 4.7 MB limit without
  surprising anyone: a PIL image that Pillow opened from a JPEG (``img.format == "JPEG"``) and has no alpha
  is re-encoded as JPEG quality 95 (a PNG of a photo is 5–10× larger for no gain in fidelity), and an image
  without alpha whose PNG would exceed the limit falls back to JPEG quality 95 with a :class:`UserWarning`;
* an ``http://`` / ``https://`` string: passed through as an ``image_urls`` entry, not downloaded.

numpy arrays are ``H×W`` (grey), ``H×W×3`` (RGB, *not* OpenCV's BGR: pass ``arr[..., ::-1]``) or ``H×W×4``
(RGBA), of dtype ``uint8``, ``bool`` or float in 0..1.

Every problem raises :class:`~volcnb.ValidationError` before any request is sent; the message names the
field (``image[1]``), the limit and the actual value, e.g. ``image[0] is 100×90 px; each side must be
128–4096 px``.
"""

from __future__ import annotations

import base64
import io
import mimetypes
import os
import pathlib
import posixpath
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias
from urllib.parse import unquote, urlsplit

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from .._exceptions import ValidationError, warn_user
from .._pictures import encode

__all__ = ["DEFAULT_LIMITS", "EncodedImages", "ImageInput", "ImageLimits", "encode_images", "iva_payload", "load_image",
           "sniff_video"]

ImageInput: TypeAlias = Image.Image | str | os.PathLike[str] | bytes | bytearray | memoryview | npt.NDArray[Any]
"""One input picture: a PIL image, a path, encoded bytes, a numpy array, or an ``http(s)`` URL string."""

MB = 1024 * 1024
"""The megabyte used for every documented limit: 1024 × 1024 bytes (characters, for base64 text)."""

JPEG_QUALITY = 95
"""Quality used when we have to JPEG-encode a picture (see the module docstring for when)."""

IVA_MAX_IMAGE_BYTES = 50 * MB
"""IVA ``AddAsyncTaskImageData``: "单张图片大小不超过50M" (the IVA async-task document), the raw file size."""


@dataclass(frozen=True)
class ImageLimits:
    """The documented input limits; :data:`DEFAULT_LIMITS` holds the values the CV docs print."""

    min_side: int = 128
    """Smallest width or height, px."""
    max_side: int = 4096
    """Largest width or height, px."""
    max_base64_chars: int = int(4.7 * MB)
    """Largest base64 string per image, in characters (4.7 MB of base64 text)."""
    max_total_base64_chars: int | None = 8 * MB
    """Largest sum of the base64 strings when two or more images are sent (8 MB); ``None``: no such limit."""
    formats: tuple[str, ...] = ("JPEG", "PNG", "BMP")
    """Pillow format names accepted as-is."""


DEFAULT_LIMITS = ImageLimits()
"""Limits of 主体分割, 智能分割 and 人像保持 (as the 人像保持 document prints them)."""


@dataclass(frozen=True)
class EncodedImages:
    """The wire form of the input pictures: exactly one of the two lists is non-empty."""

    binary_data_base64: list[str]
    """Base64 strings, one per local input, in input order."""
    image_urls: list[str]
    """URLs, one per URL input, in input order."""
    originals: list[Image.Image | None]
    """The decoded input pictures (``None`` for URLs), kept for overlays and cut-outs."""

    def params(self) -> dict[str, list[str]]:
        """The request fields: ``{"binary_data_base64": [...]}`` or ``{"image_urls": [...]}``."""
        if self.image_urls:
            return {"image_urls": list(self.image_urls)}
        return {"binary_data_base64": list(self.binary_data_base64)}


def encode_images(
    images: ImageInput | Iterable[ImageInput],
    *,
    field: str = "image",
    limits: ImageLimits = DEFAULT_LIMITS,
    auto_resize: bool = False,
) -> EncodedImages:
    """Check and encode one picture, or a list (any iterable) of them, for ``binary_data_base64`` / ``image_urls``.

    ``auto_resize=True`` downsizes a local picture over 4096 px a side or 4.7 MB of base64 until it fits
    (keeping its aspect; JPEG unless it has transparency) and warns with the sizes before and after.

    ``field`` names the inputs in error messages (``image[0]``, ``image[1]``, …). Raises
    :class:`~volcnb.ValidationError` for an unsupported format, a side outside 128–4096 px, a base64
    string over 4.7 MB, two or more images over 8 MB together, a mix of URLs and local pictures, a
    string that is neither an existing file nor an http(s) URL, or bytes that do not decode.
    """
    items = _as_list(images, field)
    urls: list[tuple[int, str]] = []
    local: list[tuple[int, object]] = []
    for i, obj in enumerate(items):
        if isinstance(obj, str) and _is_url(obj):
            urls.append((i, _check_url(obj, f"{field}[{i}]")))
        else:
            local.append((i, obj))
    if urls and local:
        raise ValidationError(
            f"{field} mixes URLs ({_indices(urls)}) with local images ({_indices(local)}); the API takes either "
            "binary_data_base64 or image_urls in one request, so pass all URLs or all local images",
            field=field, limit="binary_data_base64 xor image_urls")
    if urls:
        return EncodedImages(binary_data_base64=[], image_urls=[u for _, u in urls], originals=[None] * len(urls))

    b64s: list[str] = []
    originals: list[Image.Image | None] = []
    for i, obj in local:
        text, image = _encode_local(obj, f"{field}[{i}]", limits, auto_resize=auto_resize)
        b64s.append(text)
        originals.append(image)
    total = sum(len(s) for s in b64s)
    cap = limits.max_total_base64_chars
    if cap is not None and len(b64s) >= 2 and total > cap:
        sizes = ", ".join(_mb(len(s)) for s in b64s)
        raise ValidationError(
            f"{field}: the {len(b64s)} images are {_mb(total)} of base64 together ({sizes}; {total:,} characters); "
            f"two or more images together must be ≤ {_mb_limit(cap)} of base64 ({cap:,} characters)",
            field=field, limit=f"≤ {_mb_limit(cap)} base64 in total")
    return EncodedImages(binary_data_base64=b64s, image_urls=[], originals=originals)


def load_image(obj: object, *, field: str = "image") -> Image.Image:
    """Decode a local picture (path, bytes, PIL image, numpy array) to a fully loaded PIL image.

    PIL images are returned as they are; paths and bytes are decoded whatever their format (this is for
    display and masks, not for sending). An http(s) URL is refused: nothing here downloads.
    """
    if isinstance(obj, Image.Image):
        return obj
    if isinstance(obj, np.ndarray):
        return _from_array(obj, field)
    if isinstance(obj, str) and _is_url(obj):
        raise ValidationError(f"{field} is a URL ({obj}); load_image only reads local images, it does not download",
                              field=field, limit="local image")
    return _decode(_read_local(obj, field), field)


def iva_payload(
    obj: object, name: str | None, *, kind: Literal["image", "video"]
) -> tuple[str, str | None, tuple[str, bytes | pathlib.Path, str] | None]:
    """``(name, url, file)`` for an IVA ``AddAsyncTask{Image,Video}Data`` upload (the IVA document).

    An http(s) URL string gives ``(name or the URL's file name, url, None)`` (``Source=url``). A path gives
    ``(name, None, (filename, path, mime))``: the file stays on disk and is streamed. Bytes or (for images)
    a PIL image / numpy array give ``(name, None, (filename, bytes, mime))`` (``Source=file``); PIL images and
    arrays are encoded as PNG (JPEG quality 95 if Pillow opened them from a JPEG). An image file may be at
    most 50 MB (50 × 1024 × 1024 bytes); a video has no documented limit but must be a video (sniffed from
    its first bytes: MP4/MOV/3GP, WebM/MKV, AVI, FLV, MPEG-TS/PS, ASF/WMV).
    """
    default = "image.jpg" if kind == "image" else "video.mp4"
    file_field = "ImageFile" if kind == "image" else "VideoFile"
    if isinstance(obj, str) and _is_url(obj):
        url = _check_url(obj, "Url")
        base = posixpath.basename(unquote(urlsplit(url).path))
        return name or base or default, url, None

    filename: str | None = None
    data: bytes | pathlib.Path
    if isinstance(obj, (Image.Image, np.ndarray)):
        if kind == "video":
            raise ValidationError(f"a video must be a path, bytes or an http(s) URL, not a {type(obj).__name__}",
                                  field=file_field, limit="path, bytes or URL")
        image = obj if isinstance(obj, Image.Image) else _from_array(obj, file_field)
        jpeg = isinstance(obj, Image.Image) and obj.format == "JPEG" and not _has_alpha(_normalise_mode(obj))
        data = head = _save(_normalise_mode(image), "JPEG" if jpeg else "PNG")
        filename = name or ("image.jpg" if jpeg else "image.png")
        size = len(data)
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        data = head = bytes(obj)
        size = len(data)
    elif isinstance(obj, (str, os.PathLike)):
        data = _existing_file(obj, file_field)
        size = data.stat().st_size
        with data.open("rb") as fh:
            head = fh.read(MB)
        filename = data.name
    else:
        raise ValidationError(
            f"{file_field}: expected a path, bytes{', a PIL image' if kind == 'image' else ''} or an http(s) URL, "
            f"got a {type(obj).__name__}", field=file_field, limit="supported input type")
    if not size:
        raise ValidationError(f"{file_field} is empty (0 bytes)", field=file_field, limit="non-empty")
    if kind == "image" and size > IVA_MAX_IMAGE_BYTES:
        _iva_too_big(size)
    mime = _sniff_image_mime(head, filename) if kind == "image" else _video_mime(head, filename)
    if filename is None:
        ext = mimetypes.guess_extension(mime) if mime != "application/octet-stream" else None
        filename = name or (f"{kind}{ext}" if ext else default)
    return name or filename, None, (filename, data, mime)


# --- helpers ---------------------------------------------------------------------------------------


def _iva_too_big(size: int) -> None:
    raise ValidationError(
        f"ImageFile is {_mb(size)} ({size:,} bytes); one IVA image must be ≤ 50 MB ({IVA_MAX_IMAGE_BYTES:,} bytes)",
        field="ImageFile", limit="≤ 50 MB per image")


def _mb(n: int) -> str:
    return f"{n / MB:.2f} MB"


def _mb_limit(n: int) -> str:
    return f"{n / MB:.3g} MB"


def _indices(items: Sequence[tuple[int, object]]) -> str:
    return ", ".join(f"[{i}]" for i, _ in items)


def _is_url(s: str) -> bool:
    return s[:8].lower().startswith(("http://", "https://"))


def _check_url(url: str, name: str) -> str:
    if not urlsplit(url).netloc or any(c.isspace() for c in url):
        raise ValidationError(f"{name} is not a valid http(s) URL: {url!r}", field=name, limit="http(s) URL")
    return url


def _as_list(images: object, field: str) -> list[object]:
    single = (str, bytes, bytearray, memoryview, os.PathLike, np.ndarray, Image.Image)
    if isinstance(images, single):
        return [images]
    if isinstance(images, Iterable):
        items = list(images)
        if not items:
            raise ValidationError(f"{field}: no images given", field=field, limit="at least one image")
        return items
    raise ValidationError(_type_message(field, images), field=field, limit="supported input type")


def _type_message(name: str, obj: object) -> str:
    return (f"{name} is a {type(obj).__name__}; expected a PIL image, a file path, encoded bytes, a numpy array "
            "or an http(s) URL")


def _existing_file(obj: str | os.PathLike[str], name: str) -> pathlib.Path:
    path = pathlib.Path(obj)
    if path.is_file():
        return path
    what = "a directory" if path.is_dir() else "neither an existing file nor an http(s) URL"
    raise ValidationError(f"{name}: {os.fspath(obj)!r} is {what}", field=name, limit="existing file or http(s) URL")


def _read_local(obj: object, name: str) -> bytes:
    if isinstance(obj, (bytes, bytearray, memoryview)):
        data = bytes(obj)
    elif isinstance(obj, (str, os.PathLike)):
        data = _existing_file(obj, name).read_bytes()
    else:
        raise ValidationError(_type_message(name, obj), field=name, limit="supported input type")
    if not data:
        raise ValidationError(f"{name} is empty (0 bytes)", field=name, limit="non-empty image")
    return data


def _open(data: bytes, name: str, label: str | None = None) -> Image.Image:
    """Open (header only) or raise ValidationError naming the field."""
    label = label or name
    try:
        return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise ValidationError(f"{label} is far larger than 4096×4096 px (Pillow refused to open it)",
                              field=name, limit="128–4096 px per side") from None
    except Exception as exc:  # Pillow raises many types for junk input
        why = "" if isinstance(exc, UnidentifiedImageError) else f": {exc}"
        raise ValidationError(
            f"{label} is not a decodable image ({len(data):,} bytes, starting with {data[:8].hex(' ')}){why}",
            field=name, limit="decodable JPEG, PNG or BMP") from None


def _load(image: Image.Image, name: str, label: str | None = None) -> Image.Image:
    """Fully decode (catches truncated or corrupt data)."""
    try:
        image.load()
    except Exception as exc:
        raise ValidationError(f"{label or name} is a corrupt {image.format or 'image'} file: {exc}",
                              field=name, limit="decodable image") from None
    return image


def _decode(data: bytes, name: str) -> Image.Image:
    return _load(_open(data, name), name)


def _check_sides(size: tuple[int, int], name: str, limits: ImageLimits, label: str | None = None) -> None:
    w, h = size
    lo, hi = limits.min_side, limits.max_side
    if lo <= w <= hi and lo <= h <= hi:
        return
    hint = (f" (downscale it, e.g. img.thumbnail(({hi}, {hi}))), or pass auto_resize=True)" if max(w, h) > hi
            else " (upscale or pad it)")
    raise ValidationError(f"{label or name} is {w}×{h} px; each side must be {lo}–{hi} px{hint}",
                          field=name, limit=f"{lo}–{hi} px per side")


def _encode_one(obj: object, name: str, limits: ImageLimits) -> tuple[bytes, Image.Image]:
    """``(bytes to send, decoded picture)`` for one local input."""
    if isinstance(obj, Image.Image):
        _check_sides(obj.size, name, limits)
        image = obj.copy()  # detach from the caller's object (and from any open file)
        prefer_jpeg = obj.format == "JPEG"
        return _encode_pil(image, name, limits, prefer_jpeg=prefer_jpeg), image
    if isinstance(obj, np.ndarray):
        image = _from_array(obj, name)
        _check_sides(image.size, name, limits)
        return _encode_pil(image, name, limits, prefer_jpeg=False), image
    data = _read_local(obj, name)
    label = f"{name} ({os.fspath(obj)})" if isinstance(obj, (str, os.PathLike)) else name
    image = _open(data, name, label)
    if image.format not in limits.formats:
        allowed = " or ".join([", ".join(limits.formats[:-1]), limits.formats[-1]]) if len(limits.formats) > 1 \
            else limits.formats[0]
        raise ValidationError(
            f"{label} is a {image.format} image; only {allowed} are accepted "
            "(pass PIL.Image.open(...) instead to have it re-encoded as PNG)",
            field=name, limit=f"format {'/'.join(limits.formats)}")
    _check_sides(image.size, name, limits, label)
    return data, _load(image, name, label)


def _encode_local(obj: object, name: str, limits: ImageLimits, *, auto_resize: bool) -> tuple[str, Image.Image]:
    """``(base64 text, decoded picture)`` of one local input within the limits (downsized if allowed)."""
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        try:
            raw, image = _encode_one(obj, name, limits)
        except ValidationError as err:
            if not (auto_resize and err.limit == f"{limits.min_side}–{limits.max_side} px per side"
                    and "downscale" in err.message):
                raise
            said.clear()
            raw, image = _fit(load_image(obj, field=name), name, limits)
        if auto_resize and _b64_len(len(raw)) > limits.max_base64_chars:
            raw, image = _fit(image, name, limits)
            said[:] = said[-1:]  # the downsizing said it all
    for w in said:
        warn_user(str(w.message), w.category)
    text = base64.b64encode(raw).decode("ascii")
    if len(text) > limits.max_base64_chars:
        hint = ("it is a JPEG already: downscale it" if raw[:2] == b"\xff\xd8" else
                "downscale it or send it as JPEG")
        raise ValidationError(
            f"{name} is {_mb(len(text))} of base64 ({len(text):,} characters); each image must be "
            f"≤ {_mb_limit(limits.max_base64_chars)} of base64 ({limits.max_base64_chars:,} characters): "
            f"{hint}, or pass auto_resize=True",
            field=name, limit=f"≤ {_mb_limit(limits.max_base64_chars)} base64 per image")
    return text, image


def _fit(image: Image.Image, name: str, limits: ImageLimits) -> tuple[bytes, Image.Image]:
    """``auto_resize``: the largest downsized copy within both limits (aspect kept), and a warning."""
    before = image.size
    img = _normalise_mode(image)
    if max(img.size) > limits.max_side:
        img = img.copy()
        img.thumbnail((limits.max_side, limits.max_side), Image.Resampling.LANCZOS)
    fmt: Literal["PNG", "JPEG"] = "PNG" if _has_alpha(img) else "JPEG"
    raw = _save(img, fmt)
    while _b64_len(len(raw)) > limits.max_base64_chars and min(img.size) * 0.85 >= limits.min_side:
        img = img.resize((round(img.width * 0.85), round(img.height * 0.85)), Image.Resampling.LANCZOS)
        raw = _save(img, fmt)
    _check_sides(img.size, name, limits)
    warn_user(f"{name}: downsized from {before[0]}×{before[1]} to {img.width}×{img.height} px and sent as {fmt} "
              f"({_mb(_b64_len(len(raw)))} of base64) because auto_resize=True", UserWarning)
    return raw, img


def _encode_pil(image: Image.Image, name: str, limits: ImageLimits, *, prefer_jpeg: bool) -> bytes:
    img = _normalise_mode(image)
    alpha = _has_alpha(img)
    if prefer_jpeg and not alpha:
        return _save(img, "JPEG")
    png = _save(img, "PNG")
    if alpha or _b64_len(len(png)) <= limits.max_base64_chars:
        return png
    jpeg = _save(img, "JPEG")
    warnings.warn(
        f"{name}: as PNG it would be {_mb(_b64_len(len(png)))} of base64, over the "
        f"{_mb_limit(limits.max_base64_chars)} limit; sending it as JPEG quality {JPEG_QUALITY} "
        f"({_mb(_b64_len(len(jpeg)))}) instead", UserWarning, stacklevel=4)
    return jpeg


def _b64_len(n: int) -> int:
    return 4 * ((n + 2) // 3)


def _save(img: Image.Image, fmt: Literal["PNG", "JPEG"]) -> bytes:
    return encode(img, fmt, quality=JPEG_QUALITY)


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA")


def _normalise_mode(img: Image.Image) -> Image.Image:
    """One of L, LA, RGB, RGBA (what PNG and, without alpha, JPEG can hold)."""
    mode = img.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return img
    if mode == "1":
        return img.convert("L")
    if mode in ("P", "PA"):
        return img.convert("RGBA" if mode == "PA" or "transparency" in img.info else "RGB")
    if mode in ("RGBa", "RGBX"):
        return img.convert("RGBA" if mode == "RGBa" else "RGB")
    if mode == "La":
        return img.convert("LA")
    if mode == "F" or mode.startswith("I"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 1.0 if mode == "F" and arr.size and float(np.nanmax(arr)) <= 1.0 else (
            65535.0 if arr.size and float(np.nanmax(arr)) > 255 else 255.0)
        scaled = np.clip(np.rint(np.nan_to_num(arr) / peak * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(scaled)
    return img.convert("RGBA" if "A" in img.getbands() or "transparency" in img.info else "RGB")


def _from_array(arr: npt.NDArray[Any], name: str) -> Image.Image:
    """An H×W / H×W×1 / H×W×3 / H×W×4 array (uint8, bool, small ints, or float 0..1) as a PIL image."""
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        extra = "; for a batch pass list(array)" if a.ndim == 4 else ""
        raise ValidationError(
            f"{name} is an array of shape {a.shape}; expected H×W (grey), H×W×3 (RGB) or H×W×4 (RGBA){extra}",
            field=name, limit="H×W, H×W×3 or H×W×4")
    if a.size == 0:
        raise ValidationError(f"{name} is an empty array of shape {a.shape}", field=name, limit="non-empty")
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint8:
        pass
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ValidationError(f"{name} is a float array containing NaN or infinity", field=name,
                                  limit="finite values in 0..1")
        lo, hi = float(a.min()), float(a.max())
        if lo < 0.0 or hi > 1.0:
            raise ValidationError(
                f"{name} is a float array with values {lo:g}..{hi:g}; float images must lie in 0..1 "
                "(for 0..255 data use .astype(np.uint8))", field=name, limit="float values in 0..1")
        a = np.rint(a * 255.0).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.integer):
        lo_i, hi_i = int(a.min()), int(a.max())
        if lo_i < 0 or hi_i > 255:
            raise ValidationError(
                f"{name} is a {a.dtype} array with values {lo_i}..{hi_i}; integer images must lie in 0..255 "
                "(scale 16-bit data first)", field=name, limit="integer values in 0..255")
        a = a.astype(np.uint8)
    else:
        raise ValidationError(f"{name} is an array of dtype {a.dtype}; expected uint8, bool or float in 0..1",
                              field=name, limit="uint8, bool or float array")
    return Image.fromarray(np.ascontiguousarray(a))


def _sniff_image_mime(data: bytes, filename: str | None) -> str:
    try:
        # The header is enough to name the format; a bounded slice keeps a 50 MB upload from being scanned.
        with Image.open(io.BytesIO(data[:MB])) as img:
            mime = Image.MIME.get(img.format or "")
            if mime:
                return mime
    except Exception:  # noqa: S110 - not decodable by Pillow: fall back to the file name
        pass
    return _guess_from_name(filename) or "application/octet-stream"


def sniff_video(head: bytes) -> str | None:
    """The container of a video from its first bytes (``video/mp4``, ``video/webm``…), else ``None``."""
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return "video/quicktime" if brand == b"qt  " else "video/3gpp" if brand.startswith(b"3g") else "video/mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free") and len(head) >= 8:
        return "video/quicktime"  # old QuickTime files open with a box other than ftyp
    if head[:4] == b"\x1aE\xdf\xa3":
        return "video/webm" if b"webm" in head[:64] else "video/x-matroska"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    if head[:3] == b"FLV":
        return "video/x-flv"
    if head[:4] == b"\x30\x26\xb2\x75":
        return "video/x-ms-asf"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return "video/mpeg"
    if head[:1] == b"\x47" and len(head) > 188 and head[188:189] == b"\x47":
        return "video/mp2t"
    return None


def _video_mime(head: bytes, filename: str | None) -> str:
    sniffed = sniff_video(head)
    if sniffed is None:
        raise ValidationError(
            f"VideoFile is not a video: its first bytes {head[:12]!r} match no video container (MP4/MOV/3GP, "
            "WebM/MKV, AVI, FLV, MPEG-TS/PS, ASF/WMV)", field="VideoFile", limit="a video container")
    by_name = _guess_from_name(filename)
    # The name tells MOV from MP4 (one container family); the content decides that it is a video at all.
    return by_name if by_name and by_name.startswith("video/") else sniffed


def _guess_from_name(filename: str | None) -> str | None:
    if not filename:
        return None
    mime, _ = mimetypes.guess_type(filename)
    return mime
