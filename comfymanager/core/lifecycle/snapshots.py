"""Snapshots: the exact state of a project, recorded before every change and by hand.

A snapshot is a small versioned JSON file, ``<project>/snapshots/<id>.json``, written
atomically: the ComfyUI commit, every pack (git commit and origin, registry id + version +
archive sha256, or "local, not reproducible") with its enabled state, the environment as a lock
(``uv pip freeze``, which ``uv pip sync`` restores), the torch constraints, the launch settings
and the project's workflow files (names + sha256). No copies of environments or packs.

``list_snapshots`` reads only the snapshot files (no git, no Python), so a history view is
cheap. A snapshot whose content equals the newest one is not written again; old ones are
pruned to ``Settings.snapshots_keep``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from comfymanager.core import fileops, persist
from comfymanager.core.adopt.guard import require_managed
from comfymanager.core.context import CoreContext
from comfymanager.core.errors import ComfyManagerError, CorruptFile, NotFound
from comfymanager.core.install import envs, sources
from comfymanager.core.progress import NULL_REPORTER, CancelToken, Reporter
from comfymanager.core.projects import Project, ProjectDirs, ProjectStore
from comfymanager.core.text import counted

log = logging.getLogger(__name__)

KIND = "comfymanager-snapshot"
VERSION = 1
INTENT_KIND = "comfymanager-rollback-intent"  # rollback.json (written by ``rollback``)
INTENT_VERSION = 1
DISABLED_SUFFIX = ".disabled"

GIT, REGISTRY, LOCAL = "git", "registry", "local"
_REQUIREMENT = re.compile(r"^(-e\s+\S|[A-Za-z0-9][A-Za-z0-9._-]*(\[[^]]*\])?\s*(==|@\s))")


@dataclass(frozen=True)
class PackState:
    """One pack folder as it was: where it came from and whether ComfyUI loads it."""

    folder: str
    kind: str  # git | registry | local ("local, not reproducible")
    enabled: bool = True
    url: str = ""
    commit: str = ""
    registry_id: str = ""
    version: str = ""
    archive_sha256: str = ""

    @property
    def label(self) -> str:
        """What a list shows: the folder and its version or commit."""
        what = {
            GIT: f"{self.version} ({self.commit[:10]})" if self.version else self.commit[:10],
            REGISTRY: self.version,
            LOCAL: "local, not reproducible",
        }.get(self.kind, "")
        return f"{self.folder} {what}".strip() + ("" if self.enabled else " (disabled)")


@dataclass(frozen=True)
class Snapshot:
    id: str
    created: float
    reason: str
    note: str
    comfyui_source: str
    comfyui_ref: str
    comfyui_commit: str
    packs: tuple[PackState, ...]
    lock: tuple[str, ...]  # `uv pip freeze` lines
    constraints: str  # the torch constraints file's content
    settings: dict[str, Any] = field(default_factory=dict)  # launch settings of project.json
    workflows: tuple[tuple[str, str], ...] = ()  # (name, sha256)
    content_hash: str = ""

    def to_json(self) -> dict[str, Any]:
        """The CLI's object (``snapshots --json``): id, created, reason, note, comfyui_commit,
        packs, and the rest."""
        data = asdict(self)
        data["created_iso"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created))
        data["packs"] = [asdict(p) for p in self.packs]
        data["lock"] = list(self.lock)
        data["workflows"] = [{"name": n, "sha256": h} for n, h in self.workflows]
        return data


def snapshots_dir(dirs: ProjectDirs) -> Path:
    return dirs.root / "snapshots"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pack_folders(dirs: ProjectDirs) -> dict[str, tuple[Path, bool]]:
    """Pack folder name -> (its path, enabled). ``X.disabled`` and ``.disabled/X`` (the two ways
    ComfyUI-Manager disables a pack; ComfyUI skips both) count as ``X`` disabled."""
    found: dict[str, tuple[Path, bool]] = {}
    root = dirs.custom_nodes
    if not root.is_dir():
        return found
    for entry in sorted(root.iterdir()):
        if entry.is_symlink() or not entry.is_dir() or entry.name == "__pycache__":
            continue
        if entry.name == DISABLED_SUFFIX:
            for inner in sorted(entry.iterdir()):
                if inner.is_dir() and not inner.is_symlink():
                    found.setdefault(inner.name, (inner, False))
            continue
        if entry.name.endswith(DISABLED_SUFFIX):
            found.setdefault(entry.name[: -len(DISABLED_SUFFIX)], (entry, False))
        elif not entry.name.startswith("."):
            found[entry.name] = (entry, True)
    return found


def _pack_state(project: Project, folder: str, path: Path, enabled: bool) -> PackState:
    from comfymanager.core.install.packs import installed_zip

    if (path / ".git").exists():
        commit = sources.head_commit(path) or ""
        url = sources.origin_url(path) or ""
        if commit and url:
            # the release recorded for that commit ("1.0.0"), so a rollback restores the label
            rec = next((p for p in project.packs if p.folder == folder), None)
            version = rec.version if rec is not None and rec.commit == commit else ""
            return PackState(folder, GIT, enabled, url=url, commit=commit, version=version)
    zipped = installed_zip(path)
    if zipped is not None:
        record = next((p for p in project.packs if p.folder == folder), None)
        sha = record.archive_sha256 if record and record.registry_id == zipped[0] else ""
        return PackState(
            folder, REGISTRY, enabled, registry_id=zipped[0], version=zipped[1], archive_sha256=sha
        )
    return PackState(folder, LOCAL, enabled)


def freeze(ctx: CoreContext, dirs: ProjectDirs) -> tuple[str, ...]:
    """The environment's exact packages (``uv pip freeze``), sorted; () without a venv."""
    if not envs.venv_python(dirs.venv).exists():
        return ()
    uv = envs.UvRunner(ctx.paths, ctx.settings)
    lines: list[str] = []
    uv.run(
        ["pip", "freeze", "--python", str(envs.venv_python(dirs.venv))],
        what="Recording the environment",
        report=Reporter(log=lines.append),
        cancel=CancelToken(),
    )
    # uv says which environment it used on stderr, which comes in the same lines
    return tuple(sorted(ln.strip() for ln in lines if _REQUIREMENT.match(ln.strip())))


