"""SIMULATED image generators for the simulator: no model, deterministic pictures.

The real service runs diffusion models; the simulator only needs outputs that are plausible in shape
(exact size, an RGB picture that visibly depends on the inputs) and *reproducible*, so tests and notebooks
can compare bytes.  Every picture is clearly marked as simulated.

* :func:`text_to_image` — a seeded procedural landscape (gradient sky, sun/moon with a glow, clouds or
  stars, layered ridges, a few trees) whose palette and geometry derive from a hash of
  ``(prompt, seed, size)``, with the prompt printed on it (wrapped, CJK-capable) and a
  "SIMULATED · volcnb" badge.
* :func:`stylize_portrait` — a cartoon/anime-style rendering of the input face (crop-to-fill, optional
  colour transfer from a style image, smoothing, colour quantisation, ink lines), structure preserved so
  the face stays recognisable; the seed (and prompt) only move a small decorative detail.

Determinism: randomness comes only from :class:`random.Random` seeded with a SHA-256 of the inputs, and
only its ``random()`` method is used (the one Python guarantees to be stable across versions); NumPy is
used for element-wise arithmetic only (no transcendental functions, whose SIMD paths can differ between
machines).  Same inputs → byte-identical pixels with a given Pillow/FreeType.
"""

from __future__ import annotations

import colorsys
import hashlib
import random

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from volcnb._font import load_font, replace_missing
from volcnb.sim._watermark import wrap_text

__all__ = ["BADGE_TEXT", "MAX_SIDE", "stylize_portrait", "text_to_image"]

BADGE_TEXT = "SIMULATED · volcnb"
"""The badge drawn on every simulated text-to-image picture."""

MAX_SIDE = 8192
"""Largest width/height the generators accept (the simulator enforces the API's own, smaller limits)."""

_CARTOON_MAX_SIDE = 1280

_RGB = tuple[int, int, int]
FloatArray = npt.NDArray[np.float64]


class _Rng:
    """Deterministic randomness from a SHA-256 of the inputs (only ``random.Random.random`` is used)."""

    def __init__(self, *parts: object) -> None:
        h = hashlib.sha256()
        for part in parts:
            b = repr(part).encode("utf-8")
            h.update(len(b).to_bytes(8, "big"))
            h.update(b)
        self._r = random.Random(int.from_bytes(h.digest(), "big"))  # noqa: S311 - not crypto

    def u(self, a: float = 0.0, b: float = 1.0) -> float:
        return a + (b - a) * self._r.random()

    def i(self, a: int, b: int) -> int:
        """Integer in [a, b]."""
        return min(b, a + int(self._r.random() * (b - a + 1)))


def _check_size(width: int, height: int) -> None:
    for name, v in (("width", width), ("height", height)):
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_SIDE:
            raise ValueError(f"{name} must be an int in [1, {MAX_SIDE}], got {v!r}")


def _hsv(h: float, s: float, v: float) -> _RGB:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(1.0, max(0.0, s)), min(1.0, max(0.0, v)))
    return (round(r * 255), round(g * 255), round(b * 255))


def _mix(a: _RGB, b: _RGB, t: float) -> _RGB:
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


def _vertical_gradient(w: int, h: int, stops: list[tuple[float, _RGB]]) -> Image.Image:
    """An RGB image whose rows interpolate linearly between colour stops at fractions of the height."""
    ys: FloatArray = np.arange(h, dtype=np.float64) / max(1, h - 1)
    xp = np.array([p for p, _ in stops], dtype=np.float64)
    rows = np.empty((h, 3), dtype=np.float64)
    for c in range(3):
        rows[:, c] = np.interp(ys, xp, np.array([col[c] for _, col in stops], dtype=np.float64))
    arr = np.broadcast_to(np.floor(rows + 0.5).astype(np.uint8)[:, None, :], (h, w, 3))
    return Image.fromarray(np.ascontiguousarray(arr), "RGB")


def _ridge(rng: _Rng, w: int, base_y: float, rough: float, n: int = 7) -> list[tuple[float, float]]:
    """A mountain ridge polyline by midpoint displacement, from x=0 to x=w."""
    pts = [(0.0, base_y + rng.u(-rough, rough)), (float(w), base_y + rng.u(-rough, rough))]
    disp = rough
    for _ in range(n):
        nxt: list[tuple[float, float]] = []
        for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
            nxt.append((x0, y0))
            nxt.append(((x0 + x1) / 2, (y0 + y1) / 2 + rng.u(-disp, disp)))
        nxt.append(pts[-1])
        pts = nxt
        disp *= 0.55
    return pts


