"""Matplotlib figures outside pyplot, shared by the plots: new figures, pictures on axes, PNG of a figure.

Helpers never call ``plt.show()``: they draw on a fresh :class:`matplotlib.figure.Figure` that Jupyter
shows inline (it has a ``_repr_mimebundle_``); in a script that uses pyplot it is pyplot's current figure.
Chinese labels use volcnb's shipped CJK font, passed per text, so ``rcParams`` stay untouched.
"""

from __future__ import annotations

import io
import pathlib
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from .._font import font_path
from .._pictures import jpeg

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["PANEL_INCHES", "Artists", "bare", "cjk_family", "figure_png", "new_figure", "show_picture",
           "single_axes"]

PANEL_INCHES = 3.2
"""Width of one panel in the grids, inches."""


class Artists(list["Artist"]):
    """The artists a plotting helper drew, plus the ``figure`` they are on.

    A plain list otherwise. When the helper made the figure itself (no ``ax`` given), the list displays
    as that figure in Jupyter; when you passed ``ax``, your figure is shown as usual.
    """

    def __init__(self, artists: Sequence[Artist], figure: Any, *, owns_figure: bool) -> None:
        super().__init__(artists)
        self.figure = figure
        """The :class:`~matplotlib.figure.Figure` drawn on."""
        self.owns_figure = owns_figure
        """Whether the helper created the figure (then it is displayed with the list)."""

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, bytes] | None:
        if not self.owns_figure:
            return None
        return figure_bundle(self.figure)


def _figure_class() -> type[Figure]:
    from matplotlib.figure import Figure

    class VolcnbFigure(Figure):
        """A :class:`~matplotlib.figure.Figure` that shows itself inline in Jupyter,
        whether or not pyplot was ever imported."""

        results: list[Any]
        """What the figure shows, when a helper keeps it (``compare_watermarks``: ``(LogoInfo, Result)``)."""

        def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, bytes]:
            return figure_bundle(self)

    return VolcnbFigure


_FIGURE_CLASS: type[Figure] | None = None


def new_figure(figsize: tuple[float, float], **kwargs: Any) -> Figure:
    """A new figure that shows itself inline in Jupyter.

    In a kernel it stays outside pyplot (so it is displayed exactly once, as the cell's value). In a script
    that imported pyplot it is made through pyplot, so ``plt.savefig`` / ``plt.show`` see it as the
    current figure. Otherwise it gets an Agg canvas (drawn and saved at once).
    """
    global _FIGURE_CLASS
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if _FIGURE_CLASS is None:
        _FIGURE_CLASS = _figure_class()
    pyplot = sys.modules.get("matplotlib.pyplot")
    fig: Figure
    if pyplot is not None and "ipykernel" not in sys.modules:
        fig = pyplot.figure(figsize=figsize, FigureClass=_FIGURE_CLASS, **kwargs)
    else:
        fig = _FIGURE_CLASS(figsize=figsize, **kwargs)
        FigureCanvasAgg(fig)
    fig.results = []  # type: ignore[attr-defined]
    return fig


MAX_INLINE_PNG = 300_000
"""A figure whose PNG is larger than this (photographs) is shown as a JPEG instead: notebooks stay small."""


def figure_bundle(fig: Any) -> dict[str, bytes]:
    """What Jupyter shows for ``fig``: its PNG, or a JPEG (quality 88) when the PNG is over
    :data:`MAX_INLINE_PNG` bytes."""
    data = figure_png(fig)
    if len(data) <= MAX_INLINE_PNG:
        return {"image/png": data}
    with Image.open(io.BytesIO(data)) as im:
        return {"image/jpeg": jpeg(im, 88)}


def figure_png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", dpi=fig.dpi, facecolor="white")
    return buf.getvalue()


_mpl_lock = threading.Lock()
_mpl_family: str | None = None


def cjk_family() -> str:
    """Register the shipped CJK font with matplotlib's ``fontManager`` (once) and return its family name.

    Pass it as ``fontfamily=`` (or put it first in ``rcParams["font.family"]``) so Chinese labels render
    instead of "Glyph ... missing from font" warnings. ``rcParams`` are not touched; thread-safe.
    """
    global _mpl_family
    with _mpl_lock:
        if _mpl_family is not None:
            return _mpl_family
        from matplotlib import font_manager

        path = font_path()
        if not any(pathlib.Path(entry.fname).resolve() == path for entry in font_manager.fontManager.ttflist):
            font_manager.fontManager.addfont(str(path))
        _mpl_family = str(font_manager.FontProperties(fname=str(path)).get_name())
        return _mpl_family


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


def show_picture(ax: Axes, img: Image.Image, *, extent: tuple[float, float, float, float] | None = None,
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


def bare(ax: Axes) -> None:
    """No ticks, no frame, but labels still work (unlike ``set_axis_off``)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def single_axes(size: tuple[int, int], longest: float = 6.4) -> Axes:
    w, h = size
    k = longest / max(w, h)
    fig = new_figure((max(1.0, w * k), max(1.0, h * k)), dpi=100)
    return fig.add_axes((0.0, 0.0, 1.0, 1.0))


