"""Pictures of segmentation results: contour overlays (Pillow or matplotlib), masks, side-by-side panels.

One colour per object (the subject for ``saliency_seg``, each entity for ``entity_seg``) from
:data:`PALETTE`: bright lines over a thin dark halo, so they read on dark and light pictures alike. The
matplotlib helpers take ``ax=None`` and return the artists or the figure (see :mod:`.figures`);
:func:`overlay_contours_image` is Pillow only, for the CLI, the demo and thumbnails.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageColor, ImageDraw

from ..results.render import rasterize
from .figures import PANEL_INCHES, Artists, bare, cjk_family, new_figure, show_picture, single_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..results import Result, SegmentationResult

__all__ = ["HALO", "PALETTE", "overlay_contours", "overlay_contours_image", "show_mask", "show_segmentation"]

PALETTE: tuple[str, ...] = (
    "#00e676", "#ff9100", "#2979ff", "#f50057", "#ffea00", "#00e5ff", "#d500f9", "#76ff03", "#ff3d00",
    "#651fff", "#1de9b6", "#ffc400",
)
"""Default object colours: bright and saturated, each outlined by a dark halo (see :data:`HALO`)."""

HALO = (0, 0, 0, 0.55)
"""Colour of the thin outline under each contour (RGBA, 0..1): keeps bright lines readable on white."""

_GREY = (128, 128, 128)
Polygon = list[tuple[int, int]]
Box = tuple[int, int, int, int]


# --- the objects of a result ---------------------------------------------------------------------


class _Object:
    __slots__ = ("box", "contours", "mask", "score")

    def __init__(self, contours: list[Polygon], box: Box | None, score: float | None,
                 mask: npt.NDArray[np.bool_] | None = None) -> None:
        self.contours = contours
        self.box = box
        self.score = score
        self.mask = mask


def _objects(result: SegmentationResult) -> list[_Object]:
    """One entry per drawn object: the subject of the first input image, or every entity."""
    groups = result.contour_groups
    boxes, scores = result.bboxes, result.scores
    if result.is_entity:
        n = max(len(groups), len(boxes))
        return [_Object(groups[i] if i < len(groups) else [], boxes[i] if i < len(boxes) else None,
                        scores[i] if i < len(scores) else None) for i in range(n)]
    contours = groups[0] if groups else []
    obj = _Object(contours, boxes[0] if boxes else None, scores[0] if scores else None)
    if not any(len(c) >= 2 for c in contours):
        try:  # no contours: fill from the mask picture, if any
            obj.mask = result.mask
        except ValueError:
            obj.mask = None
    return [obj]


def _canvas_size(result: SegmentationResult, image: Image.Image | None) -> tuple[int, int]:
    size = result.ori_size
    if size is not None:
        return size
    if image is not None:
        return image.size
    return result.canvas_size


def _base_image(image: Any, result: Result) -> Image.Image | None:
    if image is None:
        first = result.input_images[0] if result.input_images else None
        return first
    if isinstance(image, Image.Image):
        return image
    from ..protocol.images import load_image

    loaded: Image.Image = load_image(image)
    return loaded


def _rgba(color: Any, alpha: float = 1.0) -> tuple[int, int, int, int]:
    if isinstance(color, str):
        rgb: Sequence[int] = ImageColor.getrgb(color)
    else:  # an (r, g, b) tuple: 0..1 floats (matplotlib) or 0..255 ints (Pillow)
        rgb = [int(round(v * 255)) if isinstance(v, float) and v <= 1.0 else int(v) for v in list(color)[:3]]
    return int(rgb[0]), int(rgb[1]), int(rgb[2]), int(round(alpha * 255))


def _ink(color: Any) -> tuple[int, int, int, int]:
    """Black or white, whichever reads better on ``color`` (for the score tags)."""
    r, g, b, _ = _rgba(color)
    return (0, 0, 0, 255) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255, 255)


def _colors(colors: Sequence[Any] | None) -> list[Any]:
    return list(colors) if colors else list(PALETTE)


def _object_masks(objs: Sequence[_Object], size: tuple[int, int], scale: tuple[float, float]
                  ) -> list[npt.NDArray[np.bool_] | None]:
    """Filled polygons (or the fallback mask) per object, at ``size``."""
    out: list[npt.NDArray[np.bool_] | None] = []
    for obj in objs:
        polys = [c for c in obj.contours if len(c) >= 3]
        if polys:
            out.append(rasterize(polys, size, scale))
        elif obj.mask is not None:
            m = Image.fromarray(obj.mask.astype(np.uint8) * 255)
            if m.size != size:
                m = m.resize(size, Image.Resampling.NEAREST)
            out.append(np.asarray(m) > 0)
        else:
            out.append(None)
    return out


def _fill_layer(objs: Sequence[_Object], palette: Sequence[Any], size: tuple[int, int],
                scale: tuple[float, float], alpha: float) -> npt.NDArray[np.uint8] | None:
    """An RGBA layer tinting each object's mask in its colour, or ``None`` when no object has a mask."""
    layer = np.zeros((size[1], size[0], 4), np.uint8)
    found = False
    for i, m in enumerate(_object_masks(objs, size, scale)):
        if m is not None:
            layer[m] = _rgba(palette[i % len(palette)], alpha)
            found = True
    return layer if found else None


