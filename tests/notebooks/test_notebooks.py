"""The notebooks under notebooks/ run headless (nbclient) on this venv's python, and their widgets finish.

* committed notebooks are clean (no outputs, no execution counts, no saved widget state);
* (``test_teaching.py`` executes each one against a ``volcnb sim`` over HTTP and checks its outputs);
* the task handle works both ways in a live kernel loop: ``await volcnb.run(...)`` and ``volcnb.run(...).result()``;
* the simulator's secret key never appears in any output or widget state.
"""

from __future__ import annotations

import json
import pathlib
import re
import sys
from typing import Any

import nbformat
import pytest
from _nb import (
    NOTEBOOKS_DIR,
    code_cells,
    descendants,
    execute,
    model_text,
    notebook_paths,
    outputs_text,
    read,
    view_ids,
    widget_state,
)
from nbformat.v4 import new_code_cell, new_notebook

from volcnb.sim import DEFAULT_SECRET_KEY

NOTEBOOKS = notebook_paths()
PROGRESS_MODELS = ("FloatProgressModel", "IntProgressModel")
TASK_CALL = re.compile(r"volcnb\.(run|submit)\(")


def _ids(paths: list[pathlib.Path]) -> list[str]:
    return [p.name for p in paths]


def test_there_are_notebooks() -> None:
    assert any(p.name == "01_quickstart.ipynb" for p in NOTEBOOKS), f"no notebooks in {NOTEBOOKS_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_committed_without_outputs(path: pathlib.Path) -> None:
    nb = read(path)
    nbformat.validate(nb)
    dirty = [(i, len(c.outputs), c.execution_count) for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, f"{path.name}: cells with outputs/execution counts (index, outputs, count): {dirty}; strip them"
    assert "widgets" not in nb.metadata, f"{path.name}: saved widget state in the metadata; strip it"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


def _task_views(cell: Any, state: dict[str, Any]) -> list[list[tuple[str, dict[str, Any]]]]:
    """The widget trees a cell displayed that contain a progress bar (a task's view)."""
    trees = [descendants(state, mid) for mid in view_ids(cell)]
    return [t for t in trees if any(m.get("model_name") in PROGRESS_MODELS for _mid, m in t)]


def _check_task_view(tree: list[tuple[str, dict[str, Any]]], where: str) -> None:
    texts = [model_text(m) for _mid, m in tree]
    assert any(re.search(r"\bdone\b", t, re.IGNORECASE) for t in texts), \
        f"{where}: the task view never said 'done'; its texts: {[t for t in texts if t]}"
    bars = [m["state"] for _mid, m in tree if m.get("model_name") in PROGRESS_MODELS]
    for bar in bars:
        value, top = bar.get("value", 0), bar.get("max", 100)
        assert value == top, f"{where}: progress bar at {value}/{top}, not full"


def _check_executed(nb: Any, name: str) -> None:
    """No errors, no secret, every task view finished (from the saved widget state)."""
    dump = json.dumps(nb, ensure_ascii=False)
    assert DEFAULT_SECRET_KEY not in dump, f"{name}: the simulator's secret key appears in the outputs"
    errors = [(i, o.ename, o.evalue) for i, c in enumerate(nb.cells) if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{name}: cells errored: {errors}"
    assert all(c.execution_count is not None for c in code_cells(nb)), f"{name}: not every cell ran"
    state = widget_state(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not TASK_CALL.search(cell.source):
            continue
        for tree in _task_views(cell, state):
            _check_task_view(tree, f"{name} cell {i}")


HANDLE_CELLS = [
    """import sys
import volcnb
from matplotlib import cbook
sim = volcnb.use_simulator(service_times={"saliency_seg": 0.5})
path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
def facts(tag, res):
    m = res.mask
    print(f"{tag} type={type(res).__name__} mask={m.shape[1]}x{m.shape[0]} on={int(m.sum())} "
          f"bbox={res.bbox} contours={len(res.contours)} points={sum(len(c) for c in res.contours)}")
print("PREFIX", sys.prefix)""",
    """res = await volcnb.run("saliency_seg", path)
facts("AWAIT", res)""",
    """res2 = volcnb.run("saliency_seg", path).result(timeout=60)
facts("BLOCKING", res2)""",
    """task = volcnb.submit("saliency_seg", path, only_mask=1)
res3 = await task
assert task.result() is res3  # a finished handle answers at once, same object
facts("SUBMIT", res3)
print(task)""",
]

FACTS = re.compile(r"^(?P<tag>AWAIT|BLOCKING|SUBMIT) type=SegmentationResult mask=512x600 on=(?P<on>\d+) "
                   r"bbox=\((?P<bbox>\d+, \d+, \d+, \d+)\) contours=(?P<contours>\d+) points=(?P<points>\d+)$",
                   re.MULTILINE)


def test_task_handle_await_and_blocking_in_kernel(tmp_path: pathlib.Path) -> None:
    nb = new_notebook(cells=[new_code_cell(src) for src in HANDLE_CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    execute(nb, tmp_path, jupyter_path=tmp_path / "jupyter", timeout=120)
    _check_executed(nb, "task-handle notebook")

    text = "\n".join(outputs_text(c) for c in nb.cells)
    prefix = re.search(r"^PREFIX (.+)$", text, re.MULTILINE)
    assert prefix and prefix.group(1) == sys.prefix, f"the kernel ran another python: {prefix and prefix.group(1)}"
    found = {m["tag"]: m for m in FACTS.finditer(text)}
    assert set(found) == {"AWAIT", "BLOCKING", "SUBMIT"}, f"missing results; the outputs were:\n{text}"
    for tag, m in found.items():
        assert int(m["on"]) > 1000, f"{tag}: empty mask"
        assert int(m["contours"]) >= 1 and int(m["points"]) >= 3, f"{tag}: no contours"
        x1, y1, x2, y2 = (int(v) for v in m["bbox"].split(", "))
        assert 0 <= x1 < x2 <= 512 and 0 <= y1 < y2 <= 600, f"{tag}: bbox {m['bbox']} outside the picture"
    assert re.search(r"<volcnb\.Task saliency_seg task_id=\d+ status=done", text)
