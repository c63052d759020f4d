"""The public surface: ``__all__`` is complete and sorted, every public name is documented, API.md's names exist."""

from __future__ import annotations

import inspect
import subprocess
import sys

import volcnb


def test_all_is_sorted_and_complete() -> None:
    public = {n for n in vars(volcnb) if not n.startswith("_") and not inspect.ismodule(getattr(volcnb, n))}
    public -= {"annotations", "importlib", "TYPE_CHECKING", "Any"}
    assert volcnb.__all__ == sorted(volcnb.__all__, key=str.casefold)
    assert public <= set(volcnb.__all__), public - set(volcnb.__all__)


def test_every_public_name_has_a_docstring() -> None:
    missing = []
    for name in volcnb.__all__:
        obj = getattr(volcnb, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            if not (obj.__doc__ or "").strip():
                missing.append(name)
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if attr.startswith("_") or not (inspect.isfunction(member) or isinstance(member, property)):
                        continue
                    if not (member.__doc__ or "").strip():
                        missing.append(f"{name}.{attr}")
    assert not missing, missing


def test_api_md_names_exist() -> None:
    for name in ("use_simulator", "Client", "set_default_client", "submit", "run", "Task", "LogoInfo",
                 "overlay_contours", "compare_watermarks", "compare", "VolcError", "RateLimitError",
                 "ContentRiskError", "TaskExpiredError", "SignatureError"):
        assert hasattr(volcnb, name), name
    for attr in ("attach", "fetch", "cancel", "result", "wait", "refresh"):
        assert hasattr(volcnb.Task, attr), attr
    for err in (volcnb.VolcError("x"), volcnb.RateLimitError("x", code=50429)):
        for attr in ("code", "message", "request_id", "task_id", "retryable"):
            assert hasattr(err, attr)


def test_import_is_light() -> None:
    # matplotlib and ipywidgets load on first use, not at import (a notebook's first cell stays fast).
    code = "import sys, volcnb; print('matplotlib' in sys.modules, 'ipywidgets' in sys.modules, 'nest_asyncio2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "False"]