def _scaled(poly: Polygon, scale: tuple[float, float]) -> list[tuple[float, float]]:
    sx, sy = scale
    return [(x * sx, y * sy) for x, y in poly]


# --- Pillow ---------------------------------------------------------------------------------------


def overlay_contours_image(
    image: Any,
    result: SegmentationResult,
    *,
    fill: bool = True,
    alpha: float = 0.35,
    bbox: bool = True,
    colors: Sequence[Any] | None = None,
    linewidth: float = 2,
    halo: bool = True,
) -> Image.Image:
    """Draw ``result``'s contours (and boxes) over ``image`` with Pillow; return a new picture.

    ``image`` may be ``None`` (the submitted input, or a grey canvas), a PIL image, a path or bytes. It
    may be a resized copy of the original: coordinates are scaled to it. ``linewidth`` is in pixels for
    a picture up to 500 px and grows with larger ones, so outlines stay visible. ``colors`` gives one
    colour per object (default :data:`PALETTE`); ``halo`` draws a thin dark outline under each contour.
    The result is RGB (RGBA if ``image`` has transparency). No matplotlib involved.
    """
    base = _base_image(image, result)
    size = _canvas_size(result, base)
    if base is None:
        base = Image.new("RGB", size, _GREY)
    keep_alpha = "A" in base.getbands() or base.mode == "P" and "transparency" in base.info
    out = base.convert("RGBA")
    scale = (out.width / size[0], out.height / size[1])
    objs = _objects(result)
    palette = _colors(colors)
    width = max(1, round(linewidth * max(1.0, max(out.size) / 500)))

    if fill:
        layer = _fill_layer(objs, palette, out.size, scale, alpha)
        if layer is not None:
            out = Image.alpha_composite(out, Image.fromarray(layer, "RGBA"))

    # Lines go on their own layer, composited once: ImageDraw writes RGBA pixels, it does not blend them.
    lines = Image.new("RGBA", out.size, (0, 0, 0, 0))
    pen = ImageDraw.Draw(lines)
    rings = [(i, [*pts, pts[0]] if len(pts) >= 3 else pts)
             for i, obj in enumerate(objs) for pts in (_scaled(c, scale) for c in obj.contours) if len(pts) >= 2]
    if halo:
        shade = _rgba(HALO[:3], HALO[3])
        for _, ring in rings:
            pen.line(ring, fill=shade, width=width + 2, joint="curve")
    for i, ring in rings:
        pen.line(ring, fill=_rgba(palette[i % len(palette)]), width=width, joint="curve")
    out = Image.alpha_composite(out, lines)
    if bbox:
        _pil_boxes(out, objs, palette, scale, width)
    return out if keep_alpha else out.convert("RGB")


