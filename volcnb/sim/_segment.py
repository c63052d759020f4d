"""Salient-subject and entity segmentation for the simulator (pure functions, no I/O).

This is the *real* algorithm behind the simulated ``saliency_seg`` (主体分割) and
``entity_seg`` (智能分割) capabilities: a classical, training-free pipeline on numpy
and Pillow (plus contourpy for the contours).  It is deterministic.

1. **Working copy.**  The image is converted to RGB and box-downscaled so that its
   longest side is :data:`WORK_SIDE` pixels (tiny images are upscaled to at least
   16 pixels a side), lightly blurred and converted to CIE Lab.
2. **Background ring** (boundary prior).  On a thin outer ring, a whole side whose
   colours the other three sides do not explain is dropped (a subject touching that
   side).  The top and the upper 60 % of the left/right sides form the *anchor*; if
   the bottom edge is mostly unexplained by the anchor (a subject cut by the bottom
   edge, like a portrait's torso), the bottom is left out, and so are the pixels of
   the lower sides that have the dominant colours of the bottom's middle part.  The
   kept ring is then thickened where the thicker strip has the same colours.
3. **Background distance** of every pixel, the minimum of

   * the distance to the colour palette of the ring, preferring *nearby* ring
     segments (16 segments with 8 k-means colours each, plus a penalty growing with
     how much farther a segment is than the nearest one): explains flat, noisy,
     striped and checkered backgrounds and linear gradients;
   * the residual against a robust quadratic colour model ``Lab(x, y)`` fitted to the
     ring: explains smooth gradients whose centre colour never reaches the border;
   * when the ring itself is smooth (a studio-like backdrop): the geodesic distance
     from the ring, where a step costs only the colour change above the ring's own
     noise: explains radial / irregular gradients and vignetting;

   divided by the noise level measured on the ring.
4. **Saliency** ``1 - exp(-d**2 / 2)``, mildly modulated by a centre prior and by the
   spectral residual (Hou & Zhang 2007) of the lightness.
5. **Binarisation.**  Otsu threshold, morphological open/close, hole filling, small
   component removal; then one GrabCut-like colour step without the graph cut:
   foreground (confident, upper Otsu class) and background colour histograms give a
   per-pixel log-likelihood ratio, combined with the saliency and smoothed by a few
   mean-field iterations.
6. **Upsampling.**  Along the edge, a sub-pixel alpha is estimated on the working
   grid with a local linear colour-mixing model; the matte is upsampled bilinearly.
   ``refine_mask`` 1/2 then snap it to the full-resolution image edges with a (fast)
   guided filter, grey or colour guided.
"""

from __future__ import annotations

import colorsys

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from ._seg_geometry import mask_bbox, mask_contours
from ._seg_matte import _upsample_mask
from ._seg_ops import _DOMINANT, WORK_SIDE, BoolArray, FloatArray, Segmentation, _label
from ._seg_saliency import _analyse, _Analysis

__all__ = [
    "WORK_SIDE",
    "entity_colour",
    "Segmentation",
    "mask_bbox",
    "mask_contours",
    "render_entity_outputs",
    "render_saliency_outputs",
    "segment_entities",
    "segment_saliency",
]


# ----------------------------------------------------------------------------
# public segmentation entry points
# ----------------------------------------------------------------------------


def _make_seg(m_small: BoolArray, an: _Analysis, image: Image.Image, refine_mask: int) -> Segmentation:
    mask, soft = _upsample_mask(m_small, an.rgb, image, refine_mask)
    if m_small.any() and (~m_small).any():
        inside = float(an.contrast[m_small].mean())
        outside = float(an.contrast[~an.mask].mean()) if (~an.mask).any() else 1.0
        score = float(np.clip(inside - 0.5 * outside, 0.0, 1.0))
    elif m_small.any():
        score = 0.1
    else:
        score = 0.0
    return Segmentation(mask=mask, soft=soft, bbox=mask_bbox(mask), contours=mask_contours(mask), score=round(score, 4))


def _check_refine(refine_mask: int) -> int:
    if refine_mask not in (0, 1, 2):
        raise ValueError(f"refine_mask must be 0, 1 or 2, got {refine_mask!r}")
    return int(refine_mask)


def _empty_seg(image: Image.Image) -> Segmentation:
    w, h = image.size
    return Segmentation(
        mask=np.zeros((h, w), dtype=bool), soft=np.zeros((h, w), dtype=np.float32), bbox=(0, 0, 0, 0), contours=[], score=0.0
    )


