"""The official ``volcengine`` SDK against the simulator over real HTTP: only host and scheme changed.

One module-wide ``volcnb sim`` runs as a real subprocess (``python -m volcnb.cli sim ...``); the cancel
test uses the in-thread ``http_sim`` fixture so it can make a task slow. ``VisualService`` is a process-wide
singleton whose constructor wipes the credentials, so each test constructs it exactly once.
"""

from __future__ import annotations

import base64
import io
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _documents import PORTRAIT_REQUEST
from matplotlib import cbook
from PIL import Image

from volcnb.sim import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, SimProcess, SimServer

AK, SK = "AKSDKTESTKEY", "SDK-test-secret-key"
PORTRAIT = "img2img_anime_accelerated_maintain_id"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    log = tmp_path_factory.mktemp("sdk") / "sim.log"
    proc = SimProcess("--access-key", AK, "--secret-key", SK, "--queue-time", "0.1", "--service-time", "saliency_seg=0.4:0",
                      "--service-time", f"{PORTRAIT}=0.4:0", log=log).start()
    yield proc
    proc.stop()


@pytest.fixture
def visual(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[str, str, str], Any]:
    """Make the (singleton) VisualService for ``host`` with the given keys; HOME is empty so ~/.volc is unread."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    made: list[Any] = []

    def make(host: str, ak: str = AK, sk: str = SK) -> Any:
        from volcengine.visual.VisualService import VisualService

        assert not made, "VisualService() is a singleton that wipes credentials: construct it once per test"
        vs = VisualService()
        vs.set_ak(ak)
        vs.set_sk(sk)
        vs.set_host(host)
        vs.set_scheme("http")
        made.append(vs)
        return vs

    return make


def grace_bytes() -> bytes:
    return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).read_bytes()


def poll_until_done(vs: Any, req_key: str, task_id: str, form: dict[str, Any] | None = None,
                    timeout: float = 30.0) -> tuple[dict[str, Any], list[str]]:
    """Poll ``cv_sync2async_get_result`` as the docs say: until ``data.status == "done"``."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply: dict[str, Any] = vs.cv_sync2async_get_result({"req_key": req_key, "task_id": task_id, **(form or {})})
        assert reply["code"] == 10000, reply
        status = reply["data"]["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == "done":
            return reply, seen
        assert status in ("in_queue", "generating"), reply
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} not done after {timeout} s (saw {seen})")


def decode_png(b64: str) -> Image.Image:
    raw = base64.b64decode(b64, validate=True)
    assert raw.startswith(b"\x89PNG\r\n\x1a\n")
    img = Image.open(io.BytesIO(raw))
    img.load()
    return img


# ---------------------------------------------------------------------------------------- the tests


def test_sdk_saliency_seg_submit_poll_fetch(server: SimProcess, visual: Callable[..., Any]) -> None:
    vs = visual(f"127.0.0.1:{server.port}")
    raw = grace_bytes()
    submitted = vs.cv_sync2async_submit_task({
        "req_key": "saliency_seg", "binary_data_base64": [base64.b64encode(raw).decode()],
        "only_mask": 3, "refine_mask": 0, "rgb": [-1, -1, -1]})
    assert submitted["code"] == 10000 and submitted["message"] == "Success"
    task_id = submitted["data"]["task_id"]
    assert isinstance(task_id, str) and task_id.isdigit()

    reply, seen = poll_until_done(vs, "saliency_seg", task_id)
    assert seen[-1] == "done" and seen[0] in ("in_queue", "generating") and len(seen) >= 2
    data = reply["data"]
    with Image.open(io.BytesIO(raw)) as original:
        w, h = original.size
    assert data["ori_width"] == [w] and data["ori_height"] == [h]
    [[x1, y1, x2, y2]] = data["bbox"]
    assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
    contours = data["contours_point"][0]
    assert contours and all(len(poly) >= 3 for poly in contours)
    # contour vertices sit on pixel corners: allow one pixel around the bbox
    assert all(x1 - 1 <= x <= x2 + 1 and y1 - 1 <= y <= y2 + 1 for poly in contours for x, y in poly)
    out = decode_png(data["binary_data_base64"][0])
    assert out.size == (w, h) and out.mode == "RGBA"  # only_mask=3: full-size cut-out with alpha
    assert isinstance(data["seg_score"][0], float)


