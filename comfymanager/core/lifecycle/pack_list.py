"""What packs a project has, read from ``custom_nodes/`` itself and reconciled with
``project.json`` (no subprocess: a Packs tab can call ``list_packs`` often).

A folder that ``project.json`` does not know (ComfyUI-Manager added it from inside ComfyUI) is
listed as added outside comfymanager with its git origin and commit (read from ``.git``), its
registry marker or its ``pyproject.toml`` version; a record whose folder is gone is listed as
missing. Disabled packs live in ``custom_nodes/.disabled/`` as ComfyUI-Manager keeps them
(``<name>`` or ``<name>@<version>``); the older ``<name>.disabled`` beside the others is
recognised too. Loaded OK or not comes from the last verification (``node-definitions.json``,
``failed_packs``); a pack changed since then is "unknown".

``packs_fingerprint`` is what a pack change alters; it is recorded at each snapshot and pack
operation so ``changed_since_last_snapshot`` tells ``start`` that ComfyUI-Manager changed the
project while it ran.
"""

from __future__ import annotations

import configparser
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

from comfymanager.core import persist
from comfymanager.core.context import CoreContext
from comfymanager.core.install import packs as pack_install
from comfymanager.core.projects import PackRecord, ProjectDirs, ProjectStore

log = logging.getLogger(__name__)

DISABLED_DIR = ".disabled"
STATE_FILE = "packs-state.json"
STATE_KIND = "comfymanager.packs-state"
STATE_VERSION = 1
HEX = re.compile(r"^[0-9a-f]{7,40}$")
_KEY_LINE = re.compile(r"""^(name|version)\s*=\s*["']([^"']+)["']""")
SHIPPED_FILES = frozenset({"websocket_image_save.py"})  # in ComfyUI's own custom_nodes/
CNR_TRACKING = ".tracking"  # ComfyUI-Manager's mark on a pack it installed from the registry


@dataclass(frozen=True)
class PackInfo:
    """One row of a project's pack list.

    ``state``: ok | failed (``error`` holds its import error from the last verification, or
    its install error) | missing (recorded, folder gone) | disabled | unknown (not verified
    since it changed). ``origin``: project (in project.json) | outside (added outside
    comfymanager, e.g. by ComfyUI-Manager). ``kind``: git | registry | local.
    """

    name: str
    source: str
    kind: str
    version: str
    commit: str
    enabled: bool
    state: str
    error: str
    origin: str
    path: str


# --- reading custom_nodes --------------------------------------------------------------------


def _git_dir(folder: Path) -> Path | None:
    dot = folder / ".git"
    if dot.is_dir():
        return dot
    if dot.is_file():  # a worktree or submodule: "gitdir: <path>"
        text = dot.read_text(encoding="utf-8", errors="replace").strip()
        if text.startswith("gitdir:"):
            target = Path(text[7:].strip())
            return target if target.is_absolute() else (folder / target).resolve()
    return None


def read_git_head(folder: Path) -> str:
    """The commit checked out in ``folder``, read from ``.git`` without running git ("")."""
    gd = _git_dir(folder)
    if gd is None:
        return ""
    try:
        head = (gd / "HEAD").read_text(encoding="utf-8").strip()
        if not head.startswith("ref:"):
            return head if HEX.match(head) else ""
        ref = head[4:].strip()
        homes = [gd]
        common = gd / "commondir"  # a linked worktree keeps its refs in the main .git
        if common.is_file():
            homes.append((gd / common.read_text(encoding="utf-8").strip()).resolve())
        for home in homes:
            loose = home / ref
            if loose.is_file():
                return loose.read_text(encoding="utf-8").strip()
            packed = home / "packed-refs"
            if packed.is_file():
                for line in packed.read_text(encoding="utf-8").splitlines():
                    parts = line.split()
                    if len(parts) == 2 and parts[1] == ref:
                        return parts[0]
    except OSError:
        return ""
    return ""


def read_git_origin(folder: Path) -> str:
    gd = _git_dir(folder)
    if gd is None:
        return ""
    parser = configparser.ConfigParser(strict=False, interpolation=None, allow_no_value=True)
    try:
        parser.read(gd / "config", encoding="utf-8")
    except (configparser.Error, OSError):
        return ""
    return parser.get('remote "origin"', "url", fallback="").strip()


