"""Roll a project back to a snapshot: ComfyUI checkout, pack folders, environment, settings.

The environment is synced from the snapshot's lock with ``uv pip sync`` (from uv's cache first,
so it takes seconds when the packages were installed once). Before anything changes the intent
is written to ``<project>/rollback.json``; a kill in the middle leaves it there, and ``repair``
(``install.install_project``) calls ``resume_interrupted``, which finishes going back to that
snapshot. An update writes the same intent (its own snapshot), so a killed update is undone by
the next repair.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from comfymanager.core import fileops, persist, process
from comfymanager.core.adopt.guard import require_managed
from comfymanager.core.context import CoreContext
from comfymanager.core.errors import Conflict, CorruptFile
from comfymanager.core.install import envs, sources
from comfymanager.core.killpoint import kill_point
from comfymanager.core.lifecycle import snapshots as snaps
from comfymanager.core.progress import CancelToken, Progress, Reporter
from comfymanager.core.projects import PackRecord, Project, ProjectDirs, ProjectStore
from comfymanager.core.run import runs

log = logging.getLogger(__name__)

INTENT_KIND = snaps.INTENT_KIND
INTENT_VERSION = snaps.INTENT_VERSION
STEPS = ("comfyui", "packs", "environment", "settings")


@dataclass(frozen=True)
class RollbackResult:
    project: str
    snapshot_id: str
    comfyui_commit: str
    packages: int  # lines in the lock synced
    seconds: float


def intent_file(dirs: ProjectDirs) -> Path:
    return dirs.root / "rollback.json"


def write_intent(dirs: ProjectDirs, snapshot_id: str, operation: str) -> None:
    persist.write_json(
        intent_file(dirs),
        INTENT_KIND,
        INTENT_VERSION,
        {"snapshot_id": snapshot_id, "operation": operation, "started": time.time()},
    )


def read_intent(dirs: ProjectDirs) -> dict[str, object] | None:
    path = intent_file(dirs)
    if not path.exists() and not path.with_name(path.name + ".bak").exists():
        return None
    try:
        return persist.read_json(path, INTENT_KIND, INTENT_VERSION)
    except (FileNotFoundError, CorruptFile):
        return None


def clear_intent(dirs: ProjectDirs) -> None:
    for path in (intent_file(dirs), intent_file(dirs).with_name("rollback.json.bak")):
        with contextlib.suppress(FileNotFoundError):
            fileops.remove_file(path)


def _check_not_running(ctx: CoreContext, project: Project) -> None:
    st = runs.status(ctx, project, probe_http=False)
    if st.state in ("running", "starting"):
        raise Conflict(
            f"Project '{project.id}' is running.", "Stop it before changing its version."
        )


def rollback(
    ctx: CoreContext,
    project_id: str,
    snapshot_id: str,
    report: Reporter,
    cancel: CancelToken,
    *,
    snapshot_before: bool = True,
) -> RollbackResult:
    """Bring the project back to exactly ``snapshot_id``; holds the project's lock.

    The state before is recorded first (``snapshot_before``), so a rollback can be undone."""
    store = ProjectStore(ctx.paths)
    with runs.project_lock(ctx, project_id):
        project = store.load(project_id)
        require_managed(project, "rollback")
        snap = snaps.load_snapshot(ctx, project_id, snapshot_id)
        _check_not_running(ctx, project)
        if snapshot_before:
            snaps.take_snapshot(ctx, project_id, "rollback", report=report, protect=(snap.id,))
        dirs = store.dirs(project_id)
        write_intent(dirs, snap.id, "rollback")
        result = restore(ctx, project, dirs, snap, report, cancel)
        clear_intent(dirs)
        return result


def resume_interrupted(
    ctx: CoreContext, project_id: str, report: Reporter, cancel: CancelToken
) -> str | None:
    """Finish an update or rollback a kill interrupted (``rollback.json`` is there): go back to
    its snapshot. The caller (repair) holds the project's lock. Returns the snapshot id."""
    store = ProjectStore(ctx.paths)
    dirs = store.dirs(project_id)
    intent = read_intent(dirs)
    if intent is None:
        return None
    snapshot_id = str(intent.get("snapshot_id", ""))
    what = intent.get("operation", "rollback")
    report.log(f"An interrupted {what} is finished: back to snapshot {snapshot_id}")
    snap = snaps.load_snapshot(ctx, project_id, snapshot_id)
    restore(ctx, store.load(project_id), dirs, snap, report, cancel)
    clear_intent(dirs)
    return snapshot_id


