"""A task as text and as an HTML card: the status line, chips, ids, errors, result thumbnails.

Self-contained (inline styles, data-URI images), so cards render in static exports too. Nothing here
sends a request, and no string shown contains a credential: the client's keys are masked in everything
rendered, should a server message ever echo one.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..results import SegmentationResult
from ..results.render import figure_html, figures_html
from .progress import STAGE, bar
from .viz import overlay_contours_image

if TYPE_CHECKING:
    from PIL import Image

    from ..results import Result
    from ..tasks import Task

__all__ = ["BAR_STYLES", "COLORS", "LABELS", "TERMINAL", "task_html", "task_line", "thumbnails_html"]

THUMB_SIDE = 160
"""Longest side of the result thumbnails in a view, pixels."""

MAX_THUMBS = 6
"""At most this many result thumbnails in a view."""

LABELS: dict[str, str] = {
    "queued": "waiting (rate limit)", "submitting": "submitting", "in_queue": "queued", "generating": "generating",
    "done": "done",
    "failed": "failed", "cancelled": "cancelled", "not_found": "not found", "expired": "expired",
    "pending": "pending", "invalid": "invalid", "possibly_created": "possibly created",
    "uploaded": "uploaded",
}
"""What the status chip says for each task status."""

BAR_STYLES: dict[str, str] = {
    "queued": "", "submitting": "", "in_queue": "", "generating": "info", "done": "success", "failed": "danger",
    "cancelled": "warning", "not_found": "danger", "expired": "danger", "pending": "", "invalid": "danger",
    "possibly_created": "warning", "uploaded": "info",
}
"""ipywidgets ``bar_style`` per status, in tqdm's convention (red on failure, green on completion)."""

COLORS = {"": "#757575", "info": "#0288d1", "success": "#388e3c", "danger": "#d32f2f", "warning": "#f57c00"}
TERMINAL = frozenset({"done", "failed", "cancelled", "expired", "invalid", "possibly_created"})


def secrets_of(task: Any) -> list[str]:
    """The credential strings of the task's client, to be masked wherever they might show up."""
    creds = getattr(getattr(task, "client", None), "credentials", None)
    found = [getattr(creds, name, None) for name in ("secret_key", "session_token", "access_key")]
    return [s for s in found if isinstance(s, str) and len(s) >= 6]


def scrub(text: str, secrets: Sequence[str]) -> str:
    for s in secrets:
        text = text.replace(s, "***")
    return text


def status_of(task: Any) -> str:
    return str(getattr(task, "status", "submitting"))


def error_text(task: Any) -> str | None:
    err = getattr(task, "error", None)
    if err is None:
        return None
    code = getattr(err, "code", None)
    message = getattr(err, "message", None) or str(err)
    return f"{code}: {message}" if code not in (None, "") else str(message)


def task_line(task: Task) -> str:
    """One plain-text line for ``task``: ``saliency_seg ████░░ done · 1.2 s · 3 polls · task_id … · error``."""
    status = status_of(task)
    parts = [f"{task.req_key} {bar(STAGE.get(status, 0.0), 16)} {LABELS.get(status, status)}", stats(task)]
    if getattr(task, "reconnecting", False):
        parts.append("reconnecting (the service did not answer; retrying until the deadline)")
    parts += [f"{label} {value}" for label, value in _ids(task)]
    err = error_text(task)
    if err:
        parts.append(err)
    return scrub(" · ".join(parts), secrets_of(task))


def chip(status: str) -> str:
    color = COLORS[BAR_STYLES.get(status, "")]
    return (f"<span class='volcnb-chip' style='display:inline-block;min-width:5.5em;text-align:center;"
            f"background:{color};color:#fff;border-radius:9px;padding:0 8px;font-size:12px;line-height:18px'>"
            f"{html.escape(LABELS.get(status, status))}</span>")


def _ids(task: Any) -> list[tuple[str, str]]:
    """``(label, id)`` pairs: a task's task_id and request_id, or what a handle names itself (an upload)."""
    pairs = getattr(task, "id_pairs", None)
    if pairs is not None:
        return list(pairs)
    ids = [("task_id", task.task_id or "(submitting)")]
    return ids + ([("request_id", task.request_id)] if task.request_id else [])


