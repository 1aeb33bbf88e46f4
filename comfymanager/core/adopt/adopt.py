"""Adopt an existing install: the plan (no writes anywhere) and the adoption itself.

``plan`` turns a ``scan`` into what adopting will do; the window shows it before anything
happens. ``adopt`` then either rebuilds (default: a new project pinned to the same ComfyUI commit
and packs, the install's models read where they are through a second section of the project's
``extra_model_paths.yaml``, ``user/`` copied) or registers the folder in place (its own Python and
``main.py``; start/stop/status/logs work, changes need a rebuild). The adopted folder is only ever
read: nothing is moved, copied over, re-linked or updated there. What the adoption decided is kept
in ``adopted.json`` beside ``project.json`` so a repair rewrites the same model sections.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from comfymanager.core import fileops, persist
from comfymanager.core.adopt.scan import ScanResult, scan
from comfymanager.core.context import CoreContext
from comfymanager.core.errors import (
    Cancelled,
    ComfyManagerError,
    Conflict,
    CorruptFile,
    InvalidInput,
    NotFound,
)
from comfymanager.core.install import envs
from comfymanager.core.install.packs import install_pack_requirements
from comfymanager.core.killpoint import kill_point
from comfymanager.core.progress import NULL_REPORTER, CancelToken, Progress, Reporter
from comfymanager.core.projects import (
    STAGES,
    InstallState,
    PackRecord,
    Project,
    ProjectDirs,
    ProjectStore,
    validate_name,
)
from comfymanager.core.settings import TORCH_BACKENDS

log = logging.getLogger(__name__)

REBUILD = "rebuild"
IN_PLACE = "in-place"
MODES = (REBUILD, IN_PLACE)
RECORD = "adopted.json"
RECORD_KIND = "comfymanager.adopted"
RECORD_VERSION = 1
LOCAL_NOTE = "local, not reproducible"


@dataclass(frozen=True)
class PlannedPack:
    folder: str
    action: str  # git | registry | copy | skip
    detail: str
    reproducible: bool


@dataclass(frozen=True)
class AdoptPlan:
    """What ``adopt`` will do, shown before anything happens (``lines`` for a terminal)."""

    scan: ScanResult
    name: str
    mode: str
    comfyui_source: str = ""
    comfyui_ref: str = ""
    torch_backend: str = ""
    packs: tuple[PlannedPack, ...] = ()
    python: str = ""  # a rebuild's Python request ("" = the default)
    model_sections: str = ""
    copy_user: bool = False
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["scan"] = self.scan.to_json()
        return data

    def lines(self) -> list[str]:
        s = self.scan
        commit = s.comfyui_commit[:12] or "unknown"
        out = [
            f"Adopt {s.path} ({s.kind}) as project '{self.name}' ({self.mode})",
            f"  ComfyUI: commit {commit}"
            + (f" on {s.comfyui_branch}" if s.comfyui_branch else "")
            + (f", version {s.comfyui_version}" if s.comfyui_version else "")
            + (f", origin {s.comfyui_origin}" if s.comfyui_origin else ""),
            f"  Python: {s.python_version or 'unknown'}"
            + (f" ({s.python_exe})" if s.python_exe else "")
            + f"; torch: {s.torch_version or 'none found'}",
        ]
        if self.mode == REBUILD:
            out.append(
                f"  New project: ComfyUI from {self.comfyui_source or 'the settings source'} at "
                f"{self.comfyui_ref or 'the default version'}, torch backend {self.torch_backend}"
                + (f", Python {self.python} (as the install)" if self.python else "")
            )
        else:
            out.append("  Runs in place with its own Python; update/repair/rollback need a rebuild")
        out.append(f"  Packs: {len(self.packs) or 'none'}")
        out += [f"    {p.folder}: {p.action} {p.detail}".rstrip() for p in self.packs]
        for d in s.models_dirs:
            out.append(f"  Models read where they are: {d} ({s.model_files} files)")
        out += [f"  Model paths from: {y}" for y in s.extra_model_paths]
        if s.user_dir:
            what = f"{len(s.workflows)} workflows" + (", settings" if s.has_settings else "")
            what += ", database" if s.has_database else ""
            verb = "copied into the project" if self.copy_user else "used in place"
            out.append(f"  User data ({what}): {verb}")
        if s.launch_args:
            args = " ".join(s.launch_args)
            out.append(f"  Launch arguments ({s.launch_script or 'scan'}): {args}")
        out += [f"  ! {w}" for w in self.warnings]
        out.append("  The folder is only read: nothing in it is changed, moved or updated.")
        return out


@dataclass(frozen=True)
class AdoptResult:
    plan: AdoptPlan
    project: str
    dry_run: bool
    seconds: float = 0.0
    copied_packs: tuple[str, ...] = ()


# ---------------------------------------------------------------------------- planning
def backend_for(variant: str, has_env: bool, default: str) -> str:
    """The torch backend that matches the scanned torch build (``+cu128`` -> ``cu128``)."""
    if variant == "none":
        return "none" if has_env else default
    if variant == "":
        return "pypi"
    if variant in TORCH_BACKENDS:
        return variant
    if variant.startswith("rocm"):
        return "rocm"
    return default


def python_request(scanned: str) -> str:
    """The Python a rebuild asks uv for: the install's minor version when it differs from the
    one new projects get anyway ("" = the default)."""
    import sys

    want = ".".join(scanned.split(".")[:2])
    if not re.match(r"^3\.\d+$", want):
        return ""
    default = envs.default_python()
    running = f"{sys.version_info[0]}.{sys.version_info[1]}"
    have = default if re.match(r"^3\.\d+$", default) else running
    return "" if want == have else want


def default_name(ctx: CoreContext, path: str) -> str:
    base = re.sub(r"[^A-Za-z0-9._ -]+", "-", Path(path).name).strip(" .-_") or "adopted"
    base = base[:50]
    store = ProjectStore(ctx.paths)
    candidate = base
    for i in range(2, 100):
        try:
            if not store.dirs(candidate).root.exists():
                return candidate
        except InvalidInput:
            return "adopted"
        candidate = f"{base}-{i}"
    return candidate


def _q(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid YAML double-quoted scalar


def _rebased_yaml(yaml_file: Path, prefix: str) -> list[str]:
    """The sections of an install's extra_model_paths.yaml, renamed, with absolute base paths and
    without ``is_default`` (the shared store stays the default)."""
    try:
        with open(yaml_file, encoding="utf-8", errors="replace") as fh:
            text = fh.read(1_000_000)
    except OSError:
        return []
    out: list[str] = []
    has_base = True
    section_at = 0
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        header = re.match(r"^([A-Za-z0-9_.-]+):\s*$", line)
        if header:
            if not has_base:
                out.insert(section_at + 1, f"  base_path: {_q(str(yaml_file.parent))}")
            out.append(f"{prefix}{header.group(1)}:")
            section_at, has_base = len(out) - 1, False
            continue
        if not out:
            continue
        m = re.match(r"^\s+base_path:\s*(.*)$", line)
        if m:
            value = m.group(1).strip()
            if value[:1] in ("'", '"'):
                value = value[1:].split(value[0], 1)[0]  # a quoted path, up to its quote
            else:
                value = value.split(" #", 1)[0].strip()  # a plain path and maybe a comment
            base = Path(value).expanduser()
            base = base if base.is_absolute() else yaml_file.parent / base
            base = Path(os.path.normpath(base))
            out.append(f"  base_path: {_q(str(base))}")
            has_base = True
        elif re.match(r"^\s+is_default:", line):
            continue
        else:
            out.append(line)
    if out and not has_base:
        out.insert(section_at + 1, f"  base_path: {_q(str(yaml_file.parent))}")
    return out


def model_sections(s: ScanResult) -> str:
    """The ``extra_model_paths.yaml`` sections that read the install's models where they are."""
    lines: list[str] = []
    for i, folder in enumerate(s.models_dirs):
        root = Path(folder)
        lines.append(f"adopted_models{'' if i == 0 else f'_{i + 1}'}:")
        lines.append(f"  base_path: {_q(str(root))}")
        try:
            subs = sorted(e.name for e in os.scandir(root) if e.is_dir(follow_symlinks=False))
        except OSError:
            subs = []
        lines += [f"  {name}: {_q(name)}" for name in subs if re.match(r"^[A-Za-z0-9_.-]+$", name)]
    for i, yaml_file in enumerate(s.extra_model_paths):
        lines += _rebased_yaml(Path(yaml_file), f"adopted_{i + 1}_")
    if not lines:
        return ""
    head = "# Added by comfymanager when adopting: the install's own models, read where they are."
    return "\n".join(["", head, *lines]) + "\n"


