"""IVA uploads as the simulator checks them (the ``Request`` field and the file part), and its IVA tasks."""

from __future__ import annotations

import io
import os
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from PIL import Image

from ..protocol.images import IVA_MAX_IMAGE_BYTES
from ._inputs import image_header, loads_bounded
from ._iva_items import CallbackSender, analyse_image, analyse_video, callback_body
from ._model import Reject

__all__ = ["Item", "IvaDesk", "check_upload"]


@dataclass
class Item:
    """A checked upload: its Request fields, and what the analysis needs of the file (read while it is open)."""

    kind: str
    task_id: str
    name: str
    source: str
    request: dict[str, Any]
    url: str | None = None
    size: int = 0
    image: bytes | None = field(default=None, repr=False)
    """An image file's bytes (at most 50 MB)."""
    video: dict[str, Any] | None = None
    """A video file's container facts (its bytes stay in the parser's spool file)."""


def _sniffable() -> tuple[str, ...]:
    """Pillow's formats that recognise a header (Image.init() first: ``Image.OPEN`` lists only the plugins
    loaded so far; a fresh ``volcnb sim`` knew PNG only, and formats without a header test refuse everything)."""
    Image.init()
    return tuple(name for name, (_factory, accept) in Image.OPEN.items() if accept is not None)


def _file_size(value: Any) -> tuple[int, IO[bytes] | None]:
    """``(size, file object)`` of a form file part: bytes or an upload spooled by the multipart parser."""
    if isinstance(value, bytes | bytearray):
        return len(value), None
    fh = getattr(value, "file", None)
    if fh is None:
        return 0, None
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    fh.seek(0)
    return size, fh


