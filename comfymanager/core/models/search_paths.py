"""Where a project's ComfyUI looks for a model: the store, its own ``models/``, and every folder
its ``extra_model_paths.yaml`` names (an adopted install's models, read where they are).

ComfyUI's format (``extra_model_paths.yaml.example``): top-level sections, each with an optional
``base_path`` and ``is_default``, and one key per models folder whose value is a path (relative
to ``base_path``) or a ``|`` block of several, one per line. Only that subset is read, by a small
line reader (the app carries no YAML library); anything it does not understand is ignored, so a
hand-edited file can make a model look missing, never escape into a wrong answer of "present".
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from comfymanager.core.errors import InvalidInput
from comfymanager.core.models.folders import (
    aliases_of,
    canonical_folder,
    safe_relative_name,
    safe_store_path,
)

if TYPE_CHECKING:
    from comfymanager.core.projects import Project, ProjectDirs

MAX_BYTES = 1_000_000

_SECTION = re.compile(r"^([A-Za-z0-9_.-]+):\s*(#.*)?$")
_KEY = re.compile(r"^(\s+)([A-Za-z0-9_.-]+):\s*(.*)$")


def _scalar(value: str) -> str:
    value = value.strip()
    if value[:1] == '"':
        try:
            end = value.index('"', 1)
            while value[end - 1] == "\\":
                end = value.index('"', end + 1)
            return str(json.loads(value[: end + 1]))
        except (ValueError, json.JSONDecodeError):
            return ""
    if value[:1] == "'":
        return value[1:].split("'", 1)[0]
    return value.split(" #", 1)[0].strip()


def _expand(text: str) -> Path:
    try:
        return Path(text).expanduser()
    except RuntimeError:  # "~someone" with no such user: ComfyUI would not find it either
        return Path(text)


def read_model_roots(yaml_path: Path) -> dict[str, list[Path]]:
    """Folder key (canonical) -> absolute folders, in file order; {} when unreadable."""
    try:
        with open(yaml_path, encoding="utf-8", errors="replace") as fh:
            text = fh.read(MAX_BYTES)
    except OSError:
        return {}
    sections: list[tuple[str, dict[str, list[str]]]] = []
    block: list[str] | None = None
    block_indent = 0
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        if block is not None and indent > block_indent:
            block.append(line.strip())
            continue
        block = None
        if (m := _SECTION.match(line)) is not None:
            sections.append((m.group(1), {}))
            continue
        if not sections or (k := _KEY.match(line)) is None:
            continue
        key, value = k.group(2), k.group(3).strip()
        entries = sections[-1][1]
        if value.startswith("|"):
            block = entries.setdefault(key, [])
            block_indent = len(k.group(1))
        else:
            entries.setdefault(key, []).append(_scalar(value))
    roots: dict[str, list[Path]] = {}
    for _name, entries in sections:
        base_values = entries.pop("base_path", [""])
        entries.pop("is_default", None)
        base_text = base_values[0] if base_values else ""
        base = _expand(base_text) if base_text else yaml_path.parent
        if not base.is_absolute():
            base = yaml_path.parent / base
        for key, paths in entries.items():
            for p in paths:
                if not p:
                    continue
                folder = _expand(p)
                folder = folder if folder.is_absolute() else base / folder
                roots.setdefault(_key(key), []).append(Path(os.path.normpath(folder)))
    return roots


def _key(folder: str) -> str:
    try:
        return canonical_folder(folder, pack_folder=True)
    except InvalidInput:
        return folder


def _has(root: Path, name: str) -> bool:
    """``root/name`` is a file; ``name`` stays below ``root`` (the user's own folders are read
    as ComfyUI reads them, links followed)."""
    try:
        rel = safe_relative_name(name)
    except InvalidInput:
        return False
    if ".." in rel.split("/"):
        return False
    try:
        return (root / rel).is_file()
    except (OSError, ValueError):
        return False


def store_has(store: Path, folder: str, name: str) -> bool:
    """True when ``folder/name`` (or a legacy alias folder) holds the file in the store."""
    try:
        folders = aliases_of(folder)
    except InvalidInput:
        folders = (folder,)
    for f in folders:
        try:
            if safe_store_path(store, f, name).is_file():
                return True
        except InvalidInput:
            if (store / f / name).is_file() and ".." not in name:
                return True
    return False


def model_present(
    store: Path,
    folder: str,
    name: str,
    *,
    comfyui: Path | None = None,
    roots: dict[str, list[Path]] | None = None,
) -> bool:
    """Would the project's ComfyUI find ``folder/name``? The store (and its legacy folder
    names), ComfyUI's own ``models/<folder>``, then every folder ``roots`` (from
    ``read_model_roots``) gives for the key."""
    if store_has(store, folder, name):
        return True
    try:
        names = aliases_of(folder)
    except InvalidInput:
        names = (folder,)
    if comfyui is not None and any(_has(comfyui / "models" / f, name) for f in names):
        return True
    if roots:
        return any(_has(root, name) for root in roots.get(_key(folder), ()))
    return False


def project_search(project: Project, dirs: ProjectDirs) -> tuple[Path, dict[str, list[Path]]]:
    """(the ComfyUI folder whose ``models/`` the project reads, the folders of the yaml it
    runs with): an in-place adoption runs its own folder, which reads its own yaml."""
    if project.in_place and project.external_root:
        comfyui = Path(project.external_root)
        return comfyui, read_model_roots(comfyui / "extra_model_paths.yaml")
    return dirs.comfyui, read_model_roots(dirs.extra_model_paths)
