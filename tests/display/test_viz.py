"""volcnb.viz on real simulator results: where the contour pixels land, where each watermark lands."""

from __future__ import annotations

import io
import math
import os
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import matplotlib
import matplotlib.cbook
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageColor, ImageDraw

import volcnb
from volcnb.display import compare, viz
from volcnb.results import SegmentationResult
from volcnb.sim import Simulator
from volcnb.sim._watermark import logo_box

W, H = 320, 240
CX, CY, R = 160, 120, 60  # the red disc
RED = (220, 0, 0)
GRACE_OVERLAY = "/tmp/volcnb_overlay_grace.png"
GRACE_WATERMARKS = "/tmp/volcnb_watermarks_grace.png"

Pixels = npt.NDArray[np.uint8]


def disc_image() -> Image.Image:
    img = Image.new("RGB", (W, H), "white")
    ImageDraw.Draw(img).ellipse((CX - R, CY - R, CX + R, CY + R), fill=RED)
    return img


@pytest.fixture
def disc(client: volcnb.Client) -> SegmentationResult:
    res = volcnb.submit("saliency_seg", disc_image(), only_mask=1, display=False).result()
    assert isinstance(res, SegmentationResult)
    return res


@pytest.fixture(autouse=True)
def pyplot_sees_the_figures() -> Iterator[None]:
    """Outside a kernel, with pyplot imported (as here), every figure a helper makes is pyplot's current one
    (``plt.savefig`` after ``res.overlay()`` works); they are closed after each test."""
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    yield
    made = set(plt.get_fignums()) - before
    for num in made:
        plt.close(num)


def rgb(color: str) -> npt.NDArray[np.int32]:
    return np.array(ImageColor.getrgb(color)[:3], np.int32)


def near_color(pixels: Pixels, color: str, tol: int = 40) -> npt.NDArray[np.bool_]:
    """Pixels within ``tol`` (per channel) of ``color``."""
    diff = np.abs(pixels[..., :3].astype(np.int32) - rgb(color))
    ok: npt.NDArray[np.bool_] = np.all(diff <= tol, axis=-1)
    return ok


def ring_hits(hit: npt.NDArray[np.bool_], to_pixel: Callable[[float, float], tuple[float, float]],
              radius: float, reach: int) -> float:
    """Fraction of points on the disc's true boundary with a ``hit`` pixel within ``reach`` pixels."""
    found = 0
    angles = np.linspace(0, 2 * math.pi, 72, endpoint=False)
    for a in angles:
        col, row = to_pixel(CX + radius * math.cos(a), CY + radius * math.sin(a))
        r0, c0 = int(round(row)), int(round(col))
        window = hit[max(0, r0 - reach):r0 + reach + 1, max(0, c0 - reach):c0 + reach + 1]
        found += bool(window.any())
    return found / len(angles)


def agg_pixels(fig: matplotlib.figure.Figure) -> Pixels:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


# --- Pillow overlay -------------------------------------------------------------------------------


def test_overlay_image_draws_contours_on_the_disc_edge(disc: SegmentationResult) -> None:
    out = viz.overlay_contours_image(None, disc, bbox=False)
    assert out.size == (W, H) and out.mode == "RGB"
    px = np.asarray(out)
    line = near_color(px, viz.PALETTE[0])
    assert ring_hits(line, lambda x, y: (x, y), R, reach=1) >= 0.97
    # The centre is tinted (fill) but carries no contour; the background far away is untouched.
    assert not line[CY - 30:CY + 30, CX - 30:CX + 30].any()
    assert not line[:, :CX - R - 6].any() and not line[:, CX + R + 6:].any()
    centre = px[CY, CX].astype(int)
    assert np.abs(centre - RED).sum() > 60  # tinted by the fill
    assert tuple(px[5, 5]) == (255, 255, 255)


