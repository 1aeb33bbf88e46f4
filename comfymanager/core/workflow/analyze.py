"""``analyze(path, db)``: a workflow file -> the node packs and model files it needs.

Local, fast and network-free (the optional ``lookup`` callback is the only way out). The result
is a frozen ``Analysis``; ``analysis_to_json`` gives the CLI/issue contract shape.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from comfymanager.core.workflow.formats import Format, LoadedWorkflow, guard_reader, load_workflow
from comfymanager.core.workflow.graph import GraphWalk, walk_api, walk_ui
from comfymanager.core.workflow.manifest import Manifest, read_launcher, read_manifest
from comfymanager.core.workflow.models import (
    MODEL_EXTS,
    ModelRequirement,
    ModelSuggestion,
    collect_models,
    suggest_models,
)
from comfymanager.core.workflow.names import refuse_bad_names
from comfymanager.core.workflow.nodedb import NodeDatabase, normalize_repo_url
from comfymanager.core.workflow.nodedefs import NodeDefinitions, layered, shipped_definitions
from comfymanager.core.workflow.nodes import (
    Kind,
    PackRef,
    Resolution,
    resolve_class,
    resolve_from_map,
)

log = logging.getLogger(__name__)

IsPresent = Callable[[str, str], bool]
Lookup = Callable[[str], Resolution | None]

DB_UNAVAILABLE = (
    "node database unavailable: custom node packs cannot be identified "
    "(refresh it when online, or point the node database source at a local copy)"
)
_VIA_RANK = {"cnr_id": 3, "aux_id": 3, "frontend": 2, "registry": 2, "preemption": 1, "map": 1}
_SEMVER = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?")
RECOMMEND_MIN_STARS = 50
RECOMMEND_LEAD = 5
"""A candidate is "recommended" with at least this many stars and this many times the next."""
HINT = "workflow hint"
IN_PLAN = "already in plan"
IN_PROJECT = "in project"
RECOMMENDED = "recommended"


@dataclass(frozen=True)
class NodeEntry:
    """One node class. ``candidates`` in order (context first, then popularity);
    ``reasons`` parallel to them ("workflow hint", "already in plan", "in project",
    "recommended" or ""). ``settled_by`` names the context that chose ``pack`` among several
    candidates; ``recommended`` is the clear popularity leader when nothing settled it."""

    class_type: str
    kind: Kind
    pack: PackRef | None
    candidates: tuple[PackRef, ...]
    count: int
    active: bool
    reasons: tuple[str, ...] = ()
    settled_by: str = ""
    recommended: PackRef | None = None


@dataclass(frozen=True)
class Context:
    """What is already known about the target: the packs installed in the project (normalised
    URLs and folder names) and its node definitions (a project scan's, else the shipped)."""

    project_packs: frozenset[str] = frozenset()
    defs: NodeDefinitions | None = None

    def has_pack(self, ref: PackRef) -> bool:
        if ref.key and ref.key in self.project_packs:
            return True
        name = (ref.key or ref.url or "").rstrip("/").rsplit("/", 1)[-1].lower()
        return bool(name) and name in self.project_packs


def project_context(packs: list[tuple[str, str]], defs: NodeDefinitions | None) -> Context:
    """A context from a project's pack records (url, folder) and its definitions."""
    names: set[str] = set()
    for url, folder in packs:
        if url:
            names.add(normalize_repo_url(url))
        if folder:
            names.add(folder.lower())
    if defs is not None:
        names |= {p.lower() for p in defs.packs}
    return Context(frozenset(names), layered(defs) if defs is not None else None)


@dataclass(frozen=True)
class PackEntry:
    pack: PackRef
    classes: tuple[str, ...]


@dataclass(frozen=True)
class ModelEntry:
    requirement: ModelRequirement
    present: bool | None
    suggestions: tuple[ModelSuggestion, ...]


@dataclass(frozen=True)
class Analysis:
    source: Path
    format: Format
    nodes: tuple[NodeEntry, ...]
    packs: tuple[PackEntry, ...]
    models: tuple[ModelEntry, ...]
    comfyui_version: str | None
    warnings: tuple[str, ...]
    node_db_available: bool
    # what was parsed, kept so the import saves it without reading the file again
    loaded: LoadedWorkflow | None = field(default=None, compare=False, repr=False)
    raw: bytes | None = field(default=None, compare=False, repr=False)  # a UI .json's bytes

    @property
    def missing_classes(self) -> tuple[str, ...]:
        return tuple(n.class_type for n in self.nodes if n.kind == "unknown")


def _semver_key(v: str) -> tuple[int, int, int]:
    m = _SEMVER.match(v)
    if not m:
        return (-1, -1, -1)
    return (int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0))


