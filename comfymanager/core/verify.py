"""Verify a project's node set: ask the project's own Python which node classes exist and which
models folder each model input reads, then check the project's workflows against that.

``verify_project(ctx, project_id, report, cancel)`` runs ``verify_scan.py`` in the project's
environment (cwd = its ComfyUI folder), keeps the answer as ``<project>/node-definitions.json``
(the shared node-definitions format, written atomically), and checks every saved workflow:

- every node class is present, or named as missing with the pack that should provide it and,
  when that pack failed to load, its import error;
- every model whose folder was unknown gets it from the real input definition, and is queued
  for download when a URL is known (``enqueue_download``) or listed as needing one;
- every model is present in the store, queued, or listed as missing.

The result is kept in ``<project>/verification.json`` (versioned, atomic) with the project state
it was made for (ComfyUI commit, the packs' records, the workflows): asking again with nothing
changed returns it at once (``cached=True``, model presence refreshed).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from comfymanager.core import envs, persist, process
from comfymanager.core.context import CoreContext
from comfymanager.core.errors import (
    Cancelled,
    ComfyManagerError,
    CorruptFile,
    ExternalToolError,
    NotFound,
)
from comfymanager.core.importer import store_has
from comfymanager.core.install import project_lock
from comfymanager.core.models.folders import FOLDER_KEYS, LEGACY_FOLDERS
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import Project, ProjectDirs, ProjectStore
from comfymanager.core.verify_graph import WorkflowNeeds, workflow_needs
from comfymanager.core.verify_result import (
    DEFS_VERSION,
    NOT_INSTALLED,
    ClassDef,
    ModelCheck,
    NodeCheck,
    NodeDefinitions,
    VerifyResult,
    definitions_from_dict,
    read_definitions,
    result_from_json,
    result_to_json,
)

__all__ = [
    "ModelCheck",
    "NodeCheck",
    "NodeDefinitions",
    "VerifyResult",
    "last_result",
    "read_definitions",
    "result_to_json",
    "run_scan",
    "verify_project",
]

log = logging.getLogger(__name__)

DEFS_FILE = "node-definitions.json"
DEFS_KIND = "comfymanager.node-definitions"
RESULT_FILE = "verification.json"
RESULT_KIND = "comfymanager.verification"
RESULT_VERSION = 1
SCAN_TIMEOUT = 180.0
SCRIPT = Path(__file__).with_name("verify_scan.py")


def scan_script() -> Path:
    """The scan script as a file the project's Python can run. A frozen build carries it as
    data under its own folder (``_MEIPASS``) when it is not beside this module."""
    candidates = [SCRIPT]
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        candidates.append(Path(bundle) / "comfymanager" / "core" / "verify_scan.py")
    for path in candidates:
        if path.is_file():
            return path
    raise NotFound(
        "The node scan script (verify_scan.py) is missing from this comfymanager.",
        "Reinstall comfymanager.",
    )


EnqueueDownload = Callable[..., object]


# --- state and persistence ------------------------------------------------------------


def _digest(obj: Any) -> str:
    raw = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:24]


def scan_state(project: Project, dirs: ProjectDirs) -> str:
    """What the node set depends on: ComfyUI's commit, the packs' records, what is in
    ``custom_nodes/``, the environment's site-packages (changed by an install) and the scan
    script itself."""
    try:
        on_disk = sorted(p.name for p in dirs.custom_nodes.iterdir())
    except OSError:
        on_disk = []
    packs = sorted(
        (p.folder, p.url, p.commit, p.version, p.registry_id, p.status) for p in project.packs
    )
    # a package installed or removed in the environment changes its site-packages folder
    site = sorted(
        (str(d), d.stat().st_mtime_ns)
        for pattern in ("lib/python*/site-packages", "Lib/site-packages")
        for d in dirs.venv.glob(pattern)
    )
    try:
        script = hashlib.sha256(scan_script().read_bytes()).hexdigest()[:12]
    except (NotFound, OSError):
        script = ""
    return _digest([project.comfyui_commit, packs, on_disk, site, script])


def _workflow_files(project: Project, dirs: ProjectDirs) -> list[Path]:
    return [dirs.workflows / rel for rel in project.workflows if (dirs.workflows / rel).is_file()]


def check_state(scan: str, files: list[Path]) -> str:
    stamps = []
    for f in files:
        st = f.stat()
        stamps.append((f.name, st.st_size, st.st_mtime_ns))
    return _digest([scan, stamps])


@dataclass
class _Memory:
    """What ``verification.json`` keeps besides the result: what imports told us."""

    expected_packs: dict[str, str] = field(default_factory=dict)  # class -> pack folder
    model_urls: dict[str, list[str]] = field(default_factory=dict)  # name -> URLs
    skip: list[str] = field(default_factory=list)  # model names not to download
    result: dict[str, Any] | None = None


def _load_memory(dirs: ProjectDirs) -> _Memory:
    try:
        data = persist.read_json(dirs.root / RESULT_FILE, RESULT_KIND, RESULT_VERSION)
    except FileNotFoundError:
        return _Memory()
    except CorruptFile as exc:
        log.warning("%s", exc)
        return _Memory()
    return _Memory(
        expected_packs=dict(data.get("expected_packs") or {}),
        model_urls={k: list(v) for k, v in (data.get("model_urls") or {}).items()},
        skip=list(data.get("skip") or []),
        result=data.get("result"),
    )


def _save_memory(dirs: ProjectDirs, memory: _Memory) -> None:
    persist.write_json(dirs.root / RESULT_FILE, RESULT_KIND, RESULT_VERSION, asdict(memory))


def last_result(ctx: CoreContext, project_id: str) -> VerifyResult | None:
    """The last verification kept with the project (no scan), or None."""
    dirs = ProjectStore(ctx.paths).dirs(project_id)
    memory = _load_memory(dirs)
    if not memory.result:
        return None
    try:
        return replace(result_from_json(memory.result), cached=True)
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("ignoring a damaged verification result of %s: %s", project_id, exc)
        return None


# --- the scan ---------------------------------------------------------------------------


def _comfy_args(project: Project, dirs: ProjectDirs) -> list[str]:
    """The project's own folders, as its launch gives them (when this ComfyUI knows the flag):
    building the server object must not create folders inside the ComfyUI checkout."""
    flags = set(project.supported_flags)
    folders = {
        "--input-directory": dirs.input,
        "--output-directory": dirs.output,
        "--user-directory": dirs.user,
        "--temp-directory": dirs.temp,
    }
    return [arg for flag, path in folders.items() if flag in flags for arg in (flag, str(path))]


def _culprit(tail: Iterable[str]) -> str:
    """ ", while loading the pack X": the last pack the scan said it was loading."""
    marker = "verify-scan: loading pack "
    last = [ln.split(marker, 1)[1].strip() for ln in tail if marker in ln]
    return f", while loading the pack {last[-1]}" if last else ""


def run_scan(
    project: Project,
    dirs: ProjectDirs,
    *,
    report: Reporter,
    cancel: CancelToken,
    timeout: float = SCAN_TIMEOUT,
) -> NodeDefinitions:
    """Run ``verify_scan.py`` with the project's Python and keep its answer."""
    python = envs.venv_python(dirs.venv)
    if not python.exists():
        raise NotFound(
            f"Project '{project.id}' has no Python environment ({dirs.venv}).",
            f"Run 'comfymanager repair {project.id}' to rebuild it.",
        )
    if not (dirs.comfyui / "nodes.py").is_file():
        raise NotFound(
            f"Project '{project.id}' has no ComfyUI source with nodes.py ({dirs.comfyui}).",
            f"Run 'comfymanager repair {project.id}'.",
        )
    script = scan_script()
    report.stage("verify", f"Loading the nodes of '{project.id}' in its own Python")
    fd, tmp_name = tempfile.mkstemp(prefix=".node-scan.", suffix=".json", dir=dirs.root)
    os.close(fd)
    tmp = Path(tmp_name)
    started = time.monotonic()
    try:
        # --cpu always: the scan only reads definitions, and this skips any GPU start-up
        outcome = process.run_tool(
            [python, script, "--out", tmp, "--cpu", "--", *_comfy_args(project, dirs)],
            on_line=lambda line: log.debug("scan: %s", line),
            cancel=cancel,
            cwd=dirs.comfyui,
            timeout=timeout,
        )
        if not outcome.ok or tmp.stat().st_size == 0:
            last = next((ln for ln in reversed(outcome.tail) if ln.strip()), "")
            during = _culprit(outcome.tail)
            fix = (
                f"Update or remove that pack (in {dirs.custom_nodes}), then verify again."
                if during
                else "See the details; a broken ComfyUI checkout or environment is fixed by "
                f"'comfymanager repair {project.id}'."
            )
            raise ExternalToolError(
                f"Loading the nodes of '{project.id}' failed{during} ({outcome.sentence}): {last}",
                fix,
                "\n".join(outcome.tail),
            )
        data = json.loads(tmp.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not an object")
    except ExternalToolError as exc:
        if "took longer" in exc.message:
            during = _culprit(exc.details.splitlines())
            raise ExternalToolError(
                f"Loading the nodes of '{project.id}' took longer than {timeout:.0f} s and "
                f"was stopped{during}.",
                "A node pack may hang while importing; disable it or try again.",
                exc.details,
            ) from None
        raise
    except ValueError as exc:
        raise ExternalToolError(
            f"The node scan of '{project.id}' wrote bad JSON ({exc})."
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    if not data.get("comfyui"):  # a checkout without comfyui_version.py: its commit
        data["comfyui"] = project.comfyui_commit[:12]
    defs = definitions_from_dict(data)
    state = scan_state(project, dirs)
    data.pop("version", None)
    data.pop("kind", None)
    data["state"] = state
    persist.write_json(dirs.root / DEFS_FILE, DEFS_KIND, DEFS_VERSION, data)
    log.info(
        "scanned %d node classes of %s in %.1f s", len(defs.classes), project.id,
        time.monotonic() - started,
    )  # fmt: skip
    return replace(defs, state=state)


# --- the check --------------------------------------------------------------------------


def _queued_downloads(ctx: CoreContext) -> set[tuple[str, str]]:
    """(folder, name) of downloads waiting or running in the app's queue (read only)."""
    try:
        data = json.loads(ctx.paths.downloads_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    out: set[tuple[str, str]] = set()
    for item in data.get("items") or () if isinstance(data, dict) else ():
        req = item.get("request") if isinstance(item, dict) else None
        if isinstance(req, dict) and item.get("state") not in ("done", "failed", "cancelled"):
            out.add((str(req.get("folder")), str(req.get("name"))))
    return out


MAX_SOURCE_FILES = 400
MAX_SOURCE_BYTES = 2_000_000


def _mentions(pack: Path, cls: str) -> bool:
    """True when a pack's Python source names ``cls`` as a string (its NODE_CLASS_MAPPINGS key);
    bounded, so a huge pack costs little."""
    quoted = (f'"{cls}"'.encode(), f"'{cls}'".encode())
    files = [pack.with_name(pack.name + ".py")]
    if pack.is_dir():
        files = list(itertools.islice(pack.rglob("*.py"), MAX_SOURCE_FILES))
    for f in files:
        try:
            if f.is_file() and f.stat().st_size <= MAX_SOURCE_BYTES:
                data = f.read_bytes()
                if any(q in data for q in quoted):
                    return True
        except OSError:
            continue
    return False


def _owner(
    cls: str,
    defs: NodeDefinitions,
    expected: Mapping[str, str],
    hints: Mapping[str, set[str]],
    project: Project,
    dirs: ProjectDirs,
) -> str | None:
    """The pack that should provide a missing class: what the import chose, else the
    workflow's own hint (cnr_id / aux_id) matched to an installed pack, else the one pack that
    failed to load whose source names the class."""
    if cls in expected:
        return expected[cls]
    for hint in sorted(hints.get(cls, ())):
        short = hint.rstrip("/").rsplit("/", 1)[-1].lower()
        for p in project.packs:
            if short in (p.folder.lower(), p.registry_id.lower()):
                return p.folder
    named = [pack for pack in sorted(defs.failed_packs) if _mentions(dirs.custom_nodes / pack, cls)]
    return named[0] if len(named) == 1 else None


def _check_nodes(
    needs: WorkflowNeeds,
    defs: NodeDefinitions,
    expected: Mapping[str, str],
    project: Project,
    dirs: ProjectDirs,
) -> tuple[NodeCheck, ...]:
    out = []
    for cls in sorted(needs.classes):
        found = defs.classes.get(cls)
        if found is not None:
            status = "broken" if found.input_error else "present"
            out.append(NodeCheck(cls, status, found.pack, found.input_error))
            continue
        pack = _owner(cls, defs, expected, needs.hints, project, dirs)
        error = defs.failed_packs.get(pack or "", "")
        on_disk = pack and (
            (dirs.custom_nodes / pack).is_dir() or (dirs.custom_nodes / f"{pack}.py").is_file()
        )
        if pack and not error and not on_disk:
            error = NOT_INSTALLED
        out.append(NodeCheck(cls, "missing", pack, error))
    return tuple(out)


@dataclass
class _ModelRow:
    folder: str | None
    name: str
    urls: list[str]
    folder_from: str


def _model_rows(
    needs: WorkflowNeeds, defs: NodeDefinitions, urls: Mapping[str, list[str]]
) -> list[_ModelRow]:
    """Every model the workflows name (not what the project recorded: only what they need),
    one row per (folder, name); a name with no folder takes the one its node's real input
    reads."""
    rows: dict[tuple[str | None, str], _ModelRow] = {}
    for folder, name, found_urls in needs.models:
        row = rows.setdefault((folder, name), _ModelRow(folder, name, [], "workflow"))
        row.urls += [u for u in found_urls if u not in row.urls]
    for cls, widget, name, position in needs.loader_values:
        found = defs.classes.get(cls)
        folders = _folders_for(found, widget, position) if found is not None else []
        if not folders:
            continue
        target = (folders[0], name)
        unplaced = rows.pop((None, name)) if (None, name) in rows else None
        if target in rows:  # already there: an unplaced twin joins it
            have = rows[target]
            have.urls += [u for u in (unplaced.urls if unplaced else []) if u not in have.urls]
            continue
        if unplaced is None and any(n == name for _, n in rows):
            continue  # the workflow (or the loader table) already placed it elsewhere
        row = unplaced or _ModelRow(None, name, [], "definition")
        row.folder, row.folder_from = folders[0], "definition"
        rows[target] = row
    for row in rows.values():
        row.urls += [u for u in urls.get(row.name, ()) if u not in row.urls]
    return list(rows.values())


def _folders_for(found: ClassDef, widget: str | None, position: int) -> list[str]:
    """The folder of one model value on a node whose real definition is ``found``: by widget
    name, else the one folder all its model inputs read, else by its position among them."""
    if widget and widget in found.model_inputs:
        return list(found.model_inputs[widget])
    distinct = {f for folders in found.model_inputs.values() for f in folders}
    if len(distinct) == 1:
        return [distinct.pop()]
    inputs = list(found.model_inputs.values())
    return list(inputs[position]) if 0 <= position < len(inputs) else []


def _check_models(
    ctx: CoreContext,
    project: Project,
    rows: list[_ModelRow],
    *,
    skip: set[str],
    enqueue: EnqueueDownload | None,
    report: Reporter,
    cancel: CancelToken,
) -> tuple[ModelCheck, ...]:
    from comfymanager.core.models.download import DownloadRequest, DownloadResult

    store = ctx.store
    dirs = ProjectStore(ctx.paths).dirs(project.id)
    queued = _queued_downloads(ctx)
    out: list[ModelCheck] = []
    for row in sorted(rows, key=lambda r: (r.folder or "~", r.name)):
        cancel.check()
        folder, name, how = row.folder, row.name, row.folder_from
        if folder is None:
            out.append(ModelCheck(None, name, "unknown-folder", "", "its models folder is unknown"))
            continue
        entry = {"directory": folder, "name": name}
        if entry not in project.models:
            project.models.append(entry)
        in_project = dirs.comfyui / "models" / folder / name  # a pack's own folder
        if store_has(store, folder, name) or in_project.is_file():
            out.append(ModelCheck(folder, name, "present", how))
        elif folder not in FOLDER_KEYS and folder not in LEGACY_FOLDERS:
            why = (
                f"the model store has no '{folder}' folder (the pack registers it itself): "
                f"put the file in {in_project.parent}"
            )
            out.append(ModelCheck(folder, name, "failed", how, why))
        elif name in skip:
            out.append(ModelCheck(folder, name, "skipped", how, "not downloaded, as chosen"))
        elif (folder, name) in queued:
            out.append(ModelCheck(folder, name, "queued", how))
        elif not row.urls:
            out.append(ModelCheck(folder, name, "needs-url", how, "no download address known"))
        elif enqueue is None:
            out.append(ModelCheck(folder, name, "needs-url", how, f"not queued: {row.urls[0]}"))
        else:
            request = DownloadRequest(urls=tuple(row.urls), folder=folder, name=name)
            try:
                report.stage("verify", f"Queueing {name} into {folder}")
                result = enqueue(request, requester=project.id)
            except Cancelled:
                raise
            except ComfyManagerError as exc:
                out.append(ModelCheck(folder, name, "failed", how, str(exc)))
                continue
            status = "queued"
            if isinstance(result, DownloadResult):
                status = "present" if result.already_present else "downloaded"
            out.append(ModelCheck(folder, name, status, how))
    return tuple(out)


def _refresh(ctx: CoreContext, result: VerifyResult) -> VerifyResult:
    store = ctx.store
    models = tuple(
        replace(m, status="present", detail="")
        if m.status in ("queued", "downloaded") and m.folder and store_has(store, m.folder, m.name)
        else m
        for m in result.models
    )
    return replace(result, models=models, cached=True)


def verify_project(
    ctx: CoreContext,
    project_id: str,
    report: Reporter,
    cancel: CancelToken,
    *,
    enqueue_download: EnqueueDownload | None = None,
    expected_packs: Mapping[str, str] | None = None,
    model_urls: Mapping[str, Iterable[str]] | None = None,
    skip_models: Iterable[str] = (),
    force: bool = False,
    timeout: float = SCAN_TIMEOUT,
) -> VerifyResult:
    """Verify the project's node set against its workflows (see the module docstring).

    ``expected_packs`` (class -> pack folder), ``model_urls`` (model name -> URLs) and
    ``skip_models`` come from an import and are kept for later runs. ``force`` rescans even
    when nothing changed."""
    store = ProjectStore(ctx.paths)
    with project_lock(ctx, project_id):
        project = store.load(project_id)
        dirs = store.dirs(project.id)
        memory = _load_memory(dirs)
        memory.expected_packs.update(expected_packs or {})
        for name, found in (model_urls or {}).items():
            have = memory.model_urls.setdefault(name, [])
            have += [u for u in found if u not in have]
        memory.skip = sorted(set(memory.skip) | set(skip_models))
        files = _workflow_files(project, dirs)
        scan_key = scan_state(project, dirs)
        key = check_state(scan_key, files)
        if not force and memory.result and memory.result.get("state") == key:
            try:
                cached = _refresh(ctx, result_from_json(memory.result))
            except (KeyError, TypeError, ValueError):
                cached = None
            if cached is not None:
                _save_memory(dirs, memory)
                report.log(f"Verification of '{project.id}' unchanged: reused")
                return cached
        defs: NodeDefinitions | None = None
        if not force:
            try:
                defs = read_definitions(dirs.root / DEFS_FILE)
                defs = defs if defs.state == scan_key else None
            except ComfyManagerError:
                defs = None
        started = time.monotonic()
        if defs is None:
            defs = run_scan(project, dirs, report=report, cancel=cancel, timeout=timeout)
        seconds = time.monotonic() - started
        report.stage("verify", "Checking the workflows against the project's nodes")
        needs = workflow_needs(files)
        rows = _model_rows(needs, defs, memory.model_urls)
        models = _check_models(
            ctx,
            project,
            rows,
            skip=set(memory.skip),
            enqueue=enqueue_download,
            report=report,
            cancel=cancel,
        )
        store.save(project)  # models whose folder came from the definitions are now in use
        result = VerifyResult(
            project=project.id,
            state=key,
            comfyui=defs.comfyui or project.comfyui_commit[:12],
            nodes=_check_nodes(needs, defs, memory.expected_packs, project, dirs),
            models=models,
            failed_packs=dict(defs.failed_packs),
            checked_at=time.time(),
            scan_seconds=round(seconds, 3),
        )
        memory.result = asdict(result)
        memory.result["failed_packs"] = dict(result.failed_packs)
        _save_memory(dirs, memory)
        report.log(f"Nodes: {result.nodes_line()}")
        report.log(f"Models: {result.models_line()}")
        return result
