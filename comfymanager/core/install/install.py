"""Create, install, repair and delete projects: the stages in order, each idempotent.

``install_project`` runs clone -> venv -> torch -> requirements -> packs -> finish. Each stage is
recorded in ``project.json`` when done, but every stage also checks the real state (a valid
checkout at the right commit, a venv with our marker, uv's own no-op when requirements are
satisfied), so re-running after a crash, a cancel or a failure continues from what is valid. A
failed install keeps the project, its log and the error. A per-project file lock makes sure two
jobs (window and command line included) never change one project at once.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from comfymanager.core import fileops
from comfymanager.core.context import CoreContext
from comfymanager.core.errors import Cancelled, ComfyManagerError, Conflict, ExternalToolError
from comfymanager.core.install import envs, hardware, packs, sources
from comfymanager.core.killpoint import kill_point
from comfymanager.core.paths import folder_is_case_insensitive, folder_key
from comfymanager.core.progress import NULL_REPORTER, CancelToken, Progress, Reporter
from comfymanager.core.projects import (
    STAGES,
    DamagedProject,
    InstallState,
    PackRecord,
    Project,
    ProjectDirs,
    ProjectStore,
    _project_from_dict,
    recover_saved,
)
from comfymanager.core.run import runs
from comfymanager.core.settings import TORCH_BACKENDS, backends_for

log = logging.getLogger(__name__)

STAGE_LABELS = {
    "clone": "Getting ComfyUI",
    "venv": "Creating the Python environment",
    "torch": "Installing torch",
    "requirements": "Installing ComfyUI's requirements",
    "packs": "Installing custom node packs",
    "finish": "Finishing",
}


@dataclass(frozen=True)
class ProjectSpec:
    """What the user asked for in "New project"."""

    name: str
    comfyui_source: str = ""
    comfyui_ref: str = ""  # "" = latest release (or the default branch when there is none)
    torch_backend: str = ""  # "" = the settings' default
    port: int | None = None
    listen_network: bool = False
    launch_args: tuple[str, ...] = ()
    python: str = ""


@dataclass(frozen=True)
class InstallResult:
    project: str
    ref: str
    commit: str
    python_version: str
    torch_backend: str
    torch_version: str
    seconds: float


# one lock per project, shared with start/stop (re-entrant: delete stops under it)
project_lock = runs.project_lock


def validate_spec(ctx: CoreContext, spec: ProjectSpec) -> Project:
    """Check everything about a new project before anything is written; returns the Project."""
    from comfymanager.core.projects import validate_name

    name = validate_name(spec.name)
    backend = spec.torch_backend or ctx.settings.default_torch_backend
    if backend not in TORCH_BACKENDS:
        raise ComfyManagerError(
            f"Unknown torch backend {backend!r}.", f"Choose one of: {', '.join(TORCH_BACKENDS)}."
        )
    if backend not in backends_for():
        raise ComfyManagerError(
            f"The torch backend {backend!r} has no wheels for this system.",
            f"Choose one of: {', '.join(backends_for())}.",
        )
    if spec.port is not None and not 1024 <= spec.port <= 65535:
        raise ComfyManagerError(
            f"Port {spec.port} is out of range.",
            "Use a port between 1024 and 65535, or leave it automatic.",
        )
    source = sources.validate_source(spec.comfyui_source or ctx.settings.comfyui_source)
    ProjectStore(ctx.paths).check_free(name)  # names a damaged folder as such
    return Project(
        id=name,
        comfyui_source=source,
        comfyui_ref=spec.comfyui_ref or ctx.settings.default_comfyui_ref,
        torch_backend=backend,
        port=spec.port,
        listen_network=spec.listen_network,
        launch_args=list(spec.launch_args),
        python=spec.python,
    )


def create_project(
    ctx: CoreContext, spec: ProjectSpec, *, report: Reporter, cancel: CancelToken
) -> InstallResult:
    project = validate_spec(ctx, spec)
    ProjectStore(ctx.paths).create(project)
    return install_project(ctx, project.id, report=report, cancel=cancel)


def _log_to_file(dirs: ProjectDirs, report: Reporter) -> tuple[Reporter, object]:
    dirs.logs.mkdir(parents=True, exist_ok=True)
    fh = open(dirs.install_log, "a", encoding="utf-8")  # noqa: SIM115 - closed by caller
    fh.write(f"\n=== install started {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n")

    def line(text: str) -> None:
        fh.write(text + "\n")
        report.log(text)

    return Reporter(progress=report.progress, log=line), fh


def install_project(
    ctx: CoreContext, project_id: str, *, report: Reporter, cancel: CancelToken, force: bool = False
) -> InstallResult:
    """Bring the project's install to "ready"; resumes, and with ``force`` redoes every stage."""
    store = ProjectStore(ctx.paths)
    with project_lock(ctx, project_id):
        try:
            project = store.load(project_id)
        except DamagedProject as exc:
            from comfymanager.core.adopt.guard import restore_in_place

            restored = restore_in_place(store, exc, report)  # an in-place adoption stays one
            if restored is not None:
                return restored
            project = rebuild_project(ctx, store, exc, report)
        from comfymanager.core.adopt.guard import require_managed

        require_managed(project, "repair")
        st = runs.status(ctx, project, probe_http=False)
        if st.state in ("running", "starting"):
            raise Conflict(f"Project '{project_id}' is running.", "Stop it before repairing it.")
        dirs = store.dirs(project_id)
        rep, fh = _log_to_file(dirs, report)
        started = time.monotonic()
        project.install.status = "installing"
        project.install.error = project.install.error_fix = ""
        if force:
            project.install.stages_done = []
        store.save(project)
        try:
            from comfymanager.core.lifecycle.rollback import before_repair

            if before_repair(ctx, project_id, force, rep, cancel):  # a killed update/rollback
                project = store.load(project_id)
            _run_stages(ctx, store, project, dirs, rep, cancel, force)
        except BaseException as exc:
            project.install.status = "cancelled" if isinstance(exc, Cancelled) else "failed"
            if isinstance(exc, ComfyManagerError):
                project.install.error, project.install.error_fix = exc.message, exc.fix or ""
                details = getattr(exc, "details", "")
                rep.log(f"ERROR: {exc}" + (f"\n{details}" if details else ""))
            else:
                project.install.error = f"Unexpected error: {exc}"
                rep.log(f"ERROR: {exc!r}")
            project.install.updated_at = time.time()
            store.save(project)
            raise
        finally:
            fh.close()  # type: ignore[attr-defined]
        project.install.status = "ready"
        project.install.updated_at = time.time()
        store.save(project)
        return InstallResult(
            project.id,
            project.comfyui_ref,
            project.comfyui_commit,
            project.python_version,
            project.torch_backend_resolved,
            project.torch_version,
            time.monotonic() - started,
        )


