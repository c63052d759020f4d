"""IVA items in the simulator: each upload's small computed analysis and its callback, POSTed with backoff.

No document gives the analysis or the callback body; ours (the README's simulator section has both):

* an image: ``Width``, ``Height``, ``Format``, ``Mode``, ``Bytes`` and a ``Saliency`` summary (the share of
  salient pixels, their bounding box and centroid as fractions of the image, the segmentation's score),
  computed by the simulator's own saliency segmentation on a copy at most 256 px a side;
* a video: ``Bytes``, ``Container`` (from the first bytes), and for MP4/MOV/3GP the top-level ``Boxes``,
  ``MajorBrand``, ``DurationSeconds``/``Timescale`` (from ``mvhd``) and the number of ``Tracks``.

Callbacks are POSTed by one daemon thread (urllib: the simulator imports no HTTP client), each retried
with exponential backoff (0.5 s doubling, at most 30 s apart) while the receiver is down, answers 5xx, 408
or 429, for at most ``give_up_after`` seconds; any other 4xx ends that callback (the receiver refused it).
"""

from __future__ import annotations

import contextlib
import heapq
import io
import json
import logging
import os
import pathlib
import struct
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from PIL import Image

from ..protocol.images import sniff_video

__all__ = ["CallbackSender", "Delivery", "analyse_image", "analyse_video", "callback_body", "write_sample_video"]

log = logging.getLogger("volcnb.sim")

HEAD = 1 << 20
"""Bytes of a video's start kept for its container facts."""


def analyse_image(data: bytes) -> dict[str, Any]:
    """Dimensions and a saliency summary of an image (``ValueError`` if it does not decode)."""
    from ._segment import segment_saliency

    with Image.open(io.BytesIO(data)) as img:
        img.load()
        out: dict[str, Any] = {"Width": img.width, "Height": img.height, "Format": img.format, "Mode": img.mode,
                               "Bytes": len(data)}
        small = img.convert("RGB")
    small.thumbnail((256, 256))
    seg = segment_saliency(small)
    h, w = seg.mask.shape
    share = float(seg.mask.mean()) if seg.mask.size else 0.0
    sal: dict[str, Any] = {"ForegroundShare": round(share, 4), "Score": round(float(seg.score), 4)}
    if share > 0:
        ys, xs = seg.mask.nonzero()
        x1, y1, x2, y2 = seg.bbox
        sal["BBox"] = [round(x1 / w, 4), round(y1 / h, 4), round(x2 / w, 4), round(y2 / h, 4)]
        sal["Centroid"] = [round(float(xs.mean()) / w, 4), round(float(ys.mean()) / h, 4)]
    out["Saliency"] = sal
    return out


def analyse_video(fh: IO[bytes], size: int) -> dict[str, Any]:
    """Size and container facts of a video file, reading only box headers (never the whole file)."""
    fh.seek(0)
    head = fh.read(64)
    out: dict[str, Any] = {"Bytes": size, "Container": sniff_video(head) or "unknown"}
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide"):
        out.update(_iso_boxes(fh, size))
    return out


def _iso_boxes(fh: IO[bytes], size: int) -> dict[str, Any]:
    """Top-level ISO-BMFF boxes; the major brand; ``mvhd`` duration and the track count inside ``moov``."""
    facts: dict[str, Any] = {"Boxes": []}
    pos = 0
    while pos + 8 <= size and len(facts["Boxes"]) < 64:
        fh.seek(pos)
        length, kind = struct.unpack(">I4s", fh.read(8))
        header = 8
        if length == 1:
            length, header = struct.unpack(">Q", fh.read(8))[0], 16
        elif length == 0:
            length = size - pos
        if length < header:
            break
        name = kind.decode("latin-1")
        facts["Boxes"].append(name)
        if name == "ftyp":
            facts["MajorBrand"] = fh.read(4).decode("latin-1").strip()
        elif name == "moov" and length <= 64 * HEAD:
            fh.seek(pos + header)
            facts.update(_moov(fh.read(length - header)))
        pos += length
    return facts


