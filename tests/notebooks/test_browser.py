"""The real thing: JupyterLab in headless Debian Chromium (Playwright) runs notebooks/01_quickstart.ipynb.

Run All, then: every widget rendered (no "Loading widget"), the TaskView of the ``await volcnb.run(...)`` cell
says done with a full progress bar, the result's picture is decoded and visible, the contour overlay is drawn,
and the notebook saved from the browser has no error and a finished widget state. Screenshots go to
``artifacts/browser/`` (printed). Needs Debian's ``chromium`` (``scripts/test`` installs it): missing, the test fails.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from _nb import ARTIFACTS_DIR, NOTEBOOKS_DIR, find_cell, read, write_kernelspec

from volcnb.sim import DEFAULT_SECRET_KEY

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

NOTEBOOK = "01_quickstart.ipynb"
CHROMIUM = os.environ.get("VOLCNB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
SHOT_DIR = ARTIFACTS_DIR / "browser"
#: JupyterLab user settings for a clean, deterministic page: no news toast, widget state saved with the
#: notebook, every cell rendered (no windowing: off-screen cells keep their DOM).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
    "@jupyter-widgets/jupyterlab-manager/plugin.jupyterlab-settings": {"saveState": True},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}
SERVER_START_TIMEOUT = 60.0
RUN_TIMEOUT_MS = 120_000


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_ready(base: str, proc: subprocess.Popen[bytes], log: pathlib.Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"jupyter lab exited with {proc.returncode}:\n{_tail(log)}")
        try:
            if httpx.get(f"{base}/api/status", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"jupyter lab not ready after {SERVER_START_TIMEOUT:g} s:\n{_tail(log)}")


def _tail(log: pathlib.Path, n: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen[bytes], base: str) -> None:
    """Shut the kernels down through the API, then the server (SIGTERM, then SIGKILL of its own group)."""
    if proc.poll() is None:
        try:
            for k in httpx.get(f"{base}/api/kernels", timeout=3.0).json():
                httpx.delete(f"{base}/api/kernels/{k['id']}", timeout=10.0)
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            pass
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _prepare(tmp: pathlib.Path) -> tuple[pathlib.Path, dict[str, str], list[str]]:
    """A lab root with a copy of the notebooks, isolated Jupyter dirs, and our settings and kernelspec."""
    root = tmp / "lab"
    shutil.copytree(NOTEBOOKS_DIR, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    settings = tmp / "lab-user-settings"
    for rel, values in LAB_SETTINGS.items():
        path = settings / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")
    jupyter_path = tmp / "jupyter-data"
    write_kernelspec(jupyter_path)  # python3 -> this venv's python, ahead of any user-level kernelspec
    env = dict(os.environ)
    env.update({
        "JUPYTER_PATH": str(jupyter_path),
        "JUPYTER_CONFIG_DIR": str(tmp / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "jupyter-runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "lab-workspaces"),
        "VOLCNB_QUIET": "1",
    })
    for name in ("VOLC_ACCESSKEY", "VOLC_SECRETKEY", "VOLC_SESSION_TOKEN"):
        env.pop(name, None)
    args = ["--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=",
            "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True", f"--ServerApp.root_dir={root}",
            f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={tmp / 'lab-workspaces'}"]
    return root, env, args


def test_jupyterlab_runs_the_notebook_and_renders_the_task_view(tmp_path: pathlib.Path) -> None:
    if not pathlib.Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: this test drives Debian's Chromium. Install it with "
                    "`apt-get update && apt-get install -y chromium` (scripts/test does it), or point "
                    "VOLCNB_CHROMIUM at a Chromium binary.", pytrace=False)
    from playwright.sync_api import expect, sync_playwright

    nb_file = NOTEBOOKS_DIR / NOTEBOOK
    nb = read(nb_file)
    run_i, _ = find_cell(nb, "await volcnb.run(")
    overlay_i, _ = find_cell(nb, "res.overlay()")
    marks_i, _ = find_cell(nb, "task.result(")
    last_i = max(i for i, c in enumerate(nb.cells) if c.cell_type == "code")

    root, env, args = _prepare(tmp_path)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "jupyterlab.log"
    SHOT_DIR.mkdir(parents=True, exist_ok=True)
    shot = SHOT_DIR / "jupyterlab-saliency.png"
    shot_overlay = SHOT_DIR / "jupyterlab-saliency-overlay.png"
    shot_marks = SHOT_DIR / "jupyterlab-saliency-blocking.png"
    console: list[str] = []

    with open(log, "wb") as log_fh:
        proc = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", f"--port={port}", *args], cwd=root,
                                env=env, stdout=log_fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_ready(base, proc, log)
        spec = httpx.get(f"{base}/api/kernelspecs", timeout=5.0).json()["kernelspecs"]["python3"]["spec"]
        assert spec["argv"][0] == sys.executable, f"JupyterLab's python3 kernel runs {spec['argv'][0]}"

        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                viewport={"width": 1280, "height": 1400})
            try:
                ctx.set_default_timeout(60_000)
                page = ctx.pages[0] if ctx.pages else ctx.new_page()
                page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type == "error" else None)
                _drive(page, expect, base, run_i, overlay_i, marks_i, last_i, (shot, shot_overlay, shot_marks))
            finally:
                ctx.close()
        print(f"\nscreenshots: {shot}\n             {shot_overlay}\n             {shot_marks}")

        saved = _saved(root / NOTEBOOK)  # what Ctrl+S wrote from the browser
        errors = [(i, o.get("ename"), o.get("evalue")) for i, c in enumerate(saved.cells) if c.cell_type == "code"
                  for o in c.outputs if o.output_type == "error"]
        assert not errors, f"cells errored in JupyterLab: {errors}"
        assert DEFAULT_SECRET_KEY not in json.dumps(saved, ensure_ascii=False)
        state = saved.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state")
        assert state, "the browser saved no widget state (saveState setting not applied?)"
        bars = [m["state"] for m in state.values() if m.get("model_name") == "FloatProgressModel"]
        assert bars and all(b.get("value") == b.get("max") for b in bars), f"saved progress bars: {bars}"
    except BaseException:
        print(f"--- jupyter lab log ({log}) ---\n{_tail(log)}")
        print("--- browser console errors ---\n" + "\n".join(console[-20:]))
        raise
    finally:
        _stop(proc, base)


def _saved(path: pathlib.Path, timeout: float = 15.0) -> Any:
    """The notebook as the browser saved it (waits until the save with outputs has landed)."""
    deadline = time.monotonic() + timeout
    while True:
        nb = read(path)
        if nb.metadata.get("widgets") and all(c.execution_count for c in nb.cells if c.cell_type == "code"):
            return nb
        if time.monotonic() > deadline:
            raise AssertionError(f"{path.name} was not saved with outputs and widget state within {timeout:g} s")
        time.sleep(0.3)


def _drive(page: Any, expect: Any, base: str, run_i: int, overlay_i: int, marks_i: int, last_i: int,
           shots: tuple[pathlib.Path, pathlib.Path, pathlib.Path]) -> None:
    page.goto(f"{base}/lab/tree/{NOTEBOOK}", wait_until="domcontentloaded")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell")
    # The kernel must be up and connected (status bar "… | Idle") before Run All, or nothing runs.
    expect(page.get_by_role("button", name=re.compile(r"\| Idle$"))).to_be_visible()
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']")
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()

    cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
    first_code = page.locator(".jp-NotebookPanel .jp-CodeCell .jp-InputPrompt").first
    expect(first_code).not_to_have_text(re.compile(r"\[\s*\]"), timeout=15_000)  # Run All started
    # The last cell shows the summary dict: everything before it has run by then.
    expect(cells.nth(last_i).locator(".jp-OutputArea-output")).to_contain_text("script_exit",
                                                                               timeout=RUN_TIMEOUT_MS)
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']")
    prompts = cells.locator(".jp-InputPrompt").all_inner_texts()
    assert not any("*" in p for p in prompts), f"cells still running: {prompts}"

    run_cell = cells.nth(run_i)
    expect(run_cell.locator(".widget-hprogress")).to_be_visible()
    # The TaskView's status: an HTML/Label widget reading "done".
    expect(run_cell.locator(".widget-html, .widget-label").filter(has_text=re.compile(r"\bdone\b")).first
           ).to_be_visible()
    widths = run_cell.locator(".widget-hprogress .progress-bar").evaluate_all("els => els.map(e => e.style.width)")
    assert widths and all(w == "100%" for w in widths), f"TaskView progress bar widths: {widths}"
    # The result (last expression of the cell) shows its picture, decoded by the browser.
    result_img = run_cell.locator(".jp-OutputArea-output img[alt*='saliency_seg output']").first
    expect(result_img).to_be_visible()
    assert result_img.evaluate("e => e.complete && e.naturalWidth > 0"), "the result picture did not decode"

    all_widths = page.locator(".widget-hprogress .progress-bar").evaluate_all("els => els.map(e => e.style.width)")
    assert all_widths and all(w == "100%" for w in all_widths), f"progress bars in the page: {all_widths}"
    expect(cells.nth(overlay_i).locator(".jp-OutputArea-output img").first).to_be_visible()
    expect(cells.nth(marks_i).locator(".jp-OutputArea-output img").first).to_be_visible()
    time.sleep(0.5)  # let late widget views settle before counting placeholders
    assert page.get_by_text("Loading widget").count() == 0, "a widget never rendered ('Loading widget...')"
    assert DEFAULT_SECRET_KEY not in page.content(), "the simulator's secret key is on the page"

    page.keyboard.press("Control+s")
    expect(page.locator(".lm-TabBar-tab.jp-mod-dirty")).to_have_count(0, timeout=15_000)

    for index, path in zip((run_i, overlay_i, marks_i), shots, strict=True):
        page.evaluate("(el) => el.scrollIntoView({block: 'start'})", cells.nth(index).element_handle())
        page.wait_for_timeout(200)
        page.screenshot(path=str(path))