def _resolve_nodes(
    walk: GraphWalk,
    db: NodeDatabase | None,
    lookup: Lookup | None,
    warnings: list[str],
    context: Context,
) -> tuple[list[NodeEntry], list[str]]:
    best: dict[str, Resolution] = {}
    counts: dict[str, int] = {}
    active: dict[str, bool] = {}
    core_versions: list[str] = []
    defs = context.defs
    for node in walk.nodes:
        res = resolve_class(node.class_type, node.properties, db, defs)
        if res.kind == "core" and isinstance(node.properties.get("ver"), str):
            core_versions.append(node.properties["ver"])
        counts[node.class_type] = counts.get(node.class_type, 0) + 1
        active[node.class_type] = active.get(node.class_type, False) or node.active
        old = best.get(node.class_type)
        if (
            old is None
            or _VIA_RANK.get(res.via, 0) > _VIA_RANK.get(old.via, 0)
            or (
                old.pack
                and res.pack
                and old.pack.identity == res.pack.identity
                and (res.pack.version or res.pack.commit)
                and not (old.pack.version or old.pack.commit)
            )
        ):
            best[node.class_type] = res
    if lookup is not None:
        for name, res in list(best.items()):
            if res.kind == "unknown":
                hit = lookup(name)
                if hit is not None:
                    best[name] = hit
    entries = _choose(best, counts, active, db, context)
    entries.sort(
        key=lambda e: (
            ("core", "custom", "frontend", "unknown").index(e.kind),
            e.class_type.lower(),
        )
    )
    for e in entries:
        if e.kind == "custom" and e.pack is None and e.candidates:
            names = ", ".join(c.title for c in e.candidates[:5])
            more = f" and {len(e.candidates) - 5} more" if len(e.candidates) > 5 else ""
            rec = f"; recommended: {e.recommended.title}" if e.recommended else ""
            warnings.append(f"{e.class_type}: several candidates ({names}{more}){rec}; choose one")
        elif e.kind == "unknown" and db is not None:
            warnings.append(f"{e.class_type}: no known node pack provides this class")
    return entries, core_versions


def _stars(db: NodeDatabase | None, ref: PackRef) -> int:
    if db is None or ref.key is None:
        return -1
    stars = db.popularity(ref.key)
    return -1 if stars is None else stars


def rank_candidates(
    candidates: tuple[PackRef, ...], db: NodeDatabase | None
) -> tuple[tuple[PackRef, ...], PackRef | None]:
    """Candidates by popularity (stable for ties), and the clear leader if there is one."""
    ranked = tuple(sorted(candidates, key=lambda c: -_stars(db, c)))
    if not ranked:
        return ranked, None
    top = _stars(db, ranked[0])
    second = _stars(db, ranked[1]) if len(ranked) > 1 else 0
    clear = top >= RECOMMEND_MIN_STARS and top >= RECOMMEND_LEAD * max(second, 1)
    return ranked, ranked[0] if clear else None


def _choose(
    best: dict[str, Resolution],
    counts: dict[str, int],
    active: dict[str, bool],
    db: NodeDatabase | None,
    context: Context,
) -> list[NodeEntry]:
    """Settle classes several packs provide from context: a pack the plan already installs
    for another class, then a pack already in the project; otherwise rank by popularity."""
    chosen = {r.pack.identity for r in best.values() if r.pack is not None}
    settled: dict[str, tuple[PackRef, str]] = {}
    changed = True
    while changed:  # a class settled here can settle the next one
        changed = False
        for name, r in best.items():
            if name in settled or r.kind != "custom" or r.pack is not None or not r.candidates:
                continue
            pick = next((c for c in r.candidates if c.identity in chosen), None)
            reason = IN_PLAN
            if pick is None:
                pick = next((c for c in r.candidates if context.has_pack(c)), None)
                reason = IN_PROJECT
            if pick is not None:
                settled[name] = (pick, reason)
                chosen.add(pick.identity)
                changed = True
    out: list[NodeEntry] = []
    for name, r in best.items():
        ranked, leader = rank_candidates(r.candidates, db)
        pack, settled_by, recommended = r.pack, "", None
        if name in settled:
            pack, settled_by = settled[name]
            ranked = (pack, *[c for c in ranked if c.identity != pack.identity])
        elif r.kind == "custom" and r.pack is not None and r.via in ("cnr_id", "aux_id"):
            settled_by = HINT
            if db is not None:  # the other packs that provide it, for the record
                others, _ = rank_candidates(resolve_from_map(name, db).candidates, db)
                same = {r.pack.identity, r.pack.key}
                ranked = (r.pack, *[c for c in others if c.key not in same])
                if len(ranked) == 1:
                    ranked = ()
        elif r.pack is None:
            recommended = leader
        reasons = tuple(
            settled_by
            if pack is not None and c.identity == pack.identity
            else (RECOMMENDED if recommended is not None and c is recommended else "")
            for c in ranked
        )
        out.append(
            NodeEntry(
                r.class_type,
                r.kind,
                pack,
                ranked,
                counts[name],
                active[name],
                reasons,
                settled_by,
                recommended,
            )
        )
    return out


