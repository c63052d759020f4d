"""``multipart/form-data`` bodies for the IVA uploads, with a boundary fixed before hashing.

Two forms of one encoding: :func:`multipart` gives the body as bytes; :func:`stream_multipart` gives a
:class:`StreamedBody` whose file parts stay on disk. That one is hashed in one pass over the bytes it will
send, then streamed chunk by chunk: a 200 MB video is signed over its exact bytes without being held in
memory. A file that changes between the hash and the send is refused (its size or mtime moved).
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from .._exceptions import ValidationError

__all__ = ["CHUNK", "Field", "FilePart", "StreamedBody", "multipart", "stream_multipart"]

CHUNK = 1024 * 1024
"""Bytes read from disk per chunk while hashing and streaming."""

Field = tuple[str, "str | tuple[str, bytes | pathlib.Path, str]"]
"""A form field: ``(name, text)`` or ``(name, (filename, bytes or a path, mime))``."""


@dataclass(frozen=True)
class FilePart:
    """A file part's bytes, left on disk: its path and the size and mtime seen when it was hashed."""

    path: pathlib.Path
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: pathlib.Path) -> FilePart:
        """The part for ``path`` as it is now."""
        st = path.stat()
        return cls(path, st.st_size, st.st_mtime_ns)

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        """The file's bytes in chunks; :class:`ValidationError` if it changed since it was hashed."""
        st = self.path.stat()
        if (st.st_size, st.st_mtime_ns) != (self.size, self.mtime_ns):
            raise self._changed()
        sent = 0
        with self.path.open("rb") as fh:
            while chunk := fh.read(min(size, self.size - sent)):
                sent += len(chunk)
                yield chunk
        if sent != self.size:
            raise self._changed()

    def _changed(self) -> ValidationError:
        return ValidationError(f"{self.path.name} changed after its upload was signed ({self.size:,} bytes were "
                               "hashed); upload it again", field="file", limit="unchanged while uploading")


@dataclass(frozen=True)
class StreamedBody:
    """A multipart body made of literal bytes and files on disk, with its length and SHA-256."""

    segments: tuple[bytes | FilePart, ...]
    content_type: str
    length: int
    sha256: str

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        """The exact bytes that were hashed, at most ``size`` per chunk."""
        for seg in self.segments:
            if isinstance(seg, FilePart):
                yield from seg.chunks(size)
            else:
                for i in range(0, len(seg), size):
                    yield seg[i:i + size]

    def read(self) -> bytes:
        """The whole body in memory (tests and small bodies only)."""
        return b"".join(self.chunks())


def _segments(fields: Sequence[tuple[str, str | tuple[str, bytes | pathlib.Path, str]]],
              boundary: str) -> list[bytes | FilePart]:
    out: list[bytes | FilePart] = []
    text = bytearray()
    for name, value in fields:
        text += f"--{boundary}\r\n".encode()
        if isinstance(value, str):
            text += f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            text += value.encode("utf-8")
        else:
            filename, data, mime = value
            safe = filename.replace('"', "%22").replace("\r", "").replace("\n", "")
            text += f'Content-Disposition: form-data; name="{name}"; filename="{safe}"\r\n'.encode()
            text += f"Content-Type: {mime}\r\n\r\n".encode()
            if isinstance(data, os.PathLike):
                out += [bytes(text), FilePart.of(pathlib.Path(data))]
                text = bytearray()
            else:
                text += data
        text += b"\r\n"
    text += f"--{boundary}--\r\n".encode()
    out.append(bytes(text))
    return out


def _boundary(boundary: str | None) -> str:
    return boundary or "volcnb" + secrets.token_hex(12)


def multipart(fields: Sequence[tuple[str, str | tuple[str, bytes | pathlib.Path, str]]],
              boundary: str | None = None) -> tuple[bytes, str]:
    """Encode ``multipart/form-data`` in memory; a field is ``name -> text`` or ``name -> (filename, bytes, mime)``.

    Returns ``(body, content_type)``. The boundary is fixed before hashing, so we sign what we send.
    """
    body = stream_multipart(fields, boundary, hash_body=False)
    return body.read(), body.content_type


def stream_multipart(fields: Sequence[tuple[str, str | tuple[str, bytes | pathlib.Path, str]]],
                     boundary: str | None = None, *, hash_body: bool = True) -> StreamedBody:
    """The same encoding with file parts given as paths left on disk: one pass hashes the body (unless
    ``hash_body=False``); :meth:`StreamedBody.chunks` then yields exactly those bytes."""
    b = _boundary(boundary)
    segments = tuple(_segments(fields, b))
    length = sum(s.size if isinstance(s, FilePart) else len(s) for s in segments)
    body = StreamedBody(segments, f"multipart/form-data; boundary={b}", length, "")
    if not hash_body:
        return body
    digest = hashlib.sha256()
    for chunk in body.chunks():
        digest.update(chunk)
    return StreamedBody(segments, body.content_type, length, digest.hexdigest())
