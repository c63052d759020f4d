"""What a finished task gave back: :class:`Result` and, for 主体分割/智能分割, :class:`SegmentationResult`.

A result wraps the GetResult ``data`` payload as the service sent it (seed 000's example) and adds what a
notebook user wants from it: decoded pictures (``res.images``), ``res.save(dir)``, a thumbnail grid when it
is the last expression of a cell, and for segmentation the mask, boxes, contours and score.

Payload shapes read here:

* ``binary_data_base64``: list of base64 strings; empty ``""`` entries are skipped (the seed's own
  saliency example has one). ``image_urls``: list of links, ``""`` skipped; when both are present the
  base64 pictures are used and the links are only kept as data.
* ``saliency_seg``: ``bbox`` ``[[x1, y1, x2, y2]]`` and ``seg_score`` ``[s]`` one per *input image*,
  ``contours_point`` ``[image][contour][point] -> [x, y]``, ``ori_width``/``ori_height`` ``[w]``/``[h]``.
* ``entity_seg`` (simulator convention): ``bbox``, ``seg_score`` and ``contours_point`` one per *entity*
  (``[entity][contour][point] -> [x, y]``), ``ori_width``/``ori_height`` a single element.

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
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeGuard

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from ._exceptions import ProtocolError, VolcError
from ._wire import response_data as _decode_response_data
from ._wire import result_images

if TYPE_CHECKING:
    from ._images import ImageInput

__all__ = ["SEGMENTATION_REQ_KEYS", "Result", "SegmentationResult"]

SEGMENTATION_REQ_KEYS = frozenset({"saliency_seg", "entity_seg"})
"""req_keys whose results are :class:`SegmentationResult`."""

THUMB_SIDE = 256
"""Longest side of the thumbnails in the notebook display."""
MAX_THUMBS = 24
"""At most this many thumbnails are shown; the rest are counted."""

BoolMask = npt.NDArray[np.bool_]
Box = tuple[int, int, int, int]
Polygon = list[tuple[int, int]]


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
        """Wrap a GetResult ``data`` payload: a :class:`SegmentationResult` for ``saliency_seg``/``entity_seg``.

        (Called on a subclass, it builds that subclass whatever the ``req_key``.)

        ``downloads`` maps entries of ``data.image_urls`` to their downloaded bytes; they provide
        :attr:`images` when the payload has no base64 pictures (``return_url=True``).
        """
        kind: type[Result] = cls
        if cls is Result and req_key in SEGMENTATION_REQ_KEYS:
            kind = SegmentationResult
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
                payload, ext = _png(img), ".png"
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

    def _repr_png_(self) -> bytes | None:
        """The first picture (≤ 1024 px), or a thumbnail grid of all of them; ``None`` with no pictures."""
        try:
            images = self.images
        except VolcError:
            return None
        if not images:
            return None
        if len(images) == 1:
            return _png(_thumbnail(images[0], 1024))
        return _png(_grid([_thumbnail(im, THUMB_SIDE) for im in images[:MAX_THUMBS]]))

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
        figures = []
        for i, im in enumerate(images[:MAX_THUMBS]):
            thumb = _thumbnail(im, THUMB_SIDE)
            # Photos as JPEG keep the notebook small; masks and cut-outs stay PNG (sharp edges, alpha).
            mime, payload = ("image/jpeg", _jpeg(thumb)) if thumb.mode == "RGB" else ("image/png", _png(thumb))
            uri = f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"
            checker = ("background-image:conic-gradient(#ddd 25%,#fff 0 50%,#ddd 0 75%,#fff 0);"
                       "background-size:16px 16px;") if "A" in thumb.getbands() else ""
            figures.append(
                f"<figure style='margin:0;text-align:center'>"
                f"<img src='{uri}' width='{thumb.width}' height='{thumb.height}' style='{checker}' "
                f"alt='{e(self.req_key)} output {i}'/>"
                f"<figcaption style='font-size:smaller'>#{i} · {im.width}×{im.height} · {e(im.mode)}</figcaption>"
                f"</figure>")
        if figures:
            body.append("<div style='display:flex;flex-wrap:wrap;gap:8px;align-items:flex-end'>"
                        + "".join(figures) + "</div>")
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


class SegmentationResult(Result):
    """A 主体分割 (``saliency_seg``) or 智能分割 (``entity_seg``) result: mask, boxes, contours, score.

    Coordinates are original-image pixels. :attr:`mask` is rasterised from ``contours_point`` at
    ``ori_width × ori_height``; without contours it falls back to a mask picture among the outputs.
    """

    _CACHES: ClassVar[tuple[str, ...]] = (*Result._CACHES, "_mask_cache")
    _mask_cache: BoolMask | None = None

    @property
    def is_entity(self) -> bool:
        """True for ``entity_seg``: boxes, contours and scores are per entity, not per input image."""
        return self.req_key == "entity_seg"

    # --- parsed payload ------------------------------------------------------------------------

    def _groups(self) -> list[list[Polygon]]:
        """``contours_point`` as ``[group][contour] -> [(x, y), ...]`` (group = input image or entity)."""
        raw: Any = self.data.get("contours_point")
        depth = _depth(raw)
        if depth == -1:  # absent, or only empty lists: no contours
            return []
        # Normalise a flatter payload (one image's contours, or a single polygon) to the documented nesting.
        if depth == 3:
            raw = [raw]
        elif depth == 2:
            raw = [[raw]]
        elif depth != 4:
            raise self._error(f"data.contours_point should nest [image][contour][point][x, y]; got depth {depth}")
        groups: list[list[Polygon]] = []
        for g, group in enumerate(raw):
            contours: list[Polygon] = []
            for c, contour in enumerate(group or []):
                poly: Polygon = []
                for p, point in enumerate(contour or []):
                    if not (isinstance(point, (list, tuple)) and len(point) >= 2 and _is_num(point[0])
                            and _is_num(point[1])):
                        raise self._error(f"data.contours_point[{g}][{c}][{p}] should be [x, y], got {point!r}")
                    poly.append((round(point[0]), round(point[1])))
                contours.append(poly)
            groups.append(contours)
        return groups

    @property
    def contours(self) -> list[Polygon]:
        """Polygons ``[(x, y), ...]``: of the first input image (saliency), or of all entities (entity_seg)."""
        groups = self._groups()
        if self.is_entity:
            return [poly for group in groups for poly in group]
        return groups[0] if groups else []

    @property
    def bboxes(self) -> list[Box]:
        """Every ``(x1, y1, x2, y2)`` box in ``data.bbox`` (one per input image, or per entity)."""
        raw = self.data.get("bbox") or []
        if raw and isinstance(raw, list) and len(raw) == 4 and all(_is_num(v) for v in raw):
            raw = [raw]  # a single box, not wrapped
        boxes: list[Box] = []
        for i, box in enumerate(raw if isinstance(raw, list) else []):
            if box is None or box == []:
                continue
            if not (isinstance(box, (list, tuple)) and len(box) == 4 and all(_is_num(v) for v in box)):
                raise self._error(f"data.bbox[{i}] should be [x1, y1, x2, y2], got {box!r}")
            x1, y1, x2, y2 = (round(v) for v in box)
            boxes.append((x1, y1, x2, y2))
        return boxes

    @property
    def bbox(self) -> Box | None:
        """The first box, ``(x1, y1, x2, y2)``, or ``None``."""
        boxes = self.bboxes
        return boxes[0] if boxes else None

    @property
    def scores(self) -> list[float]:
        """``data.seg_score`` (one per input image, or per entity)."""
        raw = self.data.get("seg_score")
        if _is_num(raw):
            return [float(raw)]
        return [float(s) for s in (raw if isinstance(raw, list) else []) if _is_num(s)]

    @property
    def score(self) -> float | None:
        """The first ``seg_score``, or ``None``."""
        scores = self.scores
        return scores[0] if scores else None

    @property
    def ori_size(self) -> tuple[int, int] | None:
        """``(width, height)`` of the original image from ``ori_width``/``ori_height``, else ``None``."""
        w, h = _first_num(self.data.get("ori_width")), _first_num(self.data.get("ori_height"))
        if w is None or h is None or w <= 0 or h <= 0:
            return None
        return int(w), int(h)

    def _canvas_size(self) -> tuple[int, int]:
        size = self.ori_size
        if size is not None:
            return size
        first = self.input_images[0] if self.input_images else None
        if first is not None:
            return first.size
        images = self.images
        if images:
            return images[0].size
        raise ValueError("the original image size is unknown: no ori_width/ori_height, no input image, no output")

    # --- masks ---------------------------------------------------------------------------------

    @property
    def mask(self) -> BoolMask:
        """``bool`` array ``(H, W)`` at the original size: the subject (saliency) or all entities (entity_seg).

        The union of the filled ``contours_point`` polygons (the edge pixels included). Without contours,
        the first output that carries a mask is used: a grey mask picture of the original size, or the
        alpha channel of a full-size (or bbox-cropped) cut-out. Raises ``ValueError`` when neither exists.
        """
        if self._mask_cache is None:
            polys = self.contours
            if any(polys):
                self._mask_cache = _rasterize(polys, self._canvas_size())
            else:
                self._mask_cache = self._mask_from_outputs()
        return self._mask_cache.copy()

    @property
    def masks(self) -> list[BoolMask]:
        """One ``bool`` mask per entity (entity_seg) or per input image (saliency), from the contours."""
        size = self._canvas_size()
        return [_rasterize(group, size) for group in self._groups()]

    def _mask_from_outputs(self) -> BoolMask:
        images = self.images
        size = self._canvas_size()
        threshold = 0 if self.is_entity else 127  # entity label maps hold 1..N; saliency masks 0/255
        grey = [im for im in images if im.mode in ("1", "L", "I", "I;16") and im.size == size]
        if grey:
            out = np.zeros((size[1], size[0]), dtype=bool)
            for im in grey if self.is_entity else grey[:1]:
                out |= np.asarray(im.convert("L")) > threshold
            return out
        for im in images:
            if "A" in im.getbands() and im.size == size:
                return np.asarray(im.getchannel("A")) > 127
        box = self.bbox
        for im in images:
            if box is not None and "A" in im.getbands():
                x1, y1, x2, y2 = box
                if im.size in ((x2 - x1, y2 - y1), (x2 - x1 + 1, y2 - y1 + 1)):
                    out = np.zeros((size[1], size[0]), dtype=bool)
                    alpha = np.asarray(im.getchannel("A")) > 127
                    h = min(alpha.shape[0], size[1] - y1)
                    w = min(alpha.shape[1], size[0] - x1)
                    out[y1:y1 + h, x1:x1 + w] = alpha[:h, :w]
                    return out
        raise ValueError(
            f"this {self.req_key} result has no contours_point and no mask picture to read a mask from "
            "(fetch it with only_mask=1 for saliency_seg, or return_format=0 for entity_seg)")

    # --- pictures ------------------------------------------------------------------------------

    def overlay(self, ax: Any = None, **style: Any) -> Any:
        """Draw the contours and box over the input image (a grey canvas if it is not known).

        Returns what :func:`volcnb.viz.overlay_contours` returns (matplotlib artists).
        """
        from .viz import overlay_contours  # matplotlib is only imported when drawing

        first = self.input_images[0] if self.input_images else None
        canvas = first if first is not None else Image.new("RGB", self._canvas_size(), (128, 128, 128))
        return overlay_contours(canvas, self, ax=ax, **style)

    def cutout(self, image: ImageInput | None = None) -> Image.Image:
        """The input image as RGBA with alpha = :attr:`mask` (transparent outside the subject).

        Uses the submitted image, or ``image`` when given (e.g. after ``Task.attach``). Raises
        ``ValueError`` when no input image is available or its size differs from the mask's.
        """
        if image is not None:
            from ._images import load_image

            source: Image.Image | None = load_image(image)
        else:
            source = self.input_images[0] if self.input_images else None
        if source is None:
            raise ValueError(
                "cutout() needs the input image, and this result has none (the task was submitted by URL or "
                "re-attached); pass it: res.cutout(image)")
        mask = self.mask
        if source.size != (mask.shape[1], mask.shape[0]):
            raise ValueError(f"the input image is {source.width}×{source.height} px but the mask is "
                             f"{mask.shape[1]}×{mask.shape[0]} px; pass the image that was submitted")
        out = source.convert("RGBA")
        alpha = np.where(mask, np.asarray(out.getchannel("A")), 0).astype(np.uint8)
        out.putalpha(Image.fromarray(alpha))
        return out

    def _summary(self) -> list[tuple[str, str]]:
        facts: list[tuple[str, str]] = []
        try:
            score, boxes, contours = self.score, self.bboxes, self.contours
        except VolcError as exc:
            return [("segmentation", f"unreadable: {exc.message}")]
        if score is not None:
            facts.append(("score", f"{score:.4g}"))
        if self.is_entity:
            facts.append(("entities", str(len(boxes))))
        elif boxes:
            facts.append(("bbox", "(" + ", ".join(str(v) for v in boxes[0]) + ")"))
        facts.append(("contours", str(len(contours))))
        return facts


# --- helpers ---------------------------------------------------------------------------------------


def _is_num(v: object) -> TypeGuard[int | float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _first_num(v: object) -> float | None:
    if isinstance(v, list):
        v = v[0] if v else None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    return None


def _depth(obj: object) -> int:
    """Nesting depth of lists down to the first number (``[[x, y]]`` is 2); ``-1`` when there is no number."""
    d = 0
    while isinstance(obj, (list, tuple)):
        d += 1
        obj = next((o for o in obj if o is not None and o != []), None)
    return d if _is_num(obj) else -1


def _rasterize(polys: Sequence[Polygon], size: tuple[int, int]) -> BoolMask:
    canvas = Image.new("L", size, 0)
    draw = ImageDraw.Draw(canvas)
    for poly in polys:
        if len(poly) >= 3:
            draw.polygon(poly, fill=255, outline=255)
        elif len(poly) == 2:
            draw.line(poly, fill=255)
        elif len(poly) == 1:
            draw.point(poly, fill=255)
    mask: BoolMask = np.asarray(canvas) > 0
    return mask


def _thumbnail(img: Image.Image, side: int) -> Image.Image:
    if img.mode not in ("1", "L", "LA", "RGB", "RGBA", "P"):
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
    elif img.mode == "P":
        img = img.convert("RGBA")
    thumb = img.copy()
    thumb.thumbnail((side, side))
    return thumb


def _grid(thumbs: Sequence[Image.Image], gap: int = 4) -> Image.Image:
    cols = min(len(thumbs), 4)
    rows = (len(thumbs) + cols - 1) // cols
    cw = max(t.width for t in thumbs)
    ch = max(t.height for t in thumbs)
    sheet = Image.new("RGBA", (cols * cw + (cols - 1) * gap, rows * ch + (rows - 1) * gap), (0, 0, 0, 0))
    for i, t in enumerate(thumbs):
        r, c = divmod(i, cols)
        sheet.paste(t.convert("RGBA"), (c * (cw + gap), r * (ch + gap)))
    return sheet


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    if img.mode not in ("1", "L", "LA", "RGB", "RGBA", "P", "I", "I;16"):
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
    img.save(buf, "PNG")
    return buf.getvalue()


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


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
