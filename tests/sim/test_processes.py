"""``volcnb sim --processes N``: outputs computed in worker processes that never outlive the server."""

from __future__ import annotations

import time
from pathlib import Path

from matplotlib import cbook

import volcnb
from volcnb.sim import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, SimProcess


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_compute_workers_exit_when_the_server_is_killed(tmp_path: Path) -> None:
    server = SimProcess("--processes", "2", "--queue-time", "0", log=tmp_path / "sim.log").start()
    try:
        client = volcnb.Client(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, endpoint=server.url)
        res = client.run("saliency_seg", cbook.get_sample_data("grace_hopper.jpg", asfileobj=False),
                         display=False).result()
        client.close()
        assert res.images
        assert server.proc is not None
        workers = [p for p in children(server.proc.pid)
                   if b"spawn_main" in (Path("/proc") / str(p) / "cmdline").read_bytes()]
        assert workers  # started on demand: at least the one that computed
    finally:
        server.kill()  # SIGKILL: the server cannot tell its workers
    deadline = time.monotonic() + 10
    while any(alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in workers), "compute workers outlived the server"