def read_pyproject(folder: Path, key: str = "version") -> str:
    """``[project] <key>`` of ``pyproject.toml`` (a plain read: Python 3.10 has no tomllib)."""
    try:
        text = (folder / "pyproject.toml").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    section = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped
            continue
        m = _KEY_LINE.match(stripped)
        if section == "[project]" and m and m.group(1) == key:
            return m.group(2)
    return ""


def read_pyproject_version(folder: Path) -> str:
    return read_pyproject(folder, "version")


@dataclass(frozen=True)
class OnDisk:
    name: str
    path: Path
    enabled: bool


def _is_file_pack(entry: Path) -> bool:
    """A single-file pack (``custom_nodes/foo.py``), not one ComfyUI ships there itself."""
    return entry.is_file() and entry.name.endswith(".py") and entry.name not in SHIPPED_FILES


def scan(custom_nodes: Path) -> dict[str, OnDisk]:
    """Packs in ``custom_nodes`` (enabled), ``.disabled/`` and ``*.disabled`` (disabled): each
    folder, and each single ``.py`` file (named with its ``.py``); an enabled copy wins over a
    disabled one of the same name."""
    found: dict[str, OnDisk] = {}
    disabled = custom_nodes / DISABLED_DIR
    if disabled.is_dir():
        for entry in sorted(disabled.iterdir()):
            if entry.name.startswith(".") or not (entry.is_dir() or _is_file_pack(entry)):
                continue
            name = entry.name if entry.is_file() else entry.name.split("@", 1)[0]
            found[name] = OnDisk(name, entry, False)
    if custom_nodes.is_dir():
        for entry in sorted(custom_nodes.iterdir()):
            if entry.name.startswith(".") or entry.name == "__pycache__":
                continue
            if entry.name.endswith((".partial", ".partial.disabled", ".old.disabled")):
                continue  # what an interrupted install left (packs.py)
            if entry.name.endswith(".disabled"):
                name = entry.name.removesuffix(".disabled")
                if entry.is_dir() or name.endswith(".py"):
                    found.setdefault(name, OnDisk(name, entry, False))
            elif entry.is_dir() or _is_file_pack(entry):
                found[entry.name] = OnDisk(entry.name, entry, True)
    return found