def plan(
    ctx: CoreContext,
    path: str | Path,
    name: str = "",
    mode: str = REBUILD,
    *,
    torch_backend: str = "",
    python: str | None = None,
    desktop_config: list[Path] | None = None,
) -> AdoptPlan:
    """Scan ``path`` and decide what adopting it does; writes nothing anywhere."""
    from comfymanager.core.install.install import ProjectSpec, validate_spec

    if mode not in MODES:
        raise InvalidInput(f"Unknown adopt mode {mode!r}.", f"Use one of: {', '.join(MODES)}.")
    s = scan(path, desktop_config=desktop_config)
    name = validate_name(name) if name else default_name(ctx, s.path)
    ProjectStore(ctx.paths).check_free(name)
    warnings = list(s.warnings)
    backend = torch_backend or backend_for(
        s.torch_variant, bool(s.venv), ctx.settings.default_torch_backend
    )
    if mode == IN_PLACE:
        if not s.comfyui_dir:
            raise InvalidInput(
                f"{s.path} is the desktop app's base folder: its ComfyUI ships inside the app, "
                "so it cannot run in place here.",
                "Adopt it as a rebuild (the default): the models stay where they are.",
            )
        if not s.python_exe:
            raise InvalidInput(
                f"{s.path} has no Python environment (no venv, .venv or python_embeded).",
                "Adopt it as a rebuild (the default), which builds a new environment.",
            )
        for other in ProjectStore(ctx.paths).list()[0]:
            if other.in_place and Path(other.external_root) == Path(s.comfyui_dir):
                raise Conflict(
                    f"{s.comfyui_dir} is already adopted in place as project '{other.id}'.",
                    f"Use '{other.id}', or adopt it as a rebuild (a separate copy).",
                )
        return AdoptPlan(
            s, name, mode, s.comfyui_origin, s.comfyui_commit, backend, warnings=tuple(warnings)
        )
    ref = s.comfyui_commit or (f"v{s.comfyui_version}" if s.comfyui_version else "")
    if s.comfyui_dir and s.comfyui_commit and not s.comfyui_origin:
        warnings.append(
            "ComfyUI has no origin remote: the rebuild fetches commit "
            f"{s.comfyui_commit[:12]} from the settings' source, and fails if it is not there."
        )
    spec = ProjectSpec(
        name=name,
        comfyui_source=s.comfyui_origin,
        comfyui_ref=ref,
        torch_backend=backend,
        launch_args=s.launch_args,
        python=python_request(s.python_version) if python is None else python,
    )
    try:
        project = validate_spec(ctx, spec)  # checks the source, the backend, the name
    except NotFound:
        if not s.comfyui_origin:
            raise
        warnings.append(
            f"ComfyUI's origin {s.comfyui_origin} does not exist any more: the rebuild fetches "
            "the same commit from the settings' source."
        )
        project = validate_spec(ctx, dataclasses.replace(spec, comfyui_source=""))
    packs: list[PlannedPack] = []
    for p in s.packs:
        if not p.enabled:
            packs.append(PlannedPack(p.folder, "skip", "(disabled in the install)", False))
        elif p.kind == "link":
            packs.append(PlannedPack(p.folder, "skip", f"({p.note})", False))
        elif p.kind == "git" and p.reproducible:
            detail = f"{p.origin} @ {p.commit[:12]}" + (f" ({p.note})" if p.note else "")
            packs.append(PlannedPack(p.folder, "git", detail, True))
            if p.note:
                warnings.append(f"Pack {p.folder}: {p.note}; the edits stay in the original.")
        elif p.kind == "registry":
            packs.append(PlannedPack(p.folder, "registry", f"{p.registry_id} {p.version}", True))
        else:
            packs.append(PlannedPack(p.folder, "copy", f"({LOCAL_NOTE})", False))
    return AdoptPlan(
        s,
        name,
        mode,
        project.comfyui_source,
        project.comfyui_ref,
        backend,
        tuple(packs),
        project.python,
        model_sections(s),
        bool(s.user_dir),
        tuple(warnings),
    )


