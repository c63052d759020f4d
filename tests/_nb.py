"""Helpers shared by the notebook tests: a kernelspec on this venv's python, execution, widget-state reading.

Not a test module (no ``test_`` prefix); ``tests/`` is on ``sys.path`` under pytest's default import mode.
"""

from __future__ import annotations

import base64
import json
import pathlib
import re
import sys
from collections.abc import Iterator
from typing import Any

import nbformat

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = REPO / "notebooks"
ARTIFACTS_DIR = REPO / "artifacts"
KERNEL_NAME = "python3"

WIDGET_STATE_MIME = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
DATA_URI_IMG = re.compile(r"<img\b[^>]*\bsrc=['\"]data:image/(png|jpeg|gif|webp)[;,]", re.IGNORECASE)


def notebook_paths() -> list[pathlib.Path]:
    """Every notebook committed under ``notebooks/`` (checkpoints excluded)."""
    return sorted(p for p in NOTEBOOKS_DIR.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def write_kernelspec(jupyter_path: pathlib.Path, name: str = KERNEL_NAME) -> pathlib.Path:
    """Write ``<jupyter_path>/kernels/<name>/kernel.json`` running ``sys.executable`` (this venv's python).

    Put ``jupyter_path`` first on ``JUPYTER_PATH`` (JupyterLab) or hand the ``kernels`` dir to a
    ``KernelSpecManager`` (nbclient), so no user-level ``python3`` kernelspec can pick another interpreter.
    """
    spec_dir = jupyter_path / "kernels" / name
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (volcnb venv)",
        "language": "python",
        "metadata": {"debugger": True},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
    return spec_dir


def execute(nb: Any, cwd: pathlib.Path, *, jupyter_path: pathlib.Path, timeout: int = 120) -> Any:
    """Run ``nb`` in place with nbclient on this venv's python; kernel cwd = ``cwd``. Raises on a cell error.

    The kernel manager only knows the kernelspec written under ``jupyter_path``; nbclient owns it, so the
    kernel is shut down when the run ends (also on a failure).
    """
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from traitlets import default

    kernels_dir = str(write_kernelspec(jupyter_path).parent)

    class VenvKernelManager(AsyncKernelManager):  # type: ignore[misc]
        @default("kernel_spec_manager")
        def _only_our_kernelspec(self) -> KernelSpecManager:
            return KernelSpecManager(kernel_dirs=[kernels_dir], ensure_native_kernel=False)

    client = NotebookClient(nb, kernel_manager_class=VenvKernelManager, kernel_name=KERNEL_NAME, timeout=timeout,
                            startup_timeout=60, store_widget_state=True, allow_errors=False, record_timing=False,
                            resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return nb


def code_cells(nb: Any) -> list[Any]:
    return [c for c in nb.cells if c.cell_type == "code"]


def outputs_text(cell: Any) -> str:
    """All text a cell printed or displayed (streams, text/plain, text/html, tracebacks)."""
    parts: list[str] = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("display_data", "execute_result"):
            for mime in ("text/plain", "text/html", "text/markdown"):
                if mime in out.data:
                    parts.append(str(out.data[mime]))
        elif out.output_type == "error":
            parts.append(f"{out.ename}: {out.evalue}\n" + "\n".join(out.traceback))
    return "\n".join(parts)


def widget_state(nb: Any) -> dict[str, Any]:
    """``{model_id: {"model_name", "model_module", "state", "buffers"}}`` saved in the notebook's metadata."""
    saved = nb.metadata.get("widgets", {}).get(WIDGET_STATE_MIME)
    assert saved, "the executed notebook has no saved widget state (metadata.widgets is empty)"
    state: dict[str, Any] = saved["state"]
    return state


def view_ids(cell: Any) -> list[str]:
    """Model ids of the widget views a cell displayed."""
    ids = []
    for out in cell.get("outputs", []):
        data = out.get("data", {}) if out.output_type in ("display_data", "execute_result") else {}
        if WIDGET_VIEW_MIME in data:
            ids.append(data[WIDGET_VIEW_MIME]["model_id"])
    return ids


def _refs(value: Any) -> Iterator[str]:
    """Model ids referenced from a widget state value (``"IPY_MODEL_<id>"``, possibly nested in lists/dicts)."""
    if isinstance(value, str) and value.startswith("IPY_MODEL_"):
        yield value[len("IPY_MODEL_"):]
    elif isinstance(value, list):
        for v in value:
            yield from _refs(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _refs(v)


def descendants(state: dict[str, Any], root: str) -> list[tuple[str, dict[str, Any]]]:
    """``(model_id, model)`` of ``root`` and everything it references (children, outputs, …), root first."""
    seen: list[str] = []
    todo = [root]
    while todo:
        mid = todo.pop(0)
        if mid in seen or mid not in state:
            continue
        seen.append(mid)
        todo.extend(_refs(state[mid].get("state", {})))
    return [(mid, state[mid]) for mid in seen]


def model_text(model: dict[str, Any]) -> str:
    """Text a widget shows: ``value``/``description``/``placeholder`` of Labels, HTML, Text …"""
    st = model.get("state", {})
    return " ".join(str(st.get(k)) for k in ("value", "description", "placeholder")
                    if isinstance(st.get(k), str) and st.get(k))


def image_widget_has_value(model: dict[str, Any]) -> bool:
    """An ``ImageModel`` with non-empty picture bytes (saved as a base64 buffer or inline)."""
    if model.get("model_name") != "ImageModel":
        return False
    for buf in model.get("buffers", []) or []:
        if buf.get("path") == ["value"] and buf.get("data"):
            return len(base64.b64decode(buf["data"])) > 0
    value = model.get("state", {}).get("value")
    return bool(value)


def output_widget_outputs(model: dict[str, Any]) -> list[dict[str, Any]]:
    """The outputs an ``OutputModel`` captured."""
    if model.get("model_name") != "OutputModel":
        return []
    outs: list[dict[str, Any]] = model.get("state", {}).get("outputs", []) or []
    return outs


def has_picture(data: dict[str, Any]) -> bool:
    """An output bundle with a picture: ``image/png``/``image/jpeg`` or HTML with a data-URI ``<img>``."""
    if any(data.get(m) for m in ("image/png", "image/jpeg")):
        return True
    html = data.get("text/html")
    if isinstance(html, list):
        html = "".join(html)
    return bool(html and DATA_URI_IMG.search(html))


def cell_pictures(cell: Any, state: dict[str, Any]) -> int:
    """How many pictures a cell shows: image outputs, data-URI ``<img>`` (in outputs or HTML widgets), Image
    widgets with bytes, pictures captured by Output widgets."""
    n = 0
    for out in cell.get("outputs", []):
        if out.output_type not in ("display_data", "execute_result"):
            continue
        if has_picture(out.data):
            n += 1
        if WIDGET_VIEW_MIME in out.data:
            for _mid, model in descendants(state, out.data[WIDGET_VIEW_MIME]["model_id"]):
                if image_widget_has_value(model):
                    n += 1
                if model.get("model_name") == "HTMLModel" and has_picture({"text/html": model_text(model)}):
                    n += 1
                n += sum(1 for o in output_widget_outputs(model) if has_picture(o.get("data", {})))
    return n


def find_cell(nb: Any, needle: str) -> tuple[int, Any]:
    """The first code cell whose source contains ``needle``."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and needle in cell.source:
            return i, cell
    raise AssertionError(f"no code cell contains {needle!r}")


def read(path: pathlib.Path) -> Any:
    return nbformat.read(str(path), as_version=4)
