"""The command line as a user types it: ``volcnb run`` in a plain terminal, ``volcnb demo``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image

GRACE = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def _volcnb(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLC")}
    return subprocess.run([sys.executable, "-m", "volcnb.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=180)


def test_run_writes_results_with_text_progress(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _volcnb("run", "saliency_seg", str(GRACE), "--out", str(out), "--param", "only_mask=1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # No credentials: the simulator is used and it says so.
    assert "SIMULATOR" in proc.stderr
    # One progress line (tqdm style), redrawn at most once a second on a pipe, ending with 1/1.
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("saliency_seg ")]
    assert lines and " 1/1 [" in lines[-1] and "it/s]" in lines[-1], proc.stderr
    written = [Path(p) for p in proc.stdout.split() if p.endswith(".png")]
    assert written and all(p.exists() for p in written)
    mask = np.asarray(Image.open(written[0]))
    assert mask.shape == (600, 512)  # only_mask=1: the mask at the photo's size
    assert 0.2 < (mask > 127).mean() < 0.9


def test_run_rejects_bad_input_before_sending(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (64, 64), "white").save(tiny)
    proc = _volcnb("run", "saliency_seg", str(tiny), "--out", str(tmp_path / "o"), "--simulator", cwd=tmp_path)
    assert proc.returncode == 2  # a user error, refused before sending
    assert "128" in proc.stderr and "image" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_demo_writes_pngs_and_says_where(tmp_path: Path) -> None:
    proc = _volcnb("demo", "--out", str(tmp_path / "demo"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    wrote = [Path(line.split("wrote ", 1)[1].split("  — ")[0]) for line in proc.stdout.splitlines() if "wrote " in line]
    assert all("  — " in line for line in proc.stdout.splitlines() if "wrote " in line)  # each file says what it is
    names = {p.name for p in wrote}
    assert {"overlay.png", "watermarks.png"} <= names
    for p in wrote:
        assert p.exists() and p.stat().st_size > 1000
    overlay = np.asarray(Image.open(tmp_path / "demo" / "overlay.png").convert("RGB")).astype(int)
    photo = np.asarray(Image.open(GRACE).convert("RGB")).astype(int)
    assert overlay.shape == photo.shape
    assert (np.abs(overlay - photo).sum(axis=2) > 60).mean() > 0.01  # contours/fill were drawn


def test_run_over_a_folder_is_a_journaled_batch_that_resumes(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):
        a = np.full((144, 160, 3), 240, np.uint8)
        a[20:120, 20 + 5 * i:140] = (30, 60 + 40 * i, 200)
        Image.fromarray(a).save(photos / f"p{i}.png")
    first = _volcnb("run", "saliency_seg", str(photos / "*.png"), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stderr.strip().splitlines()[-1].startswith("saliency_seg") and " 4/4 [" in first.stderr
    pngs = [p for p in first.stdout.split() if p.endswith(".png")]
    assert len(pngs) == 4 and all(Path(p).exists() for p in pngs)
    assert (tmp_path / ".volcnb" / "journal.sqlite").exists()
    status = _volcnb("status", cwd=tmp_path)
    assert status.returncode == 0 and "4 done" in status.stdout, status.stdout
    resumed = _volcnb("resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "nothing unfinished" in resumed.stderr


def test_run_refuses_bad_parameters_with_the_field_and_sends_nothing(tmp_path: Path) -> None:
    """Against a `volcnb sim` over HTTP with keys in the environment: each bad parameter is named on stderr,
    the exit code says it failed, and the simulator never saw a submit."""
    from volcnb.sim import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, SimServer, Simulator

    sim = Simulator(queue_time=0.0)
    with SimServer(sim) as server:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("VOLC")},
               "VOLC_ACCESSKEY": DEFAULT_ACCESS_KEY, "VOLC_SECRETKEY": DEFAULT_SECRET_KEY}
        for params, field in [(["only_mask=9"], "only_mask"), (["refine_mask=\"x\""], "refine_mask"),
                              (["rgb=[1,2]"], "rgb"), (["return_url=\"no\""], "return_url"),
                              (['logo_info={"add_logo": true, "position": 7}'], "logo_info.position")]:
            args = ["run", "saliency_seg", str(GRACE), "--out", str(tmp_path / "o"), "--endpoint", server.url,
                    "--no-journal"]
            for p in params:
                args += ["-p", p]
            proc = subprocess.run([sys.executable, "-m", "volcnb.cli", *args], capture_output=True, text=True,
                                  cwd=tmp_path, env=env, timeout=120)
            assert proc.returncode == 2 and field in proc.stderr, (params, proc.stderr)
            assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr  # one line, no progress
            assert "Traceback" not in proc.stderr and DEFAULT_SECRET_KEY not in proc.stderr + proc.stdout
    assert sim.counters.submits == 0 and sim.counters.polls == 0


def test_version_capabilities_attach_and_unknown_keys_against_volcnb_sim(tmp_path: Path) -> None:
    """No keys anywhere (a temporary HOME) and ``--endpoint`` a ``volcnb sim``: the CLI learns that it is a
    simulator and uses its public pair; ``attach`` saves a task submitted elsewhere; user errors exit 2."""
    import volcnb
    from volcnb.sim import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, SimServer, Simulator

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("VOLC")}, "HOME": str(tmp_path)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "volcnb.cli", *args], capture_output=True, text=True,
                              cwd=tmp_path, env=env, timeout=120)

    version = cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"volcnb {volcnb.__version__}"
    listing = cli("capabilities")
    assert listing.returncode == 0 and all(key in listing.stdout for key in volcnb.CAPABILITIES)
    one = cli("capabilities", "saliency_seg")
    assert one.returncode == 0 and "only_mask" in one.stdout and "0 | 1 | 2 | 3 | 4" in one.stdout
    unknown = cli("run", "saliency_sg", str(GRACE), "--out", str(tmp_path / "o"), "--simulator")
    assert unknown.returncode == 2 and "did you mean saliency_seg" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1 and "Traceback" not in unknown.stderr

    sim = Simulator(queue_time=0.0)
    with SimServer(sim) as server:
        client = volcnb.Client(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, endpoint=server.url)
        task = volcnb.submit("saliency_seg", GRACE, client=client, display=False)
        task_id = task.result().task_id
        client.close()
        attached = cli("attach", "saliency_seg", str(task_id), "--out", str(tmp_path / "a"), "--endpoint", server.url)
        assert attached.returncode == 0, attached.stderr
        assert "volcnb simulator" in attached.stderr and DEFAULT_SECRET_KEY not in attached.stderr
        saved = [Path(p) for p in attached.stdout.split()]
        assert saved and all(p.exists() and p.suffix in (".png", ".jpg") for p in saved)
        run = cli("run", "saliency_seg", str(GRACE), "--out", str(tmp_path / "r"), "--endpoint", server.url,
                  "--no-journal")
        assert run.returncode == 0, run.stderr
        half = cli("run", "saliency_seg", str(GRACE), "--out", str(tmp_path / "h"), "--endpoint", server.url,
                   "--access-key", "AK")
        assert half.returncode == 2 and "--secret-key" in half.stderr
    assert sim.counters.accepted == 2  # the Python submit and the CLI run; attach only polled
    not_sim = cli("run", "saliency_seg", str(GRACE), "--out", str(tmp_path / "n"), "--endpoint",
                  "http://127.0.0.1:9")
    assert not_sim.returncode == 1 and "VOLC_ACCESSKEY" in not_sim.stderr and "Traceback" not in not_sim.stderr