def test_overlay_image_options(disc: SegmentationResult) -> None:
    plain = np.asarray(viz.overlay_contours_image(disc_image(), disc, fill=False, bbox=False))
    assert tuple(plain[CY, CX]) == RED  # no fill
    boxed = np.asarray(viz.overlay_contours_image(None, disc, fill=False, colors=["#0000ff"]))
    blue = near_color(boxed, "#0000ff", tol=10)
    x1, y1, x2, y2 = disc.bbox or (0, 0, 0, 0)
    assert blue[(y1 + y2) // 2, x1] and blue[(y1 + y2) // 2, x2 - 1]  # the box's left and right sides
    assert blue[y1, (x1 + x2) // 2 - 20]  # its top edge, away from the circle
    # A half-size picture: the contours are scaled to it.
    half = viz.overlay_contours_image(disc_image().resize((W // 2, H // 2)), disc, bbox=False)
    line = near_color(np.asarray(half), viz.PALETTE[0])
    assert ring_hits(line, lambda x, y: (x / 2, y / 2), R, reach=1) >= 0.95
    # No input image known: a grey canvas of the original size.
    bare = SegmentationResult.from_data(req_key="saliency_seg", task_id="1", data=disc.data)
    assert isinstance(bare, SegmentationResult)
    grey = viz.overlay_contours_image(None, bare, fill=False, bbox=False)
    assert grey.size == (W, H) and tuple(np.asarray(grey)[3, 3]) == (128, 128, 128)


def test_entity_overlay_gives_each_entity_its_colour(client: volcnb.Client) -> None:
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    d.ellipse((30, 60, 130, 160), fill=(0, 0, 0))
    d.ellipse((190, 50, 290, 150), fill=(0, 0, 0))
    res = volcnb.submit("entity_seg", img, display=False).result()
    assert isinstance(res, SegmentationResult) and len(res.bboxes) == 2
    px = np.asarray(viz.overlay_contours_image(None, res, bbox=False, fill=False))
    for i, box in enumerate(res.bboxes):
        own = near_color(px, viz.PALETTE[i])
        other = near_color(px, viz.PALETTE[1 - i])
        x1, y1, x2, y2 = box
        assert own[y1:y2, x1:x2].sum() > 100
        assert not other[y1 + 3:y2 - 3, x1 + 3:x2 - 3].any()


# --- matplotlib overlay -------------------------------------------------------------------------------


def test_matplotlib_overlay_draws_on_the_disc_edge(disc: SegmentationResult) -> None:
    artists = viz.overlay_contours(None, disc, bbox=False)
    fig = artists.figure
    assert type(fig).__module__ == "volcnb.display.figures"  # a plain Figure subclass, not a pyplot one
    ax: Any = artists[0].axes
    from matplotlib.image import AxesImage
    from matplotlib.patches import Polygon

    assert isinstance(artists[0], AxesImage)
    assert any(isinstance(a, Polygon) for a in artists)
    px = agg_pixels(fig)
    height = px.shape[0]

    def to_pixel(x: float, y: float) -> tuple[float, float]:
        xd, yd = ax.transData.transform((x, y))
        return xd, height - yd

    line = near_color(px, viz.PALETTE[0], tol=50)
    assert ring_hits(line, to_pixel, R, reach=3) >= 0.97
    c, r = to_pixel(CX, CY)
    k = 0.5 * (to_pixel(CX + R, CY)[0] - c)  # half the radius, in figure pixels
    assert not line[int(r - k):int(r + k), int(c - k):int(c + k)].any()
    # Displayable on its own in Jupyter.
    bundle = artists._repr_mimebundle_()
    assert bundle is not None and (bundle.get("image/png") or bundle["image/jpeg"])[:2] in (b"\x89P", b"\xff\xd8")


def test_matplotlib_overlay_on_a_given_axes(disc: SegmentationResult) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 3))
    ax = fig.add_subplot()
    artists = viz.overlay_contours(disc_image(), disc, ax=ax, colors=["#ff00ff"])
    assert artists.figure is fig and artists._repr_mimebundle_() is None
    assert all(a.axes is ax for a in artists)
    assert {a.get_label() for a in artists} >= {"input", "fill", "contour 0", "bbox 0"}
    assert ax.get_xlim() == (-0.5, W - 0.5)


def test_show_mask_and_segmentation(disc: SegmentationResult) -> None:
    artists = viz.show_mask(disc)
    shown = np.asarray(artists[0].get_array())
    assert np.array_equal(shown.astype(bool), disc.mask)
    fig = viz.show_segmentation(disc)
    axes = fig.axes
    assert [ax.get_title() for ax in axes][1:] == ["mask", "cut-out"]
    cut = next(im for im in axes[2].images if im.get_label() == "cutout")
    alpha = np.asarray(cut.get_array())[..., 3]
    assert alpha[CY, CX] == 255 and alpha[5, 5] == 0
    assert fig._repr_mimebundle_()["image/png"].startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="3 axes"):
        viz.show_segmentation(disc, axes=axes[:2])


def test_compare_grid(disc: SegmentationResult, client: volcnb.Client) -> None:
    other = volcnb.submit("saliency_seg", disc_image(), display=False).result()
    fig = compare.compare([disc, other, disc_image()], labels=["掩码 mask", "抠图 cut-out", "原图"], ncols=2)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["掩码 mask", "抠图 cut-out", "原图"]
    assert len(fig.axes) == 4  # a 2 × 2 grid, the last panel hidden
    first = next(im for im in visible[0].images if im.get_label() == "result")
    assert np.array_equal(np.asarray(first.get_array()), np.asarray(disc.images[0]))
    with pytest.raises(ValueError):
        compare.compare([disc], labels=["a", "b"])


# --- watermarks ---------------------------------------------------------------------------------------


def changed_box(a: Pixels, b: Pixels) -> tuple[int, int, int, int] | None:
    diff = np.abs(a.astype(int) - b.astype(int))
    if diff.ndim == 3:
        diff = diff.max(axis=-1)
    ys, xs = np.nonzero(diff > 8)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def in_corner(box: tuple[int, int, int, int], position: int, size: tuple[int, int]) -> bool:
    x1, y1, x2, y2 = box
    w, h = size
    right, bottom = position in (0, 3), position in (0, 1)
    horizontal = x1 >= w / 2 if right else x2 <= w / 2
    vertical = y1 >= h / 2 if bottom else y2 <= h / 2
    return horizontal and vertical


def test_compare_watermarks_fetches_the_same_task(sim: Simulator, client: volcnb.Client) -> None:
    task = volcnb.submit("saliency_seg", disc_image(), only_mask=1, display=False)
    plain = task.result().images[0]
    base = np.asarray(plain)
    polls = sim.counters.polls
    assert sim.counters.accepted == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "Glyph ... missing from font": Chinese must render
        fig = compare.compare_watermarks(task, positions=(0, 1, 2, 3), languages=(0, 1), opacities=(1.0,))
        agg_pixels(fig)
    assert sim.counters.accepted == 1, "compare_watermarks must never resubmit"
    assert sim.counters.polls == polls + 8

    assert len(fig.axes) == 8
    assert [ax.get_title() for ax in fig.axes[:4]] == [compare.POSITION_LABELS[p] for p in (0, 1, 2, 3)]
    assert [fig.axes[0].get_ylabel(), fig.axes[4].get_ylabel()] == ["中文", "English"]
    assert "opacity 1" in fig.get_suptitle() and str(task.task_id) in fig.get_suptitle()
    pairs = fig.results
    seen = set()
    for k, ax in enumerate(fig.axes):
        language, position = divmod(k, 4)
        info, _res = pairs[k]
        assert (info.position, info.language, info.opacity) == (position, language, 1.0)
        assert ax.get_gid() == f"position={position} language={language} opacity=1"
        shown = np.asarray(next(im for im in ax.images if im.get_label() == "result").get_array())
        box = changed_box(shown, base)
        assert box is not None, f"no watermark in panel {k}"
        lx1, ly1, lx2, ly2 = logo_box(plain.size, position=position, language=language)
        assert lx1 <= box[0] and ly1 <= box[1] and box[2] <= lx2 and box[3] <= ly2
        assert in_corner(box, position, plain.size), (k, box)
        seen.add(box)
    assert len(seen) == 8  # eight different marks


def test_compare_watermarks_texts_and_opacities(sim: Simulator, client: volcnb.Client) -> None:
    task = volcnb.submit("saliency_seg", disc_image(), only_mask=1, display=False)
    task.result()
    fig = compare.compare_watermarks(task, positions=(2,), languages=(1,), opacities=(0.5, 1.0),
                                 texts=(None, "样例 sample"))
    assert len(fig.axes) == 4 and sim.counters.accepted == 1
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert labels[0] == "English · opacity 0.5 · no custom text"
    assert labels[3] == "English · opacity 1 · “样例 sample”"
    with pytest.raises(ValueError):
        compare.compare_watermarks(task, positions=())


async def test_acompare_watermarks_waits_for_a_running_task(sim: Simulator, client: volcnb.Client) -> None:
    task = volcnb.submit("saliency_seg", disc_image(), only_mask=1, display=False)
    fig = await compare.compare_watermarks_async(task, positions=(0, 3), languages=(0,))
    assert task.status == "done" and len(fig.axes) == 2
    assert sim.counters.accepted == 1


# --- Grace Hopper: the pictures a person looks at --------------------------------------------------


def test_grace_hopper_pictures(sim: Simulator, client: volcnb.Client) -> None:
    sample: Any = matplotlib.cbook.get_sample_data("grace_hopper.jpg")
    with sample as fh:
        grace = Image.open(io.BytesIO(fh.read()))
        grace.load()
    task = volcnb.submit("saliency_seg", grace, display=False)
    res = task.result()
    assert isinstance(res, SegmentationResult)
    fig = viz.overlay_contours(None, res).figure
    fig.savefig(GRACE_OVERLAY, dpi=100)
    compare.compare_watermarks(task, opacities=(1.0,)).savefig(GRACE_WATERMARKS, dpi=100)
    assert sim.counters.accepted == 1
    for path in (GRACE_OVERLAY, GRACE_WATERMARKS):
        with Image.open(path) as im:
            assert im.width >= 500 and im.height >= 400
    # The Pillow overlay (the CLI's) has the contour colour where the subject's edge is.
    px = np.asarray(viz.overlay_contours_image(None, res, bbox=False))
    edge = res.mask ^ np.roll(res.mask, 1, axis=1)
    line = near_color(px, viz.PALETTE[0])
    assert line[edge].mean() > 0.8


def test_viz_never_loads_pyplot() -> None:
    """In a fresh interpreter the helpers draw and render without pyplot ever being imported."""
    code = """
import sys, volcnb
from PIL import Image, ImageDraw
from volcnb.display import compare, viz
volcnb.use_simulator(service_times={"saliency_seg": 0.05}, queue_time=0.0)
img = Image.new("RGB", (160, 128), "white"); ImageDraw.Draw(img).ellipse((40, 30, 120, 100), fill="red")
task = volcnb.submit("saliency_seg", img, display=False)
res = task.result()
viz.overlay_contours(None, res)._repr_mimebundle_()
compare.compare_watermarks(task, positions=(0,), languages=(0,))._repr_mimebundle_()
viz.overlay_contours_image(None, res)
print("pyplot" if "matplotlib.pyplot" in sys.modules else "clean")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "VOLCNB_QUIET": "1"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "clean"