def _badge(img: Image.Image, text: str, *, scale: float = 0.034) -> None:
    """Draw a high-contrast amber pill with ``text`` at the top centre of an RGB image (in place).

    Top *centre*, so it never sits where the service's corner watermark (``logo_info``) goes.
    """
    w, h = img.size
    size = max(10, round(min(w, h) * scale))
    size = min(size, max(6, h // 3))
    font = load_font(size)
    while size > 6 and font.getlength(text) + size * 1.6 > w - 4:
        size -= 1
        font = load_font(size)
    margin = max(2, round(size * 0.5))
    padx, pady = round(size * 0.55), round(size * 0.3)
    left, top, right, bottom = font.getbbox(text)
    bw, bh = right - left + 2 * padx, bottom - top + 2 * pady
    x, y = (w - bw) // 2, margin
    layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    d.rounded_rectangle(
        (x, y, x + bw - 1, y + bh - 1),
        radius=max(2, bh // 2),
        fill=(255, 196, 0, 235),
        outline=(20, 20, 20, 255),
        width=max(1, size // 14),
    )
    d.text((x + padx - left, y + pady - top), text, font=font, fill=(20, 20, 20, 255))
    img.paste(Image.alpha_composite(img.convert("RGBA"), layer).convert("RGB"))


def _scene(rng: _Rng, w: int, h: int) -> Image.Image:  # long: one landscape, drawn layer by layer
    """The procedural landscape, drawn at (w, h)."""
    # a theme keeps the palette plausible; the hash still moves every hue, saturation and value
    theme = ("day", "sunset", "night", "fantasy")[rng.i(0, 3)]
    night = theme == "night"
    j = rng.u(-0.03, 0.03)  # hue jitter shared by the sky
    if theme == "day":
        sky_top = _hsv(0.6 + j, rng.u(0.55, 0.75), rng.u(0.6, 0.8))
        sky_mid = _hsv(0.57 + j, rng.u(0.3, 0.5), rng.u(0.85, 0.95))
        horizon = _hsv(0.52 + j, rng.u(0.08, 0.2), rng.u(0.95, 1.0))
        disc = _hsv(0.14, rng.u(0.05, 0.2), 1.0)
        land_hue = rng.u(0.22, 0.4)
    elif theme == "sunset":
        sky_top = _hsv(0.7 + j, rng.u(0.45, 0.7), rng.u(0.3, 0.45))
        sky_mid = _hsv(0.92 + j, rng.u(0.35, 0.55), rng.u(0.65, 0.8))
        horizon = _hsv(0.07 + j, rng.u(0.5, 0.75), rng.u(0.95, 1.0))
        disc = _hsv(0.13, rng.u(0.2, 0.45), 1.0)
        land_hue = rng.u(0.7, 0.85)
    elif theme == "night":
        sky_top = _hsv(0.66 + j, rng.u(0.55, 0.8), rng.u(0.1, 0.2))
        sky_mid = _hsv(0.7 + j, rng.u(0.4, 0.6), rng.u(0.25, 0.38))
        horizon = _hsv(0.78 + j, rng.u(0.3, 0.5), rng.u(0.45, 0.6))
        disc = (255, 250, 225)
        land_hue = rng.u(0.6, 0.75)
    else:  # fantasy: any hue, pastel sky, pale complementary sun
        hue = rng.u()
        sky_top = _hsv(hue + 0.6, rng.u(0.45, 0.7), rng.u(0.4, 0.6))
        sky_mid = _hsv(hue + 0.55, rng.u(0.3, 0.5), rng.u(0.7, 0.85))
        horizon = _hsv(hue, rng.u(0.25, 0.5), rng.u(0.9, 1.0))
        disc = _hsv(hue + 0.5, rng.u(0.05, 0.2), 1.0)
        land_hue = hue + rng.u(0.4, 0.6)
    horizon_y = rng.u(0.5, 0.68)
    ground = _hsv(land_hue, rng.u(0.3, 0.6), rng.u(0.12, 0.3))
    img = _vertical_gradient(
        w, h, [(0.0, sky_top), (horizon_y * 0.6, sky_mid), (horizon_y, horizon), (1.0, ground)]
    ).convert("RGBA")
    unit = min(w, h)

    # stars (night) or clouds (day)
    layer = Image.new("RGBA", (w, h), (255, 255, 255, 0))  # transparent *white*: no dark fringe when blurred
    d = ImageDraw.Draw(layer)
    if night:
        for _ in range(rng.i(40, 110)):
            x, y = rng.u(0, w), rng.u(0, h * horizon_y * 0.8)
            r = rng.u(0.6, 1.8) * unit / 500
            d.ellipse((x - r, y - r, x + r, y + r), fill=(255, 255, 240, rng.i(120, 255)))
    else:
        for _ in range(rng.i(2, 5)):
            cx, cy = rng.u(-0.1, 1.1) * w, rng.u(0.08, 0.4) * h * horizon_y / 0.6
            cw = rng.u(0.12, 0.28) * w
            for _ in range(rng.i(4, 7)):
                ex, ey = cx + rng.u(-0.5, 0.5) * cw, cy + rng.u(-0.12, 0.12) * cw
                rx, ry = rng.u(0.18, 0.35) * cw, rng.u(0.08, 0.16) * cw
                d.ellipse((ex - rx, ey - ry, ex + rx, ey + ry), fill=(255, 255, 255, 150))
        layer = layer.filter(ImageFilter.GaussianBlur(unit / 160))
    img = Image.alpha_composite(img, layer)

    # sun or moon with a glow
    sr = rng.u(0.05, 0.09) * unit
    sx, sy = rng.u(0.15, 0.85) * w, rng.u(0.2, 0.5) * h * horizon_y
    glow = Image.new("RGBA", (w, h), (*disc, 0))
    ImageDraw.Draw(glow).ellipse(
        (sx - sr * 2.2, sy - sr * 2.2, sx + sr * 2.2, sy + sr * 2.2), fill=(*disc, 90)
    )
    glow = glow.filter(ImageFilter.GaussianBlur(sr * 0.8))
    img = Image.alpha_composite(img, glow)
    # the disc (a crescent at night): an opaque mask, minus an offset disc for the moon's shadow
    disc_mask = Image.new("L", (w, h), 0)
    dm = ImageDraw.Draw(disc_mask)
    dm.ellipse((sx - sr, sy - sr, sx + sr, sy + sr), fill=255)
    if night:
        off = sr * 0.45
        dm.ellipse((sx - sr + off, sy - sr - off * 0.4, sx + sr + off, sy + sr - off * 0.4), fill=0)
    img.paste(Image.new("RGBA", (w, h), (*disc, 255)), (0, 0), disc_mask)
    d = ImageDraw.Draw(img)

    # ridges, far (pale, close to the horizon colour) to near (dark, saturated)
    n_ridges = rng.i(3, 4)
    ridge_hue = land_hue
    front: list[tuple[float, float]] = []
    for k in range(n_ridges):
        t = (k + 1) / n_ridges
        base_y = h * (horizon_y - 0.12 + 0.11 * k + rng.u(-0.02, 0.02))
        rough = unit * rng.u(0.06, 0.14) * (1.2 - 0.5 * t)
        pts = _ridge(rng, w, base_y, rough)
        col = _mix(horizon, _hsv(ridge_hue + 0.03 * k, rng.u(0.35, 0.65), rng.u(0.18, 0.32)), 0.35 + 0.65 * t)
        d.polygon([*pts, (float(w), float(h)), (0.0, float(h))], fill=(*col, 255))
        front = pts

    # a few pine trees standing on the nearest ridge
    tree_col = _mix(_hsv(ridge_hue + 0.1, 0.6, 0.12), (0, 0, 0), 0.3)
    for _ in range(rng.i(2, 7)):
        idx = rng.i(0, len(front) - 1)
        tx, ty = front[idx]
        th = rng.u(0.07, 0.16) * unit
        tw = th * rng.u(0.35, 0.5)
        for j in range(3):
            top = ty - th * (1.0 - 0.28 * j)
            bot = ty - th * (0.45 - 0.25 * j)
            half = tw * (0.5 + 0.25 * j) / 1.5
            d.polygon([(tx, top), (tx - half, bot), (tx + half, bot)], fill=(*tree_col, 255))
        d.rectangle((tx - tw * 0.06, ty - th * 0.25, tx + tw * 0.06, ty + th * 0.05), fill=(*tree_col, 255))
    return img.convert("RGB")


def _caption(img: Image.Image, prompt: str, meta: str) -> None:
    """Draw the prompt (wrapped, ≤ 3 lines) and a small meta line in a centred "subtitle" panel.

    The panel floats above the bottom ~15 % of the shorter side, so a bottom-corner watermark
    (``logo_info``, applied later at query time) does not land on the caption text.
    """
    w, h = img.size
    unit = min(w, h)
    size = max(10, round(unit * 0.04))
    size = min(size, max(6, h // 8))
    font = load_font(size)
    small = load_font(max(6, round(size * 0.62)))
    pad = max(3, round(size * 0.6))
    outer = round(w * 0.05)
    max_w = max(1, w - 2 * outer - 2 * pad)
    text = replace_missing(" ".join(prompt.split()))  # collapse whitespace; no tofu
    lines = wrap_text(text, font, max_w) if text else []
    max_lines = 3
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        last = lines[-1]
        while last and font.getlength(last + "…") > max_w:
            last = last[:-1]
        lines[-1] = last.rstrip() + "…"
    parts = meta.split(" · ")
    while len(parts) > 1 and small.getlength(" · ".join(parts)) > max_w:
        parts = parts[1:]  # drop the least useful leading part on narrow images
    meta = " · ".join(parts)
    asc, desc = font.getmetrics()
    lh = asc + desc + round(size * 0.2)
    s_asc, s_desc = small.getmetrics()
    panel_h = pad * 2 + lh * len(lines) + s_asc + s_desc
    panel_w = max(1, w - 2 * outer)
    panel_w = min(
        panel_w, 2 * pad + max([round(small.getlength(meta))] + [round(font.getlength(t)) for t in lines])
    )
    reserve = min(round(unit * 0.15), max(0, h - panel_h))
    x0, y0 = (w - panel_w) // 2, max(0, h - reserve - panel_h)
    layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    d.rounded_rectangle(
        (x0, y0, x0 + panel_w - 1, y0 + panel_h - 1), radius=max(1, pad), fill=(10, 12, 20, 160)
    )
    y = y0 + pad
    for line in lines:
        d.text((w / 2, y), line, font=font, fill=(255, 255, 255, 255), anchor="ma")
        y += lh
    d.text((w / 2, y), meta, font=small, fill=(210, 214, 224, 255), anchor="ma")
    img.paste(Image.alpha_composite(img.convert("RGBA"), layer).convert("RGB"))


def text_to_image(prompt: str, *, width: int, height: int, seed: int) -> Image.Image:
    """Return a SIMULATED text-to-image result: a deterministic RGB picture of exactly width × height.

    The scene (palette, sky, sun/moon, clouds/stars, ridges, trees) is derived from a SHA-256 of
    ``(prompt, seed, width, height)``; the prompt is printed in a centred "subtitle" panel in the lower
    part, kept above the bottom-corner watermark zone (wrapped, at most three lines, characters the
    shipped font lacks shown as ``?``), over a small ``text_to_image · seed N · W×H`` line, and a "SIMULATED · volcnb" badge sits at the top centre.
    Same inputs → byte-identical pixels; another seed → another picture.

    Raises:
        ValueError: if ``width``/``height`` are not ints in ``[1, MAX_SIDE]``.
    """
    _check_size(width, height)
    rng = _Rng("text_to_image", prompt, int(seed), width, height)
    scale = 2 if width * height <= 2_000_000 else 1  # supersample the shapes for smooth edges
    img = _scene(rng, width * scale, height * scale)
    if scale != 1:
        img = img.reduce(scale)
    _caption(img, prompt, f"text_to_image · seed {int(seed)} · {width}×{height}")
    _badge(img, BADGE_TEXT)
    return img


def _channel_stats(arr: npt.NDArray[np.uint8]) -> list[tuple[float, float]]:
    """Per-channel (mean, std) of a uint8 H×W×3 array, from exact integer sums (order-independent)."""
    n = arr.shape[0] * arr.shape[1]
    out: list[tuple[float, float]] = []
    for c in range(3):
        ch = arr[..., c].astype(np.int64)
        s1 = int(ch.sum())
        s2 = int((ch * ch).sum())
        mean = s1 / n
        var = max(0.0, (s2 - s1 * s1 / n) / n)
        out.append((mean, var**0.5))
    return out


def _colour_transfer(img: Image.Image, style: Image.Image) -> Image.Image:
    """Match each RGB channel's mean and standard deviation to ``style``'s (Reinhard-style, in RGB).

    The contrast gain is clamped to [0.5, 2] so a flat style image cannot wash the face out.
    """
    src = np.asarray(img.convert("RGB"), dtype=np.uint8)
    ref_img = style.convert("RGB")
    ref_img.thumbnail((256, 256), Image.Resampling.BILINEAR)
    ref = np.asarray(ref_img, dtype=np.uint8)
    out = np.empty(src.shape, dtype=np.float64)
    for c, ((s_mean, s_std), (r_mean, r_std)) in enumerate(
        zip(_channel_stats(src), _channel_stats(ref), strict=True)
    ):
        gain = r_std / s_std if s_std > 1e-6 else 1.0
        gain = min(2.0, max(0.5, gain))
        out[..., c] = (src[..., c].astype(np.float64) - s_mean) * gain + r_mean
    return Image.fromarray(np.floor(np.clip(out, 0, 255) + 0.5).astype(np.uint8), "RGB")


def _window_sums(a: npt.NDArray[np.int64], r: int) -> npt.NDArray[np.int64]:
    """Sums over every (r+1)×(r+1) window of ``a`` edge-padded by ``r``; result is (H+r)×(W+r)[×C].

    Exact integer arithmetic (summation-order independent), so the result is the same on every machine.
    """
    k = r + 1
    pad = ((r, r), (r, r)) + ((0, 0),) * (a.ndim - 2)
    p = np.pad(a, pad, mode="edge")
    ii = np.zeros((p.shape[0] + 1, p.shape[1] + 1, *p.shape[2:]), dtype=np.int64)
    ii[1:, 1:] = p.cumsum(axis=0).cumsum(axis=1)
    res: npt.NDArray[np.int64] = ii[k:, k:] - ii[:-k, k:] - ii[k:, :-k] + ii[:-k, :-k]
    return res


def _kuwahara(img: Image.Image, r: int) -> Image.Image:
    """Kuwahara filter: each pixel takes the mean colour of its least-varying (luma) quadrant window.

    The classic edge-preserving "painterly" smoothing; flattens skin and cloth while keeping the
    contours that make a face recognisable.
    """
    rgb = np.asarray(img.convert("RGB"), dtype=np.int64)
    h, w = rgb.shape[:2]
    k2 = (r + 1) * (r + 1)
    luma = rgb[..., 0] * 299 + rgb[..., 1] * 587 + rgb[..., 2] * 114  # exact integer luma ×1000
    s_rgb = _window_sums(rgb, r)
    s_y = _window_sums(luma, r)
    s_y2 = _window_sums(luma * luma, r)
    best_var: npt.NDArray[np.int64] | None = None
    best_sum = np.zeros((h, w, 3), dtype=np.int64)
    for a, b in ((0, 0), (0, r), (r, 0), (r, r)):  # the four quadrants around each pixel
        sy = s_y[a : a + h, b : b + w]
        var = k2 * s_y2[a : a + h, b : b + w] - sy * sy  # k2² × variance, exact
        quad = s_rgb[a : a + h, b : b + w]
        if best_var is None:
            best_var, best_sum = var, quad.copy()
        else:
            better = var < best_var
            best_var = np.where(better, var, best_var)
            best_sum = np.where(better[..., None], quad, best_sum)
    out = (best_sum * 2 + k2) // (2 * k2)  # rounded integer mean
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "RGB")


def _cartoon(photo: Image.Image) -> Image.Image:
    """Cel-shaded cartoon of an RGB image: painterly smoothing, soft luma posterisation, ink lines."""
    w, h = photo.size
    unit = min(w, h)
    r = max(2, unit // 110)
    smooth = _kuwahara(photo, r).filter(ImageFilter.GaussianBlur(max(1.0, r * 0.45)))

    # soft cel shading: luma pulled towards 5 flat levels, chroma slightly boosted
    ycc = np.asarray(smooth.convert("YCbCr"), dtype=np.float64)
    y = ycc[..., 0]
    step = 255.0 / 5
    y_out = 0.55 * ((np.floor(y / step) + 0.5) * step) + 0.45 * y
    chroma = (ycc[..., 1:] - 128.0) * 1.25 + 128.0
    cel = np.concatenate([y_out[..., None], chroma], axis=2)
    base_img = Image.fromarray(np.floor(np.clip(cel, 0, 255) + 0.5).astype(np.uint8), "YCbCr").convert("RGB")

    # ink lines: dark side of a difference of Gaussians on the median-filtered luminance
    grey = photo.convert("L").filter(ImageFilter.MedianFilter(max(3, (unit // 200) * 2 + 1)))
    sigma = max(1.0, unit / 390)
    g1 = np.asarray(grey.filter(ImageFilter.GaussianBlur(sigma)), dtype=np.float64)
    g2 = np.asarray(grey.filter(ImageFilter.GaussianBlur(sigma * 1.6)), dtype=np.float64)
    ink_mask = Image.fromarray(
        np.floor(np.clip((g2 - g1 - 3.0) / 3.0, 0.0, 1.0) * 229.5 + 0.5).astype(np.uint8), "L"
    )
    ink = np.asarray(ink_mask.filter(ImageFilter.MedianFilter(3)), dtype=np.float64) / 255.0  # drop specks
    base = np.asarray(base_img, dtype=np.float64)
    ink_colour = np.array([40.0, 26.0, 36.0])
    out = base * (1.0 - ink[..., None]) + ink_colour * ink[..., None]
    return Image.fromarray(np.floor(np.clip(out, 0, 255) + 0.5).astype(np.uint8), "RGB")


def _sparkle(d: ImageDraw.ImageDraw, x: float, y: float, r: float, fill: tuple[int, int, int, int]) -> None:
    """A four-pointed anime sparkle."""
    k = r * 0.22
    d.polygon(
        [
            (x, y - r),
            (x + k, y - k),
            (x + r, y),
            (x + k, y + k),
            (x, y + r),
            (x - k, y + k),
            (x - r, y),
            (x - k, y - k),
        ],
        fill=fill,
    )


def stylize_portrait(
    face: Image.Image,
    *,
    width: int,
    height: int,
    seed: int,
    style: Image.Image | None = None,
    prompt: str = "",
    strength: float = 1.0,
) -> Image.Image:
    """Return a SIMULATED "ID-keeping" anime stylisation of ``face``: an RGB image of exactly width × height.

    Steps: crop-to-fill the face to the target size (centred slightly above the middle, where faces
    usually are); if ``style`` is given, transfer its per-channel colour mean/std (contrast gain clamped
    to [0.5, 2]); painterly edge-preserving smoothing (Kuwahara filter + a light blur); soft cel
    shading (luma pulled towards five flat levels, chroma lifted 25 %); dark ink lines from a difference
    of Gaussians on the median-filtered luminance.  Outputs larger than 1280 px on the long side are
    stylised at 1280 px and scaled up (bounded time and memory).  ``strength``
    (0–1) blends from the cropped photo (0) to the full cartoon (1).  The face's structure is kept, so it
    stays recognisable.  ``seed`` and ``prompt`` only place a few decorative sparkles in the upper
    corners; a "SIMULATED" badge is drawn at the top centre.  Deterministic.

    Raises:
        ValueError: bad ``width``/``height`` or ``strength`` outside [0, 1].
    """
    _check_size(width, height)
    if not 0.0 <= float(strength) <= 1.0:
        raise ValueError(f"strength must be within [0, 1], got {strength!r}")
    src = face
    if src.mode in ("RGBA", "LA", "PA") or "transparency" in src.info:
        rgba = src.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        src = Image.alpha_composite(bg, rgba)
    photo = ImageOps.fit(src.convert("RGB"), (width, height), Image.Resampling.LANCZOS, centering=(0.5, 0.4))

    work = _colour_transfer(photo, style) if style is not None else photo
    longest = max(width, height)
    if longest > _CARTOON_MAX_SIDE:  # bound time and memory: stylise at ≤ 1280 px, then scale up
        k = _CARTOON_MAX_SIDE / longest
        small = work.resize((max(1, round(width * k)), max(1, round(height * k))), Image.Resampling.LANCZOS)
        cartoon = _cartoon(small).resize((width, height), Image.Resampling.LANCZOS)
    else:
        cartoon = _cartoon(work)
    unit = min(width, height)

    # the seeded detail: a few sparkles near the top corners
    rng = _Rng("stylize_portrait", int(seed), prompt, width, height)
    layer = Image.new("RGBA", cartoon.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    for _ in range(rng.i(3, 6)):
        side = rng.u()
        x = rng.u(0.04, 0.22) * width if side < 0.5 else rng.u(0.78, 0.96) * width
        y = rng.u(0.06, 0.35) * height
        r = rng.u(0.012, 0.03) * unit
        _sparkle(d, x, y, r, (255, 255, 255, rng.i(170, 235)))
    cartoon = Image.alpha_composite(cartoon.convert("RGBA"), layer).convert("RGB")

    out = cartoon if float(strength) >= 1.0 else Image.blend(photo, cartoon, float(strength))
    _badge(out, "SIMULATED", scale=0.03)
    return out
