"""A checked submit body from what a user passes: the capability's parameters plus the encoded images.

Everything the service would refuse for its type or shape raises :class:`~volcnb.ValidationError` here,
before any request; doubts become :class:`~volcnb.VolcnbWarning`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from PIL import Image

from .._exceptions import ValidationError, VolcnbWarning
from .catalog import get_capability, image_count, suggest_req_key
from .images import encode_images

__all__ = ["prepare_submit"]


def prepare_submit(req_key: str, image: Any, params: Mapping[str, Any], *, stacklevel: int = 3
                   ) -> tuple[dict[str, Any], list[Image.Image | None]]:
    """``(body, decoded input pictures)`` for a submit of ``req_key``; raises before anything is sent."""
    if not isinstance(req_key, str) or not req_key:
        raise ValidationError(f"req_key must be a non-empty string, got {req_key!r}", field="req_key",
                              limit="non-empty string")
    body = {k: v for k, v in params.items() if v is not None}
    originals: list[Image.Image | None] = []
    if image is not None:
        enc = encode_images(image)
        body.update(enc.params())
        originals = list(enc.originals)
    cap = get_capability(req_key)
    if cap is None:
        guess = suggest_req_key(req_key)
        hint = f" (did you mean {guess!r}?)" if guess else ""
        warnings.warn(f"volcnb does not know req_key {req_key!r}{hint}; parameters are sent as given",
                      VolcnbWarning, stacklevel=stacklevel)
        return body, originals
    for issue in cap.check(body, image_count(body)):
        if issue.severity == "error":
            raise ValidationError(f"{req_key}: {issue.message}", field=issue.field, limit=issue.limit)
        warnings.warn(f"{req_key}: {issue.message}", VolcnbWarning, stacklevel=stacklevel)
    return body, originals
