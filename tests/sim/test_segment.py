"""The simulator's real segmentation algorithm (saliency_seg / entity_seg) and its output rendering."""

from __future__ import annotations

import math
import pathlib
import time
from collections.abc import Callable

import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image, ImageDraw, ImageFilter

from volcnb.sim._segment import (
    Segmentation,
    mask_bbox,
    mask_contours,
    render_entity_outputs,
    render_saliency_outputs,
    segment_entities,
    segment_saliency,
)

OVERLAY = pathlib.Path("/tmp/volcnb_seg_grace_hopper.png")

# ---------------------------------------------------------------------------------------------
# synthetic scenes with a known foreground
# ---------------------------------------------------------------------------------------------

Box = tuple[int, int, int, int]


def _background(kind: str, w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    out: np.ndarray
    if kind == "plain":
        out = np.broadcast_to(np.array([200.0, 205.0, 210.0]), (h, w, 3)).copy()
    elif kind == "linear":  # horizontal gradient, dark blue -> light
        t = (xx / (w - 1))[..., None]
        out = np.array([60.0, 90.0, 150.0]) + t * np.array([150.0, 100.0, 80.0])
    elif kind == "vlinear":  # vertical gradient, yellow -> grey-blue
        t = (yy / (h - 1))[..., None]
        out = np.array([230.0, 200.0, 120.0]) - t * np.array([120.0, 90.0, -60.0])
    elif kind == "radial":  # bright centre, dark corners (linear in r: not a quadratic)
        r = (np.hypot(xx - w / 2, yy - h / 2) / math.hypot(w / 2, h / 2))[..., None]
        out = np.array([240.0, 230.0, 200.0]) - r * np.array([170.0, 160.0, 120.0])
    elif kind == "noise":  # grainy: sigma 18 luminance + 6 chroma noise
        out = np.array([170.0, 180.0, 160.0]) + rng.normal(0, 18, (h, w, 1)) + rng.normal(0, 6, (h, w, 3))
    elif kind == "stripes":  # diagonal stripes, period 20 px, +-22
        s = np.where((xx + yy) // 10 % 2 == 0, 1.0, -1.0)[..., None]
        out = np.array([150.0, 160.0, 190.0]) + 22 * s
    elif kind == "checker":  # 24 px checkerboard, +-25
        s = np.where((xx // 24 + yy // 24) % 2 == 0, 1.0, -1.0)[..., None]
        out = np.array([120.0, 140.0, 110.0]) + 25 * s
    else:
        raise ValueError(kind)
    return out


def _star(box: Box, n: int = 5) -> list[tuple[float, float]]:
    x1, y1, x2, y2 = box
    cx, cy, r_out = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2
    pts = []
    for k in range(2 * n):
        r = r_out if k % 2 == 0 else r_out / 2.2
        a = -math.pi / 2 + k * math.pi / n
        pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return pts


def _shape_mask(shape: str, w: int, h: int, box: Box) -> np.ndarray:
    m = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(m)
    x1, y1, x2, y2 = box
    if shape == "ellipse":
        d.ellipse(box, fill=255)
    elif shape == "rect":
        d.rectangle(box, fill=255)
    elif shape == "star":
        d.polygon(_star(box), fill=255)
    elif shape == "triangle":
        d.polygon([((x1 + x2) / 2, y1), (x2, y2), (x1, y2)], fill=255)
    else:
        raise ValueError(shape)
    return np.asarray(m) > 127


def scene(bg: str, shape: str, w: int, h: int, box: Box, fg: tuple[int, int, int], seed: int = 0
          ) -> tuple[Image.Image, np.ndarray]:
    """A synthetic photo: ``shape`` in colour ``fg`` (mildly shaded top to bottom) on a ``bg`` background,
    plus sensor noise. Returns the image and the true foreground mask."""
    rng = np.random.default_rng(seed)
    img = _background(bg, w, h, rng)
    mask = _shape_mask(shape, w, h, box)
    yy = np.mgrid[0:h, 0:w][0].astype(np.float64)
    shade = (1.0 - 0.15 * np.clip((yy - box[1]) / max(1, box[3] - box[1]), 0, 1))[..., None]
    img = np.where(mask[..., None], np.array(fg, dtype=np.float64) * shade, img)
    img = img + rng.normal(0, 2.0, img.shape)
    return Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), "RGB"), mask


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


CASES = [
    # background, shape, width, height, bbox of the shape, colour
    ("plain", "ellipse", 400, 300, (120, 80, 280, 220), (200, 40, 40)),
    ("plain", "rect", 640, 480, (60, 70, 260, 300), (30, 60, 150)),
    ("plain", "star", 320, 320, (60, 50, 260, 250), (240, 180, 20)),
    ("linear", "ellipse", 512, 384, (250, 120, 450, 330), (230, 60, 40)),
    ("linear", "star", 400, 400, (80, 90, 300, 310), (250, 220, 60)),
    ("vlinear", "rect", 480, 360, (150, 60, 330, 300), (40, 120, 60)),
    ("radial", "ellipse", 600, 400, (220, 110, 380, 290), (30, 40, 120)),
    ("radial", "triangle", 400, 300, (40, 40, 200, 200), (160, 30, 160)),
    ("noise", "ellipse", 480, 360, (100, 150, 300, 330), (210, 60, 60)),
    ("noise", "star", 500, 400, (200, 80, 440, 320), (40, 60, 170)),
    ("stripes", "ellipse", 400, 300, (200, 60, 360, 260), (230, 120, 30)),
    ("stripes", "rect", 640, 360, (80, 100, 280, 300), (40, 40, 40)),
    ("checker", "ellipse", 480, 480, (140, 140, 360, 360), (220, 50, 50)),
    ("checker", "star", 512, 384, (40, 60, 260, 280), (240, 230, 80)),
    ("plain", "ellipse", 1024, 768, (600, 300, 760, 460), (20, 140, 40)),  # small, off-centre, full-size photo
]


def _case_id(c: tuple[object, ...]) -> str:
    return f"{c[0]}-{c[1]}-{c[2]}x{c[3]}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_synthetic_foreground_iou(case: tuple[str, str, int, int, Box, tuple[int, int, int]]) -> None:
    img, truth = scene(*case, seed=CASES.index(case))
    seg = segment_saliency(img)
    score = iou(seg.mask, truth)
    print(f"{_case_id(case)}: IoU={score:.3f} seg_score={seg.score:.3f}")
    assert seg.mask.shape == truth.shape and seg.mask.dtype == bool
    assert score >= 0.8, f"IoU {score:.3f} for {_case_id(case)}"
    # the bbox is the mask's own box, and it is close to the drawn shape's (star tips get blunted a little)
    assert seg.bbox == mask_bbox(seg.mask)
    tb = mask_bbox(truth)
    tol = max(6.0, 0.02 * max(case[2], case[3]))
    assert all(abs(a - b) <= tol for a, b in zip(seg.bbox, tb, strict=True)), (seg.bbox, tb)
    assert 0.5 <= seg.score <= 1.0


@pytest.mark.parametrize("refine", [1, 2])
@pytest.mark.parametrize("idx", [6, 9, 13])
def test_refined_masks_stay_accurate(idx: int, refine: int) -> None:
    img, truth = scene(*CASES[idx], seed=idx)
    seg = segment_saliency(img, refine_mask=refine)
    score = iou(seg.mask, truth)
    print(f"{_case_id(CASES[idx])} refine_mask={refine}: IoU={score:.3f}")
    assert score >= 0.9


def test_subject_cut_by_the_bottom_edge() -> None:
    """A bust whose torso runs off the bottom of the frame (the portrait situation) is still the subject."""
    w, h = 400, 500
    m = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(m)
    d.ellipse((150, 80, 250, 200), fill=255)
    d.rectangle((185, 190, 215, 230), fill=255)
    d.rectangle((80, 220, 320, h), fill=255)
    truth = np.asarray(m) > 127
    rng = np.random.default_rng(3)
    img = np.where(truth[..., None], np.array([150.0, 45.0, 35.0]), _background("linear", w, h, rng))
    seg = segment_saliency(Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)))
    score = iou(seg.mask, truth)
    print(f"bust: IoU={score:.3f}")
    assert score >= 0.9


