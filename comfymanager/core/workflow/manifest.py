"""The project manifest (``"kind": "comfymanager.manifest"``, version 1) and the older
ComfyUI-Launcher format read into the same shape.

A manifest pins everything a project needs: ComfyUI (source, commit, ref), the Python version,
the torch backend, node packs (git URL and/or registry id, version or commit, folder name),
model files (folder, name, mirror URLs, size, sha256) and the workflows themselves. Everything
read from a file is validated: a manifest comes from other people.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from comfymanager.core import persist
from comfymanager.core.models.folders import FOLDER_KEYS, LEGACY_FOLDERS
from comfymanager.core.workflow.formats import LAUNCHER_FORMAT, MANIFEST_KIND, WorkflowError
from comfymanager.core.workflow.names import model_name_problem

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1
DEFAULT_COMFYUI_SOURCE = "https://github.com/comfyanonymous/ComfyUI.git"

KNOWN_DIRECTORIES = frozenset(FOLDER_KEYS) | frozenset(LEGACY_FOLDERS)
"""Model folder keys a manifest may name (core keys, legacy aliases, popular packs' keys)."""

_GIT_URL = re.compile(r"^(?:(?:https?|ssh|git|file)://[^\s]+|git@[A-Za-z0-9.-]+:[^\s]+)$")
_FOLDER = re.compile(r"^[A-Za-z0-9_+.-][A-Za-z0-9 _+.-]{0,127}$")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_COMMIT = re.compile(r"^[0-9a-fA-F]{4,40}$")
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+-]{0,63}$")
_REF = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._/+-]{0,127}$")


class ManifestError(WorkflowError):
    """A manifest field is missing or not acceptable; the message names the field."""


@dataclass(frozen=True)
class ComfyUIPin:
    source: str = DEFAULT_COMFYUI_SOURCE
    commit: str | None = None
    ref: str | None = None


@dataclass(frozen=True)
class ManifestPack:
    url: str | None
    registry_id: str | None = None
    version: str | None = None
    commit: str | None = None
    folder_name: str | None = None
    archive_sha256: str | None = None  # a registry zip's exact bytes (pins what ran)


@dataclass(frozen=True)
class ManifestModel:
    directory: str
    name: str
    urls: tuple[str, ...] = ()
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class ManifestWorkflow:
    name: str
    content: dict[str, Any]


@dataclass(frozen=True)
class Manifest:
    comfyui: ComfyUIPin = ComfyUIPin()
    python_version: str | None = None
    torch_backend: str | None = None
    packs: tuple[ManifestPack, ...] = ()
    models: tuple[ManifestModel, ...] = ()
    workflows: tuple[ManifestWorkflow, ...] = ()


# --- validation ------------------------------------------------------------------------


def _bad(field: str, value: Any, why: str) -> ManifestError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return ManifestError(
        f"Manifest field {field} = {shown} is not acceptable: {why}.",
        "Fix that entry in the manifest (or re-export it from comfymanager).",
    )


def _opt_str(
    d: dict[str, Any], key: str, field: str, rx: re.Pattern[str] | None = None
) -> str | None:
    value = d.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _bad(field, value, "expected text")
    if rx is not None and not rx.match(value):
        raise _bad(field, value, "unexpected characters or format")
    return value


def validate_git_url(url: Any, field: str = "url") -> str:
    if not isinstance(url, str) or not _GIT_URL.match(url) or url.startswith("-"):
        raise _bad(field, url, "expected a git URL (https://, ssh://, git@host:path or file://)")
    return url


def validate_model_name(name: Any, field: str = "name") -> str:
    if not isinstance(name, str) or not name.strip():
        raise _bad(field, name, "expected a file name")
    problem = model_name_problem(name)
    if problem is not None:
        raise _bad(field, name, problem)
    return name.replace("\\", "/")


def validate_directory(directory: Any, field: str = "directory") -> str:
    if not isinstance(directory, str) or directory not in KNOWN_DIRECTORIES:
        raise _bad(field, directory, "not a known model folder key")
    return directory


def _list(d: dict[str, Any], key: str) -> list[Any]:
    value = d.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad(key, value, "expected a list")
    return value


