"""IVA uploads as the simulator checks them: the ``Request`` JSON field and the image/video part."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PIL import Image

from ..protocol.images import IVA_MAX_IMAGE_BYTES
from ._inputs import image_header, loads_bounded
from ._model import Reject

__all__ = ["check_upload"]


def check_upload(kind: str, form: Mapping[str, Any]) -> tuple[str, dict[str, Any], int]:  # long: one check per documented field, in the document's order
    """``(TaskID, the Request object, file size)`` of a valid upload, else a gateway error."""
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
    size = 0
    file_field = "ImageFile" if kind == "image" else "VideoFile"
    if source == "url":
        url = info.get("Url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise Reject("InvalidParameter", f"{key}.Url must be an http(s) URL when Source is url", http=400)
    else:
        data = form.get(file_field)
        if not isinstance(data, bytes | bytearray) or not data:
            raise Reject("MissingParameter", f"form file {file_field} is required when Source is file", http=400)
        size = len(data)
        if kind == "image":
            if size > IVA_MAX_IMAGE_BYTES:
                raise Reject("InvalidParameter", f"{file_field} is {size} bytes; the limit is 50 MB", http=400)
            try:
                # Any format Pillow knows (the IVA document names none); the header and checksums, no pixel decoded.
                image_header(bytes(data), file_field, tuple(Image.OPEN)).verify()
            except Reject:
                raise Reject("InvalidParameter", f"{file_field} is not an image", http=400) from None
            except Exception:
                raise Reject("InvalidParameter", f"{file_field} is not a decodable image", http=400) from None
    return task_id, req, size