def _failed_packs(dirs: ProjectDirs) -> dict[str, str] | None:
    """The last verification's import errors per pack folder; None when never verified."""
    try:
        data = json.loads((dirs.root / "node-definitions.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    failed = data.get("failed_packs") if isinstance(data, dict) else None
    return {str(k): str(v) for k, v in failed.items()} if isinstance(failed, dict) else {}


def describe(path: Path) -> tuple[str, str, str, str]:
    """(kind, source, version, commit) of a pack folder on disk."""
    zipped = pack_install.installed_zip(path)
    if zipped is not None:
        return "registry", zipped[0], zipped[1], ""
    commit = read_git_head(path)
    if commit:
        return "git", read_git_origin(path), "", commit
    version = read_pyproject_version(path)
    if (path / CNR_TRACKING).is_file() and read_pyproject(path, "name"):
        return "registry", read_pyproject(path, "name"), version, ""
    return "local", str(path), version, ""


def _record_source(rec: PackRecord) -> tuple[str, str]:
    if rec.url:
        return "git", rec.url
    if rec.registry_id:
        return "registry", rec.registry_id
    return "local", ""


def list_packs(ctx: CoreContext, project_id: str) -> list[PackInfo]:
    """Every pack of the project, reconciled between ``project.json`` and ``custom_nodes/``."""
    store = ProjectStore(ctx.paths)
    project = store.load(project_id)
    dirs = store.dirs(project_id)
    disk = scan(dirs.custom_nodes)
    failed = _failed_packs(dirs)
    defs_time = _mtime(dirs.root / "node-definitions.json")
    rows: list[PackInfo] = []
    recorded: set[str] = set()
    for rec in project.packs:
        name = rec.folder or pack_install.folder_for_url(rec.url)
        recorded.add(name)
        kind, source = _record_source(rec)
        seen = disk.get(name)
        if seen is None:
            rows.append(
                PackInfo(
                    name,
                    source,
                    kind,
                    rec.version,
                    rec.commit,
                    False,
                    "missing",
                    rec.error or "its folder is not in custom_nodes",
                    "project",
                    "",
                )
            )
            continue
        dkind, dsource, dversion, dcommit = describe(seen.path)
        state, error = _state(name, seen, failed, defs_time, rec)
        rows.append(
            PackInfo(
                name,
                source or dsource,
                kind if source else dkind,
                dversion or rec.version,
                dcommit or rec.commit,
                seen.enabled,
                state,
                error,
                "project",
                str(seen.path),
            )
        )
    for name, seen in sorted(disk.items(), key=lambda kv: kv[0].lower()):
        if name in recorded:
            continue
        kind, source, version, commit = describe(seen.path)
        state, error = _state(name, seen, failed, defs_time, None)
        rows.append(
            PackInfo(
                name,
                source,
                kind,
                version,
                commit,
                seen.enabled,
                state,
                error,
                "outside",
                str(seen.path),
            )
        )
    return rows


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _state(
    name: str,
    seen: OnDisk,
    failed: dict[str, str] | None,
    defs_time: float,
    rec: PackRecord | None,
) -> tuple[str, str]:
    if rec is not None and rec.status == "failed":
        return "failed", rec.error
    if not seen.enabled:
        return "disabled", ""
    key = name.removesuffix(".py")  # the verification names a file pack without it
    if failed is not None and key in failed:
        return "failed", failed[key]
    if failed is None or _mtime(seen.path) > defs_time:
        return "unknown", ""
    return "ok", ""


# --- snapshots and the state seen at the last one -----------------------------------------------


def _snapshot(ctx: CoreContext, project_id: str, reason: str, note: str = "") -> None:
    """A snapshot before a change (the caller holds the project lock); the packs' state is
    recorded with it, so ``changed_since_last_snapshot`` compares against this moment."""
    from comfymanager.core.lifecycle import snapshots

    snapshots.take_snapshot(ctx, project_id, reason, note=note)
    record_state(ctx, project_id)


def packs_fingerprint(dirs: ProjectDirs) -> list[list[str]]:
    """What a pack change alters, read from disk: folder, enabled, commit or version."""
    rows = []
    for name, seen in sorted(scan(dirs.custom_nodes).items()):
        _, source, version, commit = describe(seen.path)
        rows.append([name, "on" if seen.enabled else "off", commit or version, source])
    return rows


def record_state(ctx: CoreContext, project_id: str) -> None:
    dirs = ProjectStore(ctx.paths).dirs(project_id)
    persist.write_json(
        dirs.root / STATE_FILE,
        STATE_KIND,
        STATE_VERSION,
        {"packs": packs_fingerprint(dirs), "recorded_at": time.time()},
    )


def changed_since_last_snapshot(ctx: CoreContext, project_id: str) -> bool:
    """Did ``custom_nodes`` change since the last snapshot or pack operation (ComfyUI-Manager
    installing, removing or switching packs from inside ComfyUI)? For ``start`` to take a
    snapshot first. A project never recorded counts as unchanged (nothing to compare)."""
    dirs = ProjectStore(ctx.paths).dirs(project_id)
    try:
        data = persist.read_json(dirs.root / STATE_FILE, STATE_KIND, STATE_VERSION)
    except FileNotFoundError:
        return False
    except Exception:  # a damaged record: say changed, so a snapshot is taken and rewrites it
        return True
    return bool(data.get("packs") != packs_fingerprint(dirs))


def snapshot_if_changed(ctx: CoreContext, project_id: str) -> bool:
    """For ``start``: a snapshot when the packs changed while the project ran; True if taken.
    A project with no record yet (made before this existed) gets its first record instead, so
    what ComfyUI-Manager changes during this run is seen at the next start."""
    dirs = ProjectStore(ctx.paths).dirs(project_id)
    if not (dirs.root / STATE_FILE).exists():
        record_state(ctx, project_id)
        return False
    if changed_since_last_snapshot(ctx, project_id):
        _snapshot(
            ctx,
            project_id,
            "changed while running",
            "custom_nodes changed outside comfymanager (ComfyUI-Manager?)",
        )
        return True
    return False