def _git_line(repo: Path, *args: str) -> str:
    out: list[str] = []
    try:
        sources._git(list(args), cwd=repo, on_line=out.append)
    except ExternalToolError:
        return ""
    return out[-1].strip() if out else ""


def rebuild_project(
    ctx: CoreContext, store: ProjectStore, damaged: DamagedProject, report: Reporter
) -> Project:
    """Write a new ``project.json`` for a damaged project folder; the caller then repairs it.

    The newest complete document an interrupted save left behind is used when there is one;
    otherwise what is on disk (the ComfyUI checkout's origin and commit, git node packs in
    ``custom_nodes``) completes the settings' defaults. The stages all run again: each checks
    the real state, so what is valid on disk is kept.
    """
    dirs = store.dirs(damaged.project_id)
    saved = recover_saved(dirs.root)
    if saved is not None:
        project = _project_from_dict(saved)
        project.id = dirs.root.name
        how = "from the copy an interrupted save left"
    else:
        project = Project(
            id=dirs.root.name,
            comfyui_source=ctx.settings.comfyui_source,
            comfyui_ref=ctx.settings.default_comfyui_ref,
            torch_backend=ctx.settings.default_torch_backend,
        )
        commit = sources.head_commit(dirs.comfyui)
        if commit:
            origin = _git_line(dirs.comfyui, "config", "--get", "remote.origin.url")
            project.comfyui_source = origin or project.comfyui_source
            project.comfyui_ref = project.comfyui_commit = commit
        for pack in sorted(dirs.custom_nodes.iterdir()) if dirs.custom_nodes.is_dir() else []:
            if pack.is_symlink() or not (pack / ".git").exists():
                continue  # files (README.md), links and packs not from git are left as they are
            url = _git_line(pack, "config", "--get", "remote.origin.url")
            if url:
                project.packs.append(
                    PackRecord(url=url, folder=pack.name, commit=sources.head_commit(pack) or "")
                )
        how = "from what is on disk and the default settings"
    started = time.time()
    project.install = InstallState(status="new", updated_at=started)
    store.save(project)
    for tmp in dirs.root.glob(".project.json.*.tmp"):  # what the interrupted save left
        with contextlib.suppress(OSError):
            if tmp.stat().st_mtime < started - 1:
                fileops.remove_file(tmp)
    line = f"Project '{project.id}' was damaged ({damaged.cause}); project.json rebuilt {how}."
    log.warning("%s", line)
    report.log(line)
    return project


