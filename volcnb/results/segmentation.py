"""主体分割 (``saliency_seg``) and 智能分割 (``entity_seg``) results: mask, boxes, contours, score.

Payload shapes read here:

* ``saliency_seg``: ``bbox`` ``[[x1, y1, x2, y2]]`` and ``seg_score`` ``[s]`` one per *input image*,
  ``contours_point`` ``[image][contour][point] -> [x, y]``, ``ori_width``/``ori_height`` ``[w]``/``[h]``.
* ``entity_seg`` (simulator convention): ``bbox``, ``seg_score`` and ``contours_point`` one per *entity*
  (``[entity][contour][point] -> [x, y]``), ``ori_width``/``ori_height`` a single element.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeGuard

import numpy as np
import numpy.typing as npt
from PIL import Image

from .._exceptions import VolcError
from .render import rasterize
from .result import Result

if TYPE_CHECKING:
    from ..protocol.images import ImageInput

__all__ = ["SegmentationResult", "set_overlay_drawer"]

BoolMask = npt.NDArray[np.bool_]
Box = tuple[int, int, int, int]
Polygon = list[tuple[int, int]]

OverlayDrawer = Callable[..., Any]
_drawer: OverlayDrawer | None = None


def set_overlay_drawer(drawer: OverlayDrawer) -> None:
    """Plug in what :meth:`SegmentationResult.overlay` draws with (``volcnb`` plugs in its matplotlib plot).

    The results layer draws no plots itself: plotting lives above it, in the display layer.
    """
    global _drawer
    _drawer = drawer


class SegmentationResult(Result, kind="segmentation"):
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

    @property
    def contour_groups(self) -> list[list[Polygon]]:
        """``contours_point`` as ``[group][contour] -> [(x, y), ...]`` (a group per input image or entity)."""
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
        groups = self.contour_groups
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

    @property
    def canvas_size(self) -> tuple[int, int]:
        """``(width, height)`` of the original picture: ``ori_width``/``ori_height``, else the input, else
        the first output. Raises ``ValueError`` when none is known."""
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
                self._mask_cache = rasterize(polys, self.canvas_size)
            else:
                self._mask_cache = self._mask_from_outputs()
        result: BoolMask = self._mask_cache.copy()
        return result

    @property
    def masks(self) -> list[BoolMask]:
        """One ``bool`` mask per entity (entity_seg) or per input image (saliency), from the contours."""
        size = self.canvas_size
        return [rasterize(group, size) for group in self.contour_groups]

    def _mask_from_outputs(self) -> BoolMask:
        images = self.images
        size = self.canvas_size
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

        Returns what :func:`volcnb.overlay_contours` returns (matplotlib artists); ``style`` goes to it.
        """
        if _drawer is None:
            raise RuntimeError("no overlay drawer is plugged in; import volcnb (it plugs in its plots)")
        first = self.input_images[0] if self.input_images else None
        canvas = first if first is not None else Image.new("RGB", self.canvas_size, (128, 128, 128))
        return _drawer(canvas, self, ax=ax, **style)

    def cutout(self, image: ImageInput | None = None) -> Image.Image:
        """The input image as RGBA with alpha = :attr:`mask` (transparent outside the subject).

        Uses the submitted image, or ``image`` when given (e.g. after ``Task.attach``). Raises
        ``ValueError`` when no input image is available or its size differs from the mask's.
        """
        if image is not None:
            from ..protocol.images import load_image

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
