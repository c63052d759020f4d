"""IVA (智能视频分析) uploads to an existing async analysis task, as ``multipart/form-data``.

One upload path for images and videos (``AddAsyncTaskImageData`` / ``AddAsyncTaskVideoData``). A file given
as a path is streamed from disk and signed over the exact bytes sent (one hashing pass, then the same bytes
streamed), so a 200 MB video never sits in memory. Everything is checked before a connection is opened.
"""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .._sync import run_sync
from ..protocol import wire
from ..protocol.images import iva_payload
from .checks import check_iva_args, check_iva_picture

if TYPE_CHECKING:
    from .api import ApiClient

__all__ = ["IvaUploads", "Receipt"]

Kind = Literal["image", "video"]


@dataclass(frozen=True)
class Receipt:
    """What an accepted upload answered: the item's id (``ImageID``/``VideoID``) and the request id."""

    kind: Kind
    item_id: str
    iva_task_id: str
    name: str
    source: Literal["url", "file"]
    size: int
    """Bytes of the request body sent."""
    request_id: str | None = None


class IvaUploads:
    """``client.iva`` of the low-level client: ``await client.iva.add(kind, task_id, media)`` → a :class:`Receipt`."""

    def __init__(self, client: ApiClient) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"<volcnb.{type(self).__name__} for {self._client!r}>"

    async def add(self, kind: Kind, task_id: str, media: Any, *, name: str | None = None, desc: str | None = None,
                  algo_params: Mapping[str, Any] | None = None) -> Receipt:
        """Upload one image or video (a path, bytes, a PIL image for images, or an ``http(s)`` URL).

        Checked before sending: TaskID a non-empty string, a Name (the file's name by default), Source and
        Url/file consistent, an image a picture of at most 50 MB, a video a video container.
        """
        tid, name, desc, params = check_iva_args(task_id, name=name, desc=desc, algo_params=algo_params)
        label, url, file = await asyncio.to_thread(iva_payload, media, name, kind=kind)
        if kind == "image" and file is not None:
            await asyncio.to_thread(check_iva_picture, _head(file[1]))
        req = await asyncio.to_thread(wire.build_iva_upload, kind, tid, name=label, url=url, file=file, desc=desc,
                                      algo_params=params)
        reply = await self._client.send_openapi(req)
        item = str(reply.result.get("ImageID" if kind == "image" else "VideoID", ""))
        return Receipt(kind, item, tid, label, "url" if url is not None else "file", req.size, reply.request_id)

    async def add_image(self, task_id: str, image: Any, **kwargs: Any) -> Any:
        """Upload an image (path, bytes, PIL image, or an ``http(s)`` URL); a :class:`Receipt` here, an
        :class:`~volcnb.Upload` handle on ``volcnb.Client``."""
        return await self.add("image", task_id, image, **kwargs)

    async def add_video(self, task_id: str, video: Any, **kwargs: Any) -> Any:
        """Upload a video (path, bytes, or an ``http(s)`` URL; a path is streamed from disk)."""
        return await self.add("video", task_id, video, **kwargs)

    def add_image_sync(self, task_id: str, image: Any, **kwargs: Any) -> Any:
        """Blocking :meth:`add_image`."""
        return run_sync(self.add_image(task_id, image, **kwargs))

    def add_video_sync(self, task_id: str, video: Any, **kwargs: Any) -> Any:
        """Blocking :meth:`add_video`."""
        return run_sync(self.add_video(task_id, video, **kwargs))


def _head(data: bytes | pathlib.Path, size: int = 1 << 20) -> bytes:
    if isinstance(data, bytes):
        return data
    with data.open("rb") as fh:
        return fh.read(size)
