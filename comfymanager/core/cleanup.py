"""Leftovers of interrupted operations, found and removed in the background.

Two kinds are ours to remove: interrupted project deletes (``projects/.deleting-*``, whole
environments: gigabytes) and the temporary files of the atomic JSON writer
(``.<name>.json.<random>.tmp``) that a kill left next to the file it was replacing. A temp file
is removed only when it is older than ``TMP_MIN_AGE``: a younger one may be a save in progress in
another process. Download ``.part`` files are never touched: they resume.

The app sweeps on a worker at start; the command line removes temp files at once (a few
unlinks) and hands interrupted deletes to a detached ``python -m comfymanager.core.cleanup``
so that no command waits for a tree removal. One sweep at a time (a file lock).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil
from filelock import FileLock, Timeout

from comfymanager.core import fileops
from comfymanager.core.killpoint import ENV as KILL_ENV
from comfymanager.core.paths import DataPaths
from comfymanager.core.progress import NULL_REPORTER, CancelToken, Progress, Reporter

log = logging.getLogger(__name__)

TRASH_PREFIX = ".deleting-"  # projects.py renames a project folder to this before removing it
_TRASH_RE = re.compile(r"^\.deleting-.+-\d+-(?P<pid>\d+)$")
TMP_MIN_AGE = 600.0
# the atomic writer's temp names (tempfile.mkstemp) and the supervisor's (pid)
_TMP_RE = re.compile(r"^\.[^/\\]+\.(json|yaml)\.[A-Za-z0-9_]{1,16}\.tmp$")


def trash_name(folder: str) -> str:
    """What a project folder is renamed to while it is deleted; names the deleting process."""
    return f"{TRASH_PREFIX}{folder}-{time.time_ns()}-{os.getpid()}"


def _deleted_by_a_live_process(name: str) -> bool:
    """True while the process that is deleting this folder still runs (it finishes the job)."""
    match = _TRASH_RE.match(name)
    if match is None:
        return False
    pid = int(match["pid"])
    return bool(psutil.pid_exists(pid))


@dataclass(frozen=True)
class Leftover:
    path: Path
    kind: str  # "interrupted delete" | "temporary file"
    size: int


@dataclass(frozen=True)
class CleanupResult:
    removed: int
    freed: int
    failed: tuple[str, ...]


def _listdir(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as it:
            return list(it)
    except OSError:
        return []


def _tmp_folders(paths: DataPaths, store: Path) -> list[Path]:
    """Where the atomic writer saves: the data root, caches, each project, the store."""
    folders = [paths.root, paths.node_db, store]
    folders += [Path(e.path) for e in _listdir(store) if e.is_dir(follow_symlinks=False)]
    folders += [
        Path(e.path)
        for e in _listdir(paths.projects)
        if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")
    ]
    return folders


def find_leftovers(
    paths: DataPaths, store: Path, *, sizes: bool = True, now: float | None = None
) -> list[Leftover]:
    """Interrupted deletes and stale temp files; ``sizes=False`` skips walking the trees."""
    now = time.time() if now is None else now
    found: list[Leftover] = []
    for entry in _listdir(paths.projects):
        if entry.name.startswith(TRASH_PREFIX):
            size = fileops.tree_size(entry.path) if sizes else 0
            found.append(Leftover(Path(entry.path), "interrupted delete", size))
    for folder in _tmp_folders(paths, store):
        for entry in _listdir(folder):
            if not _TMP_RE.match(entry.name):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if now - st.st_mtime >= TMP_MIN_AGE:
                found.append(Leftover(Path(entry.path), "temporary file", st.st_size))
    return found


def leftover_bytes(paths: DataPaths, store: Path) -> int:
    return sum(item.size for item in find_leftovers(paths, store))


def sweep(
    paths: DataPaths,
    store: Path,
    report: Reporter = NULL_REPORTER,
    cancel: CancelToken | None = None,
) -> CleanupResult:
    """Remove every leftover; one sweep at a time (another running one: nothing to do)."""
    cancel = cancel or CancelToken()
    paths.locks.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(paths.locks / "cleanup.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("another clean-up is running")
        return CleanupResult(0, 0, ())
    try:
        items = [
            item
            for item in find_leftovers(paths, store, sizes=False)
            if not _deleted_by_a_live_process(item.path.name)
        ]
        removed = freed = 0
        failed: list[str] = []
        for i, item in enumerate(items):
            cancel.check()
            report.progress(
                Progress(
                    stage="cleanup",
                    done=i,
                    total=len(items),
                    unit="items",
                    message=f"Removing {item.path.name}",
                )
            )
            size = fileops.tree_size(item.path) if item.kind == "interrupted delete" else item.size
            try:
                if item.kind == "interrupted delete":
                    fileops.remove_tree(item.path)
                else:
                    fileops.remove_file(item.path)
            except OSError as exc:
                log.warning("could not remove the leftover %s: %s", item.path, exc)
                failed.append(str(item.path))
                continue
            removed += 1
            freed += size
            log.info("removed the leftover %s (%s, %d bytes)", item.path, item.kind, size)
        return CleanupResult(removed, freed, tuple(failed))
    finally:
        lock.release()


def cleanup_argv(paths: DataPaths, store: Path) -> list[str]:
    """The command that runs ``main`` below (frozen builds: the app's own executable)."""
    args = ["--data-dir", str(paths.root), "--store", str(store)]
    if getattr(sys, "frozen", False):
        return [sys.executable, "--cleanup", *args]
    return [sys.executable, "-m", "comfymanager.core.cleanup", *args]


def start_for_command(paths: DataPaths, store: Path) -> bool:
    """At a command's start: stale temp files go at once, interrupted deletes to a detached
    process. Costs a few directory listings when there is nothing to do. True when a
    clean-up process was started."""
    items = find_leftovers(paths, store, sizes=False)
    trees = False
    for item in items:
        if item.kind != "temporary file":
            trees = trees or not _deleted_by_a_live_process(item.path.name)
            continue
        try:
            fileops.remove_file(item.path)
        except OSError as exc:
            log.info("could not remove %s now: %s", item.path, exc)
    if not trees:
        return False
    from comfymanager.core.process import clean_env, spawn_detached

    env = clean_env()
    env.pop(KILL_ENV, None)  # the fault tests kill the command, never its clean-up
    try:
        spawn_detached(cleanup_argv(paths, store), log_file=paths.logs / "cleanup.log", env=env)
    except (OSError, ValueError) as exc:
        log.warning("could not start the clean-up of interrupted deletes: %s", exc)
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m comfymanager.core.cleanup --data-dir D --store S``: one sweep, then exit."""
    parser = argparse.ArgumentParser(prog="comfymanager-cleanup")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--store", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    result = sweep(DataPaths(Path(args.data_dir)), Path(args.store))
    log.info(
        "clean-up: %d removed, %d bytes freed, %d failed",
        result.removed,
        result.freed,
        len(result.failed),
    )
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