def segment_saliency(image: Image.Image, *, refine_mask: int = 0) -> Segmentation:
    """Segment the salient subject of ``image`` (主体分割, ``saliency_seg``).

    Any Pillow mode is accepted (converted to RGB; transparency is ignored).  The
    dominant object(s) are kept: every connected salient component whose area is at
    least 15 % of the largest one's.  ``refine_mask`` selects the edge refinement:
    0 = sub-pixel matte on the working grid, upsampled bilinearly; 1 = plus a grey
    guided filter at full resolution; 2 = plus a colour guided filter with a larger
    window (follows colour edges more closely, a little slower).  An image without a
    salient subject gives an empty mask, ``bbox == (0, 0, 0, 0)``, no contours and
    ``score == 0``.
    """
    refine = _check_refine(refine_mask)
    if image.width < 1 or image.height < 1:
        raise ValueError("empty image")
    an = _analyse(image)
    labels, n = _label(an.mask)
    if n == 0:
        return _empty_seg(image)
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    areas[0] = 0
    keep = areas >= _DOMINANT * areas.max()
    keep[0] = False
    return _make_seg(keep[labels], an, image, refine)


def segment_entities(image: Image.Image, *, max_entity: int = 20, refine_mask: int = 0) -> list[Segmentation]:
    """Segment the separate salient objects of ``image`` (智能分割, ``entity_seg``).

    Each connected component of the salient mask is one entity (objects that touch
    are one entity); entities are returned largest first, at most ``max_entity`` of
    them (``[]`` when ``max_entity < 1`` or nothing is salient).  ``refine_mask`` has
    the meaning documented in :func:`segment_saliency`.
    """
    refine = _check_refine(refine_mask)
    if max_entity < 1:
        return []
    if image.width < 1 or image.height < 1:
        raise ValueError("empty image")
    an = _analyse(image)
    labels, n = _label(an.mask)
    if n == 0:
        return []
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    order = [int(i) for i in np.argsort(-areas[1:], kind="stable") + 1][:max_entity]
    return [_make_seg(labels == i, an, image, refine) for i in order]


# ----------------------------------------------------------------------------
# output rendering
# ----------------------------------------------------------------------------


def _is_transparent(rgb: tuple[int, int, int]) -> bool:
    return tuple(int(c) for c in rgb) == (-1, -1, -1)


