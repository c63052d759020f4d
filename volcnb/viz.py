"""Pictures of results: contour overlays, masks, watermark comparisons and grids.

Two families, as in matplotlib's own advice for plotting helpers:

* **matplotlib** (:func:`overlay_contours`, :func:`show_mask`, :func:`show_segmentation`,
  :func:`compare_watermarks`, :func:`compare`): take ``ax=None``/``axes=None`` and return the artists or
  the figure. They never call ``plt.show()`` and never touch pyplot's global state: without ``ax`` they
  draw on a fresh :class:`matplotlib.figure.Figure` (not a pyplot figure), which Jupyter shows inline
  when it is the value of a cell (the returned figure, or artist list, has a ``_repr_png_``).
* **Pillow only** (:func:`overlay_contours_image`): returns a ``PIL.Image`` without importing
  matplotlib, for the CLI, the demo and thumbnails.

Colours: one per object (the subject for ``saliency_seg``, each entity for ``entity_seg``) from
:data:`PALETTE`: bright lines over a thin dark halo, so they read on dark and light pictures alike.

Chinese labels (``右下 bottom-right · 中文``) use volcnb's shipped CJK font
(:func:`volcnb._font.use_in_matplotlib`), passed per text, so ``rcParams`` stay untouched.
"""

from __future__ import annotations

import asyncio
import io
import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageColor, ImageDraw

from ._wire import LogoInfo

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ._results import Result, SegmentationResult
    from ._tasks import Task

__all__ = [
    "HALO",
    "LANGUAGE_LABELS",
    "PALETTE",
    "POSITION_LABELS",
    "Artists",
    "acompare_watermarks",
    "compare",
    "compare_watermarks",
    "overlay_contours",
    "overlay_contours_image",
    "show_mask",
    "show_segmentation",
]

PALETTE: tuple[str, ...] = (
    "#00e676", "#ff9100", "#2979ff", "#f50057", "#ffea00", "#00e5ff", "#d500f9", "#76ff03", "#ff3d00",
    "#651fff", "#1de9b6", "#ffc400",
)
"""Default object colours: bright and saturated, each outlined by a dark halo (see :data:`HALO`)."""

HALO = (0, 0, 0, 0.55)
"""Colour of the thin outline under each contour (RGBA, 0..1): keeps bright lines readable on white."""

POSITION_LABELS: dict[int, str] = {0: "右下 bottom-right", 1: "左下 bottom-left", 2: "左上 top-left",
                                   3: "右上 top-right"}
"""``logo_info.position`` codes as the grid labels them."""

LANGUAGE_LABELS: dict[int, str] = {0: "中文", 1: "English"}
"""``logo_info.language`` codes as the grid labels them."""

PANEL_INCHES = 3.2
"""Width of one panel in the grids, inches."""

_GREY = (128, 128, 128)
Polygon = list[tuple[int, int]]
Box = tuple[int, int, int, int]


class Artists(list["Artist"]):
    """The artists a plotting helper drew, plus the ``figure`` they are on.

    A plain list otherwise. When the helper made the figure itself (no ``ax`` given), the list displays
    as that figure in Jupyter (``_repr_png_``); when you passed ``ax``, your figure is shown as usual.
    """

    def __init__(self, artists: Sequence[Artist], figure: Any, *, owns_figure: bool) -> None:
        super().__init__(artists)
        self.figure = figure
        """The :class:`~matplotlib.figure.Figure` drawn on."""
        self.owns_figure = owns_figure
        """Whether the helper created the figure (then it is displayed with the list)."""

    def _repr_png_(self) -> bytes | None:
        if not self.owns_figure:
            return None
        return _figure_png(self.figure)


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
    groups = result._groups()
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
    return result._canvas_size()


def _base_image(image: Any, result: Result) -> Image.Image | None:
    if image is None:
        first = result.input_images[0] if result.input_images else None
        return first
    if isinstance(image, Image.Image):
        return image
    from ._images import load_image

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
        polys = [_scaled(c, scale) for c in obj.contours if len(c) >= 3]
        if polys:
            canvas = Image.new("L", size, 0)
            draw = ImageDraw.Draw(canvas)
            for poly in polys:
                draw.polygon(poly, fill=255, outline=255)
            out.append(np.asarray(canvas) > 0)
        elif obj.mask is not None:
            m = Image.fromarray(obj.mask.astype(np.uint8) * 255)
            if m.size != size:
                m = m.resize(size, Image.Resampling.NEAREST)
            out.append(np.asarray(m) > 0)
        else:
            out.append(None)
    return out


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
    from ._font import load_font

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
        layer = np.zeros((out.height, out.width, 4), np.uint8)
        for i, m in enumerate(_object_masks(objs, out.size, scale)):
            if m is not None:
                layer[m] = _rgba(palette[i % len(palette)], alpha)
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
    draw = ImageDraw.Draw(out)
    if bbox:
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
    return out if keep_alpha else out.convert("RGB")


