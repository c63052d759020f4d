"""``volcnb demo``: the main job on the embedded simulator.

Runs ``saliency_seg`` on matplotlib's sample photo (``grace_hopper.jpg``, shipped with matplotlib), then
writes the result images, the contours drawn over the photo, and the same task fetched with 4 watermark
positions × 2 languages as a grid. Prints where everything went.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def sample_photo() -> Path:
    """Path of matplotlib's ``grace_hopper.jpg``."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def demo(out: Path) -> int:
    """Run the demo into ``out``; return the process exit code."""
    from . import _verbs
    from .display.compare import compare_watermarks
    from .display.progress import TextProgress
    from .display.viz import overlay_contours_image
    from .results import SegmentationResult

    out.mkdir(parents=True, exist_ok=True)
    _verbs.use_simulator(service_times={"saliency_seg": 1.5})
    photo = sample_photo()
    print(f"volcnb demo: saliency_seg on {photo.name} via the embedded simulator (no credentials needed)")
    t0 = time.monotonic()
    task = _verbs.submit("saliency_seg", photo, only_mask=3, display=False)
    progress = TextProgress([task], stream=sys.stderr)
    res = task.result(timeout=120)
    progress.close()
    assert isinstance(res, SegmentationResult)
    written = res.save(out)
    overlay = out / "overlay.png"
    overlay_contours_image(None, res).save(overlay)
    grid = out / "watermarks.png"
    fig = compare_watermarks(task, positions=(0, 1, 2, 3), languages=(0, 1), opacities=(0.8,))
    fig.savefig(grid, dpi=100)
    bbox = getattr(res, "bbox", None)
    print(f"done in {time.monotonic() - t0:.1f}s · task {res.task_id} · {task.polls} polls · bbox {bbox}")
    about = {overlay: "the photo with the subject's outline, a light fill, its bbox and score",
             grid: "the same task fetched 8 times with logo_info: 4 positions × Chinese/English marks"}
    for path in written:
        about[path] = "the service's output: the subject cut out at full size (only_mask=3, transparent background)"
    for path in [*written, overlay, grid]:
        print(f"  wrote {path.resolve()}  — {about[path]}")
    return 0