def _moov(data: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {"Tracks": 0}
    pos = 0
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if length < 8:
            break
        if kind == b"mvhd" and pos + 32 <= len(data):
            version = data[pos + 8]
            if version == 1 and pos + 44 <= len(data):
                timescale, duration = struct.unpack(">IQ", data[pos + 28:pos + 40])
            else:
                timescale, duration = struct.unpack(">II", data[pos + 20:pos + 28])
            out["Timescale"] = timescale
            out["DurationSeconds"] = round(duration / timescale, 3) if timescale else None
        elif kind == b"trak":
            out["Tracks"] += 1
        pos += length
    return out


def write_sample_video(path: str | os.PathLike[str], size: int = 1 << 20, *, seconds: float = 12.0,
                       tracks: int = 2) -> pathlib.Path:
    """Write an MP4 container of ``size`` bytes (``ftyp``, ``moov`` with ``mvhd`` and ``tracks`` empty tracks,
    then a zero-filled ``mdat``, sparse on disk): a video as far as any sniffer or box walker can tell, for
    notebooks, tests and benchmarks. Nothing plays: there are no samples."""
    ftyp = struct.pack(">I4s4sI8s", 24, b"ftyp", b"isom", 0x200, b"isommp42")
    mvhd_body = struct.pack(">B3xIIII", 0, 0, 0, 1000, int(seconds * 1000)) + b"\x00\x01\x00\x00\x01\x00" + b"\0" * 10
    mvhd_body += struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000) + b"\0" * 24
    mvhd_body += struct.pack(">I", tracks + 1)
    mvhd = struct.pack(">I4s", 8 + len(mvhd_body), b"mvhd") + mvhd_body
    trak = struct.pack(">I4s", 8, b"trak") * tracks
    moov = struct.pack(">I4s", 8 + len(mvhd) + len(trak), b"moov") + mvhd + trak
    head = ftyp + moov
    if size < len(head) + 8:
        raise ValueError(f"a sample video needs at least {len(head) + 8} bytes")
    out = pathlib.Path(path)
    with out.open("wb") as fh:
        fh.write(head + struct.pack(">I4s", size - len(head), b"mdat"))
        fh.truncate(size)
    return out


def callback_body(kind: str, item_id: str, task_id: str, name: str, *, result: dict[str, Any] | None = None,
                  error: tuple[str, str] | None = None) -> dict[str, Any]:
    """The callback body for one item (``Attempt`` and ``Time`` are set per attempt)."""
    body: dict[str, Any] = {"TaskID": task_id, "DataType": kind, "DataID": item_id, "Name": name,
                            "Status": "failed" if error else "success", "CallbackID": str(uuid.uuid4())}
    if error:
        body["Error"] = {"Code": error[0], "Message": error[1]}
    else:
        body["Result"] = result or {}
    return body


@dataclass(order=True)
class Delivery:
    """One callback to POST: when it is due next, where, and how often it was tried."""

    due: float
    url: str = field(compare=False)
    body: dict[str, Any] = field(compare=False)
    first: float = field(compare=False, default=0.0)
    attempts: int = field(compare=False, default=0)


class CallbackSender:
    """The daemon thread that POSTs callbacks and retries them with backoff while the receiver is down."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, *, give_up_after: float = 3600.0,
                 timeout: float = 5.0) -> None:
        self.clock, self.give_up_after, self.timeout = clock, give_up_after, timeout
        self.sent = self.retried = self.abandoned = 0
        self._heap: list[Delivery] = []
        self._cv = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def pending(self) -> int:
        """Callbacks not yet delivered."""
        with self._cv:
            return len(self._heap)

    def stats(self) -> dict[str, int]:
        """``sent``, ``retried`` (attempts that failed and were rescheduled), ``abandoned``, ``pending``."""
        return {"sent": self.sent, "retried": self.retried, "abandoned": self.abandoned, "pending": self.pending()}

    def send(self, url: str, body: dict[str, Any], delay: float = 0.0) -> None:
        """Queue ``body`` for ``url`` in ``delay`` seconds."""
        now = self.clock()
        with self._cv:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="volcnb-sim-callbacks", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, Delivery(now + delay, url, body, first=now))
            self._cv.notify()

    def close(self) -> None:
        """Stop the thread (undelivered callbacks are dropped)."""
        with self._cv:
            self._closed = True
            self._cv.notify()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._closed and (not self._heap or self._heap[0].due > self.clock()):
                    self._cv.wait(None if not self._heap else max(0.0, self._heap[0].due - self.clock()))
                if self._closed:
                    return
                item = heapq.heappop(self._heap)
            self._attempt(item)

    def _attempt(self, item: Delivery) -> None:
        item.attempts += 1
        body = {**item.body, "Attempt": item.attempts,
                "Time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        retry = _post(item.url, body, self.timeout)
        if retry is None:
            self.sent += 1
            return
        if not retry or self.clock() - item.first > self.give_up_after:
            self.abandoned += 1
            log.warning("volcnb sim: callback for %s given up after %d attempts", item.body["DataID"], item.attempts)
            return
        self.retried += 1
        item.due = self.clock() + min(30.0, 0.5 * 2 ** (item.attempts - 1))
        with self._cv:
            heapq.heappush(self._heap, item)


def _post(url: str, body: dict[str, Any], timeout: float) -> bool | None:
    """POST once: ``None`` delivered, ``True`` worth retrying (down, 5xx, 408, 429), ``False`` refused."""
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    req = urllib.request.Request(url, data=data, method="POST",  # noqa: S310 - the configured receiver
                                 headers={"Content-Type": "application/json", "User-Agent": "volcnb-sim"})
    try:
        with contextlib.closing(urllib.request.urlopen(req, timeout=timeout)) as resp:  # noqa: S310
            resp.read()
        return None
    except urllib.error.HTTPError as exc:
        return exc.code >= 500 or exc.code in (408, 429)
    except (OSError, ValueError):
        return True