def _pack(i: int, p: Any) -> ManifestPack:
    f = f"packs[{i}]"
    if not isinstance(p, dict):
        raise _bad(f, p, "expected an object")
    url = p.get("url")
    if url is not None:
        url = validate_git_url(url, f"{f}.url")
    registry_id = _opt_str(p, "registry_id", f"{f}.registry_id", _REF)
    if url is None and registry_id is None:
        raise _bad(f, p, "a pack needs a url or a registry_id")
    folder = p.get("folder_name")
    if folder is not None and (
        not isinstance(folder, str) or not _FOLDER.match(folder) or folder in (".", "..")
    ):
        raise _bad(f"{f}.folder_name", folder, "expected a plain folder name")
    commit = _opt_str(p, "commit", f"{f}.commit", _COMMIT)
    sha = _opt_str(p, "archive_sha256", f"{f}.archive_sha256", _SHA256)
    return ManifestPack(
        url=url,
        registry_id=registry_id,
        version=_opt_str(p, "version", f"{f}.version", _VERSION),
        commit=commit.lower() if commit else None,
        folder_name=folder,
        archive_sha256=sha.lower() if sha else None,
    )


def _model(i: int, m: Any) -> ManifestModel:
    f = f"models[{i}]"
    if not isinstance(m, dict):
        raise _bad(f, m, "expected an object")
    urls = m.get("urls") or []
    if not isinstance(urls, list) or not all(
        isinstance(u, str) and re.match(r"^https?://\S+$", u) for u in urls
    ):
        raise _bad(f"{f}.urls", urls, "expected a list of http(s) URLs")
    size = m.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise _bad(f"{f}.size", size, "expected a byte count")
    sha = _opt_str(m, "sha256", f"{f}.sha256", _SHA256)
    return ManifestModel(
        directory=validate_directory(m.get("directory"), f"{f}.directory"),
        name=validate_model_name(m.get("name"), f"{f}.name"),
        urls=tuple(dict.fromkeys(urls)),
        size=size,
        sha256=sha.lower() if sha else None,
    )


def _workflow(i: int, w: Any) -> ManifestWorkflow:
    f = f"workflows[{i}]"
    if not isinstance(w, dict):
        raise _bad(f, w, "expected an object")
    name = w.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise _bad(f"{f}.name", name, "expected a name")
    content = w.get("content")
    if not isinstance(content, dict) or not isinstance(content.get("nodes"), list):
        raise _bad(f"{f}.content", "...", "expected a UI workflow (an object with a nodes list)")
    return ManifestWorkflow(name=name, content=content)


def read_manifest(data: dict[str, Any]) -> Manifest:
    """Validate a manifest dict. Raises ``ManifestError`` naming the first bad field."""
    if not isinstance(data, dict) or data.get("kind") != MANIFEST_KIND:
        raise _bad(
            "kind",
            data.get("kind") if isinstance(data, dict) else data,
            f"expected {MANIFEST_KIND!r}",
        )
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise _bad("version", version, "expected a number")
    if version > MANIFEST_VERSION:
        raise ManifestError(
            f"This manifest has format {version}; this comfymanager reads up to "
            f"{MANIFEST_VERSION}.",
            "Update comfymanager to open it.",
        )
    c = data.get("comfyui") or {}
    if not isinstance(c, dict):
        raise _bad("comfyui", c, "expected an object")
    source = c.get("source") or DEFAULT_COMFYUI_SOURCE
    commit = _opt_str(c, "commit", "comfyui.commit", _COMMIT)
    comfyui = ComfyUIPin(
        source=validate_git_url(source, "comfyui.source"),
        commit=commit.lower() if commit else None,
        ref=_opt_str(c, "ref", "comfyui.ref", _REF),
    )
    return Manifest(
        comfyui=comfyui,
        python_version=_opt_str(
            data, "python_version", "python_version", re.compile(r"^3\.\d{1,2}(\.\d{1,3})?$")
        ),
        torch_backend=_opt_str(data, "torch_backend", "torch_backend", _REF),
        packs=tuple(_pack(i, p) for i, p in enumerate(_list(data, "packs"))),
        models=tuple(_model(i, m) for i, m in enumerate(_list(data, "models"))),
        workflows=tuple(_workflow(i, w) for i, w in enumerate(_list(data, "workflows"))),
    )


