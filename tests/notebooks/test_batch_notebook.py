"""A 50-task ``map()`` in a real kernel (nbclient): exactly one BatchView, no per-task widgets, 50 done and
a gallery of the latest results, all read back from the saved widget state."""

from __future__ import annotations

import pathlib

import pytest
from _nb import DATA_URI_IMG, descendants, execute, model_text, outputs_text, view_ids, widget_state
from nbformat.v4 import new_code_cell, new_notebook

pytestmark = pytest.mark.slow

CELLS = [
    """import numpy as np, volcnb
from PIL import Image
paths = []
for i in range(50):
    a = np.full((128, 160, 3), 235, np.uint8); a[20:100, 10 + i:120 + i // 2] = (40, 90 + 2 * i, 200)
    Image.fromarray(a).save(f"in_{i:02d}.png"); paths.append(f"in_{i:02d}.png")
volcnb.use_simulator(service_times={"saliency_seg": 0.3}, queue_time=0.0)""",
    """batch = volcnb.map("saliency_seg", "in_*.png", concurrency=20, journal="journal.sqlite", out_dir="out")
await batch""",
    """print("COUNTS", dict(batch.counts()), len(batch.results))""",
]


def test_a_50_task_map_shows_one_batch_view(tmp_path: pathlib.Path) -> None:
    nb = new_notebook(cells=[new_code_cell(src) for src in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    execute(nb, tmp_path, jupyter_path=tmp_path / "jupyter", timeout=180)
    assert "COUNTS {'done': 50} 50" in outputs_text(nb.cells[2])
    state = widget_state(nb)
    views = [v for c in nb.cells for v in view_ids(c)]
    assert len(views) == 1, f"expected one view for the whole batch, got {len(views)}"
    tree = descendants(state, views[0])
    root = tree[0][1]["state"]
    assert "volcnb-batchview" in root.get("_dom_classes", [])
    bars = [m for _mid, m in tree if m.get("model_name") == "FloatProgressModel"]
    assert len(bars) == 1 and bars[0]["state"]["value"] == 1.0
    texts = " ".join(model_text(m) for _mid, m in tree)
    assert "50/50" in texts, texts
    assert any(DATA_URI_IMG.search(model_text(m)) for _mid, m in tree), "no gallery thumbnails"
    assert not (tmp_path / "out").exists() or len(list((tmp_path / "out").glob("*.png"))) == 50
