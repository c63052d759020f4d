"""What a batch reads: lists, folders, globs, single inputs or lazy iterables, and how an item is named.

An item is an input (path, URL, bytes, PIL image, …) or a dict with the input under ``image`` (or
``input``) and per-item parameters. A folder gives its images, sorted; a glob is expanded here (``**``
included), so it works where the shell does not.
"""

from __future__ import annotations

import glob as globlib
import hashlib
import json
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from PIL import Image

from .._exceptions import ValidationError
from ..protocol.submission import prepare_submit

__all__ = ["IMAGE_SUFFIXES", "describe", "file_stem", "fingerprint", "iter_inputs", "jsonable", "open_input", "prepare",
           "reopen", "split_item"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"})

def iter_inputs(inputs: Any) -> tuple[Iterator[Any], int | None]:
    """``(items, count or None)`` from a list, a folder, a glob, one input, or any iterable (kept lazy)."""
    if isinstance(inputs, (str, os.PathLike)):
        text = os.fspath(inputs)
        path = Path(text)
        if text.startswith(("http://", "https://")) or path.is_file():
            return iter([text]), 1
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise ValidationError(f"inputs: folder {text} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})",
                                      field="inputs", limit="a folder with images")
            return iter([str(p) for p in files]), len(files)
        if any(ch in text for ch in "*?["):
            matches = sorted(globlib.glob(text, recursive=True))
            if not matches:
                raise ValidationError(f"inputs: the pattern {text!r} matches no file", field="inputs",
                                      limit="a glob matching files")
            return iter(matches), len(matches)
        raise ValidationError(f"inputs: {text!r} is not a file, a folder, a glob or an http(s) URL",
                              field="inputs", limit="an existing path")
    if inputs is None or isinstance(inputs, (bytes, bytearray, Image.Image, Mapping)):
        return iter([inputs]), 1
    if isinstance(inputs, (list, tuple)):
        return iter(inputs), len(inputs)
    if isinstance(inputs, Iterable):
        return iter(inputs), None
    return iter([inputs]), 1


def split_item(raw: Any, shared: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """An item is an input, or a dict with the input under ``image`` (or ``input``) and per-item params."""
    if isinstance(raw, Mapping):
        extra = dict(raw)
        source = extra.pop("image", extra.pop("input", None))
        return source, {**shared, **extra}
    return raw, dict(shared)


def describe(source: Any) -> str:
    """What an input was, as a short text (a path or URL as given)."""
    if source is None:
        return "(no image)"
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, Image.Image):
        return f"<PIL {source.width}×{source.height} {source.mode}>"
    if isinstance(source, (bytes, bytearray)):
        return f"<{len(source):,} bytes>"
    if isinstance(source, (list, tuple)):
        return " + ".join(describe(s) for s in source)
    return f"<{type(source).__name__}>"


def reopen(label: str) -> Any:
    """The input behind a journaled description, if it can be read again (a path or a URL)."""
    if label.startswith(("http://", "https://")) or Path(label).is_file():
        return label
    return None


def open_input(source: Any) -> Image.Image | None:
    try:
        if isinstance(source, Image.Image):
            return source
        if isinstance(source, (str, os.PathLike)) and Path(source).is_file():
            with Image.open(source) as im:
                result: Image.Image | None = im.copy()
                return result
    except OSError:
        return None
    return None



def file_stem(label: str) -> str:
    name = Path(label.split("?", 1)[0]).stem if not label.startswith("<") else "input"
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)[:40] or "input"


def prepare(req_key: str, source: Any, params: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    """The submit body for one item; its warnings are re-issued once, so a batch does not flood."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        body, originals = prepare_submit(req_key, source, params)
    for w in caught[:1]:  # one line per item at most; the batch must not flood the output
        warnings.warn(str(w.message), w.category, stacklevel=2)
    return body, originals


def fingerprint(backend: str, req_key: str, body: Mapping[str, Any]) -> str:
    """What makes two submits the same task for the journal: backend, req_key and the exact body."""
    h = hashlib.sha256()
    h.update(json.dumps([backend, req_key], ensure_ascii=False).encode())
    h.update(json.dumps(body, sort_keys=True, ensure_ascii=False, default=str).encode())
    return h.hexdigest()


def jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as the journal stores them (option objects through their ``to_json``)."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        to_json = getattr(v, "to_json", None)
        out[k] = to_json() if callable(to_json) else v
    return out