def _finite(value: Any, depth: int = 0) -> Any:
    """NaN/inf become null (manifests are strict JSON); deep structures are kept as they are."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if depth > 200:
        return value
    if isinstance(value, dict):
        return {k: _finite(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v, depth + 1) for v in value]
    return value


def manifest_to_dict(m: Manifest) -> dict[str, Any]:
    """The manifest as a JSON-ready dict, ``kind`` and ``version`` included."""
    return {
        "kind": MANIFEST_KIND,
        "version": MANIFEST_VERSION,
        "comfyui": {"source": m.comfyui.source, "commit": m.comfyui.commit, "ref": m.comfyui.ref},
        "python_version": m.python_version,
        "torch_backend": m.torch_backend,
        "packs": [
            {
                "url": p.url,
                "registry_id": p.registry_id,
                "version": p.version,
                "commit": p.commit,
                "folder_name": p.folder_name,
                **({"archive_sha256": p.archive_sha256} if p.archive_sha256 else {}),
            }
            for p in m.packs
        ],
        "models": [
            {
                "directory": x.directory,
                "name": x.name,
                "urls": list(x.urls),
                "size": x.size,
                "sha256": x.sha256,
            }
            for x in m.models
        ],
        "workflows": [{"name": w.name, "content": _finite(w.content)} for w in m.workflows],
    }


def write_manifest(path: Path, m: Manifest) -> None:
    """Write atomically through ``persist.write_json``."""
    payload = manifest_to_dict(m)
    del payload["kind"], payload["version"]
    persist.write_json(path, MANIFEST_KIND, MANIFEST_VERSION, payload)


# --- ComfyUI-Launcher ------------------------------------------------------------------


def read_launcher(data: dict[str, Any]) -> tuple[Manifest, list[str]]:
    """The launcher format in manifest shape, leniently: bad entries become warnings."""
    if not isinstance(data, dict) or data.get("format") != LAUNCHER_FORMAT:
        raise _bad(
            "format",
            data.get("format") if isinstance(data, dict) else data,
            f"expected {LAUNCHER_FORMAT!r}",
        )
    warnings: list[str] = []
    snap = data.get("snapshot_json")
    snap = snap if isinstance(snap, dict) else {}
    commit = snap.get("comfyui")
    comfyui = ComfyUIPin(
        commit=commit.lower() if isinstance(commit, str) and _COMMIT.match(commit) else None
    )
    packs: list[ManifestPack] = []
    git_nodes = snap.get("git_custom_nodes")
    for url, info in git_nodes.items() if isinstance(git_nodes, dict) else []:
        info = info if isinstance(info, dict) else {}
        if info.get("disabled") is True:
            warnings.append(f"launcher file: {url} is disabled there; skipped")
            continue
        try:
            validate_git_url(url)
        except ManifestError as exc:
            warnings.append(f"launcher file: {exc.message}")
            continue
        h = info.get("hash")
        pin = h.lower() if isinstance(h, str) and _COMMIT.match(h) else None
        folder = url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
        packs.append(
            ManifestPack(url=url, commit=pin, folder_name=folder if _FOLDER.match(folder) else None)
        )
    if snap.get("file_custom_nodes"):
        warnings.append("launcher file: single-file custom nodes are not supported; skipped")
    models: list[ManifestModel] = []
    files = data.get("files")
    for i, alternatives in enumerate(files if isinstance(files, list) else []):
        model = _launcher_model(i, alternatives, warnings)
        if model is not None:
            models.append(model)
    workflows: list[ManifestWorkflow] = []
    wf = data.get("workflow_json")
    if isinstance(wf, dict) and isinstance(wf.get("nodes"), list):
        workflows.append(ManifestWorkflow("workflow", wf))
    return Manifest(
        comfyui=comfyui, packs=tuple(packs), models=tuple(models), workflows=tuple(workflows)
    ), warnings


def _launcher_model(i: int, alternatives: Any, warnings: list[str]) -> ManifestModel | None:
    if isinstance(alternatives, dict):
        alternatives = [alternatives]
    if not isinstance(alternatives, list):
        warnings.append(f"launcher file: files[{i}] is not a list; skipped")
        return None
    urls: list[str] = []
    dest: str | None = None
    sha: str | None = None
    for alt in alternatives:
        if not isinstance(alt, dict):
            continue
        url = alt.get("download_url")
        if isinstance(url, str) and re.match(r"^https?://\S+$", url):
            urls.append(url)
        path = alt.get("dest_relative_path")
        if dest is None and isinstance(path, str):
            dest = path
        h = alt.get("sha256") or alt.get("sha256_checksum")
        if sha is None and isinstance(h, str) and _SHA256.match(h):
            sha = h.lower()
    if dest is None:
        warnings.append(f"launcher file: files[{i}] has no dest_relative_path; skipped")
        return None
    rel = dest.replace("\\", "/").lstrip("/")
    rel = rel[len("models/") :] if rel.startswith("models/") else rel
    directory, _, name = rel.partition("/")
    try:
        return ManifestModel(
            directory=validate_directory(directory, f"files[{i}] folder"),
            name=validate_model_name(name, f"files[{i}] name"),
            urls=tuple(dict.fromkeys(urls)),
            sha256=sha,
        )
    except ManifestError as exc:
        warnings.append(f"launcher file: {exc.message.rstrip('.')}; skipped")
        return None
