"""IVA (智能视频分析) uploads to an existing async analysis task, as ``multipart/form-data``.

One upload path for images and videos (``AddAsyncTaskImageData`` / ``AddAsyncTaskVideoData``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from .._sync import run_sync
from ..protocol import wire
from ..protocol.images import iva_payload
from .checks import check_iva_args, check_iva_picture

if TYPE_CHECKING:
    from .api import ApiClient

__all__ = ["IvaUploads"]

Kind = Literal["image", "video"]


class IvaUploads:
    """``client.iva``: ``await client.iva.add_image(task_id, image)`` → the ``ImageID``."""

    def __init__(self, client: ApiClient) -> None:
        self._client = client

    async def add(self, kind: Kind, task_id: str, media: Any, *, name: str | None = None, desc: str | None = None,
                  algo_params: Mapping[str, Any] | None = None) -> str:
        """Upload one image or video (a path, bytes, a PIL image for images, or an ``http(s)`` URL); return
        its ``ImageID`` / ``VideoID``."""
        tid, name, desc, params = check_iva_args(task_id, name=name, desc=desc, algo_params=algo_params)
        name, url, file = iva_payload(media, name, kind=kind)
        if kind == "image" and file is not None:
            check_iva_picture(file[1])
        req = wire.build_iva_upload(kind, tid, name=name, url=url, file=file, desc=desc, algo_params=params)
        reply = await self._client.send_openapi(req)
        return str(reply.result.get("ImageID" if kind == "image" else "VideoID", ""))

    async def add_image(self, task_id: str, image: Any, **kwargs: Any) -> str:
        """Upload an image (path, bytes, PIL image, or an ``http(s)`` URL) and return its ``ImageID``."""
        return await self.add("image", task_id, image, **kwargs)

    async def add_video(self, task_id: str, video: Any, **kwargs: Any) -> str:
        """Upload a video (path, bytes, or an ``http(s)`` URL) and return its ``VideoID``."""
        return await self.add("video", task_id, video, **kwargs)

    def add_image_sync(self, task_id: str, image: Any, **kwargs: Any) -> str:
        """Blocking :meth:`add_image`."""
        return run_sync(self.add_image(task_id, image, **kwargs))

    def add_video_sync(self, task_id: str, video: Any, **kwargs: Any) -> str:
        """Blocking :meth:`add_video`."""
        return run_sync(self.add_video(task_id, video, **kwargs))