# ---------------------------------------------------------------------------- the record
def write_record(dirs: ProjectDirs, p: AdoptPlan, copied: tuple[str, ...] = ()) -> None:
    payload = {
        "source": p.scan.path,
        "install_kind": p.scan.kind,
        "mode": p.mode,
        "torch_backend": p.torch_backend,
        "comfyui_dir": p.scan.comfyui_dir,
        "comfyui_commit": p.scan.comfyui_commit,
        "model_sections": p.model_sections,
        "local_packs": list(copied),
        "user_dir": p.scan.user_dir if p.copy_user else "",
        "user_copied": False,
        "adopted_at": time.time(),
    }
    persist.write_json(dirs.root / RECORD, RECORD_KIND, RECORD_VERSION, payload)


def read_record(dirs: ProjectDirs) -> dict[str, object] | None:
    """The adoption record of a project, or None for a project that was not adopted."""
    try:
        return persist.read_json(dirs.root / RECORD, RECORD_KIND, RECORD_VERSION)
    except FileNotFoundError:
        return None
    except CorruptFile as exc:
        log.warning("%s: %s", dirs.root / RECORD, exc)
        return None


def append_adopted_model_paths(dirs: ProjectDirs) -> Path:
    """Add the adopted install's model sections after the store's (which stays the default)."""
    record = read_record(dirs)
    sections = str(record.get("model_sections", "")) if record else ""
    target = dirs.extra_model_paths
    if sections and target.exists():
        text = target.read_text(encoding="utf-8")
        if sections not in text:
            with persist.atomic_open(target, keep_backup=False) as fh:
                fh.write(text.rstrip("\n") + "\n" + sections)
    return target


