"""Verify a project's node set: ask the project's own Python which node classes exist and which
models folder each model input reads, then check the project's workflows against that.

``verify_project(ctx, project_id, report, cancel)`` runs ``scan.py`` in the project's
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
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from comfymanager.core import persist, process
from comfymanager.core.adopt.guard import require_managed
from comfymanager.core.context import CoreContext
from comfymanager.core.errors import (
    ComfyManagerError,
    CorruptFile,
    ExternalToolError,
    NotFound,
)
from comfymanager.core.install import envs
from comfymanager.core.install.install import project_lock
from comfymanager.core.models.search_paths import store_has
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import Project, ProjectDirs, ProjectStore
from comfymanager.core.verify.check import EnqueueDownload, check_models, check_nodes, model_rows
from comfymanager.core.verify.graph import workflow_needs
from comfymanager.core.verify.result import (
    DEFS_VERSION,
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
SCRIPT = Path(__file__).with_name("scan.py")


def scan_script() -> Path:
    """The scan script as a file the project's Python can run. A frozen build carries it as
    data under its own folder (``_MEIPASS``) when it is not beside this module."""
    candidates = [SCRIPT]
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        candidates.append(Path(bundle) / "comfymanager" / "core" / "verify" / "scan.py")
    for path in candidates:
        if path.is_file():
            return path
    raise NotFound(
        "The node scan script (core/verify/scan.py) is missing from this comfymanager.",
        "Reinstall comfymanager.",
    )


# --- state and persistence ------------------------------------------------------------


def _digest(obj: Any) -> str:
    raw = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:24]


def scan_state(project: Project, dirs: ProjectDirs) -> str:
    """What the node set depends on: ComfyUI's commit, the packs' records, what is in
    ``custom_nodes/``, the environment's installed distributions and the scan script itself."""
    try:
        on_disk = sorted(p.name for p in dirs.custom_nodes.iterdir())
    except OSError:
        on_disk = []
    packs = sorted(
        (p.folder, p.url, p.commit, p.version, p.registry_id, p.status) for p in project.packs
    )
    # the environment's distributions and versions (not the folder's time: bytecode caches
    # written by an import would change it)
    site = sorted(
        entry.name
        for pattern in ("lib/python*/site-packages", "Lib/site-packages")
        for d in dirs.venv.glob(pattern)
        for entry in d.iterdir()
        if entry.name.endswith((".dist-info", ".egg-info", ".pth"))
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
    skip_nodes: list[str] = field(default_factory=list)  # node types left out on purpose
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
        skip_nodes=list(data.get("skip_nodes") or []),
        result=data.get("result"),
    )


def _save_memory(dirs: ProjectDirs, memory: _Memory) -> None:
    persist.write_json(dirs.root / RESULT_FILE, RESULT_KIND, RESULT_VERSION, asdict(memory))


def _with_skips(result: VerifyResult, memory: _Memory) -> VerifyResult:
    """Missing node types the user left out on purpose read "skipped" (applied when read, so
    a Skip needs no rescan)."""
    skip = set(memory.skip_nodes)
    if not skip:
        return result
    nodes = tuple(
        replace(n, status="skipped") if n.status == "missing" and n.class_type in skip else n
        for n in result.nodes
    )
    return replace(result, nodes=nodes)


def last_result(ctx: CoreContext, project_id: str) -> VerifyResult | None:
    """The last verification kept with the project (no scan), or None."""
    dirs = ProjectStore(ctx.paths).dirs(project_id)
    memory = _load_memory(dirs)
    if not memory.result:
        return None
    try:
        return _with_skips(replace(result_from_json(memory.result), cached=True), memory)
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


def _scan_env(dirs: ProjectDirs) -> dict[str, str]:
    """As ComfyUI runs: a pack that pip-installs while importing is held to the pinned torch."""
    pinned = dirs.constraints
    if pinned.is_file() and pinned.stat().st_size:
        return process.clean_env({"PIP_CONSTRAINT": str(pinned), "UV_CONSTRAINT": str(pinned)})
    return process.clean_env()


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
    """Run ``scan.py`` with the project's Python and keep its answer."""
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
            env=_scan_env(dirs),
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
    skip_nodes: Iterable[str] = (),
    force: bool = False,
    timeout: float = SCAN_TIMEOUT,
) -> VerifyResult:
    """Verify the project's node set against its workflows (see the module docstring).

    ``expected_packs`` (class -> pack folder), ``model_urls`` (model name -> URLs) and
    ``skip_models`` come from an import and are kept for later runs, as are ``skip_nodes``
    (node types left out on purpose: reported "skipped", not missing). ``force`` rescans even
    when nothing changed."""
    store = ProjectStore(ctx.paths)
    with project_lock(ctx, project_id):
        project = store.load(project_id)
        require_managed(project, "verify")
        dirs = store.dirs(project.id)
        memory = _load_memory(dirs)
        memory.expected_packs.update(expected_packs or {})
        for name, found in (model_urls or {}).items():
            have = memory.model_urls.setdefault(name, [])
            have += [u for u in found if u not in have]
        memory.skip = sorted(set(memory.skip) | set(skip_models))
        memory.skip_nodes = sorted(set(memory.skip_nodes) | set(skip_nodes))
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
                return _with_skips(cached, memory)
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
        rows = model_rows(needs, defs, memory.model_urls)
        models = check_models(
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
            nodes=check_nodes(needs, defs, memory.expected_packs, project, dirs),
            models=models,
            failed_packs=dict(defs.failed_packs),
            checked_at=time.time(),
            scan_seconds=round(seconds, 3),
        )
        memory.result = asdict(result)
        memory.result["failed_packs"] = dict(result.failed_packs)
        _save_memory(dirs, memory)
        result = _with_skips(result, memory)
        report.log(f"Nodes: {result.nodes_line()}")
        report.log(f"Models: {result.models_line()}")
        return result
