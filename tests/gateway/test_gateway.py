"""The Jimeng gateway over real HTTP (uvicorn on loopback): every status code and body of the 即梦AI异步接口
document, the per-user limit, the smoke script, a hypothesis fuzz, and a SIGKILL mid-flight that loses nothing."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import volcnb
from volcnb.gateway._server import GatewayProcess

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def gw():
    with volcnb.gateway.serve(service_time=0.3, per_user=10, task_timeout=20) as server:
        yield server


def _wait(base: str, task_id: str, timeout: float = 30.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(f"{base}/ai/image/result/{task_id}")
        if r.status_code != 202:
            return r
        assert r.json()["data"]["status"] in ("pending", "processing")
        time.sleep(0.2)
    raise AssertionError(f"{task_id} unfinished after {timeout} s")


def test_create_then_complete_in_the_documents_shapes(gw):
    body = {"prompt": "一只可爱的橘猫在樱花树下玩耍", "user_id": "shape", "size": "256x256", "style": "anime",
            "quality": "hd", "n": 2, "options": {"seed": 7}}
    r = httpx.post(f"{gw.url}/ai/image/task", json=body)
    assert r.status_code == 201
    created = r.json()
    assert created["success"] is True and created["message"] == "图像生成任务创建成功"
    data = created["data"]
    assert data["status"] == "pending" and data["provider"] == "volcengine_jimeng" and data["message"]
    assert data["task_id"].startswith("volcengine_img_") and data["task_id"][15:].isdigit() and data["system_task_id"]
    first = httpx.get(f"{gw.url}/ai/image/result/{data['task_id']}")
    assert first.status_code == 202 and first.json()["data"]["status"] in ("pending", "processing")
    done = _wait(gw.url, data["task_id"])
    assert done.status_code == 200 and done.json()["message"] == "任务完成"
    d = done.json()["data"]
    res = d["result"]
    assert d["status"] == "completed" and d["image_url"] == res["image_url"] == res["metadata"]["data"][0]["url"]
    assert res["id"] == data["task_id"] and res["type"] == "image" and res["provider"] == "volcengine_jimeng"
    assert isinstance(res["duration"], int) and res["duration"] > 10**8  # nanoseconds
    assert res["cost"] == pytest.approx(0.08)  # hd 0.04 × 2
    meta = res["metadata"]
    assert (meta["model"], meta["size"], meta["quality"], meta["prompt"]) == (
        "doubao-seedream-3.0-t2i", "256x256", "hd", body["prompt"])
    assert abs(meta["created"] - time.time()) < 60 and len(meta["data"]) == 2
    assert meta["data"][0]["revised_prompt"] == body["prompt"] + "，动漫风格"
    pngs = [httpx.get(item["url"]) for item in meta["data"]]
    import io

    from PIL import Image
    sizes = {Image.open(io.BytesIO(p.content)).size for p in pngs}
    assert sizes == {(256, 256)}  # generated at the upstream minimum 512 and downscaled
    assert pngs[0].content != pngs[1].content  # two upstream tasks, seeds 7 and 8


def test_failed_task_is_a_500_in_the_documents_shape(gw):
    r = httpx.post(f"{gw.url}/ai/image/task", json={"prompt": "sim:post-risk 一只猫", "user_id": "fail"})
    assert r.status_code == 201
    done = _wait(gw.url, r.json()["data"]["task_id"])
    assert done.status_code == 500
    body = done.json()
    assert body["error"] == "任务执行失败" and body["message"].startswith("火山引擎API错误")
    assert body["data"] == {"task_id": r.json()["data"]["task_id"], "status": "failed"}


def test_validation_and_errors(gw):
    cases = [({"user_id": "v"}, "'Prompt' failed on the 'required' tag"),
             ({"prompt": "猫"}, "'UserID' failed on the 'required' tag"),
             ({"prompt": "猫", "user_id": "v", "size": "300x300"}, "size must be one of"),
             ({"prompt": "猫", "user_id": "v", "quality": "ultra"}, "quality must be one of"),
             ({"prompt": "猫", "user_id": "v", "n": 5}, "n must be an integer from 1 to 4"),
             ({"prompt": "猫", "user_id": "v", "n": "2"}, "n must be"),
             ({"prompt": "猫" * 781, "user_id": "v"}, "prompt is 781 characters; at most 780"),
             ({"prompt": "猫", "user_id": "v", "model": "dall-e"}, "model must be one of"),
             ([1, 2], "JSON object")]
    for body, message in cases:
        r = httpx.post(f"{gw.url}/ai/image/task", json=body)
        assert r.status_code == 400, body
        assert r.json()["error"] == "请求参数错误" and message in r.json()["message"], r.json()
    for route in ("ai/image/task", "users"):  # a huge body is refused while reading, never held whole
        huge = httpx.post(f"{gw.url}/{route}", content=b'{"prompt": "' + b"x" * 200_000 + b'"}',
                          headers={"Content-Type": "application/json"})
        assert huge.status_code == 400 and "body: at most 65536 bytes" in huge.json()["message"], route
    assert httpx.get(f"{gw.url}/ai/image/result/").json() == {"error": "任务ID不能为空"}
    assert httpx.get(f"{gw.url}/ai/image/result").status_code == 400
    unknown = httpx.get(f"{gw.url}/ai/image/result/volcengine_img_1")
    assert unknown.status_code == 400 and unknown.json()["error"] == "任务不存在"
    assert httpx.get(f"{gw.url}/nothing/here").status_code == 404
    assert httpx.get(f"{gw.url}/images/..%2F..%2Fetc%2Fpasswd.png").status_code == 404
    assert httpx.get(f"{gw.url}/openapi.json").json()["paths"]["/api/v1/ai/image/task"]["post"]


@pytest.fixture(scope="module")
def slow_gw():
    """Slow enough (4 s a task) that the ten tasks filling a user's slots are still unfinished when the
    client asks for an eleventh, however loaded the machine: the shared 0.3 s gateway raced that."""
    with volcnb.gateway.serve(service_time=4.0, per_user=10, task_timeout=30) as server:
        yield server


def test_per_user_limit_is_a_429_and_the_client_waits_it_out(slow_gw):
    gw = slow_gw
    body = {"prompt": "限额", "user_id": "busy"}
    codes = [httpx.post(f"{gw.url}/ai/image/task", json=body).status_code for _ in range(11)]
    assert codes == [201] * 10 + [429]
    refused = httpx.post(f"{gw.url}/ai/image/task", json=body)
    assert refused.status_code == 429 and refused.json()["error"] and "10" in refused.json()["message"]
    assert httpx.post(f"{gw.url}/ai/image/task", json={**body, "user_id": "other"}).status_code == 201
    client = volcnb.GatewayClient(gw.url, user_id="busy", poll_interval=0.2)
    res = asyncio.run(client.run("限额之后", size="512x512"))
    assert client.waited_429 >= 1 and res.images[0].size == (512, 512)


def test_gateway_client_run_submit_map(gw):
    client = volcnb.GatewayClient(gw.url, user_id="nb", poll_interval=0.2, max_in_flight=3)

    async def go():
        one = await client.run("一只可爱的橘猫", size="1024x1024", style="anime")
        many = await client.map([f"猫 {i}" for i in range(5)], size="256x256")
        return one, many

    one, many = asyncio.run(go())
    assert one.images[0].size == (1024, 1024) and one.data["metadata"]["data"][0]["revised_prompt"].endswith("动漫风格")
    assert [r.images[0].size for r in many] == [(256, 256)] * 5 and client.waited_429 == 0
    task = client.submit("阻塞等待", size="512x512")
    assert task.result(timeout=30).task_id == task.task_id
    with pytest.raises(volcnb.GatewayError, match="size must be one of"):
        client.submit("坏尺寸", size="9x9").result(timeout=10)


def test_users_health_and_the_smoke_script(gw):
    assert httpx.get(f"{gw.url}/health").json()["status"] == "ok"
    assert httpx.post(f"{gw.url}/users", json={}).status_code == 400
    out = subprocess.run([sys.executable, str(ROOT / "scripts/gateway_smoke.py"), gw.url, "--timeout", "30"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("PASS") >= 15 and "FAIL" not in out.stdout


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                     max_leaves=8)
_field = st.sampled_from(["prompt", "user_id", "model", "size", "quality", "style", "n", "options"])


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.dictionaries(_field, _json, max_size=8) | _json, task_id=st.text(max_size=40), raw=st.binary(max_size=40))
def test_fuzz_both_endpoints_finds_no_5xx(gw, body, task_id, raw):
    for reply in (httpx.post(f"{gw.url}/ai/image/task", json=body),
                  httpx.post(f"{gw.url}/ai/image/task", content=raw),
                  httpx.get(f"{gw.url}/ai/image/result/" + urllib.parse.quote(task_id, safe=""))):
        assert reply.status_code in (200, 201, 202, 400, 404, 429), (reply.status_code, reply.text)
        assert isinstance(reply.json(), dict)


def test_sigkill_with_20_in_flight_then_restart_completes_all(tmp_path):
    db = str(tmp_path / "gateway.sqlite")
    args = ("--db", db, "--service-time", "4", "--lease", "1", "--task-timeout", "90")
    proc = GatewayProcess(*args, log=tmp_path / "gw.log").start()
    ids = []
    for i in range(20):
        r = httpx.post(f"{proc.url}/ai/image/task", json={"prompt": f"重启 {i}", "user_id": f"k{i % 2}"})
        assert r.status_code == 201
        ids.append(r.json()["data"]["task_id"])
    time.sleep(0.5)
    statuses = [httpx.get(f"{proc.url}/ai/image/result/{t}").json()["data"]["status"] for t in ids]
    proc.kill()
    assert statuses.count("completed") == 0, statuses  # all 20 in flight when killed
    again = GatewayProcess(*args, port=proc.port, log=tmp_path / "gw.log").start()
    try:
        done = [_wait(again.url, t, timeout=80) for t in ids]
        assert [d.status_code for d in done] == [200] * 20, (tmp_path / "gw.log").read_text()[-2000:]
        urls = {d.json()["data"]["image_url"] for d in done}
        assert len(urls) == 20 and all(httpx.get(u).status_code == 200 for u in urls)
        upstream = json.dumps([d.json()["data"]["result"]["metadata"]["task_id"] for d in done])
        assert len(set(json.loads(upstream))) == 20
    finally:
        again.stop()


def test_task_timeout_fails_the_task_and_a_token_guards_the_api():
    with volcnb.gateway.serve(service_time=5, task_timeout=0.6, token="s3cret") as server:
        body = {"prompt": "太慢", "user_id": "slow"}
        refused = httpx.post(f"{server.url}/ai/image/task", json=body)
        assert refused.status_code == 401 and refused.json()["error"] == "未授权" and "s3cret" not in refused.text
        headers = {"Authorization": "Bearer s3cret"}
        r = httpx.post(f"{server.url}/ai/image/task", json=body, headers=headers)
        assert r.status_code == 201
        deadline = time.monotonic() + 10
        while (got := httpx.get(f"{server.url}/ai/image/result/{r.json()['data']['task_id']}",
                                headers=headers)).status_code == 202 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert got.status_code == 500 and got.json()["message"].startswith("任务超时"), got.json()
        assert httpx.get(f"{server.url}/health").status_code == 200
        client = volcnb.GatewayClient(server.url, user_id="slow", token="s3cret")
        assert "s3cret" not in repr(client)


def test_a_gateway_task_renders_in_the_task_views(gw):
    """The same live view as a CV task: status chip through queued/generating to done, polls, ids, a thumbnail."""
    from volcnb.display.cards import task_html, task_line

    client = volcnb.GatewayClient(gw.url, user_id="viewer", poll_interval=0.1)
    seen: list[str] = []

    async def go():
        task = client.submit("樱花树下的橘猫", size="256x256", display=False)
        task.on_change(lambda t: seen.append(t.status))
        view = volcnb.TaskView(task)
        batch = volcnb.BatchView([task])
        await task
        await client.aclose()
        return task, view, batch

    task, view, batch = asyncio.run(go())
    assert seen[-1] == "done" and "in_queue" in seen and task.gateway_status == "completed", seen
    view.refresh()
    assert "done" in view.chip.value and view.bar.bar_style == "success" and "<img" in view.thumbs.value
    assert f"task_id <code>{task.task_id}</code>" in view.ids.value and "user_id <code>viewer</code>" in view.ids.value
    assert task.polls >= 1 and f"{task.polls} poll" in task_line(task)
    assert "gateway doubao-seedream-3.0-t2i" in task_html(task) and "1/1 done" in batch.text(), batch.text()

    async def failing():
        bad = client.submit("坏尺寸", size="9x9", display=False)
        with pytest.raises(volcnb.GatewayError):
            await bad
        await client.aclose()
        return bad

    bad = asyncio.run(failing())
    assert bad.status == "failed" and bad.done and "size must be one of" in task_line(bad)
