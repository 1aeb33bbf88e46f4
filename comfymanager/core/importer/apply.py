"""Apply an import plan: one job that creates (or loads) the project, records its node packs,
saves the workflows where ComfyUI shows them, queues the model downloads and installs.

Per-item failures (a pack that does not install, a model that does not download) are outcomes,
not exceptions: the project is kept and the result says what went wrong for each item.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from comfymanager.core import persist
from comfymanager.core.context import CoreContext
from comfymanager.core.errors import Cancelled, ComfyManagerError, ErrorInfo, InvalidInput
from comfymanager.core.importer.decision import (
    ImportDecision,
    validate_decision,
)
from comfymanager.core.importer.plan import ImportPlan, PlanModel
from comfymanager.core.install import install
from comfymanager.core.install.packs import folder_for_url, validate_folder, validate_git_url
from comfymanager.core.models.download import DownloadRequest, DownloadResult
from comfymanager.core.models.index import ModelIndex
from comfymanager.core.models.search_paths import store_has
from comfymanager.core.paths import folder_key
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import PackRecord, Project, ProjectDirs, ProjectStore
from comfymanager.core.settings import backends_for
from comfymanager.core.verify.verify import VerifyResult, verify_project
from comfymanager.core.workflow.formats import load_workflow
from comfymanager.core.workflow.nodes import PackRef

log = logging.getLogger(__name__)

EnqueueDownload = Callable[..., object]
"""``enqueue_download(request, requester=project_id)``: the GUI passes ``DownloadManager.add``
(returns an item id: "queued"); the CLI downloads at once (returns a ``DownloadResult``)."""

ItemKind = Literal["pack", "model", "workflow"]
_UNSAFE = re.compile(r"[^A-Za-z0-9 ._()\-]+")
_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(10)}


@dataclass(frozen=True)
class ItemOutcome:
    """``status``: pack installed|failed|skipped; model present|queued|downloaded|failed|
    skipped; workflow saved|failed. ``detail`` is the error sentence or the saved path."""

    kind: ItemKind
    name: str
    status: str
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "failed"


@dataclass(frozen=True)
class ImportResult:
    project: str
    created: bool
    items: tuple[ItemOutcome, ...]
    install_error: ErrorInfo | None = None
    commit: str = ""
    torch_backend: str = ""
    verification: VerifyResult | None = None  # the project's node set checked after install
    verify_error: ErrorInfo | None = None  # why it could not be checked

    @property
    def ok(self) -> bool:
        return self.install_error is None and not any(i.failed for i in self.items)

    @property
    def failures(self) -> tuple[ItemOutcome, ...]:
        return tuple(i for i in self.items if i.failed)


# --- workflows --------------------------------------------------------------------------


def safe_workflow_name(name: str) -> str:
    """A file name ComfyUI lists and every OS accepts: ``<clean stem>.json``."""
    stem = name.replace("\\", "/").rsplit("/", 1)[-1]
    if stem.lower().endswith(".json"):
        stem = stem[:-5]
    stem = _UNSAFE.sub("_", stem).strip(" ._")[:100].strip(" ._")
    if not stem or stem.split(".")[0].upper() in _RESERVED:
        stem = f"workflow_{stem}" if stem else "workflow"
    return f"{stem}.json"


def save_workflow(folder: Path, name: str, data: bytes, *, root: Path | None = None) -> Path:
    """Write ``data`` as ``folder/<safe name>``; an identical file is reused, a different one
    is never overwritten (``name (2).json``, ``name (3).json``...). Nothing is written through
    a link: the folders below ``root`` (default: the project folder holding
    ``user/default/workflows``) and the file names are checked without following links."""
    from comfymanager.core.models.safe_path import check_files

    if root is None:
        tail = folder.parts[-3:]
        root = folder.parents[2] if tail == ("user", "default", "workflows") else folder
    area = "the project's workflow folder"
    base = safe_workflow_name(name)[:-5]
    check_files(root, folder / f"{base}.json", area=area)
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        target = folder / (f"{base}.json" if n == 1 else f"{base} ({n}).json")
        check_files(root, target, area=area)
        if target.exists():
            if target.read_bytes() == data:
                return target
            continue
        persist.atomic_write_bytes(target, data)  # a fresh temp file (O_EXCL), fsync, replace
        return target
    raise InvalidInput(f"Too many workflows named {base} in {folder}.", "Rename some of them.")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _workflow_bytes(content: dict[str, Any]) -> bytes:
    """Strict JSON (the browser's JSON.parse refuses NaN)."""
    return json.dumps(_finite(content), indent=2, ensure_ascii=False).encode("utf-8")


def _workflows_of(plan: ImportPlan) -> list[tuple[str, bytes]]:
    """The workflows to save, from what the plan parsed (a file changed since is not re-read;
    a plan made without its analyses' content reads the files)."""
    out: list[tuple[str, bytes]] = []
    kept = {a.source: a for a in plan.analyses if a.loaded is not None}
    for path in plan.files:
        analysis = kept.get(path)
        loaded = analysis.loaded if analysis is not None else None
        if loaded is None:
            loaded = load_workflow(path)
        if loaded.format in ("manifest", "launcher"):
            continue
        if path.suffix.lower() == ".json" and loaded.ui is not None:
            raw = analysis.raw if analysis is not None and analysis.raw is not None else None
            raw = raw if raw is not None else path.read_bytes()
            ok = b"NaN" not in raw and b"Infinity" not in raw
            out.append((path.name, raw if ok else _workflow_bytes(loaded.ui)))
        elif loaded.ui is not None or loaded.api is not None:
            content = loaded.ui if loaded.ui is not None else loaded.api
            assert content is not None
            out.append((path.stem, _workflow_bytes(content)))
    if plan.manifest is not None:
        out += [(w.name, _workflow_bytes(w.content)) for w in plan.manifest.workflows]
    return out


# --- packs ------------------------------------------------------------------------------


def _record(ref: PackRef | None, url: str | None, folder_hint: str | None) -> PackRecord:
    url = url or (ref.url if ref else None)
    if url:
        url = validate_git_url(url)
        folder = validate_folder(folder_hint) if folder_hint else folder_for_url(url)
        # a registry version is not a git tag: a git pack is pinned by commit only
        commit = ref.commit if ref and ref.commit else ""
        return PackRecord(
            url=url, folder=folder, commit=commit, registry_id=(ref.id or "") if ref else ""
        )
    if ref is None or not ref.id:
        raise InvalidInput("This node pack has neither a git URL nor a registry id.")
    return PackRecord(
        url="",
        folder=validate_folder(folder_hint or ref.id),
        version=ref.version or "",
        registry_id=ref.id,
    )


def _pack_records(
    plan: ImportPlan, decision: ImportDecision
) -> tuple[list[PackRecord], list[ItemOutcome], dict[str, str]]:
    """The packs to install, the rows left out, and class -> pack folder (for verification)."""
    folders = {}
    archives: dict[tuple[str, str], str] = {}  # (registry id, version) -> the zip's sha256
    if plan.manifest is not None:
        folders = {p.url: p.folder_name for p in plan.manifest.packs if p.url and p.folder_name}
        archives = {
            (p.registry_id, p.version): p.archive_sha256
            for p in plan.manifest.packs
            if p.registry_id and p.version and p.archive_sha256
        }
    records: list[PackRecord] = []
    skipped: list[ItemOutcome] = []
    owners: dict[str, str] = {}
    for row in plan.packs:
        if row.status == "built-in":
            continue
        pasted = decision.pack_urls.get(row.key)
        chosen = decision.pack_choices.get(row.key)
        types = f"node types {', '.join(row.classes)} left out"
        if row.key in decision.skip_packs and not pasted:
            skipped.append(ItemOutcome("pack", row.title, "skipped", f"skipped by you: {types}"))
            continue
        if pasted:
            records.append(_record(None, pasted, None))
        elif row.status == "install":
            ref = PackRef(row.key, row.registry_id, row.url, row.title, row.version, row.commit)
            records.append(_record(ref, None, folders.get(row.url or "")))
        elif chosen:
            ref = next(c for c in row.candidates if c.identity == chosen)
            records.append(_record(ref, None, None))
        else:
            why = "no pack chosen" if row.candidates else "no pack known for it"
            skipped.append(ItemOutcome("pack", row.title, "skipped", f"{why}: {types}"))
            continue
        owners.update(dict.fromkeys(row.classes, records[-1].folder))
    for r in records:  # a manifest pins a registry zip's bytes: the install must match them
        r.archive_sha256 = archives.get((r.registry_id, r.version), r.archive_sha256)
    unique: dict[str, PackRecord] = {}
    for r in records:  # keyed as the file system sees names (case-insensitive on Win/macOS)
        unique.setdefault(folder_key(r.folder), r)
    return list(unique.values()), skipped, owners


def _merge_packs(project: Project, records: list[PackRecord]) -> None:
    have = {folder_key(p.folder): p for p in project.packs}
    for r in records:
        old = have.get(folder_key(r.folder))
        if old is None:
            project.packs.append(r)
        elif r.commit and r.commit != old.commit:
            old.commit, old.status = r.commit, "pending"
        elif not (r.url or old.url) and r.version and r.version != old.version:  # registry
            # another version: the recorded zip hash belonged to the old one
            old.version, old.status, old.archive_sha256 = r.version, "pending", r.archive_sha256


# --- target -----------------------------------------------------------------------------


def _new_project(ctx: CoreContext, plan: ImportPlan, spec: install.ProjectSpec) -> Project:
    m = plan.manifest
    if m is not None:
        backend = spec.torch_backend
        if not backend and m.torch_backend in backends_for():  # a cu128 manifest on a Mac: auto
            backend = m.torch_backend or ""
        spec = install.ProjectSpec(
            name=spec.name,
            comfyui_source=spec.comfyui_source or m.comfyui.source,
            comfyui_ref=spec.comfyui_ref or m.comfyui.commit or m.comfyui.ref or "",
            torch_backend=backend,
            port=spec.port,
            listen_network=spec.listen_network,
            launch_args=spec.launch_args,
            python=spec.python or m.python_version or "",
        )
    project = install.validate_spec(ctx, spec)
    return ProjectStore(ctx.paths).create(project)


# --- models -----------------------------------------------------------------------------


def _request(m: PlanModel, folder: str, url: str | None) -> DownloadRequest:
    urls = (url,) if url else m.urls
    return DownloadRequest(urls=urls, folder=folder, name=m.name, sha256=m.sha256, size=m.size)


def _models(
    ctx: CoreContext,
    plan: ImportPlan,
    decision: ImportDecision,
    project: Project,
    enqueue: EnqueueDownload,
    report: Reporter,
    cancel: CancelToken,
) -> list[ItemOutcome]:
    out: list[ItemOutcome] = []
    for m in plan.models:
        cancel.check()
        url = decision.model_urls.get(m.key)
        if m.key in decision.skip_models or (m.status == "inactive" and not url):
            out.append(ItemOutcome("model", m.key, "skipped", "not needed"))
            continue
        folder = decision.folder_of(m)
        if folder is None:
            why = "its models folder is unknown: choose one"
            out.append(ItemOutcome("model", m.key, "failed", why))
            continue
        name = m.key if m.directory is not None else f"{folder}/{m.name}"
        entry = {"directory": folder, "name": m.name}
        if entry not in project.models:
            project.models.append(entry)
        if m.status == "present" or (m.directory is None and store_has(ctx.store, folder, m.name)):
            out.append(ItemOutcome("model", name, "present"))
            continue
        if not url and not m.urls:
            out.append(ItemOutcome("model", name, "failed", "no download address: give a URL"))
            continue
        try:
            report.stage("models", f"Queueing {m.name}")
            result = enqueue(_request(m, folder, url), requester=project.id)
        except Cancelled:
            raise
        except ComfyManagerError as exc:
            out.append(ItemOutcome("model", name, "failed", str(exc)))
            continue
        if isinstance(result, DownloadResult):
            status = "present" if result.already_present else "downloaded"
            out.append(ItemOutcome("model", name, status, str(result.path)))
        else:
            out.append(ItemOutcome("model", name, "queued"))
    return out


def _mark_usage(ctx: CoreContext, project: Project) -> None:
    store = ctx.store
    if not store.is_dir():
        return
    index = ModelIndex.load(store)
    changed = False
    for entry in project.models:
        folder, name = entry["directory"], entry["name"]
        try:
            found = index.find(folder, name)
            if found is None:
                if not (store / folder / name).is_file():
                    continue
                found = index.record(folder, name)
            index.set_used_by(folder, name, [*found.used_by, project.id])
            changed = True
        except ComfyManagerError as exc:
            log.info("cannot mark %s/%s as used: %s", folder, name, exc)
    if changed:
        index.save()


# --- verification -----------------------------------------------------------------------


def _verify(
    ctx: CoreContext,
    plan: ImportPlan,
    decision: ImportDecision,
    project_id: str,
    owners: dict[str, str],
    enqueue: EnqueueDownload,
    report: Reporter,
    cancel: CancelToken,
) -> VerifyResult:
    """Load the project's nodes in its own Python and check the workflows against them: the
    models whose folder the plan did not know get it there (and are queued when they have a
    URL)."""
    urls: dict[str, list[str]] = {}
    for m in plan.models:
        url = decision.model_urls.get(m.key)
        found = [url] if url else list(m.urls)
        if found and m.directory is None and decision.folder_of(m) is None:
            urls.setdefault(m.name, []).extend(found)
    skipped = {m.name for m in plan.models if m.key in decision.skip_models}
    # node types whose pack row was skipped or left open (the user confirmed they stay missing)
    left_out = {
        cls
        for row in plan.packs
        if row.status != "built-in"
        for cls in row.classes
        if cls not in owners
    }
    return verify_project(
        ctx,
        project_id,
        report,
        cancel,
        enqueue_download=enqueue,
        expected_packs=owners,
        model_urls=urls,
        skip_models=skipped,
        skip_nodes=left_out,
    )


def _with_verified_models(items: list[ItemOutcome], result: VerifyResult) -> list[ItemOutcome]:
    """A model the import could not place (folder unknown) takes the verification's outcome."""
    placed = {m.name: m for m in result.models if m.folder_from == "definition" and m.folder}
    out: list[ItemOutcome] = []
    for item in items:
        name = item.name[2:] if item.name.startswith("?/") else ""
        found = placed.get(name) if item.kind == "model" and item.failed else None
        if found is None:
            out.append(item)
            continue
        status = "failed" if found.status in ("needs-url", "failed") else found.status
        detail = f"folder {found.folder} from the node definition"
        if found.detail:
            detail += f"; {found.detail}"
        out.append(ItemOutcome("model", found.key, status, detail))
    return out


# --- the job ----------------------------------------------------------------------------


def apply_import(
    ctx: CoreContext,
    plan: ImportPlan,
    decision: ImportDecision,
    *,
    report: Reporter,
    cancel: CancelToken,
    enqueue_download: EnqueueDownload,
) -> ImportResult:
    """Run the import (see the module docstring). Raises only for what stops it all: a bad
    decision, a project that cannot be created, cancellation."""
    validate_decision(plan, decision)
    store = ProjectStore(ctx.paths)
    records, items, owners = _pack_records(plan, decision)
    created = isinstance(decision.target, install.ProjectSpec)
    if isinstance(decision.target, install.ProjectSpec):
        project = _new_project(ctx, plan, decision.target)
        report.log(f"Created project '{project.id}'")
    else:
        from comfymanager.core.adopt.guard import require_managed
        from comfymanager.core.lifecycle.snapshots import snapshot_before_change

        require_managed(store.load(decision.target), "import into it")
        snapshot_before_change(ctx, decision.target, "import", report)
        project = store.load(decision.target)
    dirs: ProjectDirs = store.dirs(project.id)
    _merge_packs(project, records)
    store.save(project)

    report.stage("workflows", "Saving the workflows")
    for name, data in _workflows_of(plan):
        try:
            path = save_workflow(dirs.workflows, name, data)
        except (OSError, ComfyManagerError) as exc:
            items.append(ItemOutcome("workflow", name, "failed", str(exc)))
            continue
        rel = path.relative_to(dirs.workflows).as_posix()
        if rel not in project.workflows:
            project.workflows.append(rel)
        items.append(ItemOutcome("workflow", name, "saved", str(path)))
    store.save(project)

    items += _models(ctx, plan, decision, project, enqueue_download, report, cancel)
    store.save(project)

    install_error: ErrorInfo | None = None
    try:
        install.install_project(ctx, project.id, report=report, cancel=cancel)
    except Cancelled:
        raise
    except ComfyManagerError as exc:
        install_error = ErrorInfo.from_exception(exc)
    project = store.load(project.id)
    wanted = {folder_key(r.folder) for r in records}
    for pack in project.packs:
        if folder_key(pack.folder) not in wanted:
            continue
        if pack.status == "failed":
            detail = f"{pack.error} (log: {dirs.install_log})"
            items.append(ItemOutcome("pack", pack.folder, "failed", detail))
        elif pack.status == "installed":
            items.append(ItemOutcome("pack", pack.folder, "installed", pack.commit))
        else:
            items.append(ItemOutcome("pack", pack.folder, "failed", "not installed"))
    verification: VerifyResult | None = None
    verify_error: ErrorInfo | None = None
    if records and install_error is None:
        try:
            verification = _verify(ctx, plan, decision, project.id, owners, enqueue_download,
                                   report, cancel)  # fmt: skip
        except Cancelled:
            raise
        except ComfyManagerError as exc:
            verify_error = ErrorInfo.from_exception(exc)
            log.warning("could not verify %s: %s", project.id, exc)
            report.log(f"The node types of '{project.id}' could not be checked: {exc}")
        else:
            items = _with_verified_models(items, verification)
        project = store.load(project.id)
    _mark_usage(ctx, project)
    order = {"pack": 0, "model": 1, "workflow": 2}
    items.sort(key=lambda i: order[i.kind])
    return ImportResult(
        project.id,
        created,
        tuple(items),
        install_error,
        project.comfyui_commit,
        project.torch_backend_resolved or project.torch_backend,
        verification,
        verify_error,
    )