def _workflows(dirs: ProjectDirs) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for folder in (dirs.workflows,):
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*.json")):
            if path.is_file() and not path.is_symlink():
                out.append((path.relative_to(folder).as_posix(), _sha256(path)))
    return tuple(out)


def launch_settings(project: Project) -> dict[str, Any]:
    return {
        "port": project.port,
        "listen_network": project.listen_network,
        "launch_args": list(project.launch_args),
        "torch_backend": project.torch_backend,
        "torch_backend_resolved": project.torch_backend_resolved,
        "torch_version": project.torch_version,
        "python": project.python,
        "python_version": project.python_version,
    }


def _content_hash(snap: dict[str, Any]) -> str:
    keep = {k: v for k, v in snap.items() if k not in ("id", "created", "reason", "note")}
    keep.pop("content_hash", None)
    raw = json.dumps(keep, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()


def capture(ctx: CoreContext, project: Project, dirs: ProjectDirs) -> dict[str, Any]:
    """The project's state now, as a snapshot payload without id/created/reason/note."""
    packs = [
        asdict(_pack_state(project, name, path, enabled))
        for name, (path, enabled) in pack_folders(dirs).items()
    ]
    constraints = dirs.constraints.read_text(encoding="utf-8") if dirs.constraints.is_file() else ""
    payload: dict[str, Any] = {
        "comfyui_source": project.comfyui_source,
        "comfyui_ref": project.comfyui_ref,
        "comfyui_commit": sources.head_commit(dirs.comfyui) or project.comfyui_commit,
        "packs": packs,
        "lock": list(freeze(ctx, dirs)),
        "constraints": constraints,
        "settings": launch_settings(project),
        "workflows": [list(w) for w in _workflows(dirs)],
    }
    payload["content_hash"] = _content_hash(payload)
    return payload


def _from_dict(data: dict[str, Any]) -> Snapshot:
    return Snapshot(
        id=str(data["id"]),
        created=float(data["created"]),
        reason=str(data.get("reason", "")),
        note=str(data.get("note", "")),
        comfyui_source=str(data.get("comfyui_source", "")),
        comfyui_ref=str(data.get("comfyui_ref", "")),
        comfyui_commit=str(data.get("comfyui_commit", "")),
        packs=tuple(PackState(**p) for p in data.get("packs", [])),
        lock=tuple(data.get("lock", [])),
        constraints=str(data.get("constraints", "")),
        settings=dict(data.get("settings", {})),
        workflows=tuple((str(n), str(h)) for n, h in data.get("workflows", [])),
        content_hash=str(data.get("content_hash", "")),
    )


def _new_id(folder: Path, created: float) -> str:
    base = time.strftime("%Y%m%d-%H%M%S", time.gmtime(created))
    candidate, n = base, 1
    while (folder / f"{candidate}.json").exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def list_snapshots(ctx: CoreContext, project_id: str) -> list[Snapshot]:
    """The project's snapshots, newest first, from their files only (cheap: no git, no uv).
    A damaged snapshot file is skipped (and set aside by ``persist``)."""
    folder = snapshots_dir(ProjectStore(ctx.paths).dirs(project_id))
    out: list[Snapshot] = []
    if not folder.is_dir():
        return out
    for path in folder.glob("*.json"):
        try:
            out.append(_from_dict(persist.read_json(path, KIND, VERSION)))
        except (CorruptFile, FileNotFoundError, KeyError, TypeError, ValueError) as exc:
            log.warning("Snapshot %s skipped: %s", path.name, exc)
    out.sort(key=lambda s: (s.created, s.id), reverse=True)
    return out


def load_snapshot(ctx: CoreContext, project_id: str, snapshot_id: str) -> Snapshot:
    if not snapshot_id or "/" in snapshot_id or "\\" in snapshot_id or ".." in snapshot_id:
        raise NotFound(f"{snapshot_id!r} is not a snapshot id.", "List them with: snapshots NAME")
    path = snapshots_dir(ProjectStore(ctx.paths).dirs(project_id)) / f"{snapshot_id}.json"
    try:
        return _from_dict(persist.read_json(path, KIND, VERSION))
    except FileNotFoundError:
        raise NotFound(
            f"Project '{project_id}' has no snapshot {snapshot_id!r}.",
            f"List its snapshots with: comfymanager snapshots {project_id}",
        ) from None


def take_snapshot(
    ctx: CoreContext,
    project_id: str,
    reason: str,
    *,
    note: str = "",
    report: Reporter = NULL_REPORTER,
    force: bool = False,
    protect: tuple[str, ...] = (),
) -> Snapshot:
    """Record the project's state now; returns the new snapshot, or the newest one when
    nothing changed since it (same content hash; ``force`` writes anyway). The caller holds
    the project's lock when it is about to change the project. Pruning never removes a
    snapshot in ``protect`` (the one a rollback is going to) nor the one an interrupted
    update or rollback must return to."""
    store = ProjectStore(ctx.paths)
    project = store.load(project_id)
    require_managed(project, "a snapshot")
    dirs = store.dirs(project_id)
    payload = capture(ctx, project, dirs)
    from comfymanager.core.lifecycle.pack_list import record_state

    record_state(ctx, project_id)  # "changed since the last snapshot" compares with this moment
    existing = list_snapshots(ctx, project_id)
    same = bool(existing) and existing[0].content_hash == payload["content_hash"]
    if same and not force and not note:  # a note by hand is recorded even for the same state
        report.log(f"Snapshot {existing[0].id} already holds this state")
        return existing[0]
    folder = snapshots_dir(dirs)
    folder.mkdir(parents=True, exist_ok=True)
    created = time.time()
    payload.update(id=_new_id(folder, created), created=created, reason=reason, note=note)
    persist.write_json(folder / f"{payload['id']}.json", KIND, VERSION, payload)
    report.log(f"Snapshot {payload['id']} taken ({reason})")
    prune(ctx, project_id, keep=ctx.settings.snapshots_keep, protect=protect)
    return _from_dict(payload)


def _intent_target(dirs: ProjectDirs) -> str:
    """The snapshot an interrupted update or rollback returns to (``rollback.json``), or ""."""
    try:
        data = persist.read_json(dirs.root / "rollback.json", INTENT_KIND, INTENT_VERSION)
    except (FileNotFoundError, CorruptFile):
        return ""
    return str(data.get("snapshot_id", ""))


def prune(
    ctx: CoreContext, project_id: str, *, keep: int, protect: tuple[str, ...] = ()
) -> list[str]:
    """Remove all but the ``keep`` newest snapshots (at least one is kept), never one in
    ``protect`` or the one ``rollback.json`` names; returns the ids removed."""
    snaps = list_snapshots(ctx, project_id)
    dirs = ProjectStore(ctx.paths).dirs(project_id)
    folder = snapshots_dir(dirs)
    kept = {*protect, _intent_target(dirs)}
    removed: list[str] = []
    for snap in snaps[max(1, keep) :]:
        if snap.id in kept:
            continue
        for name in (f"{snap.id}.json", f"{snap.id}.json.bak"):
            with contextlib.suppress(FileNotFoundError):
                fileops.remove_file(folder / name)
        removed.append(snap.id)
    return removed


def snapshot_size(ctx: CoreContext, project_id: str, snapshot_id: str) -> int:
    """Bytes the snapshot takes on disk (its file and its backup)."""
    folder = snapshots_dir(ProjectStore(ctx.paths).dirs(project_id))
    return sum(
        os.path.getsize(folder / n)
        for n in (f"{snapshot_id}.json", f"{snapshot_id}.json.bak")
        if (folder / n).exists()
    )


def snapshot_before_change(
    ctx: CoreContext, project_id: str, reason: str, report: Reporter = NULL_REPORTER
) -> Snapshot | None:
    """``take_snapshot`` for the call sites of other operations (repair, import): a snapshot
    that cannot be taken (no environment yet, a broken one) is said in the log and the
    operation goes on; only a project that was ever installed is recorded."""
    try:
        project = ProjectStore(ctx.paths).load(project_id)
        if not project.comfyui_commit:
            return None  # a first install: nothing to go back to
        return take_snapshot(ctx, project_id, reason, report=report)
    except ComfyManagerError as exc:
        report.log(f"No snapshot before the {reason}: {exc}")
        log.warning("No snapshot of %s before the %s: %s", project_id, reason, exc)
        return None


def _lock_map(lock: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lock:
        name, sep, rest = line.partition("==")
        if not sep:
            name, _, rest = line.partition(" @ ")
        out[name.strip().lower()] = rest.strip()
    return out


def changes_between(older: Snapshot | None, newer: Snapshot) -> tuple[str, ...]:
    """What changed from ``older`` to ``newer``, one short line each (a history view's "what
    changed" column); from the files alone."""
    if older is None:
        return ("first snapshot",)
    out: list[str] = []
    if older.comfyui_commit != newer.comfyui_commit:
        out.append(f"ComfyUI {older.comfyui_commit[:10]} -> {newer.comfyui_commit[:10]}")
    old_packs = {p.folder: p for p in older.packs}
    new_packs = {p.folder: p for p in newer.packs}
    for folder in sorted(new_packs.keys() - old_packs.keys()):
        out.append(f"pack {new_packs[folder].label} added")
    for folder in sorted(old_packs.keys() - new_packs.keys()):
        out.append(f"pack {folder} removed")
    for folder in sorted(old_packs.keys() & new_packs.keys()):
        a, b = old_packs[folder], new_packs[folder]
        if (a.commit, a.version) != (b.commit, b.version):
            was = a.version or a.commit[:10]
            out.append(f"pack {folder} {was} -> {b.version or b.commit[:10]}")
        if a.enabled != b.enabled:
            out.append(f"pack {folder} {'enabled' if b.enabled else 'disabled'}")
    old_lock, new_lock = _lock_map(older.lock), _lock_map(newer.lock)
    changed = sorted(
        n for n in old_lock.keys() | new_lock.keys() if old_lock.get(n) != new_lock.get(n)
    )
    if changed:
        shown = ", ".join(changed[:5]) + (
            f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        )
        out.append(f"{counted(len(changed), 'package')}: {shown}")
    if older.constraints != newer.constraints:
        out.append("torch constraints")
    if older.settings != newer.settings:
        keys = sorted(
            k
            for k in older.settings.keys() | newer.settings.keys()
            if older.settings.get(k) != newer.settings.get(k)
        )
        out.append("settings: " + ", ".join(keys))
    if older.workflows != newer.workflows:
        out.append("workflows")
    return tuple(out) or ("no change",)
