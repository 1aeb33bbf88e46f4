"""Start writing a file's dirty pages to disk early, without waiting (Linux ``sync_file_range``).

A download writes gigabytes into the page cache. Left alone, the kernel holds them until its
own flush, and the ``fsync`` before the final rename then writes them all at once: a stall of
seconds at "Verifying" for a big file, and a burst of dirty memory meanwhile. Asking the kernel
to start writeback for each few megabytes as they arrive keeps the disk busy in the background
and leaves the final ``fsync`` little to do. Elsewhere (or if the call fails) this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
from collections.abc import Callable

log = logging.getLogger(__name__)

_SYNC_FILE_RANGE_WRITE = 2  # start writeback of dirty pages in the range; do not wait

_call: Callable[[int, int, int, int], int] | None = None
_loaded = False


def _load() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    fn.restype = ctypes.c_int
    return fn


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to begin writing ``length`` bytes at ``offset`` of ``fd`` to disk."""
    global _call, _loaded
    if not _loaded:
        _call, _loaded = _load(), True
    if _call is None or length <= 0:
        return
    if _call(fd, offset, length, _SYNC_FILE_RANGE_WRITE) != 0:
        log.info("sync_file_range failed (errno %d); not used again", ctypes.get_errno())
        _call = None