def test_sdk_portrait_with_face_image(server: SimProcess, visual: Callable[..., Any]) -> None:
    vs = visual(f"127.0.0.1:{server.port}")
    submitted = vs.cv_sync2async_submit_task({
        "req_key": PORTRAIT, "positive_prompt": "1girl,beautiful,looking at viewer,portrait,",
        "binary_data_base64": [base64.b64encode(grace_bytes()).decode()],
        "face_image": "uri://binary_data?index=0", "face_switch": True, "seed": 7, "width": 800, "height": 640})
    assert submitted["code"] == 10000, submitted
    reply, _ = poll_until_done(vs, PORTRAIT, submitted["data"]["task_id"])
    [b64] = reply["data"]["binary_data_base64"]
    assert decode_png(b64).size == (800, 640)
    assert reply["data"]["algorithm_base_resp"] == {"status_code": 0, "status_message": "Success"}


def test_sdk_return_url_and_watermark(server: SimProcess, visual: Callable[..., Any]) -> None:
    vs = visual(f"127.0.0.1:{server.port}")
    submitted = vs.cv_sync2async_submit_task({
        "req_key": "saliency_seg", "binary_data_base64": [base64.b64encode(grace_bytes()).decode()]})
    task_id = submitted["data"]["task_id"]
    plain, _ = poll_until_done(vs, "saliency_seg", task_id)
    req_json = json.dumps({"logo_info": {"add_logo": True, "position": 0, "language": 1, "opacity": 1},
                           "return_url": True})
    reply, _ = poll_until_done(vs, "saliency_seg", task_id, {"req_json": req_json})
    assert reply["data"]["binary_data_base64"] == [""]  # an array, as documented
    [url] = reply["data"]["image_urls"]
    assert url.startswith(f"http://127.0.0.1:{server.port}/sim/files/")
    r = httpx.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    marked = Image.open(io.BytesIO(r.content))
    assert marked.tobytes() != decode_png(plain["data"]["binary_data_base64"][0]).tobytes()


def test_sdk_business_errors_surface_as_exceptions(server: SimProcess, visual: Callable[..., Any]) -> None:
    vs = visual(f"127.0.0.1:{server.port}")
    with pytest.raises(Exception, match="50200") as info:
        vs.cv_sync2async_submit_task({"req_key": "saliency_seg",
                                      "binary_data_base64": [base64.b64encode(grace_bytes()).decode()],
                                      "only_mask": 9})
    assert "only_mask" in str(info.value)
    with pytest.raises(Exception, match="50201"):
        vs.cv_sync2async_get_result({"req_key": "saliency_seg"})


def test_sdk_wrong_secret_key_gets_signature_error(server: SimProcess, visual: Callable[..., Any]) -> None:
    vs = visual(f"127.0.0.1:{server.port}", AK, "not-" + SK)
    with pytest.raises(Exception, match="SignatureDoesNotMatch"):
        vs.cv_sync2async_submit_task({"req_key": "saliency_seg", "image_urls": ["https://example.com/a.jpg"]})
    with pytest.raises(Exception, match="SignatureDoesNotMatch"):
        vs.cv_sync2async_get_result({"req_key": "saliency_seg", "task_id": "7000000000000000001"})
    stats = httpx.get(server.url + "/sim/stats").json()
    assert stats["counters"]["rejected"].get("SignatureDoesNotMatch", 0) >= 2


