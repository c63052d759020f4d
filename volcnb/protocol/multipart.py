"""``multipart/form-data`` bodies for the IVA uploads, with a boundary fixed before hashing."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

__all__ = ["Field", "multipart"]

Field = tuple[str, "str | tuple[str, bytes, str]"]
"""A form field: ``(name, text)`` or ``(name, (filename, bytes, mime))``."""


def multipart(fields: Sequence[tuple[str, str | tuple[str, bytes, str]]], boundary: str | None = None) -> tuple[bytes, str]:
    """Encode ``multipart/form-data``; a field is ``name -> text`` or ``name -> (filename, bytes, mime)``.

    Returns ``(body, content_type)``. The boundary is fixed before hashing, so we sign what we send.
    """
    boundary = boundary or "volcnb" + secrets.token_hex(12)
    out = bytearray()
    for name, value in fields:
        out += f"--{boundary}\r\n".encode()
        if isinstance(value, str):
            out += f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            out += value.encode("utf-8")
        else:
            filename, data, mime = value
            safe = filename.replace('"', "%22").replace("\r", "").replace("\n", "")
            out += f'Content-Disposition: form-data; name="{name}"; filename="{safe}"\r\n'.encode()
            out += f"Content-Type: {mime}\r\n\r\n".encode()
            out += data
        out += b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"
