"""IVA uploads streamed from disk: the same bytes as the in-memory body, signed as the official SDK signs that
body, the documented Region/Service headers outside the signature, retries only where nothing was created,
a file changed mid-way refused, and the uploading process's memory bounded (a fresh subprocess's RSS)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from collections import OrderedDict
from pathlib import Path
from typing import Any

import httpx
import pytest

import volcnb
from volcnb.protocol import wire
from volcnb.protocol.multipart import CHUNK, stream_multipart
from volcnb.sim import SimProcess, write_sample_video

AK, SK = "AKLTstreamTEST", "streamed-secret-key"
REPLY = {"ResponseMetadata": {"RequestId": "rid-1"}, "Result": {"VideoID": "v-1"}}


def capture(replies: list[Any]) -> tuple[volcnb.Client, list[tuple[httpx.Request, bytes]]]:
    """A client whose transport records each request with the exact bytes it streamed."""
    seen: list[tuple[httpx.Request, bytes]] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        body = b"".join([chunk async for chunk in request.stream])  # type: ignore[union-attr]
        seen.append((request, body))
        reply = replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return httpx.Response(200, json=reply)

    client = volcnb.Client(AK, SK, transport=httpx.MockTransport(handler),
                           retry=volcnb.RetryPolicy(max_retries=3, sleep=_no_sleep))
    return client, seen


async def _no_sleep(_delay: float) -> None:
    return None


def test_streamed_body_is_the_in_memory_body_in_bounded_chunks(tmp_path: Path) -> None:
    video = write_sample_video(tmp_path / "v.mp4", 3 * CHUNK + 123)
    fields: list[Any] = [("Request", '{"TaskID":"t"}'), ("VideoFile", ("v.mp4", video, "video/mp4"))]
    streamed = stream_multipart(fields, "fixedBoundary")
    in_memory, ctype = wire.multipart([fields[0], ("VideoFile", ("v.mp4", video.read_bytes(), "video/mp4"))],
                                      "fixedBoundary")
    chunks = list(streamed.chunks())
    assert b"".join(chunks) == in_memory and streamed.length == len(in_memory) and streamed.content_type == ctype
    assert streamed.sha256 == hashlib.sha256(in_memory).hexdigest()
    assert max(map(len, chunks)) <= CHUNK and len(chunks) >= 4


async def test_the_official_sdk_signer_gives_our_signature_on_the_streamed_multipart_body(tmp_path: Path,
                                                                                         monkeypatch: pytest.MonkeyPatch
                                                                                         ) -> None:
    from volcengine.auth.SignerV4 import SignerV4
    from volcengine.base.Request import Request
    from volcengine.Credentials import Credentials as SdkCredentials

    monkeypatch.setenv("HOME", str(tmp_path))  # the SDK must never read a developer's ~/.volc
    video = write_sample_video(tmp_path / "clip.mp4", 2 * CHUNK + 77)
    client, seen = capture([REPLY])
    up = await client.iva.add_video("iva-task-9", video, name="clip.mp4", desc="a clip", algo_params={"fps": 2},
                                    display=False)
    assert up.video_id == "v-1" and up.request_id == "rid-1"
    ((request, body),) = seen
    assert request.headers["Region"] == "cn-north-1" and request.headers["Service"] == "iva"  # the document's
    assert int(request.headers["Content-Length"]) == len(body) and "transfer-encoding" not in request.headers
    assert body.count(video.read_bytes()) == 1
    signed = request.headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert "region" not in signed and "service" not in signed and "content-type" in signed

    # The SDK's generic signer over the same request (the same headers, Region and Service included).
    xdate = request.headers["X-Date"]
    monkeypatch.setattr(SignerV4, "get_current_format_date", staticmethod(lambda: xdate))
    r = Request()
    r.method, r.path, r.host = "POST", "/", request.headers["Host"]
    r.headers = OrderedDict([("Host", r.host), ("Content-Type", request.headers["Content-Type"]),
                             ("Region", "cn-north-1"), ("Service", "iva")])
    r.query = OrderedDict(request.url.params.multi_items())
    r.body = body
    SignerV4.sign(r, SdkCredentials(AK, SK, "iva", "cn-north-1"))
    for name in ("Authorization", "X-Content-Sha256", "X-Date"):
        assert r.headers[name] == request.headers[name], name
    fields = json.loads(body.split(b'name="Request"\r\n\r\n')[1].split(b"\r\n--")[0])
    assert fields == {"TaskID": "iva-task-9", "Video": {"Name": "clip.mp4", "Source": "file", "Desc": "a clip"},
                      "AlgoParamConf": {"fps": 2}}


async def test_a_streamed_upload_is_retried_only_where_nothing_was_created(tmp_path: Path) -> None:
    video = write_sample_video(tmp_path / "v.mp4", CHUNK + 5)
    client, seen = capture([httpx.ConnectError("refused"), REPLY])
    up = await client.iva.add_video("t", video, display=False)
    assert up.video_id == "v-1" and len(seen) == 2 and seen[0][1] == seen[1][1]  # the same bytes again
    client, seen = capture([httpx.RemoteProtocolError("peer closed"), REPLY])
    with pytest.raises(volcnb.SubmitUncertainError):  # it may have been added: never sent twice
        await client.iva.add_video("t", video, display=False)
    assert len(seen) == 1


async def test_checks_before_sending(tmp_path: Path) -> None:
    client, seen = capture([])
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all")
    cases: list[tuple[Any, str]] = [
        (client.iva.add_video("t", text), "VideoFile"),
        (client.iva.add_video("", tmp_path), "TaskID"),
        (client.iva.add_image("t", b"not an image"), "ImageFile"),
        (client.iva.add_image(None, b"x"), "TaskID"),  # type: ignore[arg-type]
        (client.iva.add_image("t", "https://example.com/a.jpg", name=""), "name"),
    ]
    for call, field in cases:
        with pytest.raises(volcnb.ValidationError) as info:
            await call
        assert info.value.field == field, (field, info.value)
    assert seen == []


def test_a_file_changed_after_signing_is_refused(tmp_path: Path) -> None:
    video = write_sample_video(tmp_path / "v.mp4", CHUNK)
    body = stream_multipart([("VideoFile", ("v.mp4", video, "video/mp4"))])
    with video.open("ab") as fh:
        fh.write(b"more")
    with pytest.raises(volcnb.ValidationError, match="changed after its upload was signed"):
        list(body.chunks())


RSS_CHILD = textwrap.dedent("""
    import asyncio, json, sys
    import volcnb
    from volcnb.sim import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY

    def peak_kib():
        # VmHWM: this program's own high-water mark (ru_maxrss would carry the forking parent's across exec)
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))

    async def main(url, warm, video):
        client = volcnb.Client(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, endpoint=url, timeout=120)
        await client.iva.add_video("rss-task", warm, display=False)   # imports, pools, the first connection
        before = peak_kib()
        up = await client.iva.add_video("rss-task", video, display=False)
        after = peak_kib()
        await client.aclose()
        print(json.dumps({"before_kib": before, "after_kib": after, "video_id": up.video_id}))

    asyncio.run(main(*sys.argv[1:]))
""")


@pytest.mark.slow
def test_a_large_video_upload_keeps_the_uploading_process_small(tmp_path: Path) -> None:
    size = 200 * 1024 * 1024  # the issue's video
    video = write_sample_video(tmp_path / "big.mp4", size)
    warm = write_sample_video(tmp_path / "warm.mp4", CHUNK)
    with SimProcess(log=tmp_path / "sim.log") as server:
        out = subprocess.run([sys.executable, "-c", RSS_CHILD, server.url, str(warm), str(video)],
                             capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    growth_mb = (figures["after_kib"] - figures["before_kib"]) / 1024
    print(f"peak RSS {figures['before_kib'] / 1024:.1f} -> {figures['after_kib'] / 1024:.1f} MB")
    assert len(figures["video_id"]) == 36
    assert growth_mb < 24, f"peak RSS grew {growth_mb:.1f} MB for a {size >> 20} MB video ({figures})"
    assert figures["after_kib"] / 1024 < 100, f"peak RSS {figures['after_kib'] / 1024:.1f} MB ({figures})"