def _bg_colour(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    if _is_transparent(rgb):
        return (255, 255, 255)
    r, g, b = (int(np.clip(int(c), 0, 255)) for c in rgb)
    return (r, g, b)


def _alpha_u8(soft: FloatArray) -> NDArray[np.uint8]:
    out: NDArray[np.uint8] = np.rint(np.clip(soft, 0.0, 1.0) * 255).astype(np.uint8)
    return out


def _rgba_cutout(image: Image.Image, soft: FloatArray, rgb: tuple[int, int, int]) -> Image.Image:
    """Full-size RGBA: the matte as alpha, or blended onto ``rgb`` (alpha 255) if it is a colour."""
    base = np.asarray(image.convert("RGB"), dtype=np.uint8)
    alpha = _alpha_u8(soft)
    if _is_transparent(rgb):
        return Image.fromarray(np.dstack([base, alpha]), mode="RGBA")
    a = alpha.astype(np.float32)[..., None] / 255.0
    comp = np.rint(base * a + np.array(_bg_colour(rgb), dtype=np.float32) * (1 - a)).astype(np.uint8)
    return Image.fromarray(np.dstack([comp, np.full(alpha.shape, 255, dtype=np.uint8)]), mode="RGBA")


def _mask_image(mask: np.ndarray) -> Image.Image:
    return Image.fromarray(np.where(np.asarray(mask, dtype=bool), 255, 0).astype(np.uint8), mode="L")


def render_saliency_outputs(
    image: Image.Image,
    seg: Segmentation,
    *,
    only_mask: int,
    rgb: tuple[int, int, int] = (-1, -1, -1),
) -> list[Image.Image]:
    """Render the images the ``saliency_seg`` service returns for an ``only_mask`` mode.

    * ``0``: the subject cut out and cropped to ``seg.bbox``, one RGBA image with the
      matte as alpha (the service documents "BGRA" because it is OpenCV based; RGBA
      is the same picture once encoded as PNG).
    * ``1``: the mask only, one full-size ``"L"`` image with values 0 / 255.
    * ``2``: the subject composited through the matte, centred, onto a square ``"RGB"``
      canvas of side ``max(bbox width, bbox height)`` filled with ``rgb`` (white when
      ``rgb == (-1, -1, -1)``).
    * ``3``: the full-size RGBA image, background transparent.
    * ``4``: two images, the full-size RGBA of mode 3 and then the mask of mode 1.

    The service documents that the transparent modes (0, 3, 4) need
    ``rgb = [-1, -1, -1]``.  If a real colour is given there, the background is
    *filled* with that colour instead (the matte blended onto it, alpha 255
    everywhere), still as RGBA.  With an empty mask the cropped outputs of modes 0 and
    2 are 1 x 1 pixels (transparent or background-coloured).
    """
    if only_mask not in (0, 1, 2, 3, 4):
        raise ValueError(f"only_mask must be 0..4, got {only_mask!r}")
    if only_mask == 1:
        return [_mask_image(seg.mask)]
    if only_mask in (3, 4):
        full = _rgba_cutout(image, seg.soft, rgb)
        return [full] if only_mask == 3 else [full, _mask_image(seg.mask)]
    x1, y1, x2, y2 = seg.bbox
    empty = x2 <= x1 or y2 <= y1
    if only_mask == 0:
        if empty:
            fill = (0, 0, 0, 0) if _is_transparent(rgb) else (*_bg_colour(rgb), 255)
            return [Image.new("RGBA", (1, 1), fill)]
        return [_rgba_cutout(image, seg.soft, rgb).crop((x1, y1, x2, y2))]
    colour = _bg_colour(rgb)  # only_mask == 2
    if empty:
        return [Image.new("RGB", (1, 1), colour)]
    bw, bh = x2 - x1, y2 - y1
    side = max(bw, bh)
    canvas = Image.new("RGB", (side, side), colour)
    alpha = Image.fromarray(_alpha_u8(seg.soft[y1:y2, x1:x2]), mode="L")
    canvas.paste(image.convert("RGB").crop((x1, y1, x2, y2)), ((side - bw) // 2, (side - bh) // 2), alpha)
    return [canvas]


def entity_colour(i: int) -> tuple[int, int, int]:
    """The preview colour of entity ``i`` (golden-angle hues, deterministic)."""
    r, g, b = colorsys.hsv_to_rgb((i * 0.618033988749895) % 1.0, 0.85, 0.95)
    return (round(r * 255), round(g * 255), round(b * 255))


def render_entity_outputs(image: Image.Image, segs: list[Segmentation], *, return_format: int) -> list[Image.Image]:
    """Render the images the ``entity_seg`` service returns for a ``return_format``.

    ``segs`` is the list from :func:`segment_entities` (largest first); "entity ``i``"
    below is ``segs[i]``, 0-based.

    * ``0``: one full-size ``"L"`` mask (0 / 255) per entity.
    * ``1``: one full-size ``"L"`` label map: 0 = background, ``i + 1`` = entity ``i``
      (capped at 255; where entities overlap, the larger one wins).
    * ``2``: one RGBA cut-out per entity, cropped to its bbox, background transparent.
    * ``3``: one ``"RGB"`` preview: the image with each entity tinted 50 % in
      :func:`entity_colour` ``(i)`` and outlined by its contours in that colour.
    * ``4``: the masks of format 0 followed by the cut-outs of format 2
      (``2 * len(segs)`` images).

    With no entities, formats 0, 2 and 4 give ``[]``, format 1 an all-zero label map
    and format 3 the unmodified image.
    """
    if return_format not in (0, 1, 2, 3, 4):
        raise ValueError(f"return_format must be 0..4, got {return_format!r}")
    w, h = image.size
    if return_format == 0:
        return [_mask_image(s.mask) for s in segs]
    if return_format == 1:
        labels = np.zeros((h, w), dtype=np.uint8)
        for i in range(len(segs) - 1, -1, -1):
            labels[segs[i].mask] = min(i + 1, 255)
        return [Image.fromarray(labels, mode="L")]
    if return_format == 2:
        return [render_saliency_outputs(image, s, only_mask=0)[0] for s in segs]
    if return_format == 3:
        base = np.asarray(image.convert("RGB"), dtype=np.float32).copy()
        for i in range(len(segs) - 1, -1, -1):
            m = segs[i].mask
            base[m] = base[m] * 0.5 + np.array(entity_colour(i), dtype=np.float32) * 0.5
        out = Image.fromarray(np.rint(base).astype(np.uint8), mode="RGB")
        draw = ImageDraw.Draw(out)
        lw = max(1, round(max(w, h) / 400))
        for i, s in enumerate(segs):
            for poly in s.contours:
                pts = [(p[0], p[1]) for p in poly]
                draw.line([*pts, pts[0]], fill=entity_colour(i), width=lw)
        return [out]
    return [_mask_image(s.mask) for s in segs] + [render_saliency_outputs(image, s, only_mask=0)[0] for s in segs]