def _merge_packs(
    entries: list[NodeEntry], pinned: list[PackRef], warnings: list[str]
) -> list[PackEntry]:
    packs: dict[str, PackRef] = {}
    classes: dict[str, list[str]] = {}
    id_to_identity: dict[str, str] = {}

    def add(ref: PackRef, cls: str | None) -> None:
        ident = ref.identity
        if ref.key is None and ref.id and ref.id in id_to_identity:
            ident = id_to_identity[ref.id]
        old = packs.get(ident)
        if old is None:
            packs[ident] = ref
        else:
            version = old.version
            if ref.version and old.version and ref.version != old.version:
                warnings.append(
                    f"{old.title}: nodes were saved with versions {old.version} and "
                    f"{ref.version}; using the newer"
                )
                version = max(old.version, ref.version, key=_semver_key)
            commit = old.commit or ref.commit
            packs[ident] = PackRef(
                old.key or ref.key,
                old.id or ref.id,
                old.url or ref.url,
                old.title,
                version or ref.version,
                commit,
            )
        if ref.id:
            id_to_identity.setdefault(ref.id, ident)
        names = classes.setdefault(ident, [])
        if cls and cls not in names:
            names.append(cls)

    for ref in pinned:
        add(ref, None)
    for e in entries:
        if e.pack is not None:
            add(e.pack, e.class_type)
    return [PackEntry(packs[k], tuple(classes[k])) for k in packs]


def _presence(req: ModelRequirement, is_present: IsPresent | None) -> bool | None:
    if is_present is None or req.directory is None:
        return None
    if is_present(req.directory, req.name):
        return True
    if req.directory == "embeddings" and not req.name.lower().endswith(MODEL_EXTS):
        return any(
            is_present(req.directory, req.name + ext)
            for ext in (".safetensors", ".pt", ".bin", ".pth")
        )
    return False


def _manifest_of(loaded: LoadedWorkflow, warnings: list[str]) -> Manifest | None:
    if loaded.manifest is None:
        return None
    if loaded.format == "launcher":
        manifest, notes = read_launcher(loaded.manifest)
        warnings.extend(notes)
        return manifest
    return read_manifest(loaded.manifest)


