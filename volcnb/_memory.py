"""Keeping a long batch's memory flat on glibc.

glibc serves a freed ``mmap`` chunk's size from the heap next time: after the first megabyte-sized buffer
(a base64 body, a result image) is freed, its *dynamic mmap threshold* rises to that size, later buffers
come from the heap and arenas, and freed ones stay resident. Over a batch of 1 MB images that kept about
120 MB more resident (``benchmarks/batch.py --tasks 300 --image-mb 1 --no-sdk``: 290 MB peak, 183 MB with
a fixed threshold). A fixed threshold of 256 KiB keeps big buffers mapped, so freeing one returns it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["MMAP_THRESHOLD", "return_big_buffers"]

MMAP_THRESHOLD = 256 * 1024
"""Buffers at least this big are mapped on their own (returned to the system when freed)."""
_M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
_done = False


def return_big_buffers() -> bool:
    """Fix glibc's mmap threshold once per process (batches call it); ``False`` where that is not glibc.

    Setting the threshold also turns off its dynamic growth. Other C libraries keep their own behaviour.
    """
    global _done
    if _done or not sys.platform.startswith("linux"):
        return _done
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    _done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    return _done
