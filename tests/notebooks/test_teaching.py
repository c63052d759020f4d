"""The teaching notebooks, executed once each with nbclient against a ``volcnb sim`` over HTTP.

Each kernel gets only what a user would set: ``VOLCNB_ENDPOINT`` (the simulator), ``VOLC_ACCESSKEY`` and a
sentinel ``VOLC_SECRETKEY`` the simulator accepts. Each notebook gets a fresh simulator (one notebook's knobs
never reach the next). The checks: no cell error, the first cell names the backend, the sentinel secret is in
no output and no saved widget state, the executed notebook stays under ~1 MB, every task view finished, and
each notebook's closing ``summary`` cell holds what the notebook is about (read back with ``literal_eval``).
"""

from __future__ import annotations

import ast
import json
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _nb import NOTEBOOKS_DIR, cell_pictures, code_cells, execute, find_cell, outputs_text, read, widget_state

from volcnb.sim import SimProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ACCESS_KEY = "AKLTnotebookTEST01"
SENTINEL = "SK-sentinel-" + secrets.token_hex(12)
MAX_NOTEBOOK_BYTES = 1_000_000
ALL_EIGHT_SECONDS = 300.0
TEACHING = ["01_quickstart", "02_segmentation", "03_watermarks", "04_portrait_keep_id", "05_text_to_image",
            "06_iva_upload", "07_batch_and_resume", "08_errors_and_retries"]
PRESENT = [n for n in TEACHING if (NOTEBOOKS_DIR / f"{n}.ipynb").exists()]