# ---------------------------------------------------------------------------- copying
def _copy_tree(src: Path, dst: Path, cancel: CancelToken, *, overwrite: bool = True) -> int:
    """Copy ``src`` into ``dst`` without following or copying links; returns files copied.
    With ``overwrite`` False a file already in ``dst`` is kept (a resumed copy)."""
    count = 0
    for dirpath, dirnames, filenames in os.walk(src):
        cancel.check()
        here = Path(dirpath)
        rel = here.relative_to(src)
        dirnames[:] = [d for d in dirnames if d != "__pycache__" and not (here / d).is_symlink()]
        (dst / rel).mkdir(parents=True, exist_ok=True)
        for name in filenames:
            source = here / name
            target = dst / rel / name
            if source.is_symlink() or not source.is_file():
                continue
            if not overwrite and os.path.lexists(target):
                continue
            tmp = target.with_name(f".{name}.adopt.tmp")
            shutil.copy2(source, tmp, follow_symlinks=False)
            fileops.replace(tmp, target)  # never half a file under the real name
            count += 1
            kill_point("adopt-copy-file")
    return count


# ---------------------------------------------------------------------------- adopt
def adopt(
    ctx: CoreContext,
    path: str | Path,
    name: str = "",
    mode: str = REBUILD,
    *,
    dry_run: bool = False,
    torch_backend: str = "",
    python: str | None = None,
    desktop_config: list[Path] | None = None,
    report: Reporter = NULL_REPORTER,
    cancel: CancelToken | None = None,
) -> AdoptResult:
    """Adopt the install at ``path`` as project ``name`` (see the module docstring).

    ``python``: the rebuild's Python request (None: the install's minor version when it differs
    from the default; "": the default)."""
    cancel = cancel or CancelToken()
    started = time.monotonic()
    p = plan(
        ctx,
        path,
        name,
        mode,
        torch_backend=torch_backend,
        python=python,
        desktop_config=desktop_config,
    )
    if dry_run:
        return AdoptResult(p, p.name, True)
    if p.mode == IN_PLACE:
        return _adopt_in_place(ctx, p, started)
    return _adopt_rebuild(ctx, p, started, report, cancel)


def in_place_project(name: str, s: ScanResult, backend: str) -> Project:
    """The project record of an install run in place (ready at once: nothing to install)."""
    from comfymanager.core.run.launch import supported_flags

    comfyui = Path(s.comfyui_dir)
    return Project(
        id=name,
        comfyui_source=s.comfyui_origin,
        comfyui_ref=s.comfyui_commit,
        comfyui_commit=s.comfyui_commit,
        torch_backend=backend,
        torch_backend_resolved=backend,
        torch_version=s.torch_version,
        python_version=s.python_version,
        launch_args=list(s.launch_args),
        install=InstallState(status="ready", stages_done=list(STAGES), updated_at=time.time()),
        supported_flags=supported_flags(comfyui),
        workflows=list(s.workflows),
        in_place=True,
        external_root=str(comfyui),
    )


def _adopt_in_place(ctx: CoreContext, p: AdoptPlan, started: float) -> AdoptResult:
    store = ProjectStore(ctx.paths)
    store.create(in_place_project(p.name, p.scan, p.torch_backend))
    write_record(store.dirs(p.name), p)
    log.info("adopted %s in place as %s", p.scan.path, p.name)
    return AdoptResult(p, p.name, False, time.monotonic() - started)


