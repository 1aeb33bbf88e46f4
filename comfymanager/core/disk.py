"""Disk use, honestly: what a project holds alone, what it shares through uv's cache, what its
snapshots cost, and uv's cache itself; "Clean unused" is uv's own ``uv cache prune``.

uv installs packages into a venv by hard-linking them from its cache (same volume), so a venv's
package files are usually *shared*: deleting the project frees only what is unique to it. A file
counts as shared when it has more links than the walk saw inside the project (``st_nlink``); each
inode is counted once. Sizes are file sizes (``st_size``). Every walk is bounded (``MAX_ENTRIES``,
then ``truncated``), never follows links and checks the cancel token, so it can run in a worker.

What ``prune_cache`` guarantees: uv removes only cache entries nothing in the cache refers to any
more (stale buckets, archives no wheel entry points at, old cache versions) and waits for other uv
processes to finish first. A venv's files are hard links of their own: removing a cache entry
never removes a file a project uses. Snapshots are text (locks), not copies: a rollback after a
prune may download a package again, but nothing a project runs is lost.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from comfymanager.core.context import CoreContext
from comfymanager.core.install import envs
from comfymanager.core.progress import NULL_REPORTER, CancelToken, Progress, Reporter
from comfymanager.core.projects import ProjectStore

MAX_ENTRIES = 1_000_000  # files and folders per walk


@dataclass(frozen=True)
class TreeUse:
    """One walk: every byte under a folder, split by whether other places link to it."""

    total_bytes: int = 0
    unique_bytes: int = 0
    shared_bytes: int = 0
    files: int = 0
    truncated: bool = False


@dataclass(frozen=True)
class ProjectDisk:
    project: str
    path: str
    total_bytes: int  # all files of the project folder (each inode once)
    unique_bytes: int  # freed when the project is deleted
    shared_bytes: int  # hard links shared with uv's cache or another project
    snapshots_bytes: int  # <project>/snapshots/
    files: int
    truncated: bool
    external_root: str = ""  # an in-place adoption: that folder is the user's, not counted

    def to_json(self) -> dict[str, object]:
        from dataclasses import asdict

        return asdict(self)


@dataclass(frozen=True)
class CacheDisk:
    path: str
    bytes: int
    files: int
    truncated: bool

    def to_json(self) -> dict[str, object]:
        from dataclasses import asdict

        return asdict(self)


@dataclass(frozen=True)
class PruneResult:
    path: str
    bytes_before: int
    bytes_after: int

    @property
    def freed(self) -> int:
        return max(0, self.bytes_before - self.bytes_after)


def tree_use(root: Path, cancel: CancelToken | None = None, limit: int = MAX_ENTRIES) -> TreeUse:
    """Walk ``root`` (links not followed) and split its bytes into unique and shared."""
    seen: dict[tuple[int, int], list[int]] = {}  # (dev, ino) -> [links seen here, nlink, size]
    budget = limit
    truncated = False
    stack = [os.fspath(root)]
    while stack and not truncated:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                for entry in it:
                    budget -= 1
                    if budget < 0:
                        truncated = True
                        break
                    if cancel is not None and budget % 2000 == 0:
                        cancel.check()
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                            continue
                        if not entry.is_file(follow_symlinks=False):
                            continue  # links, sockets: no data of their own here
                        st = entry.stat(follow_symlinks=False)
                        if st.st_nlink == 0 or st.st_ino == 0:  # Windows' cached stat lacks them
                            st = os.lstat(entry.path)
                    except OSError:
                        continue
                    key = (st.st_dev, st.st_ino)
                    if st.st_ino == 0:  # a filesystem without inode numbers: count each file
                        key = (st.st_dev, -len(seen) - 1)
                    rec = seen.get(key)
                    if rec is None:
                        seen[key] = [1, st.st_nlink, st.st_size]
                    else:
                        rec[0] += 1
        except OSError:
            continue
    unique = shared = 0
    for here, nlink, size in seen.values():
        if nlink > here:
            shared += size
        else:
            unique += size
    return TreeUse(unique + shared, unique, shared, len(seen), truncated)


def project_disk(
    ctx: CoreContext, project_id: str, cancel: CancelToken | None = None
) -> ProjectDisk:
    store = ProjectStore(ctx.paths)
    project = store.load(project_id)
    root = store.dirs(project.id).root
    use = tree_use(root, cancel)
    snapshots = root / "snapshots"
    snap = (
        tree_use(snapshots, cancel) if snapshots.is_dir() and not snapshots.is_symlink() else None
    )
    return ProjectDisk(
        project=project.id,
        path=str(root),
        total_bytes=use.total_bytes,
        unique_bytes=use.unique_bytes,
        shared_bytes=use.shared_bytes,
        snapshots_bytes=snap.total_bytes if snap else 0,
        files=use.files,
        truncated=use.truncated,
        external_root=project.external_root if project.in_place else "",
    )


def uv_cache_dir(ctx: CoreContext) -> Path:
    """The uv cache every project's installs use (the environment override included)."""
    return Path(envs.UvRunner(ctx.paths, ctx.settings).env()["UV_CACHE_DIR"])


def cache_disk(ctx: CoreContext, cancel: CancelToken | None = None) -> CacheDisk:
    path = uv_cache_dir(ctx)
    use = tree_use(path, cancel) if path.is_dir() else TreeUse()
    return CacheDisk(str(path), use.total_bytes, use.files, use.truncated)


def prune_cache(
    ctx: CoreContext, *, report: Reporter = NULL_REPORTER, cancel: CancelToken | None = None
) -> PruneResult:
    """Clean unused: uv's own ``uv cache prune`` (see the module docstring for what it keeps)."""
    cancel = cancel or CancelToken()
    path = uv_cache_dir(ctx)
    before = cache_disk(ctx, cancel).bytes
    if path.is_dir():
        report.progress(Progress(stage="prune", message="Removing what uv's cache no longer uses"))
        uv = envs.UvRunner(ctx.paths, ctx.settings)
        uv.run(["cache", "prune"], what="Cleaning uv's cache", report=report, cancel=cancel)
    after = cache_disk(ctx, cancel).bytes
    return PruneResult(str(path), before, after)
