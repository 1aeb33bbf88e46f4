"""Export a project as a manifest: everything needed to rebuild it on another machine.

ComfyUI source and commit, Python and torch backend, every node pack with its commit (or registry
version), every model the project uses with folder, name, URLs, size and sha256 (computed lazily
through the store index and cached there), and the project's UI workflows. Importing the file
(``plan_import`` + ``apply_import``) rebuilds the same project.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from comfymanager.core.context import CoreContext
from comfymanager.core.errors import ComfyManagerError
from comfymanager.core.models.index import ModelIndex
from comfymanager.core.progress import NULL_REPORTER, CancelToken, Reporter
from comfymanager.core.projects import Project, ProjectStore
from comfymanager.core.workflow.manifest import (
    KNOWN_DIRECTORIES,
    ComfyUIPin,
    Manifest,
    ManifestModel,
    ManifestPack,
    ManifestWorkflow,
    manifest_to_dict,
    read_manifest,
)

log = logging.getLogger(__name__)

_COMMIT = re.compile(r"^[0-9a-fA-F]{4,40}$")
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+-]{0,63}$")


def portable_source(source: str) -> str:
    """A local repository path becomes a ``file://`` URL (manifests hold URLs only)."""
    if not source or urlsplit(source).scheme in ("http", "https", "ssh", "git", "file"):
        return source
    if source.startswith("git@"):
        return source
    path = Path(source).expanduser()
    return path.resolve().as_uri() if path.is_absolute() else source


def _packs(project: Project) -> list[ManifestPack]:
    out = []
    for p in project.packs:
        if p.url:
            commit = p.commit if _COMMIT.match(p.commit or "") else None
            out.append(
                ManifestPack(
                    url=portable_source(p.url),
                    registry_id=p.registry_id or None,
                    commit=commit.lower() if commit else None,
                    folder_name=p.folder,
                )
            )
        elif p.registry_id:
            version = p.version or p.commit
            out.append(
                ManifestPack(
                    url=None,
                    registry_id=p.registry_id,
                    version=version if _VERSION.match(version or "") else None,
                    folder_name=p.folder,
                    archive_sha256=p.archive_sha256 or None,
                )
            )
    return out


def _models(
    ctx: CoreContext, project: Project, report: Reporter, cancel: CancelToken
) -> list[ManifestModel]:
    store = ctx.store
    index = ModelIndex.load(store)
    out: list[ManifestModel] = []
    for entry in project.models:
        folder, name = entry.get("directory", ""), entry.get("name", "")
        if folder not in KNOWN_DIRECTORIES:
            report.log(f"{folder}/{name}: not a known model folder; left out of the manifest")
            continue
        cancel.check()
        try:
            found = index.find(folder, name)
            if found is None:
                if not (store / folder / name).is_file():
                    report.log(f"{folder}/{name} is not in the store; listed without a hash")
                    out.append(ManifestModel(folder, name))
                    continue
                found = index.record(folder, name)
            report.stage("hashing", f"Hashing {folder}/{name}")
            sha = index.sha256(folder, name, report, cancel)
            found = index.find(folder, name) or found
        except ComfyManagerError as exc:
            report.log(f"{folder}/{name}: {exc}")
            out.append(ManifestModel(folder, name))
            continue
        urls = tuple(u for u in found.sources if urlsplit(u).scheme in ("http", "https"))
        out.append(ManifestModel(folder, name, urls, found.size, sha))
    if store.is_dir():
        index.save()
    return out


def _workflows(ctx: CoreContext, project: Project, report: Reporter) -> list[ManifestWorkflow]:
    folder = ProjectStore(ctx.paths).dirs(project.id).workflows
    out = []
    for rel in project.workflows:
        path = folder / rel
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            report.log(f"workflow {rel} is unreadable ({exc}); left out")
            continue
        if not isinstance(content, dict) or not isinstance(content.get("nodes"), list):
            report.log(f"workflow {rel} is not a UI workflow; left out")
            continue
        out.append(ManifestWorkflow(rel.removesuffix(".json"), content))
    return out


def export_manifest(
    ctx: CoreContext,
    project_id: str,
    *,
    report: Reporter = NULL_REPORTER,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """The project's manifest as a JSON-ready dict (validated by reading it back)."""
    cancel = cancel or CancelToken()
    project = ProjectStore(ctx.paths).load(project_id)
    manifest = Manifest(
        comfyui=ComfyUIPin(
            source=portable_source(project.comfyui_source or ctx.settings.comfyui_source),
            commit=project.comfyui_commit or None,
            ref=project.comfyui_ref or None,
        ),
        python_version=project.python_version or None,
        torch_backend=project.torch_backend or None,
        packs=tuple(_packs(project)),
        models=tuple(_models(ctx, project, report, cancel)),
        workflows=tuple(_workflows(ctx, project, report)),
    )
    data = manifest_to_dict(manifest)
    read_manifest(json.loads(json.dumps(data)))  # what we write must be what we can read
    return data
