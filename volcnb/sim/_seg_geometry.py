"""Mask geometry: bounding boxes and simplified outer contours (contourpy)."""

from __future__ import annotations

import numpy as np

from ._seg_ops import F64

# ----------------------------------------------------------------------------
# geometry
# ----------------------------------------------------------------------------


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box ``(x1, y1, x2, y2)`` of the ``True`` pixels of a 2-D mask.

    ``x1``/``y1`` are inclusive and ``x2``/``y2`` exclusive (so the box is
    ``mask[y1:y2, x1:x2]``); ``(0, 0, 0, 0)`` for an empty mask.
    """
    m = np.asarray(mask, dtype=bool)
    rows = np.flatnonzero(m.any(axis=1))
    cols = np.flatnonzero(m.any(axis=0))
    if len(rows) == 0:
        return (0, 0, 0, 0)
    return (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def _simplify(points: F64, tol: float) -> F64:
    """Ramer-Douglas-Peucker simplification of a closed polygon (first point == last)."""
    n = len(points)
    if n <= 4:
        return points
    far = int(np.argmax(((points - points[0]) ** 2).sum(1)))  # split the ring there
    keep = np.zeros(n, dtype=bool)
    keep[[0, far, n - 1]] = True
    stack = [(0, far), (far, n - 1)]
    while stack:
        i, j = stack.pop()
        if j <= i + 1:
            continue
        seg = points[i + 1 : j]
        a, ab = points[i], points[j] - points[i]
        norm = float(np.hypot(ab[0], ab[1]))
        if norm < 1e-12:
            dist = np.hypot(seg[:, 0] - a[0], seg[:, 1] - a[1])
        else:
            dist = np.abs(ab[0] * (seg[:, 1] - a[1]) - ab[1] * (seg[:, 0] - a[0])) / norm
        k = int(np.argmax(dist))
        if dist[k] > tol:
            keep[i + 1 + k] = True
            stack += [(i, i + 1 + k), (i + 1 + k, j)]
    out: F64 = points[keep]
    return out


def mask_contours(mask: np.ndarray, *, max_points: int = 300, min_area: float = 4.0) -> list[list[list[int]]]:
    """Outer boundary polygons of the connected components of a 2-D mask, largest first.

    The boundaries are the 0.5 iso-lines of the mask (contourpy, on a zero-padded
    copy so that every polygon closes), i.e. they pass half-way between subject and
    background pixel centres.  Hole boundaries are dropped, as are polygons enclosing
    less than ``min_area`` square pixels.  Each polygon is simplified with
    Ramer-Douglas-Peucker (0.75 px tolerance, raised until it has at most
    ``max_points`` points), rounded to integer ``[x, y]`` pixel coordinates clipped to
    the image, and not explicitly closed (the last point does not repeat the first).
    """
    import contourpy  # local import: only needed here

    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2 or not m.any():
        return []
    h, w = m.shape
    gen = contourpy.contour_generator(z=np.pad(m.astype(np.float64), 1), line_type=contourpy.LineType.Separate)
    polys: list[tuple[float, list[list[int]]]] = []
    for line in gen.lines(0.5):
        pts = np.asarray(line, dtype=np.float64) - 1.0
        if len(pts) < 4:
            continue
        x, y = pts[:, 0], pts[:, 1]
        area = 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
        if area < min_area:  # holes run the other way round: negative area
            continue
        tol = 0.75
        simp = _simplify(pts, tol)
        while len(simp) - 1 > max_points:
            tol *= 1.5
            simp = _simplify(pts, tol)
        ipts = np.rint(simp[:-1] if np.allclose(simp[0], simp[-1]) else simp).astype(int)
        ipts[:, 0] = np.clip(ipts[:, 0], 0, w - 1)
        ipts[:, 1] = np.clip(ipts[:, 1], 0, h - 1)
        poly: list[list[int]] = []
        for px, py in ipts.tolist():
            if not poly or poly[-1] != [px, py]:
                poly.append([px, py])
        if len(poly) > 1 and poly[-1] == poly[0]:
            poly.pop()
        if len(poly) >= 3:
            polys.append((area, poly))
    polys.sort(key=lambda t: -t[0])
    return [p for _, p in polys]