def _step(report: Reporter, index: int, message: str) -> None:
    report.progress(
        Progress(stage="rollback", done=index, total=len(STEPS), unit="steps", message=message)
    )
    report.log(f"--- {message}")
    kill_point(f"rollback:{STEPS[index]}")


def restore(
    ctx: CoreContext,
    project: Project,
    dirs: ProjectDirs,
    snap: snaps.Snapshot,
    report: Reporter,
    cancel: CancelToken,
) -> RollbackResult:
    """The rollback's work, under the caller's lock with the intent written. Idempotent: each
    step checks the real state, so running it again after a kill continues."""
    started = time.monotonic()
    store = ProjectStore(ctx.paths)
    _step(report, 0, f"ComfyUI back to {snap.comfyui_commit[:10]}")
    if snap.comfyui_commit:
        sources.checkout(
            snap.comfyui_source or project.comfyui_source,
            snap.comfyui_commit,
            dirs.comfyui,
            stage="rollback",
            report=report,
            cancel=cancel,
        )
    cancel.check()
    _step(report, 1, "Pack folders back to the snapshot")
    restore_packs(ctx, dirs, snap, report, cancel)
    cancel.check()
    _step(report, 2, f"Environment synced from the snapshot ({len(snap.lock)} packages)")
    write_constraints(dirs, snap.constraints)
    if snap.lock:
        sync_environment(ctx, dirs, snap.lock, snap.settings, report, cancel)
    cancel.check()
    _step(report, 3, "Project settings back to the snapshot")
    _restore_record(project, snap)
    store.save(project)
    report.progress(
        Progress(stage="rollback", done=len(STEPS), total=len(STEPS), unit="steps", message="Done")
    )
    return RollbackResult(
        project.id, snap.id, snap.comfyui_commit, len(snap.lock), time.monotonic() - started
    )


def write_constraints(dirs: ProjectDirs, content: str) -> None:
    if dirs.constraints.is_file() and dirs.constraints.read_text(encoding="utf-8") == content:
        return
    persist.atomic_write_bytes(dirs.constraints, content.encode("utf-8"))


def _place(dirs: ProjectDirs, folder: str, enabled: bool) -> Path:
    return dirs.custom_nodes / (folder if enabled else folder + snaps.DISABLED_SUFFIX)


def restore_packs(
    ctx: CoreContext, dirs: ProjectDirs, snap: snaps.Snapshot, report: Reporter, cancel: CancelToken
) -> None:
    """Pack folders as in the snapshot: each at its commit or version, enabled or not; a pack
    the snapshot does not have is disabled (renamed ``X.disabled``, never deleted)."""
    from comfymanager.core.install.packs import install_pack, installed_zip

    wanted = {p.folder: p for p in snap.packs}
    current = snaps.pack_folders(dirs)
    for folder, (path, enabled) in current.items():
        if folder in wanted or not enabled:
            continue
        target = _place(dirs, folder, False)
        if target.exists():
            target = dirs.custom_nodes / snaps.DISABLED_SUFFIX / folder
        if target.exists():
            report.log(f"Pack {folder} is not in the snapshot and could not be set aside")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        fileops.rename(path, target)
        report.log(f"Pack {folder} is not in the snapshot: disabled (kept as {target.name})")
    current = snaps.pack_folders(dirs)
    uv = envs.UvRunner(ctx.paths, ctx.settings)
    for pack in snap.packs:
        cancel.check()
        target = _place(dirs, pack.folder, pack.enabled)
        have = current.get(pack.folder)
        if have is not None and have[0] != target and not target.exists():
            fileops.rename(have[0], target)
            report.log(f"Pack {pack.folder} {'enabled' if pack.enabled else 'disabled'}")
        if pack.kind == snaps.GIT:
            sources.checkout(
                pack.url, pack.commit, target, stage="packs", report=report, cancel=cancel
            )
        elif pack.kind == snaps.REGISTRY:
            if installed_zip(target) == (pack.registry_id, pack.version):
                continue
            enabled_path = _place(dirs, pack.folder, True)
            record = PackRecord(
                url="",
                folder=pack.folder,
                registry_id=pack.registry_id,
                version=pack.version,
                archive_sha256=pack.archive_sha256,
            )
            install_pack(
                record, dirs, uv, report=report, cancel=cancel, registry=ctx.settings.registry_url
            )
            if not pack.enabled and enabled_path.exists() and not target.exists():
                fileops.rename(enabled_path, target)
        elif not target.exists():
            report.log(f"Pack {pack.folder} was local (not reproducible) and is gone; skipped")


