"""What a finished task gave back: :class:`Result` (the ``data`` payload plus decoded pictures).

A result wraps the GetResult ``data`` payload as the service sent it and adds what a notebook user wants
from it: decoded pictures (``res.images``), ``res.save(dir)``, a thumbnail grid when it is the last
expression of a cell. 主体分割/智能分割 results are :class:`~volcnb.SegmentationResult`.

Payload shapes read here:

* ``binary_data_base64``: list of base64 strings; empty ``""`` entries are skipped (the 同步转异步
  document's own saliency example has one). ``image_urls``: list of links, ``""`` skipped; when both are present the
  base64 pictures are used and the links are only kept as data.
Results hold no open handle and no credential, so they pickle (``multiprocessing``, notebook caches).
Decoded pictures and masks are caches, rebuilt after unpickling.
"""

from __future__ import annotations

import base64
import binascii
import html
import io
import json
import os
import pathlib
import re
import tempfile
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from .._exceptions import ProtocolError, VolcError
from .._pictures import png
from ..protocol.catalog import get_capability
from ..protocol.wire import response_data as _decode_response_data
from ..protocol.wire import result_images
from .render import figure_html, figures_html, grid, thumbnail

__all__ = ["Result"]

THUMB_SIDE = 256
"""Longest side of the thumbnails in the notebook display."""
MAX_THUMBS = 24
"""At most this many thumbnails are shown; the rest are counted."""