# --- matplotlib helpers -----------------------------------------------------------------------------


def _figure_class() -> type[Figure]:
    from matplotlib.figure import Figure

    class VolcnbFigure(Figure):
        """A :class:`~matplotlib.figure.Figure` that shows itself inline in Jupyter (``_repr_png_``),
        whether or not pyplot was ever imported."""

        results: list[Any]
        """What the figure shows, when a helper keeps it (``compare_watermarks``: ``(LogoInfo, Result)``)."""

        def _repr_png_(self) -> bytes:
            return _figure_png(self)

    return VolcnbFigure


_FIGURE_CLASS: type[Figure] | None = None


def _new_figure(figsize: tuple[float, float], **kwargs: Any) -> Figure:
    """A figure outside pyplot, with an Agg canvas (so it can be drawn and saved at once)."""
    global _FIGURE_CLASS
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if _FIGURE_CLASS is None:
        _FIGURE_CLASS = _figure_class()
    fig = _FIGURE_CLASS(figsize=figsize, **kwargs)
    FigureCanvasAgg(fig)
    fig.results = []  # type: ignore[attr-defined]
    return fig


def _figure_png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", dpi=fig.dpi, facecolor="white")
    return buf.getvalue()


def _cjk_family() -> str:
    from ._font import use_in_matplotlib

    return use_in_matplotlib()


def _picture_array(img: Image.Image) -> tuple[npt.NDArray[Any], dict[str, Any]]:
    """Pixels for ``imshow`` and its keyword arguments (greys stay grey, not viridis)."""
    if img.mode in ("1", "L", "I", "I;16", "F"):
        return np.asarray(img.convert("L")), {"cmap": "gray", "vmin": 0, "vmax": 255}
    if img.mode == "LA":
        return np.asarray(img.convert("RGBA")), {}
    if img.mode not in ("RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in img.getbands() or "transparency" in img.info else "RGB")
    return np.asarray(img), {}


def _checker(ax: Axes, extent: tuple[float, float, float, float], cells: int = 16) -> Any:
    w = abs(extent[1] - extent[0])
    h = abs(extent[2] - extent[3])
    nx = cells
    ny = max(1, round(cells * h / max(w, 1e-9)))
    board = (np.add.outer(np.arange(ny), np.arange(nx)) % 2).astype(float) * 0.14 + 0.7  # mid greys: white marks show
    return ax.imshow(board, cmap="gray", vmin=0, vmax=1, extent=extent, interpolation="nearest", zorder=0)


def _show_picture(ax: Axes, img: Image.Image, *, extent: tuple[float, float, float, float] | None = None,
                  label: str = "picture") -> list[Any]:
    """``imshow`` a PIL picture (a checkerboard behind transparency); return the images drawn."""
    arr, kw = _picture_array(img)
    ext = extent if extent is not None else (-0.5, img.width - 0.5, img.height - 0.5, -0.5)
    drawn = []
    if arr.ndim == 3 and arr.shape[2] == 4:
        drawn.append(_checker(ax, ext))
    drawn.append(ax.imshow(arr, extent=ext, interpolation="antialiased", zorder=1, label=label, **kw))
    ax.set_xlim(ext[0], ext[1])
    ax.set_ylim(ext[2], ext[3])
    return drawn


def _bare(ax: Axes) -> None:
    """No ticks, no frame, but labels still work (unlike ``set_axis_off``)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _single_axes(size: tuple[int, int], longest: float = 6.4) -> Axes:
    w, h = size
    k = longest / max(w, h)
    fig = _new_figure((max(1.0, w * k), max(1.0, h * k)), dpi=100)
    return fig.add_axes((0.0, 0.0, 1.0, 1.0))


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

    Usage::

        fig, ax = plt.subplots()
        volcnb.overlay_contours(None, res, ax=ax)
    """
    from matplotlib import patches, patheffects

    base = _base_image(image, result)
    size = _canvas_size(result, base)
    if base is None:
        base = Image.new("RGB", size, _GREY)
    owns = ax is None
    if ax is None:
        ax = _single_axes(size)
        ax.set_axis_off()
    w, h = size
    extent = (-0.5, w - 0.5, h - 0.5, -0.5)
    drawn: list[Any] = _show_picture(ax, base, extent=extent, label="input")
    objs = _objects(result)
    palette = _colors(colors)
    if fill:
        layer = np.zeros((h, w, 4), np.uint8)
        any_mask = False
        for i, m in enumerate(_object_masks(objs, size, (1.0, 1.0))):
            if m is not None:
                layer[m] = _rgba(palette[i % len(palette)], alpha)
                any_mask = True
        if any_mask:
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
        for i, obj in enumerate(objs):
            if obj.box is None:
                continue
            color = palette[i % len(palette)]
            x1, y1, x2, y2 = obj.box
            rect = patches.Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor=color,
                                     linewidth=max(1.0, linewidth * 0.6), linestyle=(0, (4, 2)), zorder=3,
                                     label=f"bbox {i}")
            drawn.append(ax.add_patch(rect))
            if obj.score is not None:
                text = (f"#{i} " if len(objs) > 1 else "") + f"{obj.score:.2f}"
                above = y1 > 0.06 * h
                ink = tuple(v / 255 for v in _ink(color))
                drawn.append(ax.text(x1 - 0.5, y1 - 0.5, text, color=ink, fontsize=8, zorder=4,
                                     va="bottom" if above else "top", ha="left", clip_on=True,
                                     bbox={"facecolor": color, "edgecolor": "none", "pad": 1.5,
                                           "alpha": 0.9}))
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    return Artists(drawn, ax.figure, owns_figure=owns)


