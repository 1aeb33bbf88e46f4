"""Import planning: workflow files -> one ``ImportPlan`` the user reviews before anything runs.

``plan_import`` analyses every file (``core.workflow.analyze.analyze``), merges their node packs and
model files, gives each a status and totals the download against the store's free space. It is
local and fast; the network is only used when asked: ``lookup=True`` (Comfy Registry for unknown
classes) and ``fill_sizes`` (HEAD requests for model sizes). What the user chose and its checks
live in ``decision.py``, online model suggestions in ``search.py``, applying in
``apply.py``, manifests in ``manifest.py``.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import requests

from comfymanager.core.context import CoreContext
from comfymanager.core.errors import Cancelled, ComfyManagerError, InvalidInput
from comfymanager.core.models.hosts import Endpoints, classify
from comfymanager.core.models.part import free_space
from comfymanager.core.models.search_paths import store_has
from comfymanager.core.progress import CancelToken
from comfymanager.core.workflow.analyze import Analysis, Context, analyze, project_context
from comfymanager.core.workflow.formats import load_workflow
from comfymanager.core.workflow.manifest import Manifest, read_launcher, read_manifest
from comfymanager.core.workflow.models import ModelSuggestion
from comfymanager.core.workflow.nodedb import NodeDatabase, load_node_db, refresh_node_db
from comfymanager.core.workflow.nodedefs import project_definitions
from comfymanager.core.workflow.nodes import (
    PackRef,
    Resolution,
    lookup_registry,
    resolution_from_hit,
)

log = logging.getLogger(__name__)

PackStatus = Literal["built-in", "install", "candidates", "unknown"]
ModelStatus = Literal["present", "download", "mirrors", "inactive", "unknown"]

PACK_LABELS: dict[str, str] = {
    "built-in": "Built in",
    "install": "Will install",
    "candidates": "Several candidates",
    "unknown": "Unknown",
}
MODEL_LABELS: dict[str, str] = {
    "present": "Already in the store",
    "download": "Will download",
    "mirrors": "Will download (several mirrors)",
    "inactive": "Not needed (muted/bypassed)",
    "unknown": "Unknown source",
}


@dataclass(frozen=True)
class Suggestion:
    """A possible source for a model the workflow names without a URL."""

    url: str
    directory: str
    filename: str
    origin: str  # "model list", "Hugging Face", "CivitAI"
    size: str = ""
    sha256: str | None = None


@dataclass(frozen=True)
class PlanPack:
    """One row of the packs table. ``key`` identifies the row in an ``ImportDecision``."""

    key: str
    title: str
    classes: tuple[str, ...]
    status: PackStatus
    url: str | None = None
    registry_id: str | None = None
    version: str | None = None
    commit: str | None = None
    candidates: tuple[PackRef, ...] = ()
    recommended: str | None = None  # identity of the clear popularity leader (preselected)
    reasons: tuple[str, ...] = ()  # per candidate: "recommended" or ""

    @property
    def pin(self) -> str:
        return self.version or (self.commit[:12] if self.commit else "")

    @property
    def source(self) -> str:
        return self.url or (f"registry: {self.registry_id}" if self.registry_id else "")


@dataclass(frozen=True)
class PlanModel:
    """One row of the models table; ``key`` is ``folder/name`` (``?/name`` if unknown)."""

    directory: str | None
    name: str
    urls: tuple[str, ...]
    sha256: str | None
    size: int | None
    status: ModelStatus
    suggestions: tuple[Suggestion, ...] = ()
    auto_picked: bool = False  # the URL came from a suggestion matching name and hash

    @property
    def key(self) -> str:
        return f"{self.directory or '?'}/{self.name}"


@dataclass(frozen=True)
class ImportPlan:
    files: tuple[Path, ...]
    analyses: tuple[Analysis, ...]
    packs: tuple[PlanPack, ...]
    models: tuple[PlanModel, ...]
    free_bytes: int | None
    comfyui_version: str | None
    warnings: tuple[str, ...]
    node_db_available: bool
    manifest: Manifest | None = None  # when a file is a manifest/launcher file: its pins

    @property
    def download_bytes(self) -> int:
        return sum(m.size or 0 for m in self.models if m.status in ("download", "mirrors"))

    @property
    def unknown_sizes(self) -> int:
        return sum(1 for m in self.models if m.status in ("download", "mirrors") and not m.size)

    @property
    def fits(self) -> bool:
        return self.free_bytes is None or self.download_bytes <= self.free_bytes

    def pack(self, key: str) -> PlanPack:
        for p in self.packs:
            if p.key == key:
                return p
        raise InvalidInput(f"The plan has no node pack {key!r}.")

    def model(self, key: str) -> PlanModel:
        for m in self.models:
            if m.key == key:
                return m
        raise InvalidInput(f"The plan has no model {key!r}.")


# --- planning ---------------------------------------------------------------------------


def default_name(path: str | Path) -> str:
    """The project name an import suggests for ``path`` (CLI and window): the file's stem with
    characters a name cannot hold made '-', at most 64 characters, "imported" when nothing is
    left. Still checked by ``projects.validate_name`` where it is used."""
    stem = Path(path).stem
    cleaned = "".join(c if c.isalnum() or c in " ._-" else "-" for c in stem).strip(" .-_")
    return cleaned[:64].strip(" .-_") or "imported"


def node_database(
    ctx: CoreContext, cancel: CancelToken | None = None
) -> tuple[NodeDatabase | None, str]:
    """Refresh the cached node database when it is stale, then load it (CLI and window). The
    note says why the refresh did not happen ("" when it did or was not needed)."""
    try:
        status = refresh_node_db(
            ctx.settings.node_db_source, ctx.paths.node_db, cancel=cancel, timeout=10
        )
    except Cancelled:
        raise
    except ComfyManagerError as exc:
        log.info("node database not refreshed: %s", exc)
        return load_node_db(ctx.paths.node_db), f"node database source: {exc}"
    note = "" if status.state in ("cached", "updated", "not-modified") else status.message
    return load_node_db(ctx.paths.node_db), note


def _manifest_of_file(path: Path) -> Manifest | None:
    loaded = load_workflow(path)
    if loaded.manifest is None:
        return None
    if loaded.format == "launcher":
        return read_launcher(loaded.manifest)[0]
    return read_manifest(loaded.manifest)


class RegistryLookup:
    """Asks the Comfy Registry once per class; after a network failure it stops asking."""

    def __init__(self, url: str, db: NodeDatabase | None, session: requests.Session | None = None):
        self.url = url
        self.db = db
        self.session = session or requests.Session()
        self.failed: str | None = None
        self.cache: dict[str, Resolution | None] = {}

    def __call__(self, class_name: str) -> Resolution | None:
        if self.failed or class_name in self.cache:
            return self.cache.get(class_name)
        try:
            hit = lookup_registry(self.url, class_name, self.session, timeout=10)
        except requests.RequestException as exc:
            self.failed = f"registry lookup failed ({exc}); unknown classes stay unknown"
            return None
        res = resolution_from_hit(class_name, hit, self.db) if hit else None
        self.cache[class_name] = res
        return res


def _merge_pack_rows(analyses: list[Analysis], warnings: list[str]) -> list[PlanPack]:
    rows: dict[str, PlanPack] = {}
    core: list[str] = []
    for a in analyses:
        for entry in a.packs:
            ref = entry.pack
            key = ref.identity
            old = rows.get(key)
            if old is None:
                rows[key] = PlanPack(
                    key,
                    ref.title,
                    entry.classes,
                    "install",
                    ref.url,
                    ref.id,
                    ref.version,
                    ref.commit,
                )
                continue
            if ref.commit and old.commit and ref.commit != old.commit:
                warnings.append(f"{old.title}: files pin commits {old.commit} and {ref.commit}")
            rows[key] = dataclasses.replace(
                old,
                classes=tuple(dict.fromkeys((*old.classes, *entry.classes))),
                url=old.url or ref.url,
                registry_id=old.registry_id or ref.id,
                version=old.version or ref.version,
                commit=old.commit or ref.commit,
            )
        for n in a.nodes:
            if n.kind == "core":
                core.append(n.class_type)
            elif n.kind == "custom" and n.pack is None and n.candidates:
                key = f"class:{n.class_type}"
                rows.setdefault(
                    key,
                    PlanPack(
                        key,
                        n.class_type,
                        (n.class_type,),
                        "candidates",
                        candidates=n.candidates,
                        recommended=n.recommended.identity if n.recommended else None,
                        reasons=n.reasons,
                    ),
                )
            elif n.kind == "unknown":
                key = f"class:{n.class_type}"
                rows.setdefault(key, PlanPack(key, n.class_type, (n.class_type,), "unknown"))
    _settle_across_files(rows)
    out = list(rows.values())
    if core:
        classes = tuple(dict.fromkeys(core))
        out.insert(0, PlanPack("comfy-core", "ComfyUI (built in)", classes, "built-in"))
    order = {"unknown": 0, "candidates": 1, "install": 2, "built-in": 3}
    out.sort(key=lambda p: (order[p.status], p.title.lower()))
    return out


def _settle_across_files(rows: dict[str, PlanPack]) -> None:
    """A "several candidates" row whose candidate another file's row installs joins that row
    (one file's own classes were settled by ``analyze`` already)."""
    changed = True
    while changed:
        changed = False
        for key, row in list(rows.items()):
            if row.status != "candidates":
                continue
            pick = next(
                (c for c in row.candidates if rows.get(c.identity, row).status == "install"),
                None,
            )
            if pick is None:
                continue
            target = rows[pick.identity]
            rows[pick.identity] = dataclasses.replace(
                target, classes=tuple(dict.fromkeys((*target.classes, *row.classes)))
            )
            del rows[key]
            changed = True


def target_context(ctx: CoreContext, project: str | None) -> Context:
    """The packs and node definitions of an existing target project (empty for a new one)."""
    if not project:
        return Context()
    from comfymanager.core.projects import ProjectStore

    store = ProjectStore(ctx.paths)
    try:
        record = store.load(project)
    except ComfyManagerError as exc:
        log.info("no context from project %s: %s", project, exc.message)
        return Context()
    defs = project_definitions(store.dirs(project).root)
    return project_context([(p.url, p.folder) for p in record.packs], defs)


def _suggestions(found: tuple[ModelSuggestion, ...]) -> tuple[Suggestion, ...]:
    return tuple(Suggestion(s.url, s.directory, s.filename, "model list", s.size) for s in found)


def _auto_pick(name: str, sha256: str | None, sugg: tuple[Suggestion, ...]) -> Suggestion | None:
    """Only a suggestion with exactly the same file name AND the same sha256 is taken."""
    if not sha256:
        return None
    base = name.rsplit("/", 1)[-1]
    for s in sugg:
        if s.filename == base and s.sha256 and s.sha256.lower() == sha256.lower():
            return s
    return None


def model_status(
    present: bool, active: bool, directory: str | None, urls: tuple[str, ...]
) -> ModelStatus:
    if present:
        return "present"
    if not active:
        return "inactive"
    if directory is None or not urls:
        return "unknown"
    return "mirrors" if len(urls) > 1 else "download"


@dataclass
class _Merged:
    urls: list[str] = field(default_factory=list)
    sha256: str | None = None
    active: bool = False
    suggestions: tuple[Suggestion, ...] = ()


def make_model(
    store: Path,
    directory: str | None,
    name: str,
    urls: tuple[str, ...],
    sha256: str | None,
    active: bool,
    size: int | None = None,
    suggestions: tuple[Suggestion, ...] = (),
) -> PlanModel:
    """One model row with its status (a suggestion is used only on exact name + hash)."""
    present = directory is not None and store_has(store, directory, name)
    picked = None if urls or present else _auto_pick(name, sha256, suggestions)
    if picked is not None:
        urls = (picked.url,)
        directory = directory or picked.directory
    status = model_status(present, active, directory, urls)
    return PlanModel(directory, name, urls, sha256, size, status, suggestions, picked is not None)


def _merge_models(
    ctx: CoreContext, analyses: list[Analysis], manifest: Manifest | None
) -> list[PlanModel]:
    merged: dict[tuple[str | None, str], _Merged] = {}
    for a in analyses:
        for m in a.models:
            r = m.requirement
            item = merged.setdefault((r.directory, r.name), _Merged())
            item.urls += [u for u in r.urls if u not in item.urls]
            item.sha256 = item.sha256 or r.sha256
            item.active = item.active or r.active
            item.suggestions = item.suggestions or _suggestions(m.suggestions)
    sizes = {(m.directory, m.name): m.size for m in manifest.models} if manifest else {}
    out = [
        make_model(
            ctx.store,
            d,
            n,
            tuple(i.urls),
            i.sha256,
            i.active,
            sizes.get((d or "", n)),
            i.suggestions,
        )
        for (d, n), i in merged.items()
    ]
    order = {"unknown": 0, "mirrors": 1, "download": 2, "present": 3, "inactive": 4}
    out.sort(key=lambda m: (order[m.status], (m.directory or "~"), m.name.lower()))
    return out


def plan_import(
    ctx: CoreContext,
    files: list[Path],
    *,
    db: NodeDatabase | None,
    lookup: bool = False,
    session: requests.Session | None = None,
    project: str | None = None,
) -> ImportPlan:
    """Analyse ``files`` and merge them into one plan. Raises ``WorkflowError`` naming a bad
    file (the message says which one and why). ``project``: an existing target project, whose
    packs settle classes several packs provide and whose node definitions are trusted."""
    if not files:
        raise InvalidInput("No file to import.", "Choose a workflow file.")
    store = ctx.store

    def is_present(folder: str, name: str) -> bool:
        return store_has(store, folder, name)

    registry = RegistryLookup(ctx.settings.registry_url, db, session) if lookup else None
    context = target_context(ctx, project)
    analyses = [analyze(Path(f), db, is_present, lookup=registry, context=context) for f in files]
    failed = (registry.failed,) if registry is not None and registry.failed else ()
    return plan_from_analyses(ctx, analyses, failed)


def settled_warning(warning: str, settled: set[str]) -> bool:
    """True for a "CLASS: several candidates" warning about a class in ``settled``."""
    head, sep, _ = warning.partition(": several candidates")
    return bool(sep) and head.rsplit(": ", 1)[-1] in settled


def _settled_warning(warning: str, open_rows: set[str]) -> bool:
    head, sep, _ = warning.partition(": several candidates")
    return bool(sep) and head.rsplit(": ", 1)[-1] not in open_rows


def plan_from_analyses(
    ctx: CoreContext, analyses: list[Analysis], extra_warnings: tuple[str, ...] = ()
) -> ImportPlan:
    """Merge analyses made already (``analyze``) into one plan; the files are their sources."""
    warnings: list[str] = []
    for a in analyses:
        prefix = f"{a.source.name}: " if len(analyses) > 1 else ""
        warnings += [prefix + w for w in a.warnings]
    warnings += extra_warnings
    manifest: Manifest | None = None
    for a in analyses:
        if a.format in ("manifest", "launcher"):
            if manifest is not None:
                warnings.append(f"{a.source.name}: only the first manifest's pins are used")
                continue
            manifest = _manifest_of_file(a.source)
    versions = [a.comfyui_version for a in analyses if a.comfyui_version]
    packs = _merge_pack_rows(analyses, warnings)
    open_rows = {c for p in packs if p.status == "candidates" for c in p.classes}
    warnings = [w for w in warnings if not _settled_warning(w, open_rows)]
    return ImportPlan(
        files=tuple(Path(a.source) for a in analyses),
        analyses=tuple(analyses),
        packs=tuple(packs),
        models=tuple(_merge_models(ctx, analyses, manifest)),
        free_bytes=free_space(ctx.store),
        comfyui_version=versions[0] if versions else None,
        warnings=tuple(dict.fromkeys(warnings)),
        node_db_available=all(a.node_db_available for a in analyses),
        manifest=manifest,
    )


def _head_size(session: requests.Session, url: str) -> int | None:
    try:
        resp = session.head(url, allow_redirects=False, timeout=(5, 15))
        linked = resp.headers.get("X-Linked-Size")
        if linked and linked.isdigit():
            return int(linked)
        if 300 <= resp.status_code < 400:
            resp = session.head(url, allow_redirects=True, timeout=(5, 15))
        length = resp.headers.get("Content-Length")
        if resp.status_code == 200 and length and length.isdigit():
            return int(length)
    except requests.RequestException as exc:
        log.info("no size for %s (%s)", url.split("?")[0], type(exc).__name__)
    return None


def fill_sizes(plan: ImportPlan, session: requests.Session, endpoints: Endpoints) -> ImportPlan:
    """Ask each model's first usable URL for its size (HEAD); unknown sizes stay None."""
    models: list[PlanModel] = []
    for m in plan.models:
        if m.size is None and m.status in ("download", "mirrors"):
            for url in m.urls:
                try:
                    target = classify(url, endpoints).url
                except InvalidInput:
                    continue
                size = _head_size(session, target)
                if size is not None:
                    m = dataclasses.replace(m, size=size)
                    break
        models.append(m)
    return dataclasses.replace(plan, models=tuple(models))