def _stage(rep: Reporter, name: str, index: int) -> None:
    rep.progress(
        Progress(
            stage=name, done=index, total=len(STAGES), unit="steps", message=STAGE_LABELS[name]
        )
    )
    rep.log(f"--- {STAGE_LABELS[name]}")
    kill_point(f"stage:{name}")


def _done(store: ProjectStore, project: Project, name: str) -> None:
    if name not in project.install.stages_done:
        project.install.stages_done.append(name)
    store.save(project)


def resolve_ref(source: str, ref: str, cancel: CancelToken) -> str:
    if ref:
        return ref
    refs = sources.list_remote(source, cancel)
    return refs.latest_release() or refs.head_branch or "master"


def _run_stages(
    ctx: CoreContext,
    store: ProjectStore,
    project: Project,
    dirs: ProjectDirs,
    rep: Reporter,
    cancel: CancelToken,
    force: bool,
) -> None:
    uv = envs.UvRunner(ctx.paths, ctx.settings)
    done = set(project.install.stages_done)

    _stage(rep, "clone", 0)
    ref = resolve_ref(project.comfyui_source, project.comfyui_ref, cancel)
    commit = sources.checkout(
        project.comfyui_source, ref, dirs.comfyui, stage="clone", report=rep, cancel=cancel
    )
    if commit != project.comfyui_commit:
        done -= {"requirements", "finish"}  # another ComfyUI: its requirements may differ
    project.comfyui_ref, project.comfyui_commit = ref, commit
    dirs.custom_nodes.mkdir(parents=True, exist_ok=True)
    _done(store, project, "clone")
    cancel.check()

    _stage(rep, "venv", 1)
    project.python_version = envs.ensure_venv(
        uv, dirs.venv, project.python, report=rep, cancel=cancel
    )
    _done(store, project, "venv")
    cancel.check()

    _stage(rep, "torch", 2)
    backend = hardware.resolve_backend(project.torch_backend)
    project.torch_backend_resolved = backend
    if "torch" not in done or force or not dirs.constraints.exists():
        project.torch_version = envs.install_torch(
            uv, dirs.venv, backend, report=rep, cancel=cancel
        )
        pins = envs.write_constraints(uv, dirs.venv, dirs.constraints)
        rep.log("Torch pinned for every later install: " + (", ".join(pins) or "(no torch)"))
    _done(store, project, "torch")
    cancel.check()

    _stage(rep, "requirements", 3)
    envs.install_comfyui_requirements(
        uv,
        dirs.comfyui,
        dirs.venv,
        dirs.constraints,
        report=rep,
        cancel=cancel,
        prefer_cache=not force,  # a reinstall asks the index for the newest allowed versions
    )
    _install_manager(ctx, project, dirs, rep, cancel)
    _done(store, project, "requirements")
    cancel.check()

    _stage(rep, "packs", 4)
    install_packs(ctx, project, dirs, uv, rep, cancel)
    from comfymanager.core.adopt.adopt import complete_adoption

    complete_adoption(dirs, uv, rep, cancel)  # an adopted install's user/ and local packs
    _done(store, project, "packs")

    _stage(rep, "finish", 5)
    write_model_paths(ctx, dirs)
    project.supported_flags = runs.supported_flags(dirs.comfyui)
    for folder in (dirs.input, dirs.output, dirs.user, dirs.temp, dirs.workflows):
        folder.mkdir(parents=True, exist_ok=True)
    _done(store, project, "finish")
    rep.progress(
        Progress(stage="finish", done=len(STAGES), total=len(STAGES), unit="steps", message="Ready")
    )