def show_mask(result: SegmentationResult, *, ax: Axes | None = None) -> Artists:
    """Show ``result.mask`` (white subject on black) on ``ax``; return the artists (one ``AxesImage``).

    Without ``ax`` a new figure is made (no pyplot); the returned list displays as it in Jupyter.
    """
    mask = result.mask
    h, w = mask.shape
    owns = ax is None
    if ax is None:
        ax = _single_axes((w, h))
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
        new = _new_figure((3 * PANEL_INCHES, PANEL_INCHES * h / w + 0.45), layout="constrained")
        axes = list(new.subplots(1, 3))
    if len(axes) != 3:
        raise ValueError(f"show_segmentation needs 3 axes (input, mask, cut-out), got {len(axes)}")
    fig: Figure = axes[0].figure  # type: ignore[assignment]
    family = _cjk_family()
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
        _show_picture(axes[2], cut, label="cutout")
    else:
        axes[2].text(0.5, 0.5, "no cut-out", ha="center", va="center", transform=axes[2].transAxes)
    axes[2].set_title("cut-out", fontfamily=family, fontsize=10)
    for ax in axes:
        _bare(ax)
    return fig


def _first_image(item: Any) -> Image.Image | None:
    if isinstance(item, Image.Image):
        return item
    if hasattr(item, "images"):
        images = item.images
        return images[0] if images else None
    if hasattr(item, "result") and hasattr(item, "req_key"):  # a Task: its (blocking) result
        return _first_image(item.result())
    raise TypeError(f"compare() takes Results, Tasks or PIL images, not {type(item).__name__}")


def _default_label(item: Any, i: int) -> str:
    key, tid = getattr(item, "req_key", None), getattr(item, "task_id", None)
    if key:
        return f"{key} …{str(tid)[-6:]}" if tid else str(key)
    return f"#{i}"


