#!/usr/bin/env python3
"""The 即梦AI异步接口 document's test_volcengine_async_api.sh, against any gateway URL.

    python scripts/gateway_smoke.py http://127.0.0.1:8080/api/v1 [--token T] [--timeout 120]

Health check, user creation, task creation, result query (until completed), parameter validation,
error handling. Prints one line per check; exit status 0 when all pass.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid

import httpx


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base_url")
    ap.add_argument("--token", default=None)
    ap.add_argument("--timeout", type=float, default=120.0)
    args = ap.parse_args(argv)
    base = args.base_url.rstrip("/")
    http = httpx.Client(headers={"Authorization": f"Bearer {args.token}"} if args.token else {}, timeout=30)
    user = f"smoke_{uuid.uuid4().hex[:8]}"
    failures = 0

    def check(name: str, ok: bool, detail: object = "") -> None:
        nonlocal failures
        failures += not ok
        print(f"{'PASS' if ok else 'FAIL'}  {name}  {detail if not ok else ''}".rstrip())

    r = http.get(f"{base}/health")
    check("健康检查 health", r.status_code == 200 and r.json().get("status") == "ok", r.text[:200])
    r = http.post(f"{base}/users", json={"user_id": user})
    check("用户创建 user creation", r.status_code == 201 and r.json()["data"]["user_id"] == user, r.text[:200])
    r = http.post(f"{base}/users", json={"user_id": user})
    check("用户创建 again: exists", r.status_code == 200, r.text[:200])
    body = {"prompt": "一只可爱的小猫咪在花园里玩耍", "user_id": user, "model": "doubao-seedream-3.0-t2i",
            "size": "512x512", "quality": "hd", "style": "anime", "n": 1}
    r = http.post(f"{base}/ai/image/task", json=body)
    created = r.json() if r.status_code == 201 else {}
    check("任务创建 task creation (201, pending)", r.status_code == 201 and created.get("success") is True
          and created["data"]["status"] == "pending" and created["data"]["task_id"].startswith("volcengine_img_")
          and created["data"]["provider"] == "volcengine_jimeng" and "message" in created, r.text[:200])
    task_id = created.get("data", {}).get("task_id", "missing")
    deadline, r = time.monotonic() + args.timeout, None
    while time.monotonic() < deadline:
        r = http.get(f"{base}/ai/image/result/{task_id}")
        if r.status_code != 202:
            break
        check("结果查询 processing (202)", r.json()["data"]["status"] in ("pending", "processing"), r.text[:200])
        time.sleep(1.0)
    assert r is not None
    ok = r.status_code == 200 and r.json()["data"]["status"] == "completed"
    check("结果查询 completed (200)", ok, r.text[:300])
    if ok:
        result = r.json()["data"]["result"]
        image = http.get(result["image_url"])
        check("图像 served", image.status_code == 200 and image.content[:4] == b"\x89PNG", image.status_code)
        check("metadata", result["metadata"]["size"] == "512x512" and result["duration"] > 0
              and len(result["metadata"]["data"]) == 1, result)
    for name, bad, field in (("missing prompt", {"user_id": user}, "Prompt"),
                             ("missing user_id", {"prompt": "猫"}, "UserID"),
                             ("bad size", {**body, "size": "100x100"}, "size"),
                             ("bad style", {**body, "style": "oil"}, "style"),
                             ("n too big", {**body, "n": 5}, "n must")):
        r = http.post(f"{base}/ai/image/task", json=bad)
        check(f"参数校验 {name} (400)", r.status_code == 400 and r.json().get("error") == "请求参数错误"
              and field in r.json().get("message", ""), r.text[:200])
    r = http.post(f"{base}/ai/image/task", content=b"{not json", headers={"Content-Type": "application/json"})
    check("参数校验 broken JSON (400)", r.status_code == 400, r.text[:200])
    for path in ("/ai/image/result/", "/ai/image/result"):
        r = http.get(f"{base}{path}")
        check(f"错误处理 empty id {path} (400)", r.status_code == 400 and r.json() == {"error": "任务ID不能为空"},
              r.text[:200])
    r = http.get(f"{base}/ai/image/result/volcengine_img_0")
    check("错误处理 unknown id (400)", r.status_code == 400 and r.json()["error"] == "任务不存在", r.text[:200])
    r = http.get(f"{base}/no/such/route")
    check("错误处理 unknown route (404)", r.status_code == 404, r.text[:200])
    print(f"{'all passed' if not failures else f'{failures} failed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