def check_upload(kind: str, form: Mapping[str, Any]) -> Item:  # long: one check per documented field, in the document's order
    """The :class:`Item` of a valid upload (the parts in either order), else a gateway error."""
    raw = form.get("Request")
    if not isinstance(raw, str):
        raise Reject("MissingParameter", "form field Request (a JSON string) is required", http=400)
    try:
        req = loads_bounded(raw, "Request")
    except ValueError as exc:
        raise Reject("InvalidParameter", str(exc), http=400) from None
    if not isinstance(req, dict):
        raise Reject("InvalidParameter", "Request must be a JSON object", http=400)
    task_id = req.get("TaskID")
    if not isinstance(task_id, str) or not task_id:
        raise Reject("InvalidParameter", "task id can not be null", http=400)
    key = "Image" if kind == "image" else "Video"
    info = req.get(key)
    if not isinstance(info, dict):
        raise Reject("MissingParameter", f"Request.{key} is required", http=400)
    name = info.get("Name")
    if not isinstance(name, str) or not name:
        raise Reject("InvalidParameter", f"{kind} name can not be null", http=400)
    source = info.get("Source")
    if source not in ("url", "file"):
        raise Reject("InvalidParameter", f"{key}.Source must be 'url' or 'file'", http=400)
    algo = req.get("AlgoParamConf")
    if algo is not None and not isinstance(algo, dict):
        raise Reject("InvalidParameter", "AlgoParamConf must be an object", http=400)
    file_field = "ImageFile" if kind == "image" else "VideoFile"
    item = Item(kind, task_id, name, source, req)
    if source == "url":
        url = info.get("Url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise Reject("InvalidParameter", f"{key}.Url must be an http(s) URL when Source is url", http=400)
        item.url = url
        return item
    size, fh = _file_size(form.get(file_field))
    if not size:
        raise Reject("MissingParameter", f"form file {file_field} is required when Source is file", http=400)
    item.size = size
    if kind == "video":
        item.video = analyse_video(fh or io.BytesIO(bytes(form[file_field])), size)
        if item.video["Container"] == "unknown":
            raise Reject("InvalidParameter", f"{file_field} is not a video (no known container)", http=400)
        return item
    if size > IVA_MAX_IMAGE_BYTES:
        raise Reject("InvalidParameter", f"{file_field} is {size} bytes; the limit is 50 MB", http=400)
    data = bytes(form[file_field]) if fh is None else fh.read()
    try:
        # Any format Pillow knows (the IVA document names none); the header and checksums, no pixel decoded.
        image_header(data, file_field, _sniffable()).verify()
    except Reject:
        raise Reject("InvalidParameter", f"{file_field} is not an image", http=400) from None
    except Exception:
        raise Reject("InvalidParameter", f"{file_field} is not a decodable image", http=400) from None
    item.image = data
    return item



class IvaDesk:
    """The simulator's IVA async tasks: which TaskIDs exist, where their callbacks go, the items' analysis.

    ``task_ids=None`` accepts any TaskID (task creation is not in the documents); a set accepts only those,
    and any other TaskID is refused with ``InvalidParameter.TaskID`` (HTTP 400). Callback URLs are per TaskID
    (``callbacks``), else ``callback`` for all. Each item is analysed on the engine's pool and its callback
    sent ``service_time`` seconds after the upload at the earliest.
    """

    def __init__(self, pool: Any, *, task_ids: Iterable[str] | None = None, callback: str | None = None,
                 callbacks: Mapping[str, str] | None = None, service_time: float = 0.2,
                 max_video_bytes: Callable[[], int] = lambda: 256 << 20) -> None:
        self._pool = pool
        self.task_ids: set[str] | None = set(task_ids) if task_ids is not None else None
        self.callback = callback
        self.callbacks: dict[str, str] = dict(callbacks or {})
        self.service_time = service_time
        self.sender = CallbackSender()
        self.unconfigured = 0
        self._max_video = max_video_bytes

    def create_task(self, task_id: str | None = None, callback: str | None = None) -> str:
        """An IVA task (the console's part): accepted from now on, its callbacks sent to ``callback``."""
        tid = task_id or f"iva-{uuid.uuid4()}"
        if self.task_ids is not None:
            self.task_ids.add(tid)
        if callback:
            self.callbacks[tid] = callback
        return tid

    def accept(self, item: Item, item_id: str) -> None:
        """Refuse an unknown TaskID, else schedule the item's analysis and callback."""
        if self.task_ids is not None and item.task_id not in self.task_ids:
            raise Reject("InvalidParameter.TaskID", f"TaskID {item.task_id[:80]!r} does not exist: this simulator "
                         "accepts only its configured IVA tasks (volcnb sim --iva-task-id, /sim/config "
                         "iva_task_ids, POST /sim/iva/tasks)", http=400)
        url = self.callbacks.get(item.task_id, self.callback)
        if not url:
            self.unconfigured += 1
            return
        self._pool.submit(self._process, item, item_id, url, time.monotonic())

    def _process(self, item: Item, item_id: str, url: str, started: float) -> None:
        try:
            result = self._analyse(item)
            body = callback_body(item.kind, item_id, item.task_id, item.name, result=result)
        except _ItemError as exc:
            body = callback_body(item.kind, item_id, item.task_id, item.name, error=(exc.code, str(exc)))
        except Exception as exc:  # an odd file still gets its callback, saying why
            body = callback_body(item.kind, item_id, item.task_id, item.name,
                                 error=("AnalysisFailed", f"{type(exc).__name__}: {exc}"[:300]))
        self.sender.send(url, body, delay=max(0.0, started + self.service_time - time.monotonic()))

    def _analyse(self, item: Item) -> dict[str, Any]:
        if item.url is not None:
            cap = IVA_MAX_IMAGE_BYTES if item.kind == "image" else self._max_video()
            with tempfile.TemporaryFile() as fh:
                size = _fetch(item.url, fh, cap)
                if item.kind == "video":
                    facts = analyse_video(fh, size)
                    if facts["Container"] == "unknown":
                        raise _ItemError("InvalidVideo", f"{item.url[:120]} is not a video")
                    return facts
                fh.seek(0)
                item.image = fh.read()
        if item.kind == "video":
            return dict(item.video or {})
        try:
            return analyse_image(item.image or b"")
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise _ItemError("InvalidImage", f"the image does not decode: {exc}"[:300]) from None

    def close(self) -> None:
        """Stop sending callbacks."""
        self.sender.close()


class _ItemError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _fetch(url: str, fh: IO[bytes], cap: int) -> int:
    """Download ``url`` into ``fh`` (at most ``cap`` bytes); its size, or an :class:`_ItemError`."""
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - http(s) checked at upload
            size = 0
            while chunk := resp.read(1 << 20):
                size += len(chunk)
                if size > cap:
                    raise _ItemError("DownloadTooLarge", f"{url[:120]} is over {cap} bytes")
                fh.write(chunk)
    except (OSError, ValueError) as exc:
        raise _ItemError("DownloadFailed", f"{url[:120]} could not be downloaded: {exc}"[:300]) from None
    if not size:
        raise _ItemError("DownloadFailed", f"{url[:120]} is empty")
    return size