def sync_environment(
    ctx: CoreContext,
    dirs: ProjectDirs,
    lock: tuple[str, ...],
    settings: dict[str, object],
    report: Reporter,
    cancel: CancelToken,
) -> None:
    """``uv pip sync`` the venv to ``lock`` exactly: uv's cache alone first, then the indexes
    (the project's, and the torch backend's when the lock has torch)."""
    uv = envs.UvRunner(ctx.paths, ctx.settings)
    envs.ensure_venv(uv, dirs.venv, str(settings.get("python") or ""), report=report, cancel=cancel)
    lockfile = dirs.root / "snapshots" / ".sync.txt"
    lockfile.parent.mkdir(parents=True, exist_ok=True)
    persist.atomic_write_bytes(lockfile, "".join(line + "\n" for line in lock).encode("utf-8"))
    args = [
        "pip",
        "sync",
        "--python",
        str(envs.venv_python(dirs.venv)),
        str(lockfile),
        "--allow-empty-requirements",
    ]
    backend = str(settings.get("torch_backend_resolved") or "")
    if backend and any(line.lower().startswith("torch==") for line in lock):
        index = envs.torch_index_url(ctx.settings, backend)
        if index:
            args += ["--index", index, "--index-strategy", "unsafe-best-match"]
    args += uv.index_args()
    try:
        quiet: list[str] = []
        outcome = process.run_tool(
            [envs.find_uv(), *args, "--offline"], on_line=quiet.append, cancel=cancel, env=uv.env()
        )
        if outcome.ok:
            for line in quiet:
                report.log(line)
            return
        cancel.check()
        report.log("Not every package is in uv's cache; using the package index")
        uv.run(
            args,
            what="Syncing the environment to the snapshot",
            report=report,
            cancel=cancel,
            fix="Check the network and the package index in Settings > Mirrors, then run "
            "repair (it finishes the rollback).",
        )
    finally:
        with contextlib.suppress(FileNotFoundError):
            lockfile.unlink()


def _restore_record(project: Project, snap: snaps.Snapshot) -> None:
    project.comfyui_ref = snap.comfyui_ref or snap.comfyui_commit
    project.comfyui_commit = snap.comfyui_commit
    if snap.comfyui_source:
        project.comfyui_source = snap.comfyui_source
    s = snap.settings
    project.port = s.get("port") if isinstance(s.get("port"), int) else None
    project.listen_network = bool(s.get("listen_network", project.listen_network))
    project.launch_args = [str(a) for a in s.get("launch_args", project.launch_args)]
    project.torch_version = str(s.get("torch_version", project.torch_version))
    by_folder = {p.folder: p for p in project.packs}
    records: list[PackRecord] = []
    for pack in snap.packs:
        rec = by_folder.get(pack.folder)
        if rec is None and pack.kind == snaps.LOCAL:
            continue  # a folder put there by hand: nothing to record
        rec = rec or PackRecord(url=pack.url, folder=pack.folder)
        if pack.kind == snaps.GIT:
            if rec.commit != pack.commit or pack.version:  # the label goes with the commit
                rec.version = pack.version
            rec.url, rec.commit = pack.url, pack.commit
        elif pack.kind == snaps.REGISTRY:
            rec.registry_id, rec.version = pack.registry_id, pack.version
            rec.archive_sha256 = pack.archive_sha256 or rec.archive_sha256
        rec.status, rec.error = "installed", ""
        records.append(rec)
    project.packs = records


def before_repair(
    ctx: CoreContext, project_id: str, force: bool, report: Reporter, cancel: CancelToken
) -> bool:
    """What repair does first, under its lock: finish an interrupted update or rollback
    (True: the project record changed, reload it), else record a snapshot."""
    if resume_interrupted(ctx, project_id, report, cancel):
        return True
    snaps.snapshot_before_change(ctx, project_id, "reinstall" if force else "repair", report)
    return False
