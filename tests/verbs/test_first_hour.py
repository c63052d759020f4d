"""A newcomer's first hour, in fresh processes: keys found where the official SDK keeps them,
``VOLCNB_ENDPOINT`` pointing a notebook at a ``volcnb sim``, and ``VOLCNB_LOG`` showing what happens."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from volcnb.sim import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, SimServer, Simulator

SCRIPT = """
import asyncio, json, volcnb
from matplotlib import cbook
client = volcnb.get_default_client()
res = asyncio.run(volcnb.run("saliency_seg", cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
print(json.dumps({"simulator": client.simulator is not None, "task_id": res.task_id,
                  "key": client.credentials.access_key}))
"""


def python(code: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("VOLC", "VOLCNB"))}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=home,
                          env={**clean, "HOME": str(home), "USERPROFILE": str(home), **env})


def test_keys_in_the_sdk_order_from_a_temporary_home(tmp_path: Path) -> None:
    """``~/.volc/credentials`` (INI) first, ``~/.volc/config`` (JSON) only when it is absent, the
    environment before both, and the source named without the secret."""
    code = ("import json, volcnb; from volcnb.http.credentials import find_credentials; f = find_credentials(); "
            "print(json.dumps([f.credentials.access_key, f.source] if f else None))")
    volc = tmp_path / ".volc"
    volc.mkdir()
    assert json.loads(python(code, tmp_path).stdout) is None
    (volc / "config").write_text(json.dumps({"ak": "AKconfig", "sk": "sk-config"}), encoding="utf-8")
    assert json.loads(python(code, tmp_path).stdout) == ["AKconfig", "~/.volc/config"]
    (volc / "credentials").write_text("[default]\naccess_key_id = AKini\nsecret_access_key = sk-ini\n",
                                      encoding="utf-8")
    assert json.loads(python(code, tmp_path).stdout) == ["AKini", "~/.volc/credentials"]
    env = python(code, tmp_path, VOLC_ACCESSKEY="AKenv", VOLC_SECRETKEY="sk-env")
    assert json.loads(env.stdout) == ["AKenv", "environment (VOLC_ACCESSKEY)"]


def test_volcnb_endpoint_points_the_default_client_at_a_volcnb_sim(tmp_path: Path) -> None:
    """No keys anywhere: the endpoint says it is a volcnb simulator, its public pair is used, and the task
    lands on that server (not on an embedded simulator)."""
    sim = Simulator(queue_time=0.0)
    with SimServer(sim) as server:
        proc = python(SCRIPT, tmp_path, VOLCNB_ENDPOINT=server.url)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["simulator"] is False and out["key"] == DEFAULT_ACCESS_KEY
    assert sim.store.get_task(out["task_id"]) is not None and sim.counters.accepted == 1
    assert "volcnb simulator" in proc.stderr and DEFAULT_SECRET_KEY not in proc.stderr


def test_volcnb_log_debug_shows_calls_with_task_ids_and_never_the_secret(tmp_path: Path) -> None:
    sim = Simulator(queue_time=0.0)
    with SimServer(sim) as server:
        proc = python(SCRIPT, tmp_path, VOLCNB_ENDPOINT=server.url, VOLCNB_LOG="debug",
                      VOLC_ACCESSKEY=DEFAULT_ACCESS_KEY, VOLC_SECRETKEY=DEFAULT_SECRET_KEY)
    assert proc.returncode == 0, proc.stderr
    task_id = json.loads(proc.stdout.strip().splitlines()[-1])["task_id"]
    lines = [ln for ln in proc.stderr.splitlines() if " DEBUG volcnb: " in ln]
    assert any("CVSync2AsyncSubmitTask" in ln and task_id in ln for ln in lines), proc.stderr
    assert any("CVSync2AsyncGetResult" in ln and "status done" in ln for ln in lines), proc.stderr
    assert DEFAULT_SECRET_KEY not in proc.stderr and "Signature=" not in proc.stderr
    assert all(len(ln) < 300 for ln in lines)  # no image bytes


def test_pictures_in_a_script_reach_pyplot_and_compare_watermarks_takes_a_result(tmp_path: Path) -> None:
    """``res.overlay()`` then ``plt.savefig()`` writes the overlay, not a blank image; a Result is enough for
    ``compare_watermarks``."""
    code = """
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np, volcnb
from PIL import Image
from matplotlib import cbook
volcnb.use_simulator(queue_time=0.0, service_times={"saliency_seg": 0.2})
res = volcnb.run("saliency_seg", cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).result()
res.overlay()
plt.savefig("overlay.png")
fig = volcnb.compare_watermarks(res, positions=(0, 2), languages=(0,))
plt.savefig("watermarks.png")
a = np.asarray(Image.open("overlay.png").convert("L"))
print(a.shape[0] > 100, float(a.std()) > 20, len(fig.results), plt.gcf() is fig)
"""
    proc = python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True", "2", "True"]
    assert (tmp_path / "watermarks.png").stat().st_size > 10_000