Executed = tuple[Any, float]


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Executed]]:
    """``executed(name)`` → (the executed notebook, its wall time); each notebook runs once per session."""
    cache: dict[str, Executed] = {}

    def run(name: str) -> Executed:
        if name in cache:
            return cache[name]
        root = tmp_path_factory.mktemp(name)
        (root / "home").mkdir()
        work = root / "notebooks"
        shutil.copytree(NOTEBOOKS_DIR, work, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        nb = read(work / f"{name}.ipynb")
        server = SimProcess("--access-key", ACCESS_KEY, "--secret-key", SENTINEL, log=root / "sim.log").start()
        try:
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("VOLCNB_ENDPOINT", server.url)
                mp.setenv("VOLC_ACCESSKEY", ACCESS_KEY)
                mp.setenv("VOLC_SECRETKEY", SENTINEL)
                mp.setenv("VOLCNB_HOME", str(root / "volcnb-home"))
                mp.setenv("HOME", str(root / "home"))
                mp.delenv("VOLCNB_LOG", raising=False)
                start = time.monotonic()
                execute(nb, work, jupyter_path=root / "jupyter", timeout=240)
                cache[name] = (nb, time.monotonic() - start)
        finally:
            server.stop()
        return cache[name]

    yield run


def summary(nb: Any) -> dict[str, Any]:
    """The value of the notebook's last code cell (``summary``), parsed."""
    last = code_cells(nb)[-1]
    assert last.source.strip().endswith("summary"), "the notebook does not end with its summary cell"
    text = next(o.data["text/plain"] for o in last.outputs if o.output_type == "execute_result")
    value = ast.literal_eval(text)
    assert isinstance(value, dict)
    return value


def _common(nb: Any, name: str) -> None:
    dump = json.dumps(nb, ensure_ascii=False)
    assert SENTINEL not in dump, f"{name}: the secret key appears in an output or the saved widget state"
    assert len(dump.encode()) < MAX_NOTEBOOK_BYTES, f"{name}: executed notebook is {len(dump.encode())} bytes"
    errors = [(i, o.ename, o.evalue) for i, c in enumerate(nb.cells) if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{name}: cells errored: {errors}"
    first = outputs_text(code_cells(nb)[0])
    assert re.search(rf"backend: a volcnb simulator at http://127\.0\.0\.1:\d+; keys from environment "
                     rf"\(VOLC_ACCESSKEY\), access key {ACCESS_KEY[:6]}…", first), \
        f"{name}: the first cell does not say which backend is in use: {first!r}"


def _check(executed: Callable[[str], Executed], name: str) -> tuple[Any, dict[str, Any]]:
    if name not in PRESENT:
        pytest.fail(f"notebooks/{name}.ipynb is missing")
    nb, _seconds = executed(name)
    _common(nb, name)
    return nb, summary(nb)


def test_01_quickstart(executed: Callable[[str], Executed]) -> None:
    nb, s = _check(executed, "01_quickstart")
    assert s["backend"] == "volcnb sim"
    assert s["mask_size"] == (512, 600) and 0.05 < s["subject_share"] < 0.95, s
    assert s["cutout_mode"] == "RGBA" and s["blocking_status"] == "done" and s["saved_files"] >= 1, s
    assert s["script_exit"] == 0, s
    state = widget_state(nb)
    _i, run_cell = find_cell(nb, "await volcnb.run(")
    assert cell_pictures(run_cell, state) >= 1, "the awaited run showed no picture"
    _j, script = find_cell(nb, "subprocess.run(")
    assert re.search(r"SegmentationResult saliency_seg task_id=\d+", outputs_text(script)), outputs_text(script)
    _k, overlay = find_cell(nb, "res.overlay()")
    assert cell_pictures(overlay, state) >= 1, "the contour overlay drew nothing"


def test_02_segmentation(executed: Callable[[str], Executed]) -> None:
    nb, s = _check(executed, "02_segmentation")
    assert s["modes"] == {0: ["RGBA"], 1: ["L"], 2: ["RGB"], 3: ["RGBA"], 4: ["RGBA", "L"]}, s["modes"]
    assert 0.05 < s["subject_share"] < 0.95 and s["contour_points"] >= 8, s
    assert s["warnings"] == ["VolcnbWarning"], s
    assert s["entities"] == 3, s
    # the three drawn shapes, each found where it was drawn (within a few pixels)
    drawn = [(60, 80, 240, 260), (300, 120, 460, 400), (500, 300, 600, 420)]
    for box in drawn:
        assert any(all(abs(a - b) <= 8 for a, b in zip(box, found, strict=True)) for found in s["entity_boxes"]), (box, s)
    assert s["too_small_field"] == "image[0]", s
    state = widget_state(nb)
    for needle in ("volcnb.compare(", "res.overlay()", "show_segmentation(", "entities.overlay()"):
        i, cell = find_cell(nb, needle)
        assert cell_pictures(cell, state) >= 1, f"cell {i} ({needle}) drew nothing"


def test_03_watermarks(executed: Callable[[str], Executed]) -> None:
    nb, s = _check(executed, "03_watermarks")
    assert s["task_id_kept"] and s["marked_differs"] and s["custom_differs_from_marked"], s
    assert s["grid_panels"] == 8 and s["bad_field"] == "logo_info.position", s
    assert s["links"] == 1 and s["linked_same_pixels"] and s["aigc_tagged"] is True, s
    state = widget_state(nb)
    for needle in ("volcnb.compare(", "compare_watermarks("):
        i, cell = find_cell(nb, needle)
        assert cell_pictures(cell, state) >= 1, f"cell {i} ({needle!r}) drew nothing"


def test_04_portrait_keep_id(executed: Callable[[str], Executed]) -> None:
    nb, s = _check(executed, "04_portrait_keep_id")
    assert s["portrait_size"] == (768, 1024) and s["fast_size"] == (1000, 1000), s
    assert s["sweep_done"] == {"done": 8} and s["sweep_labels"] == ["facestyle_switch", "seed", "style_switch"], s
    assert s["refused_fields"] == {"face_switch without face_image": "face_image",
                                   "style_image index past the pictures": "style_image",
                                   "width above 1500": "width"}, s
    assert s["hyper_warnings"] >= 1, s
    state = widget_state(nb)
    for needle in ("await volcnb.run(", "volcnb.compare(grid)"):
        i, cell = find_cell(nb, needle)
        assert cell_pictures(cell, state) >= 1, f"cell {i} ({needle!r}) drew nothing"


def test_06_iva_upload(executed: Callable[[str], Executed]) -> None:
    nb, s = _check(executed, "06_iva_upload")
    # a callback arrived for every uploaded item and resolved its handle
    assert s["uploads"] == 3 and s["statuses"] == ["done"] * 3 and s["callbacks_matched"] == 3, s
    assert s["image_size"] == [512, 600] and s["url_image_size"] == [480, 320], s
    assert s["video"] == ["video/mp4", 64 * 1024 * 1024, 30.0] and s["rss_growth_mb_under_20"] is True, s
    assert s["unknown_id"] == [200, "unknown"] and s["malformed"] == [400, 400], s
    assert s["refused_fields"] == {"empty TaskID": "TaskID", "an empty Name": "name", "not a picture": "ImageFile",
                                   "not a video": "VideoFile"}, s
    assert s["scoped_video"] == "video/mp4", s
    _i, cell = find_cell(nb, "httpx.post(cb.url")
    text = outputs_text(cell)
    assert "'outcome': 'unknown'" in text and "not JSON" in text and "Status must be" in text, text
    assert "unknown 1" in text and "token=***" in text, text
    _j, views = find_cell(nb, "volcnb.BatchView(ups)")
    assert "3/3 done · 3 callbacks" in outputs_text(views), outputs_text(views)


def test_07_batch_and_resume(executed: Callable[[str], Executed]) -> None:
    nb, s = _check(executed, "07_batch_and_resume")
    assert 10 <= s["killed_with_ids"] < 24, s
    # resume() finished every recorded task that was not done yet, and submitted none
    assert s["done_at_kill"] + s["resumed_done"] == s["killed_with_ids"], s
    # the re-run submits only what the killed script never reached; the next one nothing at all
    assert s["first_rerun_new"] <= 24 - s["killed_with_ids"] + s["possibly_created"], s
    assert s["second_rerun_new"] == 0, s
    # a SIGKILL can land while every one of the batch's concurrency=4 slots has a submit on the wire
    assert s["done"] + s["possibly_created"] == 24 and s["possibly_created"] <= 4, s
    assert s["results"] == 24 or s["possibly_created"], s
    i, cell = find_cell(nb, "volcnb.compare(results")
    assert cell_pictures(cell, widget_state(nb)) >= 1, f"cell {i} drew nothing"


def test_08_errors_and_retries(executed: Callable[[str], Executed]) -> None:
    _nb, s = _check(executed, "08_errors_and_retries")
    assert s["text risk"] == ["ContentRiskError", 50412, False], s
    assert s["output risk"] == ["ContentRiskError", 50511, False], s
    assert s["paced_done"] == 12 and s["survived_500s"] is True, s
    assert s["burst without retries"][0] in ("RateLimitError", "ConcurrencyLimitError"), s
    assert s["burst without retries"][1] in (50429, 50430) and s["burst without retries"][2] is True, s
    assert s["answer lost after the submit"][0] in ("SubmitUncertainError", "PossiblyCreatedError"), s
    assert s["answer lost after the submit"][2] is False, s
    assert s["wait of 1 s"][0] == "TaskTimeoutError" and s["attached_status"] == "done", s
    assert s["fetched after its lifetime"][0] == "TaskExpiredError", s
    assert s["wrong type"] == ["ValidationError", "refine_mask", False], s
    assert s["value out of range"] == ["ValidationError", "only_mask", False], s
    assert s["prompt too long"] == ["ValidationError", "prompt", False], s


def test_05_text_to_image(executed: Callable[[str], Executed]) -> None:
    nb, s = _check(executed, "05_text_to_image")
    assert s["backend"] == "volcnb sim" and s["direct_size"] == (768, 512), s
    assert s["too_small"] == ["ValidationError", "width"], s
    assert s["gateway_image"] == (512, 512) and s["pair_sizes"] == [(256, 256), (256, 256)], s
    assert (s["created"], s["first_poll"], s["unknown"]) == (201, 202, 400), s
    assert s["limit_codes"] == [201] * 10 + [429] and s["waited_429"] is True, s
    assert s["validation"] == [400, "请求参数错误"] and s["refused"] == ["GatewayError", 400], s
    _i, page = find_cell(nb, "volcnb.gateway.serve(")
    assert any("href=" in str(o.get("data", {}).get("text/html", "")) for o in page.outputs), "the page is linked"


def test_all_eight_present_and_under_5_minutes(executed: Callable[[str], Executed]) -> None:
    """Last in this module: every teaching notebook exists, and all eight executions took < 5 minutes."""
    missing = [n for n in TEACHING if n not in PRESENT]
    assert not missing, f"teaching notebooks missing: {missing}"
    seconds = {n: round(executed(n)[1], 1) for n in TEACHING}
    print(f"\nnotebook wall times (s): {seconds}, total {sum(seconds.values()):.0f} s")
    assert sum(seconds.values()) < ALL_EIGHT_SECONDS, seconds
