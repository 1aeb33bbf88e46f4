"""A project's custom node packs as a list the user manages: add, remove, update, enable and
disable, each under the project's lock, with a snapshot first (``_snapshot``), resumable.

A new pack (or a pack's new version) is fetched into ``<project>/.packs-staging`` first; the
requirements of ComfyUI, every enabled pack and it are resolved together (``pack_reqs``); only
then is it moved into ``custom_nodes`` and recorded, and its requirements installed under the
torch constraint. A conflict changes nothing. Disabling moves the folder into
``custom_nodes/.disabled/`` as ComfyUI-Manager does. The list itself is ``pack_list.list_packs``
(re-exported here).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from comfymanager.core import fileops
from comfymanager.core.adopt.guard import require_managed
from comfymanager.core.context import CoreContext
from comfymanager.core.errors import Conflict, InvalidInput, NotFound
from comfymanager.core.install import packs as pack_install
from comfymanager.core.killpoint import kill_point
from comfymanager.core.lifecycle.pack_fetch import (
    PackSource,
    fetch_to,
    finish_install,
    git_target,
    parse_source,
)
from comfymanager.core.lifecycle.pack_list import (
    DISABLED_DIR,
    OnDisk,
    PackInfo,
    _snapshot,
    changed_since_last_snapshot,
    list_packs,
    record_state,
    scan,
    snapshot_if_changed,
)
from comfymanager.core.lifecycle.pack_reqs import (
    PackConflict,
    check_requirements,
    enabled_requirements,
)
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import PackRecord, Project, ProjectDirs, ProjectStore, remove_tree
from comfymanager.core.run import runs

__all__ = [
    "PackChange",
    "PackConflict",
    "PackInfo",
    "add_pack",
    "changed_since_last_snapshot",
    "list_packs",
    "remove_pack",
    "set_enabled",
    "snapshot_if_changed",
    "update_pack",
]

log = logging.getLogger(__name__)

STAGING = ".packs-staging"


@dataclass(frozen=True)
class PackChange:
    """What one pack operation did."""

    project: str
    pack: str
    action: str  # add | remove | update | enable | disable | unchanged
    before: str
    after: str
    seconds: float


# --- operations -----------------------------------------------------------------------------


def _open(ctx: CoreContext, project_id: str) -> tuple[ProjectStore, Project, ProjectDirs]:
    store = ProjectStore(ctx.paths)
    project = store.load(project_id)
    require_managed(project, "changing its packs")
    if project.install.status != "ready":
        raise Conflict(
            f"Project '{project_id}' is not installed ({project.install.status}).",
            f"Run 'comfymanager repair {project_id}' first.",
        )
    state = runs.status(ctx, project, probe_http=False).state
    if state in ("running", "starting"):
        raise Conflict(
            f"Project '{project_id}' is running; its packs cannot change under ComfyUI.",
            f"Stop it first ('comfymanager stop {project_id}').",
        )
    return store, project, store.dirs(project_id)


def _find(
    project: Project, dirs: ProjectDirs, name: str
) -> tuple[PackRecord | None, OnDisk | None]:
    rec = next((p for p in project.packs if (p.folder or "").lower() == name.lower()), None)
    disk = scan(dirs.custom_nodes)
    seen = next((v for k, v in disk.items() if k.lower() == name.lower()), None)
    if rec is None and seen is None:
        names = ", ".join(sorted({*(p.folder for p in project.packs), *disk})) or "none"
        raise NotFound(
            f"Project '{project.id}' has no pack {name!r} (packs: {names}).",
            f"Run 'comfymanager packs {project.id}' to see its packs.",
        )
    return rec, seen


def _staging(dirs: ProjectDirs, folder: str) -> Path:
    return dirs.root / STAGING / folder


def _swap_in(staged: Path, target: Path) -> None:
    """Replace ``target`` by ``staged`` (the old one removed only once the new one is there)."""
    old = target.with_name(target.name + ".old.disabled")
    if old.exists():
        remove_tree(old)
    if target.exists():
        fileops.rename(target, old)
        kill_point("pack-swap-old-aside")
    fileops.rename(staged, target)
    if old.exists():
        remove_tree(old)


def _cleanup_staging(dirs: ProjectDirs) -> None:
    staging = dirs.root / STAGING
    if staging.exists():
        remove_tree(staging)


def add_pack(
    ctx: CoreContext,
    project_id: str,
    source: str,
    *,
    report: Reporter,
    cancel: CancelToken,
    folder: str = "",
) -> PackChange:
    """Add a pack (git URL, folder or registry id, optionally ``@VERSION``). The pack is
    fetched into staging, the requirements of all enabled packs are resolved with it, and only
    then is it moved into ``custom_nodes`` and its requirements installed. Running it again
    after a failure or a kill continues."""
    src = parse_source(source)
    if folder:
        src = dataclasses.replace(src, folder=pack_install.validate_folder(folder))
    started = time.monotonic()
    with runs.project_lock(ctx, project_id):
        store, project, dirs = _open(ctx, project_id)
        rec, seen = _find_optional(project, dirs, src.folder)
        if seen is not None and rec is None:
            raise Conflict(
                f"custom_nodes already holds a pack folder {seen.name!r} (added outside "
                "comfymanager).",
                f"Remove it first ('comfymanager pack remove {project_id} {seen.name}').",
            )
        if rec is not None and rec.status == "installed" and seen is not None:
            raise Conflict(
                f"Project '{project_id}' already has the pack {rec.folder}.",
                f"Use 'comfymanager pack update {project_id} {rec.folder}' to change its version.",
            )
        staged = _staging(dirs, src.folder)
        _cleanup_staging(dirs)
        try:
            new = fetch_to(ctx, dirs, src, staged, report, cancel, rec)
            cancel.check()
            files = enabled_requirements(dirs, skip=src.folder)
            files[src.folder] = staged / "requirements.txt"
            check_requirements(ctx, dirs, files, report=report, cancel=cancel)
            _snapshot(ctx, project_id, f"pack add {src.folder}")
            if rec is not None:
                project.packs.remove(rec)
            new.status = "pending"
            project.packs.append(new)
            store.save(project)  # recorded before the move: a kill leaves a repairable pack
            kill_point("pack-add-recorded")
            target = dirs.custom_nodes / src.folder
            pack_install.check_pack_paths(dirs, target)
            _swap_in(staged, target)
            kill_point("pack-add-moved")
        finally:
            _cleanup_staging(dirs)
        _install_recorded(ctx, store, project, new, dirs, report, cancel)
        record_state(ctx, project_id)
        after = new.commit[:12] or new.version
        return PackChange(project_id, src.folder, "add", "", after, time.monotonic() - started)


def _find_optional(
    project: Project, dirs: ProjectDirs, name: str
) -> tuple[PackRecord | None, OnDisk | None]:
    try:
        return _find(project, dirs, name)
    except NotFound:
        return None, None


def _install_recorded(
    ctx: CoreContext,
    store: ProjectStore,
    project: Project,
    rec: PackRecord,
    dirs: ProjectDirs,
    report: Reporter,
    cancel: CancelToken,
) -> None:
    try:
        finish_install(ctx, dirs, rec, dirs.custom_nodes / rec.folder, report, cancel)
    except Exception as exc:
        rec.status, rec.error = "failed", str(exc)
        store.save(project)
        raise
    rec.status, rec.error = "installed", ""
    store.save(project)


def remove_pack(
    ctx: CoreContext, project_id: str, pack: str, *, report: Reporter, cancel: CancelToken
) -> PackChange:
    """Remove a pack's folder (enabled or disabled) and its record. Packages it installed stay
    in the environment (others may use them); a repair does not bring the pack back."""
    started = time.monotonic()
    with runs.project_lock(ctx, project_id):
        store, project, dirs = _open(ctx, project_id)
        rec, seen = _find(project, dirs, pack)
        name = rec.folder if rec is not None else seen.name if seen is not None else pack
        before = (rec.commit[:12] or rec.version) if rec is not None else ""
        _snapshot(ctx, project_id, f"pack remove {name}")
        if seen is not None:
            report.log(f"Removing {seen.path}")
            trash = dirs.custom_nodes / f".{seen.path.name}.removing"
            if trash.exists():
                remove_tree(trash)
            fileops.rename(seen.path, trash)  # gone from ComfyUI's view at once
            remove_tree(trash)
        if rec is not None:
            project.packs.remove(rec)
            store.save(project)
        record_state(ctx, project_id)
        return PackChange(project_id, name, "remove", before, "", time.monotonic() - started)


def set_enabled(
    ctx: CoreContext,
    project_id: str,
    pack: str,
    enabled: bool,
    *,
    report: Reporter,
    cancel: CancelToken,
) -> PackChange:
    """Disable: move the folder into ``custom_nodes/.disabled/`` (ComfyUI skips it). Enable:
    move it back, after its requirements resolved with the enabled packs'."""
    started = time.monotonic()
    action = "enable" if enabled else "disable"
    with runs.project_lock(ctx, project_id):
        store, project, dirs = _open(ctx, project_id)
        rec, seen = _find(project, dirs, pack)
        if seen is None:
            raise NotFound(
                f"The pack {pack}'s folder is missing from custom_nodes.",
                f"Run 'comfymanager repair {project_id}' to reinstall it, or remove it.",
            )
        if seen.enabled == enabled:
            return PackChange(project_id, seen.name, "unchanged", action + "d", action + "d", 0.0)
        if enabled:
            files = enabled_requirements(dirs)
            files[seen.name] = seen.path / "requirements.txt"
            check_requirements(ctx, dirs, files, report=report, cancel=cancel)
        _snapshot(ctx, project_id, f"pack {action} {seen.name}")
        if enabled:
            target = dirs.custom_nodes / seen.name
        else:
            target = dirs.custom_nodes / DISABLED_DIR / seen.name
            target.parent.mkdir(exist_ok=True)
        if target.exists():
            raise Conflict(f"{target} already exists.", "Move it away, then try again.")
        fileops.rename(seen.path, target)
        if enabled and rec is not None:
            _install_recorded(ctx, store, project, rec, dirs, report, cancel)
        record_state(ctx, project_id)
        before, after = ("disabled", "enabled") if enabled else ("enabled", "disabled")
        return PackChange(project_id, seen.name, action, before, after, time.monotonic() - started)


