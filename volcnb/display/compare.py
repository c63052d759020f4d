"""Grids that compare results: :func:`compare` (any results side by side) and :func:`compare_watermarks`
(one finished task fetched once per watermark setting, never resubmitted)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from .._sync import run_sync
from ..protocol.options import LogoInfo
from ..results import Result
from ..tasks import Task
from .figures import PANEL_INCHES, bare, cjk_family, new_figure, show_picture

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["LANGUAGE_LABELS", "POSITION_LABELS", "compare", "compare_watermarks", "compare_watermarks_async"]

POSITION_LABELS: dict[int, str] = {0: "右下 bottom-right", 1: "左下 bottom-left", 2: "左上 top-left",
                                   3: "右上 top-right"}
"""``logo_info.position`` codes as the grid labels them."""

LANGUAGE_LABELS: dict[int, str] = {0: "中文", 1: "English"}
"""``logo_info.language`` codes as the grid labels them."""


def _first_image(item: Any) -> Image.Image | None:
    if item is None:  # a batch item that did not finish
        return None
    if isinstance(item, Image.Image):
        return item
    if hasattr(item, "images"):
        images = item.images
        return images[0] if images else None
    if hasattr(item, "result") and hasattr(item, "req_key"):  # a Task: its (blocking) result
        return _first_image(item.result())
    raise TypeError(f"compare() takes Results, Tasks or PIL images, not {type(item).__name__}")


LABEL_CHARS = 34
"""A panel title longer than this breaks at its `` · `` separators (it would overlap the next panel)."""


def _wrap(label: str) -> str:
    lines: list[str] = []
    for part in label.split(" · "):
        if lines and len(lines[-1]) + 3 + len(part) <= LABEL_CHARS:
            lines[-1] += " · " + part
        else:
            lines.append(part)
    return "\n".join(lines)


def _default_label(item: Any, i: int) -> str:
    key, tid = getattr(item, "req_key", None), getattr(item, "task_id", None)
    if key:
        return f"{key} …{str(tid)[-6:]}" if tid else str(key)
    return f"#{i}"


def compare(results: Sequence[Any] | Any, labels: Sequence[str] | None = None, *, ncols: int | None = None) -> Figure:
    """A grid of the first picture of each result (``Result``, finished ``Task`` or PIL image), titled
    by ``labels`` (Chinese is fine); return the figure (new, not pyplot). Given a batch from
    :func:`volcnb.sweep`, the panels are labelled by the swept parameters (``cfg=3 · seed=1``); a batch
    still running is waited for first (blocking, also inside a notebook cell)."""
    if hasattr(results, "items") and hasattr(results, "swept"):  # a Batch: label by what a sweep varied
        batch: Any = results
        if not batch.done:
            batch.result()
        if labels is None and batch.swept:
            labels = [" · ".join(f"{k}={i.params.get(k)}" for k in batch.swept) for i in batch.items]
        elif labels is None:
            labels = [i.label for i in batch.items]
        results = batch.results
    items = list(results)
    if not items:
        raise ValueError("compare() needs at least one result")
    if labels is not None and len(labels) != len(items):
        raise ValueError(f"{len(labels)} labels for {len(items)} results")
    images = [_first_image(it) for it in items]
    names = list(labels) if labels is not None else [_default_label(it, i) for i, it in enumerate(items)]
    names = [_wrap(n) for n in names]
    cols = max(1, min(ncols or min(len(items), 4), len(items)))
    rows = (len(items) + cols - 1) // cols
    aspect = max((im.height / im.width for im in images if im is not None), default=1.0)
    title = 0.2 + 0.2 * max(n.count("\n") + 1 for n in names)
    fig = new_figure((cols * PANEL_INCHES, rows * (PANEL_INCHES * aspect + title)), layout="constrained")
    grid = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    family = cjk_family()
    for ax, im, name in itertools.zip_longest(grid, images, names):
        if name is None:
            ax.set_visible(False)
            continue
        if im is not None:
            show_picture(ax, im, label="result")
        else:
            ax.text(0.5, 0.5, "no picture", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(name, fontfamily=family, fontsize=10)
        bare(ax)
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


async def compare_watermarks_async(
    task: Task | Result,
    *,
    positions: Sequence[int] = (0, 1, 2, 3),
    languages: Sequence[int] = (0, 1),
    opacities: Sequence[float] = (0.3,),
    texts: Sequence[str | None] = (None,),
    return_url: bool | None = None,
    concurrency: int = 8,
) -> Figure:
    """Fetch the SAME finished task (a :class:`~volcnb.Task`, or a :class:`~volcnb.Result` whose task is
    re-attached) once per watermark combination and lay the pictures out as a grid.

    Every combination of ``positions`` × ``languages`` × ``opacities`` × ``texts`` is one GetResult
    query with its own :class:`~volcnb.LogoInfo` (``await task.fetch(logo_info=...)``), at most
    ``concurrency`` at a time; nothing is ever resubmitted. Columns are positions (``右下 bottom-right``),
    rows the other settings (``中文``/``English``, plus opacity or text when several are given). Waits for
    the task first if it is still running. Returns a new figure (not pyplot); ``fig.results`` holds the
    ``(LogoInfo, Result)`` pairs in grid order (row by row).
    """
    if not positions or not languages or not opacities or not texts:
        raise ValueError("positions, languages, opacities and texts each need at least one value")
    if isinstance(task, Result):  # a finished result: the same task, re-attached on the default client
        if not task.task_id:
            raise ValueError("compare_watermarks() needs the result's task_id")
        task = Task.attach(task.req_key, task.task_id, display=False)
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
    fig = new_figure((ncols * panel + 0.5, rows * panel * aspect + 0.9), layout="constrained")
    grid = fig.subplots(rows, ncols, squeeze=False)
    family = cjk_family()
    many_op, many_text = len(set(opacities)) > 1, len(set(texts)) > 1
    for k, ((lang, op, txt, pos), im) in enumerate(zip(combos, images, strict=True)):
        r, c = divmod(k, ncols)
        ax = grid[r][c]
        if im is not None:
            show_picture(ax, im, label="result")
        else:
            ax.text(0.5, 0.5, "no picture", ha="center", va="center", transform=ax.transAxes)
        bare(ax)
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
    task: Task | Result,
    *,
    positions: Sequence[int] = (0, 1, 2, 3),
    languages: Sequence[int] = (0, 1),
    opacities: Sequence[float] = (0.3,),
    texts: Sequence[str | None] = (None,),
    return_url: bool | None = None,
    concurrency: int = 8,
) -> Figure:
    """Blocking :func:`compare_watermarks_async` (works in scripts and in a notebook cell).

    Usage::

        task = volcnb.submit("saliency_seg", img, only_mask=0)
        volcnb.compare_watermarks(task, positions=(0, 1, 2, 3), languages=(0, 1), opacities=(1.0,))
    """
    return run_sync(compare_watermarks_async(task, positions=positions, languages=languages, opacities=opacities,
                                        texts=texts, return_url=return_url, concurrency=concurrency))
