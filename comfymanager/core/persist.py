"""Atomic, versioned JSON files.

Every file we own is ``{"kind": ..., "version": N, ...payload}``. Writes go to a temp file in the
same folder, are fsynced, the previous file is kept as ``.bak``, then ``os.replace`` swaps the new
one in: a crash at any moment leaves either the old or the new file, never half of one.
Reading a damaged file moves it aside (``.corrupt-<time>``), falls back to ``.bak`` and raises
``CorruptFile`` only when nothing valid is left.
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

from comfymanager.core.errors import CorruptFile

log = logging.getLogger(__name__)

Migration = Callable[[dict[str, Any]], dict[str, Any]]


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
        os.replace(tmp, path)
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


def _parse(path: Path, kind: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
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
    os.replace(path, target)
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
    if not path.exists() and not backup.exists():
        raise FileNotFoundError(path)
    data: dict[str, Any] | None = None
    problem = ""
    if path.exists():
        try:
            data = _parse(path, kind)
        except (OSError, ValueError) as exc:  # JSONDecodeError is a ValueError
            problem = str(exc)
            moved = set_aside(path)
            log.warning("%s is damaged (%s); set aside as %s", path, exc, moved.name)
    if data is None and backup.exists():
        try:
            data = _parse(backup, kind)
            log.warning("restored %s from its backup", path)
        except (OSError, ValueError):
            data = None
    if data is None:
        raise CorruptFile(
            f"{path} could not be read ({problem or 'damaged'}).",
            "It was set aside with a .corrupt suffix; restore it from a backup or recreate it.",
        )
    found = data["version"]
    if found > version:
        raise CorruptFile(
            f"{path} was written by a newer comfymanager (format {found}, reads only {version}).",
            "Update comfymanager to open it.",
        )
    while found < version:
        step = (migrations or {}).get(found)
        if step is None:
            raise CorruptFile(f"{path} has format {found}, which this version cannot migrate.")
        data = step(data)
        found += 1
        data["version"] = found
    return data
