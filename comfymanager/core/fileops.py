"""Replace, rename and remove files in a way that survives Windows.

On Windows a file that another process holds open (an antivirus scan, the search indexer, our
own monitor reading ``run.json``, a ComfyUI that memory-maps a model) cannot be replaced,
renamed or deleted for a moment: the call fails with a sharing violation (``PermissionError``
with ``winerror`` 5, 32 or 33). Every replace/rename/remove we do goes through this module, which
retries those errors with a bounded backoff (about two seconds in all) and then raises
``FileInUse``, a typed error that is still a ``PermissionError`` for callers that catch
``OSError``. On other systems a permission error is permanent and is raised at once.

``IS_WINDOWS`` is the one switch tests flip to exercise the Windows behaviour on Linux (together
with an injected ``PermissionError`` carrying a ``winerror``).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from comfymanager.core.errors import ComfyManagerError
from comfymanager.core.killpoint import kill_point

log = logging.getLogger(__name__)

IS_WINDOWS = os.name == "nt"
RETRY_SECONDS = 2.0  # total time spent retrying one operation
_DELAYS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.5)  # sums to ~2 s
_SHARING_WINERRORS = {5, 32, 33}  # access denied, sharing violation, lock violation

T = TypeVar("T")


class FileInUse(ComfyManagerError, PermissionError):
    """Another program holds the file open, so Windows refuses to replace or remove it."""


def is_sharing_violation(exc: BaseException) -> bool:
    """True for the transient "file is in use" errors of Windows."""
    if not isinstance(exc, PermissionError) or isinstance(exc, FileInUse):
        return False
    if getattr(exc, "winerror", None) in _SHARING_WINERRORS:
        return True
    return IS_WINDOWS and exc.errno == errno.EACCES


def _in_use(path: Path | str, what: str, holder: str, fix: str) -> FileInUse:
    return FileInUse(f"Could not {what} {path}: it is in use by {holder}.", fix)


_DEFAULT_FIX = (
    "Close the program that holds it open (a running ComfyUI, an antivirus scan or a file "
    "indexer), then try again."
)


def retry(
    op: Callable[[], T],
    path: Path | str,
    what: str,
    *,
    holder: str = "another program",
    fix: str = _DEFAULT_FIX,
) -> T:
    """Run ``op``; retry it while it fails with a sharing violation, then raise ``FileInUse``."""
    deadline = time.monotonic() + RETRY_SECONDS
    attempt = 0
    while True:
        try:
            return op()
        except PermissionError as exc:
            if not is_sharing_violation(exc):
                raise
            left = deadline - time.monotonic()
            delay = min(_DELAYS[min(attempt, len(_DELAYS) - 1)], left)
            if left <= 0.005:
                log.warning("%s %s: still in use after %d tries (%s)", what, path, attempt + 1, exc)
                raise _in_use(path, what, holder, fix) from exc
            attempt += 1
            time.sleep(delay)


def replace(src: Path | str, dst: Path | str) -> None:
    """``os.replace`` (atomic; overwrites ``dst``), retried while either file is in use."""
    retry(lambda: os.replace(src, dst), dst, "replace")


def rename(src: Path | str, dst: Path | str) -> None:
    """``os.rename`` (a folder or file to a new name), retried while something holds it."""
    retry(lambda: os.rename(src, dst), src, "rename")


def remove_file(
    path: Path | str,
    *,
    missing_ok: bool = True,
    holder: str = "another program",
    fix: str = _DEFAULT_FIX,
) -> None:
    """Delete one file (or a link, never its target), retried while it is in use."""

    def unlink() -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            if not missing_ok:
                raise

    retry(unlink, path, "delete", holder=holder, fix=fix)


def _make_writable(path: str) -> None:
    with contextlib.suppress(OSError):
        mode = os.lstat(path).st_mode
        if not stat.S_ISLNK(mode) and not mode & stat.S_IWRITE:
            os.chmod(path, mode | stat.S_IWRITE)


def _remove_entry(path: str, is_dir: bool) -> None:
    """Remove one file or empty folder: read-only files (git objects on Windows) included."""

    def once() -> None:
        try:
            if is_dir:
                os.rmdir(path)
            else:
                os.unlink(path)
        except FileNotFoundError:
            return
        except PermissionError:
            _make_writable(path)
            if is_dir:
                os.rmdir(path)
            else:
                os.unlink(path)

    retry(once, path, "delete")


def remove_tree(path: Path | str) -> None:
    """Delete a folder and everything in it; links inside are removed, never followed.

    Entries that vanish meanwhile (another process removing the same tree) are fine; a file
    that stays in use past the retries raises ``FileInUse`` and leaves the rest for next time.
    """
    top = os.fspath(path)
    try:
        st = os.lstat(top)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):  # a link or file: remove it, never what it points to
        _remove_entry(top, False)
        return
    _remove_dir(top)


def _remove_dir(folder: str) -> None:
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return
    except PermissionError:
        _make_writable(folder)
        entries = list(os.scandir(folder))
    for entry in entries:
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            is_dir = False
        if is_dir and not _is_junction(entry.path):
            _remove_dir(entry.path)
        else:
            _remove_entry(entry.path, False)
            kill_point("remove-tree-entry")
    _remove_entry(folder, True)


def _is_junction(path: str) -> bool:
    """A Windows junction looks like a folder but must be unlinked, never walked into."""
    isjunction = getattr(os.path, "isjunction", None)  # Python 3.12+
    return bool(isjunction(path)) if isjunction is not None else False


def tree_size(path: Path | str) -> int:
    """Bytes used by the files under ``path`` (links not followed; errors count as 0)."""
    total = 0
    stack = [os.fspath(path)]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                for entry in it:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        else:
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except NotADirectoryError:
            with contextlib.suppress(OSError):
                total += os.lstat(current).st_size
        except OSError:
            continue
    return total
