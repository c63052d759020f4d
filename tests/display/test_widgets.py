"""TaskView / BatchView driven by real tasks on the simulator; assertions on widget traits."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import textwrap
from collections.abc import Iterator
from typing import Any

import ipywidgets
import pytest
from IPython.lib import pretty as _pretty
from PIL import Image, ImageDraw

import volcnb
from volcnb._exceptions import VolcError
from volcnb.display import widgets
from volcnb.display.progress import STAGE
from volcnb.display.widgets import BatchView, TaskView, task_html, task_line
from volcnb.sim import DEFAULT_SECRET_KEY, Simulator


def pretty(obj: object) -> str:
    """What IPython prints for ``obj`` (its ``_repr_pretty_``)."""
    out: str = _pretty.pretty(obj)  # type: ignore[no-untyped-call]
    return out


def disc_image() -> Image.Image:
    img = Image.new("RGB", (320, 240), "white")
    ImageDraw.Draw(img).ellipse((100, 60, 220, 180), fill=(220, 0, 0))
    return img


def tree(widget: Any) -> Iterator[Any]:
    """The widget and all its descendants."""
    yield widget
    for child in getattr(widget, "children", ()):
        yield from tree(child)


def strings(widget: Any) -> list[str]:
    """Every string a front end receives for the widget tree (synced state), plus its text fallback."""
    out = [json.dumps(w.get_state(), default=str) for w in tree(widget)]
    out.append(repr(widget))
    return out


class WriteCounter:
    """Counts trait changes on every widget of a tree (each one is a message to the front end)."""

    def __init__(self, widget: Any) -> None:
        self.count = 0
        for w in tree(widget):
            w.observe(self._seen, names=ipywidgets.widgets.trait_types.traitlets.All)

    def _seen(self, change: Any) -> None:
        self.count += 1


# --- one task -------------------------------------------------------------------------------------


def test_taskview_done(client: volcnb.Client) -> None:
    task = volcnb.submit("saliency_seg", disc_image(), only_mask=1, display=False)
    view = TaskView(task)
    values: list[float] = []
    view.bar.observe(lambda ch: values.append(ch["new"]), names="value")
    res = task.result()

    assert view.bar.value == 1.0 and view.bar.bar_style == "success"
    assert values == sorted(values) and values[-1] == 1.0  # moves forward through the stages only
    assert ">done<" in view.chip.value
    assert f"{task.polls} poll" in view.stats.value and task.polls >= 1
    assert str(task.task_id) in view.ids.value and str(task.request_id) in view.ids.value
    assert view.error.value == ""
    # thumbnails: data-URI PNGs of at most 160 px with captions (the mask, and the contour overlay)
    uris = re.findall(r"src='data:image/(?:png|jpeg);base64,([^']+)'", view.thumbs.value)
    assert len(uris) == 2
    for uri in uris:
        with Image.open(io.BytesIO(base64.b64decode(uri))) as thumb:
            assert max(thumb.size) <= 160
    assert "<figcaption" in view.thumbs.value and "320×240 L" in view.thumbs.value
    assert res.images  # the same result the view shows


def test_taskview_stages(client: volcnb.Client) -> None:
    task = volcnb.Task.attach("saliency_seg", "12345", display=False)
    view = TaskView(task)
    assert ">queued<" in view.chip.value and view.bar.value == STAGE["in_queue"] and view.bar.bar_style == ""
    task._set("generating")
    view.refresh()
    assert ">generating<" in view.chip.value and view.bar.bar_style == "info"
    assert view.bar.value == STAGE["generating"]


def test_taskview_failed_after_running(client: volcnb.Client) -> None:
    task = volcnb.submit("jimeng_t2i_v30", prompt="a cat sim:post-risk", display=False)
    view = TaskView(task)
    with pytest.raises(volcnb.ContentRiskError):
        task.result()
    assert view.bar.value == 1.0 and view.bar.bar_style == "danger"
    assert ">failed<" in view.chip.value
    assert "50511" in view.error.value and "Post Img Risk Not Pass" in view.error.value
    assert view.thumbs.value == ""
    assert "50511: Post Img Risk Not Pass" in task_line(task)


async def test_taskview_failed_at_submit(client: volcnb.Client) -> None:
    task = volcnb.submit("jimeng_t2i_v30", prompt="违禁词", display=False)  # a running loop: returns at once
    view = TaskView(task)
    assert ">submitting<" in view.chip.value and view.bar.value == STAGE["submitting"]
    with pytest.raises(volcnb.ContentRiskError):
        await task
    assert view.bar.bar_style == "danger" and "50412" in view.error.value
    assert "(submitting)" in view.ids.value  # never got a task id


async def test_taskview_cancelled(sim: Simulator, client: volcnb.Client) -> None:
    sim.set_service_time("saliency_seg", 30.0)
    task = volcnb.submit("saliency_seg", disc_image(), display=False)
    view = TaskView(task)
    await task.submitted()
    await task.cancel()
    assert view.bar.bar_style == "warning" and ">cancelled<" in view.chip.value
    assert "cancelled" in view.error.value


async def test_view_updates_from_the_loop_while_nobody_waits(client: volcnb.Client) -> None:
    task = volcnb.submit("saliency_seg", disc_image(), display=False)
    view = TaskView(task)
    for _ in range(100):  # the runner scheduled by submit() drives the view; nothing awaits the task
        await asyncio.sleep(0.05)
        if view.bar.value == 1.0:
            break
    assert view.bar.bar_style == "success" and task.status == "done"


# --- throttling -------------------------------------------------------------------------------------


async def test_taskview_throttles_rapid_changes(client: volcnb.Client) -> None:
    task = volcnb.Task.attach("saliency_seg", "777", display=False)
    view = TaskView(task, min_interval=0.1)
    writes = WriteCounter(view)
    renders = view.renders
    for _ in range(1000):
        task.polls += 1
        task._notify()
    assert view.renders - renders <= 2 and writes.count <= 10
    await asyncio.sleep(0.2)  # the deferred redraw shows the last state
    assert "1000 polls" in view.stats.value
    # a terminal state is drawn at once, however recent the last redraw
    task._set("generating")
    task._fail(VolcError("boom", code=50500))
    assert view.bar.bar_style == "danger" and "boom" in view.error.value
    assert writes.count < 40


async def test_batchview_counts_and_throttling(client: volcnb.Client) -> None:
    tasks = [volcnb.Task.attach("saliency_seg", str(i), display=False) for i in range(1000)]
    view = BatchView(tasks, min_interval=0.1)
    writes = WriteCounter(view)
    assert "0/1000 done" in view.counts.value and "1000 in queue" in view.counts.value
    for t in tasks[:600]:
        t._set("generating")
    for t in tasks[:500]:
        t._set("done")
    assert view.renders <= 3 and writes.count <= 12
    await asyncio.sleep(0.2)
    assert "500/1000 done" in view.counts.value and "100 generating" in view.counts.value
    assert view.bar.bar_style == "info"
    for t in tasks[500:999]:
        t._set("done")
    tasks[999]._fail(VolcError("Post Img Risk Not Pass", code=50511))  # the last one: drawn at once
    assert "999/1000 done" in view.counts.value and "1 failed" in view.counts.value
    assert view.bar.value == 1.0 and view.bar.bar_style == "warning"
    assert "1× 50511: Post Img Risk Not Pass" in view.failures.value
    assert writes.count < 40


def test_batchview_real_tasks(client: volcnb.Client) -> None:
    tasks = [volcnb.submit("saliency_seg", disc_image(), only_mask=1, display=False) for _ in range(3)]
    bad = volcnb.submit("jimeng_t2i_v30", prompt="sim:post-risk", display=False)
    view = BatchView([*tasks, bad], title="批量 batch")
    for t in tasks:
        t.result()
    with pytest.raises(volcnb.ContentRiskError):
        bad.result()
    assert "3/4 done" in view.counts.value and "1 failed" in view.counts.value
    assert "批量 batch" in view.label.value and view.bar.bar_style == "warning"
    assert view.text().startswith("批量 batch ")
    empty = BatchView()
    assert empty.bar.value == 0.0
    empty.add(tasks[0])
    empty.refresh()
    assert "1/1 done" in empty.counts.value and empty.bar_style() == "success"


# --- secrets and fallbacks ------------------------------------------------------------------------


def test_no_secret_in_any_view(client: volcnb.Client) -> None:
    ok = volcnb.submit("saliency_seg", disc_image(), display=False)
    bad = volcnb.submit("jimeng_t2i_v30", prompt="sim:post-risk", display=False)
    views: list[Any] = [TaskView(ok), TaskView(bad), BatchView([ok, bad])]
    ok.result()
    with pytest.raises(volcnb.ContentRiskError):
        bad.result()
    # Even a server message echoing the secret (it should never) is masked.
    echo = volcnb.Task.attach("saliency_seg", "9", display=False)
    views.append(TaskView(echo))
    echo._fail(VolcError(f"signature mismatch for {DEFAULT_SECRET_KEY}", code="SignatureDoesNotMatch"))
    views.append(BatchView([echo]))
    assert "***" in views[-2].error.value
    for view in views:
        for text in strings(view):
            assert DEFAULT_SECRET_KEY not in text
    for t in (ok, bad, echo):
        assert DEFAULT_SECRET_KEY not in task_html(t) + task_line(t)


def test_text_fallbacks_are_readable(client: volcnb.Client) -> None:
    task = volcnb.submit("saliency_seg", disc_image(), display=False)
    view = TaskView(task)
    task.result()
    line = task_line(task)
    assert line.startswith("saliency_seg ") and " done · " in line and str(task.task_id) in line
    assert repr(view) == line and pretty(view) == line
    bundle: dict[str, Any] = view._repr_mimebundle_() or {}
    assert bundle["text/plain"] == line and not bundle["text/plain"].startswith(("VBox", "HBox"))
    assert "application/vnd.jupyter.widget-view+json" in bundle
    batch = BatchView([task])
    assert pretty(batch).startswith("saliency_seg ") and "1/1 done" in pretty(batch)


def test_task_html_card(client: volcnb.Client) -> None:
    task = volcnb.submit("saliency_seg", disc_image(), only_mask=1, display=False)
    running = task_html(task)
    assert ">queued<" in running and "data:image" not in running
    task.result()
    card = task_html(task)
    assert ">done<" in card and str(task.task_id) in card and str(task.request_id) in card
    assert card.count("src='data:image/") == 2
    assert "data:image" not in task_html(task, thumbnails=False)


# --- show_task --------------------------------------------------------------------------------------


class FakeHandle:
    def __init__(self) -> None:
        self.updates: list[str] = []

    def update(self, obj: Any) -> None:
        bundle = obj._repr_mimebundle_() if hasattr(obj, "_repr_mimebundle_") else None
        self.updates.append(bundle["text/plain"] if bundle else repr(obj))


@pytest.fixture
def notebook(monkeypatch: pytest.MonkeyPatch) -> list[FakeHandle]:
    """Pretend to be in a kernel; record what is displayed."""
    handles: list[FakeHandle] = []

    def fake_display(obj: Any) -> FakeHandle:
        handles.append(FakeHandle())
        return handles[-1]

    monkeypatch.setattr("volcnb.display.env.in_notebook", lambda: True)
    monkeypatch.setattr(widgets, "_display", fake_display)
    return handles


def test_show_task_outside_a_notebook(client: volcnb.Client) -> None:
    task = volcnb.submit("saliency_seg", disc_image(), display=False)
    assert widgets.show_task(task) is None and task.view is None


def test_show_task_in_a_notebook(client: volcnb.Client, notebook: list[FakeHandle]) -> None:
    task = volcnb.submit("saliency_seg", disc_image())  # display=None: submit() calls show_task
    assert isinstance(task.view, TaskView) and len(notebook) == 1
    task.result()
    assert task.view.bar.bar_style == "success"
    # the display is refreshed once at the end, so a widget-less front end keeps the final line
    assert len(notebook[0].updates) == 1 and " done · " in notebook[0].updates[0]


def test_show_task_text_fallback(client: volcnb.Client, notebook: list[FakeHandle]) -> None:
    task = volcnb.submit("saliency_seg", disc_image(), display=False)
    view = widgets.show_task(task, widgets=False)
    assert view is not None and not isinstance(view, ipywidgets.Widget)
    task.result()
    updates = notebook[0].updates
    assert updates and " done · " in updates[-1]
    assert len(updates) <= task.elapsed / widgets.MIN_INTERVAL + 2  # throttled
    assert ">done<" in view._repr_html_()


def test_a_broken_view_never_breaks_the_task(client: volcnb.Client, notebook: list[FakeHandle],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("front end exploded")

    monkeypatch.setattr(widgets, "TaskView", boom)
    with pytest.warns(UserWarning, match="could not show a progress view"):
        task = volcnb.submit("saliency_seg", disc_image())
    assert task.view is None and task.result().images

    # A view that fails while drawing is switched off after one warning; the task completes.
    monkeypatch.undo()
    task = volcnb.submit("saliency_seg", disc_image(), display=False)
    view = TaskView(task)
    monkeypatch.setattr(view, "_render", boom)
    view._throttle._render = boom
    with pytest.warns(UserWarning, match="switched off"):
        res = task.result()
    assert res.images and view._throttle.broken


# --- a real kernel ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_taskview_in_a_real_kernel() -> None:
    """submit() in a kernel shows a TaskView that the kernel's own loop drives to 'done'."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    cells = [
        """
        import os; os.environ["VOLCNB_QUIET"] = "1"
        import asyncio, volcnb
        from PIL import Image, ImageDraw
        volcnb.use_simulator(service_times={"saliency_seg": 0.5}, queue_time=0.0)
        img = Image.new("RGB", (320, 240), "white"); ImageDraw.Draw(img).ellipse((100, 60, 220, 180), fill="red")
        task = volcnb.submit("saliency_seg", img, only_mask=1)
        # Nothing awaits the task: the runner that submit() put on the kernel's loop moves it (and the view)
        # while this cell yields to the loop. (Same cell: nbclient only applies display updates whose parent
        # is the cell it is running; JupyterLab applies them whatever the parent.)
        for _ in range(100):
            if task.done:
                break
            await asyncio.sleep(0.1)
        """,
        """
        v = task.view
        print(type(v).__name__, task.status, v.bar.value, v.bar.bar_style, v.renders)
        """,
        """
        # A blocking wait in a cell: the view still moves (the kernel's loop runs the task).
        bad = volcnb.submit("jimeng_t2i_v30", prompt="sim:post-risk")
        try:
            bad.result()
        except volcnb.ContentRiskError as exc:
            print(bad.view.bar.bar_style, exc.code)
        """,
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(c)) for c in cells]
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    shown = [o for o in nb.cells[0].outputs if o.get("output_type") == "display_data"]
    assert len(shown) == 1
    data = shown[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" in data
    # nbclient applies update_display_data: the saved text line is the final one, not "submitting"
    assert data["text/plain"].startswith("saliency_seg ") and " done · " in data["text/plain"]
    printed = "".join(o.get("text", "") for o in nb.cells[1].outputs)
    assert printed.split()[:4] == ["TaskView", "done", "1.0", "success"]
    assert "".join(o.get("text", "") for o in nb.cells[2].outputs).split() == ["danger", "50511"]
    # What the front end was sent (nbclient keeps the widget models it received over the comms):
    # the two progress bars ended green and red.
    models = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"].values()
    bars = [m["state"] for m in models if m["model_name"] == "FloatProgressModel"]
    assert sorted((b["value"], b["bar_style"]) for b in bars) == [(1.0, "danger"), (1.0, "success")]
