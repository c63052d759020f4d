"""Every Python block of README.md, run top to bottom in a fresh IPython kernel (top-level ``await``) on
the simulator, in a folder holding the sample images the README names (``cat.jpg``, ``photos/*.jpg``,
``face.jpg``)."""

from __future__ import annotations

import pathlib
import re
import shutil

import matplotlib
import pytest
from _nb import REPO, execute, outputs_text
from nbformat.v4 import new_code_cell, new_notebook

pytestmark = pytest.mark.slow

GRACE = pathlib.Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
SETUP = ('import volcnb\nvolcnb.use_simulator(queue_time=0.0, service_times={"saliency_seg": 0.3, '
         '"img2img_anime_accelerated_maintain_id": 0.5})')


def readme_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), re.S)


def test_every_python_block_of_the_readme_runs(tmp_path: pathlib.Path) -> None:
    blocks = readme_blocks()
    assert len(blocks) >= 3
    shutil.copy(GRACE, tmp_path / "cat.jpg")
    shutil.copy(GRACE, tmp_path / "face.jpg")
    (tmp_path / "photos").mkdir()
    for name in ("a.jpg", "b.jpg"):
        shutil.copy(GRACE, tmp_path / "photos" / name)
    cells = [new_code_cell(SETUP), *(new_code_cell(b) for b in blocks), new_code_cell('print("README-DONE")')]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    execute(nb, tmp_path, jupyter_path=tmp_path / "jupyter", timeout=240)  # raises on any cell's error
    assert "README-DONE" in outputs_text(nb.cells[-1])
    for cell in nb.cells:
        assert not any(o.get("output_type") == "error" for o in cell.get("outputs", []))