def write_model_paths(ctx: CoreContext, dirs: ProjectDirs) -> Path:
    """Point the project's ComfyUI at the shared store (extra_model_paths.yaml)."""
    from comfymanager.core.adopt.adopt import append_adopted_model_paths
    from comfymanager.core.models.store import write_extra_model_paths

    write_extra_model_paths(ctx.store, dirs.extra_model_paths)
    return append_adopted_model_paths(dirs)  # an adopted install's models, read where they are


def install_packs(
    ctx: CoreContext,
    project: Project,
    dirs: ProjectDirs,
    uv: envs.UvRunner,
    rep: Reporter,
    cancel: CancelToken,
) -> None:
    """Install the project's node packs (``packs.py``); one failing pack does not stop others."""
    if not project.packs:
        return
    from comfymanager.core.install.packs import folder_for_url, install_pack
    from comfymanager.core.lifecycle.pack_list import scan

    store = ProjectStore(ctx.paths)
    case_insensitive = folder_is_case_insensitive(dirs.custom_nodes)
    on_disk = scan(dirs.custom_nodes)
    seen: set[str] = set()
    for i, pack in enumerate(project.packs):
        cancel.check()
        key = folder_key(pack.folder, case_insensitive)
        if pack.folder and key in seen:  # comfyui-kjnodes vs ComfyUI-KJNodes on NTFS/APFS
            rep.log(f"Pack {pack.folder}: the same folder as another pack here; skipped")
            continue
        seen.add(key)
        found = on_disk.get(_pack_folder(pack, folder_for_url))
        if found is not None and not found.enabled:  # .disabled/<folder> or <folder>.disabled
            rep.log(f"Pack {found.name} is disabled: left as it is (not installed again)")
            continue
        if not pack.url and not pack.registry_id and found is not None:
            _keep_plain_folder(pack, found.path, dirs, uv, rep, cancel)
            store.save(project)
            continue
        rep.progress(
            Progress(
                stage="packs",
                done=i,
                total=len(project.packs),
                unit="steps",
                message=f"Installing {pack.folder}",
            )
        )
        try:
            installed = install_pack(
                pack, dirs, uv, report=rep, cancel=cancel, registry=ctx.settings.registry_url
            )
            if pack.url:
                pack.commit = installed
            elif installed:
                pack.version = installed  # an unpinned registry pack: record what came
            pack.status, pack.error = "installed", ""
        except Cancelled:
            raise
        except ComfyManagerError as exc:
            details = [ln for ln in getattr(exc, "details", "").splitlines() if ln.strip()]
            pack.status = "failed"
            pack.error = str(exc) + (f" (last output: {details[-1].strip()})" if details else "")
            rep.log(f"Pack {pack.folder} failed: {exc}")
        store.save(project)


