"""Pictures of results for HTML and PNG displays: thumbnails, grids, data-URI figures, filled polygons.

One implementation each, used by :class:`Result` displays, the notebook views and the plots.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from .._pictures import jpeg, png, web_mode

__all__ = ["CHECKER_CSS", "data_uri", "figure_html", "figures_html", "grid", "rasterize", "thumbnail"]

BoolMask = npt.NDArray[np.bool_]
Polygon = Sequence[tuple[float, float]]

CHECKER_CSS = ("background-image:conic-gradient(#ddd 25%,#fff 0 50%,#ddd 0 75%,#fff 0);"
               "background-size:16px 16px;")
"""The checkerboard shown behind transparent pictures."""


def thumbnail(img: Image.Image, side: int) -> Image.Image:
    """A copy no larger than ``side`` × ``side``, in a mode every front end shows."""
    thumb = web_mode(img).copy()
    thumb.thumbnail((side, side))
    return thumb


def grid(thumbs: Sequence[Image.Image], gap: int = 4, cols: int = 4) -> Image.Image:
    """Pictures side by side, ``cols`` per row, on a transparent sheet."""
    cols = min(len(thumbs), cols)
    rows = (len(thumbs) + cols - 1) // cols
    cw = max(t.width for t in thumbs)
    ch = max(t.height for t in thumbs)
    sheet = Image.new("RGBA", (cols * cw + (cols - 1) * gap, rows * ch + (rows - 1) * gap), (0, 0, 0, 0))
    for i, t in enumerate(thumbs):
        r, c = divmod(i, cols)
        sheet.paste(t.convert("RGBA"), (c * (cw + gap), r * (ch + gap)))
    return sheet


def data_uri(img: Image.Image) -> str:
    """A ``data:`` URI: JPEG for photos (small notebooks), PNG for masks and transparency (sharp, exact)."""
    if img.mode == "RGB":
        mime, payload = "image/jpeg", jpeg(img)
    else:
        mime, payload = "image/png", png(img)
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def figure_html(img: Image.Image, caption: str, *, side: int = 256, alt: str | None = None) -> str:
    """An inline ``<figure>``: a thumbnail (checkerboard behind transparency) and its caption."""
    thumb = thumbnail(img, side)
    checker = CHECKER_CSS if "A" in thumb.getbands() else ""
    cap = html.escape(caption)
    return (f"<figure style='margin:0;text-align:center'><img src='{data_uri(thumb)}' width='{thumb.width}' "
            f"height='{thumb.height}' style='{checker}' alt='{html.escape(alt or caption)}' title='{cap}'/>"
            f"<figcaption style='font-size:11px;opacity:.8'>{cap}</figcaption></figure>")


def figures_html(figures: Sequence[str], *, extra: str = "") -> str:
    """Figures in one wrapping row."""
    return ("<div class='volcnb-thumbs' style='display:flex;flex-wrap:wrap;gap:8px;align-items:flex-end'>"
            + "".join(figures) + extra + "</div>")


def rasterize(polys: Sequence[Polygon], size: tuple[int, int], scale: tuple[float, float] = (1.0, 1.0)
              ) -> BoolMask:
    """The union of filled polygons (edges included) as a ``bool`` array of ``size`` = (width, height).

    Coordinates are multiplied by ``scale`` first (drawing on a resized picture); polygons of one or two
    points are drawn as a dot or a line.
    """
    canvas = Image.new("L", size, 0)
    draw = ImageDraw.Draw(canvas)
    sx, sy = scale
    for poly in polys:
        pts = [(x * sx, y * sy) for x, y in poly]
        if len(pts) >= 3:
            draw.polygon(pts, fill=255, outline=255)
        elif len(pts) == 2:
            draw.line(pts, fill=255)
        elif len(pts) == 1:
            draw.point(pts, fill=255)
    mask: BoolMask = np.asarray(canvas) > 0
    return mask