def test_soft_matte_is_consistent_with_the_mask() -> None:
    img, _ = scene(*CASES[0], seed=0)
    for refine in (0, 2):
        seg = segment_saliency(img, refine_mask=refine)
        assert seg.soft.dtype == np.float32 and seg.soft.shape == seg.mask.shape
        assert float(seg.soft.min()) >= 0.0 and float(seg.soft.max()) <= 1.0
        assert np.array_equal(seg.soft >= 0.5, seg.mask)
        # a matte, not just a binary mask: there is a soft transition band
        assert ((seg.soft > 0.05) & (seg.soft < 0.95)).any()


def test_deterministic() -> None:
    img, _ = scene("noise", "star", 240, 200, (60, 40, 180, 160), (40, 60, 170), seed=9)
    a, b = segment_saliency(img, refine_mask=2), segment_saliency(img, refine_mask=2)
    assert np.array_equal(a.mask, b.mask) and np.array_equal(a.soft, b.soft)
    assert a.bbox == b.bbox and a.contours == b.contours and a.score == b.score


def test_nothing_salient() -> None:
    for img in (Image.new("RGB", (300, 200), (128, 128, 128)), Image.new("RGB", (64, 48), (0, 0, 0))):
        seg = segment_saliency(img)
        assert not seg.mask.any() and seg.bbox == (0, 0, 0, 0) and seg.contours == [] and seg.score == 0.0
        assert segment_entities(img) == []


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK"])
def test_any_pillow_mode(mode: str) -> None:
    base = Image.new("RGB", (300, 200), (220, 220, 220))
    ImageDraw.Draw(base).ellipse((100, 50, 200, 150), fill=(30, 30, 200))
    truth = _shape_mask("ellipse", 300, 200, (100, 50, 200, 150))
    seg = segment_saliency(base.convert(mode))
    assert iou(seg.mask, truth) >= 0.9