def stats(task: Task) -> str:
    custom = getattr(task, "stats_text", None)
    if custom is not None:  # an upload: bytes sent and where its callback is
        return str(custom())
    polls = task.polls
    text = f"{task.elapsed:.1f} s · {polls} poll{'s' if polls != 1 else ''}"
    return text + " · reconnecting" if getattr(task, "reconnecting", False) else text


def ids_html(task: Task, secrets: Sequence[str]) -> str:
    e = html.escape
    return " · ".join(f"{e(label)} <code>{e(scrub(value, secrets))}</code>" for label, value in _ids(task))


def error_html(task: Task, secrets: Sequence[str]) -> str:
    err = error_text(task)
    if not err:
        return ""
    return (f"<div class='volcnb-error' style='color:{COLORS['danger']};font-size:13px;white-space:pre-wrap'>"
            f"{html.escape(scrub(err, secrets))}</div>")


def thumbnails_html(result: Result, *, limit: int = MAX_THUMBS) -> str:
    """Data-URI thumbnails (≤ 160 px) of a result's pictures, with captions; a segmentation result
    also gets its contour overlay. Never raises: an undecodable result gives a one-line note."""
    figures: list[str] = []
    try:
        images = result.images
    except Exception as exc:  # a damaged payload must not break the view
        return f"<div style='color:{COLORS['danger']}'>{html.escape(str(exc))}</div>"
    for i, im in enumerate(images[:limit]):
        figures.append(figure_html(im, f"#{i} · {im.width}×{im.height} {im.mode}", side=THUMB_SIDE))
    overlay = _overlay_thumb(result)
    if overlay is not None:
        figures.append(figure_html(overlay, "contours", side=THUMB_SIDE))
    if not figures:
        return "<div style='opacity:.8'>no pictures in this result</div>"
    more = f"<div style='align-self:center'>… +{len(images) - limit}</div>" if len(images) > limit else ""
    return figures_html(figures, extra=more)


def _overlay_thumb(result: Result) -> Image.Image | None:
    if not isinstance(result, SegmentationResult) or not result.input_images or result.input_images[0] is None:
        return None
    try:
        src = result.input_images[0].copy()
        src.thumbnail((THUMB_SIDE * 2, THUMB_SIDE * 2))  # draw at about display size: lines stay visible
        out: Image.Image = overlay_contours_image(src, result, bbox=False)
        return out
    except Exception:  # best effort: an odd payload just has no overlay thumbnail
        return None


def task_html(task: Task, *, thumbnails: bool = True) -> str:
    """An HTML card for ``task``: status chip, stage bar, elapsed time, polls, ids, error, thumbnails.

    Self-contained (inline styles, data-URI images), so it renders in static exports too. This is
    ``Task._repr_html_``; it reads the task's attributes only (no request is sent).
    """
    status = status_of(task)
    secrets = secrets_of(task)
    e = html.escape
    frac = STAGE.get(status, 0.0)
    color = COLORS[BAR_STYLES.get(status, "")]
    track = (f"<span style='display:inline-block;width:140px;height:8px;border-radius:4px;"
             f"background:rgba(127,127,127,.25);vertical-align:middle;overflow:hidden'>"
             f"<span style='display:block;width:{frac * 100:.0f}%;height:100%;background:{color}'></span></span>")
    head = (f"<div style='display:flex;gap:10px;align-items:center;flex-wrap:wrap'>{chip(status)}"
            f"<code>{e(task.req_key)}</code>{track}<span>{e(stats(task))}</span></div>")
    parts = [head, f"<div style='font-size:12px;opacity:.85'>{ids_html(task, secrets)}</div>",
             error_html(task, secrets)]
    res = task.peek() if thumbnails else None
    if res is not None:
        parts.append(thumbnails_html(res))
    body = "".join(p for p in parts if p)
    return scrub(f"<div class='volcnb-task' style='display:flex;flex-direction:column;gap:4px'>{body}</div>",
                  secrets)