def test_sdk_cancel_task(http_sim: SimServer, visual: Callable[..., Any]) -> None:
    http_sim.sim.set_service_time(PORTRAIT, 60.0, 0.0)
    vs = visual(f"127.0.0.1:{http_sim.port}", DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)
    submitted = vs.cv_sync2async_submit_task({
        "req_key": PORTRAIT, "binary_data_base64": [base64.b64encode(grace_bytes()).decode()],
        "face_image": "uri://binary_data?index=0", "face_switch": True, "width": 600, "height": 600})
    task_id = submitted["data"]["task_id"]
    status = vs.cv_sync2async_get_result({"req_key": PORTRAIT, "task_id": task_id})["data"]["status"]
    assert status in ("in_queue", "generating")

    cancelled = vs.cv_cancel_task({"req_key": PORTRAIT, "task_id": task_id})
    assert cancelled["code"] == 10000 and cancelled["data"]["status"] == "cancelled"
    after = vs.cv_sync2async_get_result({"req_key": PORTRAIT, "task_id": task_id})
    assert after["code"] == 10000 and after["data"]["status"] == "not_found"
    again = vs.cv_cancel_task({"req_key": PORTRAIT, "task_id": task_id})
    assert again["data"]["status"] == "not_found"
    assert http_sim.sim.counters.cancels == 2


def test_sdk_home_is_isolated(visual: Callable[..., Any]) -> None:
    """The SDK would read ~/.volc; the fixture points HOME at an empty directory."""
    home = Path(os.environ["HOME"])
    assert not (home / ".volc").exists() and not any(home.iterdir())


# ------------------------------------------------------------------- the documents' own request examples


@pytest.fixture(scope="module")
def sample_url() -> Iterator[str]:
    """A loopback URL serving a sample photo: what ``https://xxx`` in the documents' examples stands for."""
    import http.server
    import threading

    data = grace_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            return None

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/sample.jpg"
    httpd.shutdown()
    httpd.server_close()


def test_sdk_sync2async_document_request_example(server: SimProcess, visual: Callable[..., Any],
                                                 sample_url: str) -> None:
    """The 同步转异步 document's submit example (主体分割), verbatim but for its image URL, through the SDK."""
    vs = visual(f"127.0.0.1:{server.port}")
    submitted = vs.cv_sync2async_submit_task({
        "req_key": "saliency_seg",
        "image_urls": [sample_url],  # "https://xxx"
        "only_mask": 3,
        "refine_mask": 0,
        "rgb": [-1, -1, -1],
    })
    assert submitted["code"] == 10000 and submitted["data"]["task_id"].isdigit(), submitted
    assert len(submitted["request_id"]) == 34
    req_json = ("{\"logo_info\":{\"add_logo\":true,\"position\":0,\"language\":0,\"opacity\":0.3,"
                "\"logo_text_content\":\"这里是明水印内容\"},\"return_url\":true}")  # the document's GetResult example
    reply, _ = poll_until_done(vs, "saliency_seg", submitted["data"]["task_id"], {"req_json": req_json})
    assert reply["data"]["ori_width"] == [Image.open(io.BytesIO(grace_bytes())).width]
    assert reply["data"]["binary_data_base64"] == [""] and httpx.get(reply["data"]["image_urls"][0]).status_code == 200


def test_sdk_portrait_document_request_example(server: SimProcess, visual: Callable[..., Any],
                                               sample_url: str) -> None:
    """The 人像保持 document's submit example, verbatim but for its image URL: accepted, its contradictions noted.

    It sets ``hyper_switch`` with the switches it is documented to need off, and points ``style_image`` at
    index 1 with one image while ``style_switch`` is off: warnings in ``response_data``, never a refusal.
    """
    vs = visual(f"127.0.0.1:{server.port}")
    submitted = vs.cv_sync2async_submit_task({**PORTRAIT_REQUEST, "image_urls": [sample_url]})  # "https://xxx"
    assert submitted["code"] == 10000 and submitted["data"]["task_id"].isdigit(), submitted
    reply, _ = poll_until_done(vs, PORTRAIT, submitted["data"]["task_id"], {
        "req_json": "{\"logo_info\":{\"add_logo\":true,\"position\":2,\"language\":0,\"opacity\":1}}"})
    notes = json.loads(reply["data"]["response_data"])["notes"]
    assert any("hyper_switch" in n for n in notes), notes
    assert any("style_image" in n and "unused" in n for n in notes), notes
    assert decode_png(reply["data"]["binary_data_base64"][0]).size == (1000, 1000)