@guard_reader
def analyze(
    path: Path,
    db: NodeDatabase | None,
    is_present: IsPresent | None = None,
    *,
    lookup: Lookup | None = None,
    context: Context | None = None,
) -> Analysis:
    """Analyse one file. Raises ``WorkflowError`` (an ``InvalidInput``) when it is unusable.

    ``context``: the target project's packs and node definitions (default: none installed,
    the definitions shipped with the app)."""
    context = context or Context()
    if context.defs is None:
        context = Context(context.project_packs, shipped_definitions())
    loaded = load_workflow(path)
    warnings = list(loaded.warnings)
    manifest = _manifest_of(loaded, warnings)
    walks: list[GraphWalk] = []
    if loaded.ui is not None:
        walks.append(walk_ui(loaded.ui))
    if loaded.api is not None:
        walks.append(walk_api(loaded.api))
    if manifest is not None and loaded.format == "manifest":
        walks += [walk_ui(w.content) for w in manifest.workflows]
    walk = GraphWalk()
    for w in walks:
        walk.nodes += w.nodes
        walk.instances += w.instances
        walk.declared_models += w.declared_models
        walk.warnings += w.warnings
        walk.version_hints += w.version_hints
    warnings += walk.warnings
    if db is None:
        warnings.insert(0, DB_UNAVAILABLE)
    nodes, core_versions = _resolve_nodes(walk, db, lookup, warnings, context)
    pinned: list[PackRef] = []
    if manifest is not None:
        for p in manifest.packs:
            key = normalize_repo_url(p.url) if p.url else None
            title = (db.pack(key).title if db and key else None) or p.folder_name or p.url or ""
            pinned.append(
                PackRef(key, p.registry_id, p.url, title or str(p.registry_id), p.version, p.commit)
            )
        for m in manifest.models:
            walk.declared_models.append(
                ({"name": m.name, "directory": m.directory, "url": None}, None)
            )
    reqs, model_warnings = collect_models(walk, context.defs)
    warnings += model_warnings
    reqs = refuse_bad_names(reqs, warnings)  # over-long, NUL, absolute: a warning, not a row
    if manifest is not None:
        reqs = _add_manifest_urls(reqs, manifest)
    models = tuple(
        ModelEntry(r, _presence(r, is_present), tuple(suggest_models(r.name, db)))
        for r in sorted(reqs, key=lambda r: (r.directory or "~", r.name.lower()))
    )
    version: str | None = None
    if core_versions:
        version = max(core_versions, key=_semver_key)
        if _semver_key(version)[0] < 0:
            version = None
    if manifest is not None and manifest.comfyui.ref:
        version = manifest.comfyui.ref
    return Analysis(
        source=loaded.source,
        format=loaded.format,
        nodes=tuple(nodes),
        packs=tuple(_merge_packs(nodes, pinned, warnings)),
        models=models,
        comfyui_version=version,
        warnings=tuple(dict.fromkeys(warnings)),
        node_db_available=db is not None,
        loaded=loaded,
        raw=_raw_json(path, loaded),
    )


def _raw_json(path: Path, loaded: LoadedWorkflow) -> bytes | None:
    """A UI workflow file's own bytes (saved as they are when they are strict JSON)."""
    if path.suffix.lower() != ".json" or loaded.ui is None:
        return None
    try:
        return path.read_bytes()
    except OSError:
        return None


def _add_manifest_urls(reqs: list[ModelRequirement], manifest: Manifest) -> list[ModelRequirement]:
    extra = {(m.directory, m.name): m for m in manifest.models}
    out = []
    for r in reqs:
        m = extra.get((r.directory or "", r.name))
        if m is None:
            out.append(r)
            continue
        urls = tuple(dict.fromkeys([*r.urls, *m.urls]))
        out.append(ModelRequirement(r.directory, r.name, urls, r.sha256 or m.sha256, r.active))
    return out


def _pack_json(p: PackRef) -> dict[str, Any]:
    return {"id": p.id, "url": p.url, "title": p.title, "version": p.version, "commit": p.commit}


def _suggestion_json(s: ModelSuggestion) -> dict[str, Any]:
    return {
        "origin": "model list",
        "name": s.name,
        "filename": s.filename,
        "directory": s.directory,
        "url": s.url,
        "size": s.size or None,
        "sha256": None,
    }


def analysis_to_json(analysis: Analysis, file_as_given: str) -> dict[str, Any]:
    """The contract shape (one object per file; see the brief / issue)."""
    return {
        "file": file_as_given,
        "format": analysis.format,
        "comfyui_version": analysis.comfyui_version,
        "nodes": [
            {
                "class_type": n.class_type,
                "kind": n.kind,
                "pack": _pack_json(n.pack) if n.pack else None,
                "settled_by": n.settled_by or None,
                "candidates": [
                    {
                        **_pack_json(c),
                        "reason": (n.reasons[i] if i < len(n.reasons) else "") or None,
                    }
                    for i, c in enumerate(n.candidates)
                ],
            }
            for n in analysis.nodes
        ],
        "packs": [{**_pack_json(p.pack), "classes": list(p.classes)} for p in analysis.packs],
        "models": [
            {
                "name": m.requirement.name,
                "directory": m.requirement.directory,
                "urls": list(m.requirement.urls),
                "sha256": m.requirement.sha256,
                "active": m.requirement.active,
                "present": m.present,
                "suggestions": [_suggestion_json(s) for s in m.suggestions],
            }
            for m in analysis.models
        ],
        "warnings": list(analysis.warnings),
    }


def error_to_json(file_as_given: str, message: str) -> dict[str, Any]:
    return {"file": file_as_given, "error": message}
