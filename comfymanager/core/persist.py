"""Atomic, versioned JSON files.

Every file we own is ``{"kind": ..., "version": N, ...payload}``. Writes go to a temp file in the
same folder, are fsynced, the previous file is kept as ``.bak``, then ``os.replace`` swaps the new
one in: a crash at any moment leaves either the old or the new file, never half of one.
Reading a damaged file (bad JSON, wrong shape) moves it aside (``.corrupt-<time>``), falls back to
``.bak`` and raises ``CorruptFile`` only when nothing valid is left. A file that cannot be *read*
(an I/O error, a lock) is not damaged: the read is retried, then ``ReadFailed`` is raised and the
file is left where it is. Replacing goes through ``fileops`` (retries Windows sharing violations).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from comfymanager.core import fileops
from comfymanager.core.errors import ComfyManagerError, CorruptFile
from comfymanager.core.killpoint import kill_point

log = logging.getLogger(__name__)

Migration = Callable[[dict[str, Any]], dict[str, Any]]

READ_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4)  # after the first try: ~0.75 s in all


class ReadFailed(ComfyManagerError):
    """A file exists but reading it failed (I/O error, lock): nothing was set aside."""


class UnsupportedFormat(CorruptFile):
    """A valid file in a format this version cannot read (newer, or too old to migrate)."""


def _fsync_dir(folder: Path) -> None:
    if os.name == "nt":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_open(path: Path, *, keep_backup: bool = True) -> Iterator[Any]:
    """Open a text file for writing that replaces ``path`` only when the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if keep_backup and path.exists():
            with contextlib.suppress(OSError):
                shutil.copy2(path, path.with_name(path.name + ".bak"))
        kill_point(f"replace:{path.name}")
        fileops.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path, data: bytes, *, keep_backup: bool = False) -> None:
    """Replace ``path`` with ``data`` the way ``atomic_open`` does (temp file, fsync, replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if keep_backup and path.exists():
            with contextlib.suppress(OSError):
                shutil.copy2(path, path.with_name(path.name + ".bak"))
        fileops.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json(path: Path, kind: str, version: int, payload: dict[str, Any]) -> None:
    """Write ``payload`` atomically, stamped with ``kind`` and ``version``."""
    data = {"kind": kind, "version": version, **payload}
    with atomic_open(path) as fh:
        json.dump(data, fh, indent=2, sort_keys=False, allow_nan=False)
        fh.write("\n")


class DeferredWriter:
    """``write_json`` on a background thread, newest payload wins.

    For files rewritten often from the UI thread (the download queue): an fsync can take
    hundreds of milliseconds while gigabytes of downloaded data are being written back, and
    the window must not freeze for it. ``submit`` only hands the payload over; ``flush`` waits
    until the newest one is on disk (call it before quitting).
    """

    def __init__(self, path: Path, kind: str, version: int) -> None:
        self.path, self.kind, self.version = path, kind, version
        self._cond = threading.Condition()
        self._pending: dict[str, Any] | None = None
        self._busy = False
        self._thread: threading.Thread | None = None

    def submit(self, payload: dict[str, Any]) -> None:
        with self._cond:
            self._pending = payload
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name=f"save-{self.path.name}", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until everything submitted is written; False on timeout."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._pending is None and not self._busy, timeout=timeout
            )

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._cond.wait_for(lambda: self._pending is not None, timeout=30.0):
                    self._thread = None  # idle: the next submit starts a new thread
                    return
                payload, self._pending, self._busy = self._pending, None, True
            try:
                assert payload is not None
                write_json(self.path, self.kind, self.version, payload)
            except (OSError, ValueError) as exc:
                log.warning("could not save %s: %s", self.path, exc)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()


def _read_bytes(path: Path) -> bytes | None:
    """The file's bytes, None when it does not exist; transient errors retried, then typed."""
    for delay in (0.0, *READ_RETRY_DELAYS):
        if delay:
            time.sleep(delay)
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            error = exc
            log.info("reading %s failed (%s); retrying", path, exc)
    raise ReadFailed(
        f"{path} could not be read: {error.strerror or error}.",
        "The file was left as it is. Check that its disk is attached and that no other program "
        "holds it locked, then try again.",
    )


def _parse(raw: bytes, kind: str) -> dict[str, Any]:
    """Decode a file's content; ValueError (so: damaged) for anything but a valid document."""
    data = json.loads(raw.decode("utf-8"))  # UnicodeDecodeError and JSONDecodeError: ValueError
    if not isinstance(data, dict) or data.get("kind") != kind:
        raise ValueError(f"not a {kind} file")
    if not isinstance(data.get("version"), int):
        raise ValueError("no version")
    return data


def set_aside(path: Path) -> Path:
    """Rename a damaged file out of the way and return its new name."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    fileops.replace(path, target)
    return target


def read_json(
    path: Path,
    kind: str,
    version: int,
    migrations: dict[int, Migration] | None = None,
) -> dict[str, Any]:
    """Read a file written by ``write_json``, migrating older versions step by step.

    ``migrations[n]`` turns a version-n document into version n+1. A file from a newer
    version of the app is refused (``CorruptFile`` with a fix), never downgraded.
    Raises ``FileNotFoundError`` when neither the file nor its backup exists.
    """
    backup = path.with_name(path.name + ".bak")
    data: dict[str, Any] | None = None
    problem = ""
    raw = _read_bytes(path)
    if raw is not None:
        try:
            data = _parse(raw, kind)
        except ValueError as exc:  # only unparsable content is damage
            problem = str(exc)
            moved = set_aside(path)
            log.warning("%s is damaged (%s); set aside as %s", path, exc, moved.name)
    if data is None:
        raw_backup = _read_bytes(backup)
        if raw is None and raw_backup is None:
            raise FileNotFoundError(path)
        if raw_backup is not None:
            try:
                data = _parse(raw_backup, kind)
                log.warning("restored %s from its backup", path)
            except ValueError:
                data = None
    if data is None:
        raise CorruptFile(
            f"{path} could not be read ({problem or 'damaged'}).",
            "It was set aside with a .corrupt suffix; restore it from a backup or recreate it.",
        )
    found = data["version"]
    if found > version:
        raise UnsupportedFormat(
            f"{path} was written by a newer comfymanager (format {found}, reads only {version}).",
            "Update comfymanager to open it.",
        )
    while found < version:
        step = (migrations or {}).get(found)
        if step is None:
            raise UnsupportedFormat(
                f"{path} has format {found}, which this version cannot migrate."
            )
        data = step(data)
        found += 1
        data["version"] = found
    return data