def _adopt_rebuild(
    ctx: CoreContext, p: AdoptPlan, started: float, report: Reporter, cancel: CancelToken
) -> AdoptResult:
    from comfymanager.core.install import install

    s = p.scan
    project = Project(
        id=p.name,
        comfyui_source=p.comfyui_source,
        comfyui_ref=p.comfyui_ref,
        torch_backend=p.torch_backend,
        launch_args=list(s.launch_args),
        workflows=list(s.workflows),
        python=p.python,
    )
    by_folder = {sp.folder: sp for sp in s.packs}
    for pp in p.packs:
        sp = by_folder[pp.folder]
        if pp.action == "git":
            project.packs.append(PackRecord(url=sp.origin, folder=sp.folder, commit=sp.commit))
        elif pp.action == "registry":
            project.packs.append(
                PackRecord(url="", folder=sp.folder, registry_id=sp.registry_id, version=sp.version)
            )
    store = ProjectStore(ctx.paths)
    store.create(project)
    dirs = store.dirs(p.name)
    local = tuple(pp.folder for pp in p.packs if pp.action == "copy")
    # the record first: the install's packs stage copies user/ and the local packs from it
    # (``complete_adoption``), its finish stage adds the model sections; a repair resumes both
    write_record(dirs, p, local)
    install.install_project(ctx, p.name, report=report, cancel=cancel)
    log.info("adopted %s as %s (rebuild)", s.path, p.name)
    return AdoptResult(p, p.name, False, time.monotonic() - started, local)


def complete_adoption(
    dirs: ProjectDirs, uv: envs.UvRunner, report: Reporter, cancel: CancelToken
) -> None:
    """The adoption's own part of an install (its packs stage), for an adopted project only.

    ``user/`` is copied once (a resumed copy keeps what is already there and never overwrites
    what the user changed in the project since), then the local-only packs are placed.
    """
    record = read_record(dirs)
    if not record:
        return
    user_dir = str(record.get("user_dir") or "")
    if user_dir and not record.get("user_copied"):
        if Path(user_dir).is_dir():
            report.progress(Progress(stage="packs", message="Copying user data (workflows...)"))
            copied = _copy_tree(Path(user_dir), dirs.user, cancel, overwrite=False)
            report.log(f"Copied {copied} files of {user_dir} into the project")
        else:
            report.log(f"The adopted user folder {user_dir} is gone: nothing copied")
        persist.write_json(
            dirs.root / RECORD, RECORD_KIND, RECORD_VERSION, {**record, "user_copied": True}
        )
    install_local_packs(dirs, uv, report, cancel)


def install_local_packs(
    dirs: ProjectDirs, uv: envs.UvRunner, report: Reporter, cancel: CancelToken
) -> tuple[str, ...]:
    """Put an adopted install's local-only packs into the project (install's packs stage).

    Idempotent: a pack already there is kept; its requirements go through uv (a no-op when
    satisfied). Copies go to a ``.disabled`` name first, then are renamed, so a kill never leaves
    half a pack that ComfyUI would load. When the adopted folder is gone, what is here stays.
    """
    record = read_record(dirs)
    if not record:
        return ()
    folders = [str(f) for f in record.get("local_packs", []) or []]  # type: ignore[attr-defined]
    source = Path(str(record.get("comfyui_dir") or record.get("source") or "")) / "custom_nodes"
    placed: list[str] = []
    for name in folders:
        cancel.check()
        if name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
            report.log(f"Pack {name!r}: not a folder name; skipped")
            continue
        try:
            if _place_local_pack(dirs, uv, name, source / name, report, cancel):
                placed.append(name)
        except Cancelled:
            raise
        except (ComfyManagerError, OSError) as exc:  # one pack never stops the others
            report.log(f"Pack {name} ({LOCAL_NOTE}) failed: {exc}")
    return tuple(placed)


def _place_local_pack(
    dirs: ProjectDirs,
    uv: envs.UvRunner,
    name: str,
    src: Path,
    report: Reporter,
    cancel: CancelToken,
) -> bool:
    """Copy one local pack in (unless there) and install its requirements; False: no source."""
    target = dirs.custom_nodes / name
    if not os.path.lexists(target):
        if not (src.exists() and not src.is_symlink()):
            report.log(f"Pack {name}: the adopted folder no longer has it; not restored")
            return False
        partial = target.with_name(name + ".adopt.disabled")
        if os.path.lexists(partial):  # what a killed copy left
            if partial.is_dir() and not partial.is_symlink():
                fileops.remove_tree(partial)
            else:
                fileops.remove_file(partial)
        dirs.custom_nodes.mkdir(parents=True, exist_ok=True)
        if src.is_file():
            shutil.copy2(src, partial, follow_symlinks=False)
        else:
            _copy_tree(src, partial, cancel)
        fileops.rename(partial, target)
        report.log(f"Pack {name}: copied from {src} ({LOCAL_NOTE})")
    install_pack_requirements(target, dirs, uv, report=report, cancel=cancel)
    return True