@pytest.mark.parametrize("size", [(1, 1), (3, 50), (8, 8), (40, 30), (128, 4096), (4096, 96)])
def test_tiny_and_extreme_shapes_do_not_fail(size: tuple[int, int]) -> None:
    w, h = size
    img = Image.new("RGB", size, (200, 200, 200))
    ImageDraw.Draw(img).ellipse((w // 4, h // 4, max(w // 4, 3 * w // 4), max(h // 4, 3 * h // 4)), fill=(200, 0, 0))
    seg = segment_saliency(img, refine_mask=2)
    assert seg.mask.shape == (h, w) and seg.soft.shape == (h, w)
    x1, y1, x2, y2 = seg.bbox
    assert 0 <= x1 <= x2 <= w and 0 <= y1 <= y2 <= h
    for out in render_saliency_outputs(img, seg, only_mask=2) + render_saliency_outputs(img, seg, only_mask=0):
        assert out.width >= 1 and out.height >= 1


def test_invalid_arguments() -> None:
    img, _ = scene("plain", "ellipse", 120, 90, (30, 20, 90, 70), (200, 40, 40))
    with pytest.raises(ValueError):
        segment_saliency(img, refine_mask=3)
    with pytest.raises(ValueError):
        segment_entities(img, refine_mask=-1)
    seg = segment_saliency(img)
    with pytest.raises(ValueError):
        render_saliency_outputs(img, seg, only_mask=5)
    with pytest.raises(ValueError):
        render_entity_outputs(img, [seg], return_format=7)


# ---------------------------------------------------------------------------------------------
# a real photo
# ---------------------------------------------------------------------------------------------

FACE = (185, 150, 340, 320)  # conservative box inside Grace Hopper's face (512 x 600 image)


def _grace_hopper() -> Image.Image:
    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    with Image.open(path) as im:
        return im.convert("RGB")


def _draw_overlay(img: Image.Image, seg: Segmentation, path: pathlib.Path) -> None:
    ov = img.convert("RGB")
    tint = Image.new("RGB", ov.size, (255, 0, 0))
    ov = Image.composite(Image.blend(ov, tint, 0.25), ov, Image.fromarray(seg.mask.astype(np.uint8) * 255, "L"))
    d = ImageDraw.Draw(ov)
    for poly in seg.contours:
        d.line([*(tuple(p) for p in poly), tuple(poly[0])], fill=(255, 0, 0), width=3)
    x1, y1, x2, y2 = seg.bbox
    d.rectangle((x1, y1, x2 - 1, y2 - 1), outline=(0, 255, 0), width=2)
    d.rectangle(FACE, outline=(255, 255, 0), width=1)
    ov.save(path)


def test_grace_hopper_photo() -> None:
    img = _grace_hopper()
    assert img.size == (512, 600)
    t0 = time.perf_counter()
    seg = segment_saliency(img)
    elapsed = time.perf_counter() - t0
    _draw_overlay(img, seg, OVERLAY)
    share = float(seg.mask.mean())
    print(f"grace_hopper: bbox={seg.bbox} share={share:.3f} score={seg.score:.3f} "
          f"contours={len(seg.contours)} time={elapsed * 1000:.0f} ms -> {OVERLAY}")
    x1, y1, x2, y2 = seg.bbox
    fx1, fy1, fx2, fy2 = FACE
    assert x1 <= fx1 and y1 <= fy1 and x2 >= fx2 and y2 >= fy2, f"bbox {seg.bbox} misses the face {FACE}"
    assert seg.mask[fy1:fy2, fx1:fx2].mean() >= 0.95  # the face itself is segmented, not just boxed
    assert 0.25 <= share <= 0.85
    # the backdrop and the flag's upper part are not the subject
    assert seg.mask[0:150, 420:512].mean() <= 0.05  # blue backdrop, top right
    assert seg.mask[0:120, 0:100].mean() <= 0.05  # stars, top left
    # the torso (dark uniform, cut by the bottom edge) is part of the subject
    assert seg.mask[450:600, 100:450].mean() >= 0.9
    assert len(seg.contours) >= 1 and all(len(c) <= 300 for c in seg.contours)


def test_grace_hopper_is_fast_enough_at_1024() -> None:
    """Sanity, not a benchmark: a 1024 x 1200 photo segments in well under a second even refined."""
    big = _grace_hopper().resize((1024, 1200), Image.Resampling.BICUBIC)
    t0 = time.perf_counter()
    seg = segment_saliency(big, refine_mask=2)
    elapsed = time.perf_counter() - t0
    print(f"grace_hopper 1024x1200 refine_mask=2: {elapsed * 1000:.0f} ms, share={seg.mask.mean():.3f}")
    assert elapsed < 5.0  # generous: shared CI machines
    assert 0.25 <= seg.mask.mean() <= 0.85


# ---------------------------------------------------------------------------------------------
# geometry
# ---------------------------------------------------------------------------------------------


def test_contours_lie_on_the_edge_of_a_disc() -> None:
    w, h, cx, cy, r = 480, 360, 250.0, 170.0, 90.0
    yy, xx = np.mgrid[0:h, 0:w]
    truth = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    img = np.where(truth[..., None], np.array([200, 30, 60]), np.array([230, 230, 225])).astype(np.uint8)
    for refine in (0, 2):
        seg = segment_saliency(Image.fromarray(img), refine_mask=refine)
        assert len(seg.contours) == 1
        pts = np.array(seg.contours[0], dtype=float)
        dist = np.abs(np.hypot(pts[:, 0] - cx, pts[:, 1] - cy) - r)
        print(f"disc refine_mask={refine}: {len(pts)} points, max |d - r| = {dist.max():.2f} px")
        assert len(pts) >= 16
        assert dist.max() <= 2.0


def test_mask_contours_of_known_masks() -> None:
    m = np.zeros((100, 120), dtype=bool)
    m[20:60, 30:90] = True  # a rectangle
    (rect,) = mask_contours(m)
    xs, ys = [p[0] for p in rect], [p[1] for p in rect]
    assert min(xs) in (29, 30) and max(xs) in (89, 90) and min(ys) in (19, 20) and max(ys) in (59, 60)
    assert len(rect) <= 12  # a box simplifies to (about) its corners

    ring = np.zeros((100, 100), dtype=bool)
    yy, xx = np.mgrid[0:100, 0:100]
    rr = np.hypot(xx - 50, yy - 50)
    ring[(rr <= 40) & (rr >= 20)] = True
    (outer,) = mask_contours(ring)  # the hole's boundary is not reported
    assert max(abs(math.hypot(x - 50, y - 50) - 40.5) for x, y in outer) <= 1.5

    two = np.zeros((60, 100), dtype=bool)
    two[10:20, 10:20] = True
    two[20:50, 50:90] = True
    big, small = mask_contours(two)
    assert min(p[0] for p in big) >= 49 and max(p[0] for p in small) <= 20  # largest first

    edge = np.ones((30, 40), dtype=bool)  # touching every border: points stay inside the image
    (full,) = mask_contours(edge)
    assert all(0 <= x <= 39 and 0 <= y <= 29 for x, y in full)

    rng = np.random.default_rng(0)
    angles = np.linspace(0, 2 * np.pi, 2000, endpoint=False)
    radius = 300 + 40 * rng.random(2000)
    poly = [(600 + r * math.cos(a), 600 + r * math.sin(a)) for a, r in zip(angles, radius, strict=True)]
    jag = Image.new("L", (1200, 1200), 0)
    ImageDraw.Draw(jag).polygon(poly, fill=255)
    contours = mask_contours(np.asarray(jag) > 0, max_points=300)
    assert contours and all(3 <= len(c) <= 300 for c in contours)
    assert max(p[0] for p in contours[0]) - min(p[0] for p in contours[0]) >= 600  # the big outline comes first

    assert mask_contours(np.zeros((10, 10), dtype=bool)) == []


def test_mask_bbox() -> None:
    m = np.zeros((50, 80), dtype=bool)
    assert mask_bbox(m) == (0, 0, 0, 0)
    m[10:21, 5:31] = True
    assert mask_bbox(m) == (5, 10, 31, 21)  # x2 / y2 exclusive
    m[49, 79] = True
    assert mask_bbox(m) == (5, 10, 80, 50)


# ---------------------------------------------------------------------------------------------
# saliency_seg outputs (only_mask 0..4)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered() -> tuple[Image.Image, Segmentation, np.ndarray]:
    img, truth = scene("plain", "ellipse", 400, 300, (100, 60, 300, 220), (200, 40, 40), seed=5)
    return img, segment_saliency(img, refine_mask=1), truth


def _inside_outside(seg: Segmentation) -> tuple[np.ndarray, np.ndarray]:
    """Pixels surely inside / outside the subject (more than 3 px away from the mask edge)."""
    m = Image.fromarray(seg.mask.astype(np.uint8) * 255, "L")
    inside = np.asarray(m.filter(ImageFilter.MinFilter(7))) > 0
    outside = np.asarray(m.filter(ImageFilter.MaxFilter(7))) == 0
    return inside, outside


def test_only_mask_0_cropped_cutout(rendered: tuple[Image.Image, Segmentation, np.ndarray]) -> None:
    img, seg, _ = rendered
    (out,) = render_saliency_outputs(img, seg, only_mask=0)
    x1, y1, x2, y2 = seg.bbox
    assert out.mode == "RGBA" and out.size == (x2 - x1, y2 - y1)
    a = np.asarray(out)[..., 3]
    inside, outside = _inside_outside(seg)
    assert (a[inside[y1:y2, x1:x2]] == 255).all() and (a[outside[y1:y2, x1:x2]] == 0).all()
    assert np.array_equal(np.asarray(out)[..., :3][inside[y1:y2, x1:x2]], np.asarray(img)[y1:y2, x1:x2][inside[y1:y2, x1:x2]])
    # the corners of an ellipse's bbox are background
    assert a[0, 0] == 0 and a[-1, -1] == 0


def test_only_mask_1_mask(rendered: tuple[Image.Image, Segmentation, np.ndarray]) -> None:
    img, seg, truth = rendered
    (out,) = render_saliency_outputs(img, seg, only_mask=1)
    assert out.mode == "L" and out.size == img.size
    arr = np.asarray(out)
    assert set(np.unique(arr).tolist()) == {0, 255}
    assert np.array_equal(arr == 255, seg.mask)
    assert iou(arr == 255, truth) >= 0.95


def test_only_mask_2_square_canvas(rendered: tuple[Image.Image, Segmentation, np.ndarray]) -> None:
    img, seg, _ = rendered
    x1, y1, x2, y2 = seg.bbox
    side = max(x2 - x1, y2 - y1)
    (white,) = render_saliency_outputs(img, seg, only_mask=2)
    assert white.mode == "RGB" and white.size == (side, side)
    assert white.getpixel((0, 0)) == (255, 255, 255)  # default canvas colour
    (green,) = render_saliency_outputs(img, seg, only_mask=2, rgb=(0, 255, 0))
    assert green.getpixel((0, 0)) == (0, 255, 0) and green.getpixel((side - 1, side - 1)) == (0, 255, 0)
    # the subject sits in the middle of the canvas
    c = np.asarray(green)[side // 2, side // 2].astype(int)
    assert c[0] > 150 and c[1] < 90


def test_only_mask_3_full_rgba(rendered: tuple[Image.Image, Segmentation, np.ndarray]) -> None:
    img, seg, _ = rendered
    (out,) = render_saliency_outputs(img, seg, only_mask=3)
    assert out.mode == "RGBA" and out.size == img.size
    a = np.asarray(out)[..., 3]
    inside, outside = _inside_outside(seg)
    assert (a[inside] == 255).all() and (a[outside] == 0).all()
    assert np.array_equal(np.asarray(out)[..., :3], np.asarray(img))
    # a real colour in a transparent mode fills the background with it instead
    (filled,) = render_saliency_outputs(img, seg, only_mask=3, rgb=(10, 20, 30))
    f = np.asarray(filled)
    assert filled.mode == "RGBA" and (f[..., 3] == 255).all()
    assert (f[..., :3][outside] == [10, 20, 30]).all()
    assert np.array_equal(f[..., :3][inside], np.asarray(img)[inside])


def test_only_mask_4_rgba_and_mask(rendered: tuple[Image.Image, Segmentation, np.ndarray]) -> None:
    img, seg, _ = rendered
    outs = render_saliency_outputs(img, seg, only_mask=4)
    assert [o.mode for o in outs] == ["RGBA", "L"] and all(o.size == img.size for o in outs)
    assert np.array_equal(np.asarray(outs[0]), np.asarray(render_saliency_outputs(img, seg, only_mask=3)[0]))
    assert np.array_equal(np.asarray(outs[1]) == 255, seg.mask)


def test_outputs_for_an_empty_segmentation() -> None:
    img = Image.new("RGB", (50, 40), (90, 90, 90))
    seg = segment_saliency(img)
    assert [o.size for o in render_saliency_outputs(img, seg, only_mask=0)] == [(1, 1)]
    assert render_saliency_outputs(img, seg, only_mask=0)[0].getpixel((0, 0)) == (0, 0, 0, 0)
    assert render_saliency_outputs(img, seg, only_mask=2, rgb=(1, 2, 3))[0].getpixel((0, 0)) == (1, 2, 3)
    (m,) = render_saliency_outputs(img, seg, only_mask=1)
    assert m.size == (50, 40) and not np.asarray(m).any()
    (rgba,) = render_saliency_outputs(img, seg, only_mask=3)
    assert (np.asarray(rgba)[..., 3] == 0).all()


# ---------------------------------------------------------------------------------------------
# entity_seg
# ---------------------------------------------------------------------------------------------


def _three_objects(bg: str) -> tuple[Image.Image, list[np.ndarray]]:
    w, h = 640, 420
    img = _background(bg, w, h, np.random.default_rng(7))
    truths = []
    for shape, box, colour in (("ellipse", (40, 60, 240, 300), (200, 40, 40)),
                               ("rect", (300, 80, 440, 200), (40, 60, 170)),
                               ("triangle", (500, 280, 590, 370), (240, 200, 30))):
        m = _shape_mask(shape, w, h, box)
        img = np.where(m[..., None], np.array(colour, dtype=np.float64), img)
        truths.append(m)
    return Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8)), truths


@pytest.fixture(scope="module", params=["plain", "noise"])
def three(request: pytest.FixtureRequest) -> tuple[Image.Image, list[np.ndarray], list[Segmentation]]:
    img, truths = _three_objects(request.param)
    return img, truths, segment_entities(img)


def test_entities_are_the_separate_objects_largest_first(
        three: tuple[Image.Image, list[np.ndarray], list[Segmentation]]) -> None:
    img, truths, ents = three
    assert len(ents) == 3
    areas = [int(e.mask.sum()) for e in ents]
    assert areas == sorted(areas, reverse=True)
    ious = [iou(e.mask, t) for e, t in zip(ents, truths, strict=True)]  # truths are listed largest first too
    print("entity IoUs:", [f"{v:.3f}" for v in ious])
    assert min(ious) >= 0.85
    assert not (ents[0].mask & ents[1].mask).any()
    for e in ents:
        assert e.bbox == mask_bbox(e.mask) and len(e.contours) == 1 and 0.5 <= e.score <= 1.0


def test_max_entity_keeps_the_largest(three: tuple[Image.Image, list[np.ndarray], list[Segmentation]]) -> None:
    img, truths, ents = three
    two = segment_entities(img, max_entity=2)
    assert len(two) == 2
    assert [e.bbox for e in two] == [e.bbox for e in ents[:2]]
    assert segment_entities(img, max_entity=0) == []


def test_saliency_keeps_the_dominant_objects(three: tuple[Image.Image, list[np.ndarray], list[Segmentation]]) -> None:
    img, truths, _ = three
    seg = segment_saliency(img)
    # the large ellipse and the rectangle (>= 15 % of the largest) are kept, the small triangle is not
    assert seg.mask[truths[0]].mean() > 0.95 and seg.mask[truths[1]].mean() > 0.95
    assert seg.mask[truths[2]].mean() < 0.05
    assert len(seg.contours) == 2


def test_entity_render_formats(three: tuple[Image.Image, list[np.ndarray], list[Segmentation]]) -> None:
    img, _, ents = three
    n = len(ents)
    masks = render_entity_outputs(img, ents, return_format=0)
    assert len(masks) == n and all(m.mode == "L" and m.size == img.size for m in masks)
    assert all(np.array_equal(np.asarray(m) == 255, e.mask) for m, e in zip(masks, ents, strict=True))

    (labels,) = render_entity_outputs(img, ents, return_format=1)
    lab = np.asarray(labels)
    assert labels.mode == "L" and labels.size == img.size
    assert set(np.unique(lab).tolist()) == set(range(n + 1))
    for i, e in enumerate(ents):
        assert (lab[e.mask] == i + 1).all()

    cuts = render_entity_outputs(img, ents, return_format=2)
    assert len(cuts) == n and all(c.mode == "RGBA" for c in cuts)
    assert [c.size for c in cuts] == [(e.bbox[2] - e.bbox[0], e.bbox[3] - e.bbox[1]) for e in ents]

    (preview,) = render_entity_outputs(img, ents, return_format=3)
    assert preview.mode == "RGB" and preview.size == img.size
    diff = np.abs(np.asarray(preview).astype(int) - np.asarray(img).astype(int)).sum(-1) > 0
    assert diff[ents[0].mask].mean() > 0.9 and diff[~np.logical_or.reduce([e.mask for e in ents])].mean() < 0.05

    both = render_entity_outputs(img, ents, return_format=4)
    assert [o.mode for o in both] == ["L"] * n + ["RGBA"] * n

    assert render_entity_outputs(img, [], return_format=0) == []
    assert not np.asarray(render_entity_outputs(img, [], return_format=1)[0]).any()
    assert np.array_equal(np.asarray(render_entity_outputs(img, [], return_format=3)[0]), np.asarray(img))


def test_public_functions_are_documented() -> None:
    import volcnb.sim._segment as mod

    funcs: list[Callable[..., object]] = [getattr(mod, name) for name in mod.__all__ if callable(getattr(mod, name))]
    assert funcs and all((f.__doc__ or "").strip() for f in funcs)
