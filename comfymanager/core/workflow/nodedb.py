"""ComfyUI-Manager's node database: load it into indexes, and keep a cached copy fresh.

Three files (see shared/data/comfyui-manager/README.md): ``extension-node-map.json`` (class ->
packs, required), ``custom-node-list.json`` (pack metadata) and ``model-list.json`` (model
suggestions). ``refresh_node_db`` copies or downloads them into a cache folder (conditional GET
with ETag/Last-Modified); ``load_node_db`` builds the lookup indexes once.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from comfymanager.core.workflow.nodedb_fetch import (
    DB_FILES,
    MAP_FILE,
    MODELS_FILE,
    NODES_FILE,
    STATS_FILE,
    NodeDbStatus,
    refresh_node_db,
)

log = logging.getLogger(__name__)

__all__ = [
    "CORE_KEY",
    "DB_FILES",
    "ModelEntry",
    "NodeDatabase",
    "NodeDbStatus",
    "PackInfo",
    "load_node_db",
    "normalize_repo_url",
    "refresh_node_db",
]

CORE_KEY = "https://github.com/comfyanonymous/comfyui"
_GITHUB_FAST = re.compile(r"^https?://(?:www\.)?github\.com/([^/?#]+/[^/?#]+?)(?:\.git)?/?$", re.I)


def normalize_repo_url(url: str) -> str:
    """One spelling per repository: lower-case GitHub host and path, no ``.git``, no slash.

    ``git@github.com:Owner/Repo.git`` and ``https://GitHub.com/owner/repo/`` both become
    ``https://github.com/owner/repo``. Other hosts keep the path's case.
    """
    url = url.strip()
    fast = _GITHUB_FAST.match(url)
    if fast:
        return "https://github.com/" + fast.group(1).lower()
    m = re.match(r"^git@([^:]+):(.+)$", url)
    if m:
        url = f"https://{m.group(1)}/{m.group(2)}"
    parts = urlsplit(url)
    host = parts.hostname or ""
    path = unquote(parts.path).rstrip("/")
    if path.endswith(".git"):
        path = path[:-4]
    path = path.rstrip("/")
    if host in ("github.com", "www.github.com"):
        segs = [s for s in path.split("/") if s]
        return "https://github.com/" + "/".join(segs[:2]).lower()
    if not host:
        return url.rstrip("/")
    scheme = "https" if parts.scheme in ("http", "https", "ssh", "git") else parts.scheme
    return f"{scheme}://{host.lower()}{path}"


@dataclass(frozen=True)
class PackInfo:
    """One node pack. ``key`` is the normalised URL (the identity); ``url`` as published."""

    key: str
    url: str
    title: str
    id: str | None = None
    author: str = ""
    install_type: str = "git-clone"
    files: tuple[str, ...] = ()
    pip: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelEntry:
    """A model-list.json entry, with ``directory`` resolved from save_path / type."""

    name: str
    filename: str
    directory: str
    url: str
    type: str
    base: str
    size: str


_TYPE_DIRS = {
    "checkpoint": "checkpoints",
    "checkpoints": "checkpoints",
    "unclip": "checkpoints",
    "clip": "text_encoders",
    "text_encoders": "text_encoders",
    "vae": "vae",
    "lora": "loras",
    "t2i-adapter": "controlnet",
    "t2i-style": "controlnet",
    "controlnet": "controlnet",
    "clip_vision": "clip_vision",
    "gligen": "gligen",
    "upscale": "upscale_models",
    "embedding": "embeddings",
    "embeddings": "embeddings",
    "unet": "diffusion_models",
    "diffusion_model": "diffusion_models",
}


@dataclass
class NodeDatabase:
    """Indexes over the three files, built once by ``from_data``."""

    core: frozenset[str]
    owners: dict[str, tuple[str, ...]]
    preemptions: dict[str, tuple[str, ...]]
    patterns: list[tuple[str, re.Pattern[str]]]
    packs: dict[str, PackInfo]
    by_id: dict[str, str]
    by_repo_name: dict[str, tuple[str, ...]]
    models_by_filename: dict[str, tuple[ModelEntry, ...]]
    stars: dict[str, int] = field(default_factory=dict)  # normalised repo URL -> GitHub stars
    source: str = ""
    fetched_at: float | None = None
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def from_data(
        cls,
        node_map: dict[str, Any],
        node_list: dict[str, Any] | None = None,
        model_list: dict[str, Any] | None = None,
    ) -> NodeDatabase:
        owners: dict[str, list[str]] = {}
        preempt: dict[str, list[str]] = {}
        patterns: list[tuple[str, re.Pattern[str]]] = []
        packs: dict[str, PackInfo] = {}
        warnings: list[str] = []
        core: frozenset[str] = frozenset()
        for url, value in node_map.items():
            if not (isinstance(url, str) and isinstance(value, list) and value):
                continue
            first = value[0] if isinstance(value[0], list) else []
            names = [n for n in first if isinstance(n, str)]
            meta = value[1] if len(value) > 1 and isinstance(value[1], dict) else {}
            key = normalize_repo_url(url)
            if key == CORE_KEY:
                core = frozenset(names)
                continue
            title = meta.get("title_aux") or meta.get("title") or url.rstrip("/").split("/")[-1]
            title = str(title)
            packs.setdefault(key, PackInfo(key=key, url=url, title=title))
            for name in names:
                owners.setdefault(name, []).append(key)
            for name in meta.get("preemptions") or []:
                if isinstance(name, str):
                    preempt.setdefault(name, []).append(key)
            pattern = meta.get("nodename_pattern")
            if isinstance(pattern, str) and pattern:
                try:
                    patterns.append((key, re.compile(pattern)))
                except re.error as exc:
                    warnings.append(f"ignored bad nodename_pattern of {url}: {exc}")
        by_id: dict[str, str] = {}
        entries = (node_list or {}).get("custom_nodes")
        for entry in entries if isinstance(entries, list) else []:
            info = _pack_from_entry(entry)
            if info is None:
                continue
            old = packs.get(info.key)
            if old is not None and old.title and not info.title:
                info = PackInfo(**{**info.__dict__, "title": old.title})
            packs[info.key] = info
            if info.id:
                by_id.setdefault(info.id.lower(), info.key)
        by_repo: dict[str, list[str]] = {}
        for key in packs:
            by_repo.setdefault(key.rsplit("/", 1)[-1].lower(), []).append(key)
        return cls(
            core=core,
            owners={k: _dedupe(v) for k, v in owners.items()},
            preemptions={k: _dedupe(v) for k, v in preempt.items()},
            patterns=patterns,
            packs=packs,
            by_id=by_id,
            by_repo_name={k: tuple(v) for k, v in by_repo.items()},
            models_by_filename=_index_models(model_list),
            warnings=warnings,
        )

    def popularity(self, key: str) -> int | None:
        """GitHub stars of a pack (None when github-stats.json does not list it)."""
        return self.stars.get(key)

    def pack(self, key: str) -> PackInfo:
        """The pack for a normalised URL (a bare one if the database does not list it)."""
        info = self.packs.get(key)
        if info is None:
            info = PackInfo(key=key, url=key, title=key.rstrip("/").rsplit("/", 1)[-1])
        return info


def _dedupe(items: list[str]) -> tuple[str, ...]:
    return (items[0],) if len(items) == 1 else tuple(dict.fromkeys(items))


def _pack_from_entry(entry: Any) -> PackInfo | None:
    if not isinstance(entry, dict):
        return None
    ref = entry.get("reference")
    files = [f for f in entry.get("files") or [] if isinstance(f, str)]
    if not isinstance(ref, str) or not ref:
        ref = files[0] if files else None
    if not ref:
        return None
    install_type = str(entry.get("install_type") or "git-clone").lower()
    if install_type == "git":
        install_type = "git-clone"
    pip = entry.get("pip")
    pack_id = entry.get("id")
    return PackInfo(
        key=normalize_repo_url(ref),
        url=ref,
        title=str(entry.get("title") or ""),
        id=pack_id if isinstance(pack_id, str) and pack_id else None,
        author=str(entry.get("author") or ""),
        install_type=install_type,
        files=tuple(files),
        pip=tuple(p for p in pip if isinstance(p, str)) if isinstance(pip, list) else (),
    )


def _index_models(model_list: dict[str, Any] | None) -> dict[str, tuple[ModelEntry, ...]]:
    index: dict[str, list[ModelEntry]] = {}
    models = (model_list or {}).get("models")
    for m in models if isinstance(models, list) else []:
        if not isinstance(m, dict):
            continue
        filename, url = m.get("filename"), m.get("url")
        if not (isinstance(filename, str) and isinstance(url, str)) or filename == "<huggingface>":
            continue
        kind = str(m.get("type") or "")
        save_path = str(m.get("save_path") or "default")
        directory = _TYPE_DIRS.get(kind.lower(), "etc") if save_path == "default" else save_path
        entry = ModelEntry(
            name=str(m.get("name") or filename),
            filename=filename,
            directory=directory.strip("/"),
            url=url,
            type=kind,
            base=str(m.get("base") or ""),
            size=str(m.get("size") or ""),
        )
        index.setdefault(filename.lower(), []).append(entry)
    return {k: tuple(v) for k, v in index.items()}


def index_stars(stats: Any) -> dict[str, int]:
    """github-stats.json -> {normalised repo URL: stars} (bad entries skipped)."""
    out: dict[str, int] = {}
    if not isinstance(stats, dict):
        return out
    for url, entry in stats.items():
        stars = entry.get("stars") if isinstance(entry, dict) else None
        if isinstance(url, str) and isinstance(stars, int) and not isinstance(stars, bool):
            key = normalize_repo_url(url.replace("htps://", "https://", 1))
            out[key] = max(stars, out.get(key, 0))
    return out


def _read(path: Path) -> Any:
    with open(path, "rb") as fh:
        return json.loads(fh.read())


def load_node_db(cache_dir: Path) -> NodeDatabase | None:
    """The database cached in ``cache_dir``, or None when the node map is missing or damaged."""
    map_path = cache_dir / MAP_FILE
    if not map_path.is_file():
        return None
    try:
        node_map = _read(map_path)
        if not isinstance(node_map, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError, RecursionError) as exc:
        log.warning("node database %s is unreadable (%s); ignoring it", map_path, exc)
        return None
    extra: list[dict[str, Any] | None] = []
    warnings: list[str] = []
    for name in (NODES_FILE, MODELS_FILE):
        try:
            data = _read(cache_dir / name)
            extra.append(data if isinstance(data, dict) else None)
        except FileNotFoundError:
            extra.append(None)
        except (OSError, ValueError, RecursionError) as exc:
            warnings.append(f"{name} is unreadable ({exc}); pack details may be missing")
            extra.append(None)
    db = NodeDatabase.from_data(node_map, extra[0], extra[1])
    db.warnings.extend(warnings)
    try:
        db.stars = index_stars(_read(cache_dir / STATS_FILE))
    except FileNotFoundError:
        pass
    except (OSError, ValueError, RecursionError) as exc:
        db.warnings.append(f"{STATS_FILE} is unreadable ({exc}); packs are not ranked")
    meta = _read_meta(cache_dir)
    db.source = str(meta.get("source") or "")
    fetched = meta.get("fetched_at")
    db.fetched_at = float(fetched) if isinstance(fetched, (int, float)) else None
    if db.fetched_at is None:
        db.fetched_at = map_path.stat().st_mtime
    return db


def _read_meta(cache_dir: Path) -> dict[str, Any]:
    from comfymanager.core.workflow.nodedb_fetch import read_meta

    return read_meta(cache_dir)


def describe_age(fetched_at: float | None) -> str:
    if fetched_at is None:
        return "an unknown date"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(fetched_at))