def compare(results: Sequence[Any], labels: Sequence[str] | None = None, *, ncols: int | None = None) -> Figure:
    """A grid of the first picture of each result (``Result``, finished ``Task`` or PIL image), titled
    by ``labels`` (Chinese is fine); return the figure (new, not pyplot)."""
    items = list(results)
    if not items:
        raise ValueError("compare() needs at least one result")
    if labels is not None and len(labels) != len(items):
        raise ValueError(f"{len(labels)} labels for {len(items)} results")
    images = [_first_image(it) for it in items]
    names = list(labels) if labels is not None else [_default_label(it, i) for i, it in enumerate(items)]
    cols = max(1, min(ncols or min(len(items), 4), len(items)))
    rows = (len(items) + cols - 1) // cols
    aspect = max((im.height / im.width for im in images if im is not None), default=1.0)
    fig = _new_figure((cols * PANEL_INCHES, rows * (PANEL_INCHES * aspect + 0.4)), layout="constrained")
    grid = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    family = _cjk_family()
    for ax, im, name in itertools.zip_longest(grid, images, names):
        if name is None:
            ax.set_visible(False)
            continue
        if im is not None:
            _show_picture(ax, im, label="result")
        else:
            ax.text(0.5, 0.5, "no picture", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(name, fontfamily=family, fontsize=10)
        _bare(ax)
    fig.results = items  # type: ignore[attr-defined]
    return fig


# --- watermarks ---------------------------------------------------------------------------------------


def _row_label(language: int, opacity: float, text: str | None, *, many_opacity: bool, many_text: bool) -> str:
    parts = [LANGUAGE_LABELS.get(language, str(language))]
    if many_opacity:
        parts.append(f"opacity {opacity:g}")
    if many_text:
        parts.append(f"“{text}”" if text else "no custom text")
    return " · ".join(parts)


async def acompare_watermarks(
    task: Task,
    *,
    positions: Sequence[int] = (0, 1, 2, 3),
    languages: Sequence[int] = (0, 1),
    opacities: Sequence[float] = (0.3,),
    texts: Sequence[str | None] = (None,),
    return_url: bool | None = None,
    concurrency: int = 8,
) -> Figure:
    """Fetch the SAME finished task once per watermark combination and lay the pictures out as a grid.

    Every combination of ``positions`` × ``languages`` × ``opacities`` × ``texts`` is one GetResult
    query with its own :class:`~volcnb.LogoInfo` (``await task.fetch(logo_info=...)``), at most
    ``concurrency`` at a time; nothing is ever resubmitted. Columns are positions (``右下 bottom-right``),
    rows the other settings (``中文``/``English``, plus opacity or text when several are given). Waits for
    the task first if it is still running. Returns a new figure (not pyplot); ``fig.results`` holds the
    ``(LogoInfo, Result)`` pairs in grid order (row by row).
    """
    if not positions or not languages or not opacities or not texts:
        raise ValueError("positions, languages, opacities and texts each need at least one value")
    combos = [(lang, op, txt, pos) for lang, op, txt in itertools.product(languages, opacities, texts)
              for pos in positions]
    infos = [LogoInfo(add_logo=True, position=pos, language=lang, opacity=op, logo_text_content=txt)
             for lang, op, txt, pos in combos]
    await task.wait()  # once, so the concurrent fetches below do not each start a wait
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(info: LogoInfo) -> Result:
        async with gate:
            return await task.fetch(logo_info=info, return_url=return_url)

    results = await asyncio.gather(*(one(info) for info in infos))
    return _watermark_grid(task, combos, list(zip(infos, results, strict=True)),
                           ncols=len(positions), opacities=opacities, texts=texts)


def _watermark_grid(task: Task, combos: Sequence[tuple[int, float, str | None, int]],
                    pairs: list[tuple[LogoInfo, Result]], *, ncols: int, opacities: Sequence[float],
                    texts: Sequence[str | None]) -> Figure:
    rows = len(pairs) // ncols
    images = [res.images[0] if res.images else None for _, res in pairs]
    aspect = max((im.height / im.width for im in images if im is not None), default=1.0)
    panel = PANEL_INCHES * (0.85 if ncols > 3 else 1.0)
    fig = _new_figure((ncols * panel + 0.5, rows * panel * aspect + 0.9), layout="constrained")
    grid = fig.subplots(rows, ncols, squeeze=False)
    family = _cjk_family()
    many_op, many_text = len(set(opacities)) > 1, len(set(texts)) > 1
    for k, ((lang, op, txt, pos), im) in enumerate(zip(combos, images, strict=True)):
        r, c = divmod(k, ncols)
        ax = grid[r][c]
        if im is not None:
            _show_picture(ax, im, label="result")
        else:
            ax.text(0.5, 0.5, "no picture", ha="center", va="center", transform=ax.transAxes)
        _bare(ax)
        ax.set_gid(f"position={pos} language={lang} opacity={op:g}")
        if r == 0:
            ax.set_title(POSITION_LABELS.get(pos, str(pos)), fontfamily=family, fontsize=11)
        if c == 0:
            ax.set_ylabel(_row_label(lang, op, txt, many_opacity=many_op, many_text=many_text),
                          fontfamily=family, fontsize=11)
    facts = [f"{task.req_key}", f"task {task.task_id}", f"{len(pairs)} fetches of one task, no resubmit"]
    if not many_op:
        facts.append(f"opacity {opacities[0]:g}")
    if not many_text and texts[0]:
        facts.append(f"text “{texts[0]}”")
    fig.suptitle(" · ".join(facts), fontfamily=family, fontsize=10)
    fig.results = pairs  # type: ignore[attr-defined]
    return fig


def compare_watermarks(
    task: Task,
    *,
    positions: Sequence[int] = (0, 1, 2, 3),
    languages: Sequence[int] = (0, 1),
    opacities: Sequence[float] = (0.3,),
    texts: Sequence[str | None] = (None,),
    return_url: bool | None = None,
    concurrency: int = 8,
) -> Figure:
    """Blocking :func:`acompare_watermarks` (works in scripts and in a notebook cell).

    Usage::

        task = volcnb.submit("saliency_seg", img, only_mask=0)
        volcnb.compare_watermarks(task, positions=(0, 1, 2, 3), languages=(0, 1), opacities=(1.0,))
    """
    from ._sync import run_sync

    return run_sync(acompare_watermarks(task, positions=positions, languages=languages, opacities=opacities,
                                        texts=texts, return_url=return_url, concurrency=concurrency))