def _pil_boxes(out: Image.Image, objs: Sequence[_Object], palette: Sequence[Any], scale: tuple[float, float],
               width: int) -> None:
    """Boxes and score tags, drawn on ``out`` in place."""
    from .._font import load_font

    draw = ImageDraw.Draw(out)
    font = load_font(max(10, round(11 * max(1.0, max(out.size) / 500))))
    for i, obj in enumerate(objs):
        if obj.box is None:
            continue
        color = _rgba(palette[i % len(palette)])
        x1, y1, x2, y2 = obj.box
        rect = (x1 * scale[0], y1 * scale[1], max(x1, x2 - 1) * scale[0], max(y1, y2 - 1) * scale[1])
        draw.rectangle(rect, outline=color, width=max(1, width // 2))
        if obj.score is not None:
            text = (f"#{i} " if len(objs) > 1 else "") + f"{obj.score:.2f}"
            left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
            pad = 2
            tx = min(max(0.0, rect[0]), out.width - (right - left) - 2 * pad)
            ty = rect[1] - (bottom - top) - 2 * pad - 1
            if ty < 0:  # no room above the box: put the tag inside it
                ty = rect[1] + 1
            draw.rectangle((tx, ty, tx + (right - left) + 2 * pad, ty + (bottom - top) + 2 * pad), fill=color)
            draw.text((tx + pad - left, ty + pad - top), text, font=font, fill=_ink(color))


# --- matplotlib -------------------------------------------------------------------------------------


def overlay_contours(
    image: Any,
    result: SegmentationResult,
    *,
    ax: Axes | None = None,
    fill: bool = True,
    alpha: float = 0.35,
    bbox: bool = True,
    colors: Sequence[Any] | None = None,
    linewidth: float = 2,
) -> Artists:
    """Draw the input picture with ``result``'s contours, mask fill and boxes on ``ax``; return the artists.

    ``image``: the picture to draw under the contours (PIL image, path, bytes), ``None`` for the submitted
    input (or a grey canvas when it is unknown); a resized copy is fine, it is stretched to the original
    coordinates. One colour per object from ``colors`` (default :data:`PALETTE`): the subject for
    ``saliency_seg``, each entity for ``entity_seg``. ``fill`` tints each object's mask at ``alpha``;
    ``bbox`` adds dashed boxes tagged with the score. ``linewidth`` is in points.

    Without ``ax`` a new figure is made (no pyplot); the returned :class:`Artists` list has ``.figure``
    and displays as the picture in Jupyter. Order: the picture, the fill, then contours, boxes, tags.
    Usage: ``fig, ax = plt.subplots(); volcnb.overlay_contours(None, res, ax=ax)``.
    """
    from matplotlib import patches, patheffects

    base = _base_image(image, result)
    size = _canvas_size(result, base)
    if base is None:
        base = Image.new("RGB", size, _GREY)
    owns = ax is None
    if ax is None:
        ax = single_axes(size)
        ax.set_axis_off()
    w, h = size
    extent = (-0.5, w - 0.5, h - 0.5, -0.5)
    drawn: list[Any] = show_picture(ax, base, extent=extent, label="input")
    objs = _objects(result)
    palette = _colors(colors)
    if fill:
        layer = _fill_layer(objs, palette, size, (1.0, 1.0), alpha)
        if layer is not None:
            drawn.append(ax.imshow(layer, extent=extent, interpolation="nearest", zorder=2, label="fill"))
    halo = [patheffects.withStroke(linewidth=linewidth + 1.5, foreground=HALO)]
    for i, obj in enumerate(objs):
        color = palette[i % len(palette)]
        for contour in obj.contours:
            if len(contour) < 2:
                continue
            poly = patches.Polygon(np.asarray(contour, float), closed=len(contour) >= 3, fill=False,
                                   edgecolor=color, linewidth=linewidth, joinstyle="round", zorder=3,
                                   path_effects=halo, label=f"contour {i}")
            drawn.append(ax.add_patch(poly))
    if bbox:
        drawn += _mpl_boxes(ax, objs, palette, linewidth, h)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    return Artists(drawn, ax.figure, owns_figure=owns)


def _mpl_boxes(ax: Axes, objs: Sequence[_Object], palette: Sequence[Any], linewidth: float, h: int) -> list[Any]:
    """Dashed boxes and score tags on ``ax``; return the artists."""
    from matplotlib import patches

    out: list[Any] = []
    for i, obj in enumerate(objs):
        if obj.box is None:
            continue
        color = palette[i % len(palette)]
        x1, y1, x2, y2 = obj.box
        rect = patches.Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor=color,
                                 linewidth=max(1.0, linewidth * 0.6), linestyle=(0, (4, 2)), zorder=3,
                                 label=f"bbox {i}")
        out.append(ax.add_patch(rect))
        if obj.score is not None:
            text = (f"#{i} " if len(objs) > 1 else "") + f"{obj.score:.2f}"
            above = y1 > 0.06 * h
            ink = tuple(v / 255 for v in _ink(color))
            out.append(ax.text(x1 - 0.5, y1 - 0.5, text, color=ink, fontsize=8, zorder=4,
                                 va="bottom" if above else "top", ha="left", clip_on=True,
                                 bbox={"facecolor": color, "edgecolor": "none", "pad": 1.5,
                                       "alpha": 0.9}))
    return out


def show_mask(result: SegmentationResult, *, ax: Axes | None = None) -> Artists:
    """Show ``result.mask`` (white subject on black) on ``ax``; return the artists (one ``AxesImage``).

    Without ``ax`` a new figure is made (no pyplot); the returned list displays as it in Jupyter.
    """
    mask = result.mask
    h, w = mask.shape
    owns = ax is None
    if ax is None:
        ax = single_axes((w, h))
        ax.set_axis_off()
    im = ax.imshow(mask.astype(np.uint8), cmap="gray", vmin=0, vmax=1, interpolation="nearest",
                   extent=(-0.5, w - 0.5, h - 0.5, -0.5), label="mask")
    return Artists([im], ax.figure, owns_figure=owns)


def show_segmentation(result: SegmentationResult, *, image: Any = None, axes: Sequence[Axes] | None = None
                      ) -> Figure:
    """Input with contours, mask and cut-out side by side; return the figure.

    ``image`` is the original picture when the result does not carry it (``Task.attach``, URL inputs);
    without any, the input panel is a grey canvas and the cut-out is the service's own (if it sent one).
    ``axes``: three axes to draw on (else a new figure, no pyplot).
    """
    base = _base_image(image, result)
    size = _canvas_size(result, base)
    if axes is None:
        w, h = size
        new = new_figure((3 * PANEL_INCHES, PANEL_INCHES * h / w + 0.45), layout="constrained")
        axes = list(new.subplots(1, 3))
    if len(axes) != 3:
        raise ValueError(f"show_segmentation needs 3 axes (input, mask, cut-out), got {len(axes)}")
    fig: Figure = axes[0].figure  # type: ignore[assignment]
    family = cjk_family()
    overlay_contours(base, result, ax=axes[0])
    score = f" · score {result.score:.3f}" if result.score is not None else ""
    axes[0].set_title(f"input + contours{score}", fontfamily=family, fontsize=10)
    show_mask(result, ax=axes[1])
    axes[1].set_title("mask", fontfamily=family, fontsize=10)
    cut: Image.Image | None = None
    if base is not None:
        try:
            cut = result.cutout(base)
        except ValueError:
            cut = None
    if cut is None:
        cut = next((im for im in result.images if "A" in im.getbands()), None)
    if cut is not None:
        show_picture(axes[2], cut, label="cutout")
    else:
        axes[2].text(0.5, 0.5, "no cut-out", ha="center", va="center", transform=axes[2].transAxes)
    axes[2].set_title("cut-out", fontfamily=family, fontsize=10)
    for ax in axes:
        bare(ax)
    return fig