def update_pack(
    ctx: CoreContext,
    project_id: str,
    pack: str | None = None,
    *,
    report: Reporter,
    cancel: CancelToken,
) -> list[PackChange]:
    """Update one pack (or every recorded one): git to its latest release tag, else its remote
    default branch's head; registry to its latest version. Each new version is staged and its
    requirements resolved with the others' before the folder changes."""
    with runs.project_lock(ctx, project_id):
        store, project, dirs = _open(ctx, project_id)
        if pack is not None:
            rec, _ = _find(project, dirs, pack)
            if rec is None:
                raise InvalidInput(
                    f"The pack {pack} was added outside comfymanager; it has no source to "
                    "update from here.",
                    "Update it from ComfyUI-Manager, or remove it and add it with "
                    "'comfymanager pack add'.",
                )
            targets = [rec]
        else:
            targets = [p for p in project.packs if p.url or p.registry_id]
        changes = []
        snapshotted = False
        for rec in targets:
            cancel.check()
            started = time.monotonic()
            before = rec.commit[:12] or rec.version
            if rec.url:
                # a pack at a release tag moves to the newest release; one that followed its
                # branch (no tag) to the branch head: never back to an older tag
                commit, label = git_target(rec.url, "", cancel, follow_branch=not rec.version)
                src = PackSource("git", rec.url, label or commit, rec.folder)
                unchanged = commit == rec.commit
            elif rec.registry_id:
                latest = pack_install.registry_zip_url(
                    ctx.settings.registry_url, rec.registry_id, ""
                ).version
                src = PackSource("registry", rec.registry_id, latest, rec.folder)
                unchanged = latest == rec.version
            else:
                continue
            if unchanged:
                seconds = time.monotonic() - started
                changes.append(
                    PackChange(project_id, rec.folder, "unchanged", before, before, seconds)
                )
                continue
            _, seen = _find(project, dirs, rec.folder)
            staged = _staging(dirs, rec.folder)
            try:
                new = fetch_to(ctx, dirs, src, staged, report, cancel, rec)
                files = enabled_requirements(dirs, skip=rec.folder)
                files[rec.folder] = staged / "requirements.txt"
                check_requirements(ctx, dirs, files, report=report, cancel=cancel)
                if not snapshotted:
                    _snapshot(ctx, project_id, f"pack update {pack or 'all'}")
                    snapshotted = True
                target = seen.path if seen is not None else dirs.custom_nodes / rec.folder
                _swap_in(staged, target)
            finally:
                _cleanup_staging(dirs)
            rec.commit, rec.version = new.commit, new.version
            rec.archive_sha256 = new.archive_sha256
            store.save(project)
            if seen is None or seen.enabled:
                _install_recorded(ctx, store, project, rec, dirs, report, cancel)
            after = rec.commit[:12] or rec.version
            changes.append(
                PackChange(
                    project_id, rec.folder, "update", before, after, time.monotonic() - started
                )
            )
        record_state(ctx, project_id)
        return changes


def pack_dicts(rows: list[PackInfo]) -> list[dict[str, Any]]:
    return [row.__dict__.copy() for row in rows]
