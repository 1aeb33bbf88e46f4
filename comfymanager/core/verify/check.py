"""The check of a node verification (``verify.py``): the workflows' node types against the
project's real node definitions (with the pack that should provide a missing one), and each
model the workflows name: its folder (from the real input when the workflow does not say),
then present, queued for download or missing.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from comfymanager.core.context import CoreContext
from comfymanager.core.errors import Cancelled, ComfyManagerError
from comfymanager.core.models.folders import FOLDER_KEYS, LEGACY_FOLDERS, is_pack_folder
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import Project, ProjectDirs, ProjectStore
from comfymanager.core.verify.graph import WorkflowNeeds
from comfymanager.core.verify.result import (
    NOT_INSTALLED,
    ClassDef,
    ModelCheck,
    NodeCheck,
    NodeDefinitions,
)

EnqueueDownload = Callable[..., object]


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


def check_nodes(
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
            # an INPUT_TYPES() that raises here (no model files, markers for names) may work
            # with real files: the class exists; the error is kept as a note, not a miss
            note = f"its inputs could not be read: {found.input_error}" if found.input_error else ""
            out.append(NodeCheck(cls, "present", found.pack, note))
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


def model_rows(
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


def _share_pack_folder(ctx: CoreContext, dirs: ProjectDirs, folder: str) -> None:
    """A folder a pack registers itself (``inpaint``) gets its place in the store, and the
    project's ``extra_model_paths.yaml`` lists it, so ComfyUI finds what lands there."""
    from comfymanager.core.models.store import write_extra_model_paths

    (ctx.store / folder).mkdir(parents=True, exist_ok=True)
    if dirs.extra_model_paths.exists():
        write_extra_model_paths(ctx.store, dirs.extra_model_paths)


def check_models(
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
    from comfymanager.core.models.search_paths import model_present, project_search

    store = ctx.store
    dirs = ProjectStore(ctx.paths).dirs(project.id)
    comfyui, roots = project_search(project, dirs)  # an adopted install's folders too
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
        if model_present(store, folder, name, comfyui=comfyui, roots=roots):
            out.append(ModelCheck(folder, name, "present", how))
        elif (
            folder not in FOLDER_KEYS
            and folder not in LEGACY_FOLDERS
            and not is_pack_folder(folder)
        ):
            why = f"'{folder}' cannot be a models folder: put the file in {in_project.parent}"
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
            if folder not in FOLDER_KEYS and folder not in LEGACY_FOLDERS:
                _share_pack_folder(ctx, dirs, folder)
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