def _install_manager(
    ctx: CoreContext, project: Project, dirs: ProjectDirs, rep: Reporter, cancel: CancelToken
) -> None:
    """ComfyUI-Manager as the pip package when the project has it on and its ComfyUI takes it
    that way (``manager_requirements.txt``), so a repair or reinstall keeps it. The custom-node
    kind is a pack and comes back with the packs."""
    if not project.manager:
        return
    from comfymanager.core.lifecycle import manager

    if manager.manager_mode(dirs) == "pip":
        manager.install_pip_manager(ctx, dirs, report=rep, cancel=cancel)


def _pack_folder(pack: PackRecord, folder_for_url: Callable[[str], str]) -> str:
    """The folder a pack record names ("" when it names none or its URL is not valid: the
    install then says why)."""
    if pack.folder or not pack.url:
        return pack.folder
    try:
        return folder_for_url(pack.url)
    except ComfyManagerError:
        return ""


def _keep_plain_folder(
    pack: PackRecord,
    folder: Path,
    dirs: ProjectDirs,
    uv: envs.UvRunner,
    rep: Reporter,
    cancel: CancelToken,
) -> None:
    """A pack recorded with neither a git URL nor a registry id (a local folder added as it is,
    or one ComfyUI-Manager put there): its folder is kept, only its requirements go into the
    environment again (a repair may have rebuilt it)."""
    try:
        if folder.is_dir():
            packs.install_pack_requirements(folder, dirs, uv, report=rep, cancel=cancel)
        pack.status, pack.error = "installed", ""
    except Cancelled:
        raise
    except ComfyManagerError as exc:
        pack.status, pack.error = "failed", str(exc)
        rep.log(f"Pack {folder.name} failed: {exc}")


def delete_project(
    ctx: CoreContext,
    project_id: str,
    *,
    report: Reporter = NULL_REPORTER,
    cancel: CancelToken | None = None,
    keep_outputs: bool = False,
) -> Path | None:
    """Stop the project if it runs, then remove its folder (never the store or anything else).

    ``keep_outputs``: the project's ``output`` folder is first moved to
    ``<data>/kept-outputs/<name>-<date>/`` (returned; None when there was nothing to keep).
    """
    store = ProjectStore(ctx.paths)
    try:
        store.dirs(project_id)  # validates the name
    except ComfyManagerError:
        if store.folder(project_id) is None:  # a hand-made folder with an invalid name is ok
            raise
    with project_lock(ctx, project_id):
        project: Project | None = None
        try:
            project = store.load(project_id)
        except DamagedProject as exc:  # its ComfyUI may still run: the run files say so
            project = Project(id=exc.project_id)
        except ComfyManagerError:
            project = None
        if project is not None:
            st = runs.status(ctx, project, probe_http=False)
            if st.state in ("running", "starting"):
                report.log(f"Stopping {project_id}")
                runs.stop(ctx, project_id)
        kept = _keep_outputs(ctx, store, project_id, report) if keep_outputs else None
        store.delete_files(project_id)
        return kept


def kept_outputs_folder(ctx: CoreContext, project_id: str) -> Path:
    """A new folder name under ``<data>/kept-outputs/`` for this project's outputs, today."""
    base = ctx.paths.root / "kept-outputs"
    stem = f"{project_id}-{time.strftime('%Y-%m-%d')}"
    target = base / stem
    n = 2
    while target.exists():
        target = base / f"{stem}-{n}"
        n += 1
    return target


def _keep_outputs(
    ctx: CoreContext, store: ProjectStore, project_id: str, report: Reporter
) -> Path | None:
    try:
        output = store.dirs(project_id).output
    except ComfyManagerError:
        found = store.folder(project_id)
        if found is None:
            return None
        output = found / "output"
    if output.is_symlink() or not output.is_dir() or not any(output.iterdir()):
        return None
    target = kept_outputs_folder(ctx, project_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    fileops.rename(output, target)  # same volume (both under the data root): a rename
    report.log(f"Kept the outputs of {project_id} in {target}")
    return target