class Result:
    """A finished task: the raw ``data`` payload plus decoded pictures.

    Build one with :meth:`from_data`. Attributes:

    * ``req_key``, ``task_id``, ``request_id``, ``time_elapsed`` (as the service printed it, e.g.
      ``"1.440610819s"``);
    * ``data``: the raw ``data`` payload (a ``dict``), unchanged;
    * ``image_urls``: the non-empty ``data.image_urls`` (links valid 1–24 h, see the docs);
    * ``input_images``: the pictures that were submitted (``None`` for URL inputs; empty after
      ``Task.attach``), for overlays and cut-outs;
    * ``options``: the GetResult options this result was fetched with (``return_url``, ``logo_info``, …).
    """

    req_key: str
    task_id: str
    request_id: str | None
    time_elapsed: str | None
    data: dict[str, Any]
    image_urls: list[str]
    input_images: list[Image.Image | None]
    options: dict[str, Any]

    _CACHES: ClassVar[tuple[str, ...]] = ("_sources_cache", "_images_cache")
    _KINDS: ClassVar[dict[str, type[Result]]] = {}

    def __init_subclass__(cls, *, kind: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if kind is not None:
            Result._KINDS[kind] = cls

    def __init__(
        self,
        *,
        req_key: str,
        task_id: str,
        data: Mapping[str, Any],
        request_id: str | None = None,
        time_elapsed: str | None = None,
        downloads: Mapping[str, bytes] | None = None,
        input_images: Iterable[Image.Image | None] = (),
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.req_key = req_key
        self.task_id = str(task_id)
        self.request_id = request_id
        self.time_elapsed = time_elapsed
        self.data = dict(data)
        self.image_urls = result_images(self.data)[1]
        self.input_images = list(input_images)
        self.options = dict(options or {})
        self._downloads: dict[str, bytes] = dict(downloads or {})
        self._sources_cache: list[tuple[str, bytes]] | None = None
        self._images_cache: list[Image.Image] | None = None

    @classmethod
    def from_data(
        cls,
        *,
        req_key: str,
        task_id: str,
        data: Mapping[str, Any],
        request_id: str | None = None,
        time_elapsed: str | None = None,
        downloads: Mapping[str, bytes] | None = None,
        input_images: Iterable[Image.Image | None] = (),
        options: Mapping[str, Any] | None = None,
    ) -> Result:
        """Wrap a GetResult ``data`` payload in the class of the req_key's kind (a :class:`SegmentationResult`
        for ``saliency_seg``/``entity_seg``); called on a subclass, it builds that subclass.

        ``downloads`` maps entries of ``data.image_urls`` to their downloaded bytes; they provide
        :attr:`images` when the payload has no base64 pictures (``return_url=True``).
        """
        kind: type[Result] = cls
        cap = get_capability(req_key)
        if cls is Result and cap is not None:
            kind = Result._KINDS.get(cap.kind, Result)
        return kind(req_key=req_key, task_id=task_id, data=data, request_id=request_id,
                    time_elapsed=time_elapsed, downloads=downloads, input_images=input_images, options=options)

    # --- pictures ------------------------------------------------------------------------------

    def _error(self, message: str) -> ProtocolError:
        return ProtocolError(message, task_id=self.task_id, request_id=self.request_id, req_key=self.req_key)

    def _sources(self) -> list[tuple[str, bytes]]:
        """``(label, encoded bytes)`` of each output picture, base64 first, else downloaded URLs."""
        if self._sources_cache is None:
            out: list[tuple[str, bytes]] = []
            entries = self.data.get("binary_data_base64") or []
            if not isinstance(entries, list):
                raise self._error(f"data.binary_data_base64 should be a list, got {type(entries).__name__}")
            for i, text in enumerate(entries):
                if text is None or text == "":
                    continue
                label = f"binary_data_base64[{i}]"
                if not isinstance(text, str):
                    raise self._error(f"{label} should be a base64 string, got {type(text).__name__}")
                out.append((label, self._b64decode(text, label)))
            if not out:
                urls = self.data.get("image_urls") or []
                for i, url in enumerate(urls if isinstance(urls, list) else []):
                    if isinstance(url, str) and url in self._downloads:
                        out.append((f"image_urls[{i}]", self._downloads[url]))
            self._sources_cache = out
        return self._sources_cache

    def _b64decode(self, text: str, label: str) -> bytes:
        if text.startswith("data:") and "," in text[:100]:
            text = text.split(",", 1)[1]  # tolerate a data: URI
        text = "".join(text.split())
        text += "=" * (-len(text) % 4)
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise self._error(f"{label} is not valid base64 ({exc}); the reply was damaged") from None
        if not raw:
            raise self._error(f"{label} decodes to 0 bytes")
        return raw

    @property
    def images(self) -> list[Image.Image]:
        """The output pictures, decoded once (from base64, or from bytes downloaded for ``image_urls``).

        Raises :class:`~volcnb.ProtocolError` naming the entry (``binary_data_base64[1]``) if one is not
        valid base64 or not a decodable picture.
        """
        if self._images_cache is None:
            images: list[Image.Image] = []
            for label, raw in self._sources():
                try:
                    img = Image.open(io.BytesIO(raw))
                    img.load()
                except Exception as exc:  # Pillow raises many types for junk input
                    raise self._error(f"{label} is not a decodable image ({len(raw):,} bytes): {exc}") from None
                images.append(img)
            self._images_cache = images
        return list(self._images_cache)

    @property
    def response_data(self) -> Any:
        """``data.response_data`` decoded from its JSON string (the string itself if it is not JSON)."""
        return _decode_response_data(self.data)

    @property
    def video_url(self) -> str | None:
        """``data.video_url`` for video capabilities, else ``None``."""
        url = self.data.get("video_url")
        return url if isinstance(url, str) and url else None

    # --- saving --------------------------------------------------------------------------------

    def save(self, directory: str | os.PathLike[str], *, prefix: str | None = None) -> list[pathlib.Path]:
        """Write the pictures and a JSON sidecar into ``directory`` (created if needed); return the picture paths.

        Pictures are named ``{prefix}_{i}.png`` (or ``.jpg``), where ``prefix`` defaults to
        ``{req_key}_{task_id}``. PNG and JPEG outputs are written byte for byte as the service sent them
        (never re-encoded); any other format is converted to PNG. ``{prefix}.json`` holds ``req_key``,
        ``task_id``, ``request_id``, ``time_elapsed``, the fetch ``options``, the picture file names and
        ``data`` without the base64 blobs. Files are replaced atomically, so a batch can be re-run over
        the same directory.
        """
        folder = pathlib.Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        stem = _safe_name(prefix if prefix is not None else f"{self.req_key}_{self.task_id}")
        images = self.images  # decode first: a damaged entry fails before anything is written
        paths: list[pathlib.Path] = []
        for i, ((_, raw), img) in enumerate(zip(self._sources(), images, strict=True)):
            fmt = img.format
            if fmt in ("PNG", "JPEG"):
                payload, ext = raw, ".jpg" if fmt == "JPEG" else ".png"
            else:
                payload, ext = png(img), ".png"
            path = folder / f"{stem}_{i}{ext}"
            _atomic_write(path, payload)
            paths.append(path)
        meta = {
            "req_key": self.req_key,
            "task_id": self.task_id,
            "request_id": self.request_id,
            "time_elapsed": self.time_elapsed,
            "options": self.options,
            "images": [p.name for p in paths],
            "data": {k: v for k, v in self.data.items() if k != "binary_data_base64"},
        }
        text = json.dumps(meta, ensure_ascii=False, indent=2, default=_json_default)
        _atomic_write(folder / f"{stem}.json", text.encode("utf-8"))
        return paths

    @classmethod
    def load(cls, sidecar: str | os.PathLike[str], *, input_images: Iterable[Image.Image | None] = ()) -> Result:
        """A result written by :meth:`save`, from its JSON sidecar (the pictures beside it are read as
        saved, decoded only when used): how a batch's results come back from disk."""
        path = pathlib.Path(sidecar)
        meta = json.loads(path.read_text(encoding="utf-8"))
        res = cls.from_data(req_key=meta["req_key"], task_id=meta["task_id"], data=meta.get("data") or {},
                            request_id=meta.get("request_id"), time_elapsed=meta.get("time_elapsed"),
                            input_images=input_images, options=meta.get("options"))
        res._sources_cache = [(name, (path.parent / name).read_bytes()) for name in meta.get("images", [])]
        return res

    # --- display -------------------------------------------------------------------------------

    def _summary(self) -> list[tuple[str, str]]:
        """Extra ``(label, value)`` facts for the text and HTML displays (subclasses add theirs)."""
        return []

    def _image_note(self) -> str:
        try:
            images = self.images
        except VolcError as exc:
            return f"images undecodable: {exc.message}"
        if not images:
            if self.image_urls:
                return f"0 images ({len(self.image_urls)} URL{'s' if len(self.image_urls) != 1 else ''} not downloaded)"
            return "0 images"
        shown = ", ".join(f"{im.width}×{im.height} {im.mode}" for im in images[:3])
        more = f", … +{len(images) - 3}" if len(images) > 3 else ""
        return f"{len(images)} image{'s' if len(images) != 1 else ''} {shown}{more}"

    def __repr__(self) -> str:
        parts = [type(self).__name__, self.req_key, f"task_id={self.task_id}"]
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        parts.append(self._image_note())
        parts += [f"{k}={v}" for k, v in self._summary()]
        return "<" + " ".join(parts) + ">"

    def preview_png(self) -> bytes | None:
        """The first picture (≤ 1024 px), or a thumbnail grid of all of them, as PNG; ``None`` with none.

        Not a ``_repr_png_``: Jupyter would store it beside the HTML card's thumbnails in every notebook."""
        try:
            images = self.images
        except VolcError:
            return None
        if not images:
            return None
        if len(images) == 1:
            return png(thumbnail(images[0], 1024))
        return png(grid([thumbnail(im, THUMB_SIDE) for im in images[:MAX_THUMBS]]))

    def _repr_html_(self) -> str:
        """Thumbnails (≤ 256 px, embedded as data URIs) with captions, plus the task's identifiers."""
        e = html.escape
        head = [f"<b>{e(type(self).__name__)}</b> <code>{e(self.req_key)}</code>",
                f"task_id <code>{e(self.task_id)}</code>"]
        if self.request_id:
            head.append(f"request_id <code>{e(self.request_id)}</code>")
        if self.time_elapsed:
            head.append(f"time_elapsed {e(str(self.time_elapsed))}")
        facts = " · ".join(f"{e(k)} <code>{e(v)}</code>" for k, v in self._summary())
        body: list[str] = []
        try:
            images = self.images
        except VolcError as exc:
            images = []
            body.append(f"<div style='color:#b00'>{e(exc.message)}</div>")
        figures = [figure_html(im, f"#{i} · {im.width}×{im.height} · {im.mode}", side=THUMB_SIDE,
                               alt=f"{self.req_key} output {i}") for i, im in enumerate(images[:MAX_THUMBS])]
        if figures:
            body.append(figures_html(figures))
        if len(images) > MAX_THUMBS:
            body.append(f"<div>… and {len(images) - MAX_THUMBS} more</div>")
        if not images and not body:
            body.append(f"<div>{e(self._image_note())}</div>")
        if self.video_url:
            body.append(f"<div>video_url <code>{e(_short_url(self.video_url))}</code></div>")
        return ("<div class='volcnb-result'>"
                f"<div>{' · '.join(head)}</div>"
                + (f"<div>{facts}</div>" if facts else "")
                + "".join(body) + "</div>")

    # --- pickling ------------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for name in self._CACHES:
            state[name] = None
        return state


# --- helpers ---------------------------------------------------------------------------------------


def _safe_name(stem: str) -> str:
    """A file-name stem with path separators and odd characters replaced."""
    cleaned = re.sub(r"[^\w.\-]+", "_", stem).strip("._")
    return cleaned or "result"


def _atomic_write(path: pathlib.Path, payload: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        # mkstemp creates 0600; a saved result should get the usual permissions (0666 minus the umask).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(obj: object) -> Any:
    to_json = getattr(obj, "to_json", None)
    if callable(to_json):
        return to_json()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


def _short_url(url: str) -> str:
    """A link without its query string (signed links carry tokens there)."""
    return url.split("?", 1)[0]
