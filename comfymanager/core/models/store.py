"""The store's layout and the ``extra_model_paths.yaml`` that points ComfyUI at it.

The store is one folder with ComfyUI's folder keys as subfolders: ``<data root>/models`` by
default, or any folder the user picks, including an existing ComfyUI ``models`` folder used in
place (nothing is moved). Every project gets the same YAML file, so all projects share the store
without symlinks.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from comfymanager.core.errors import InvalidInput
from comfymanager.core.models.folders import FOLDER_KEYS, LEGACY_FOLDERS, is_pack_folder
from comfymanager.core.persist import atomic_open

log = logging.getLogger(__name__)

SECTION = "comfymanager"


def _yaml_string(text: str) -> str:
    """A YAML double-quoted scalar (JSON string syntax is valid YAML)."""
    return json.dumps(text, ensure_ascii=False)


def store_folders(folder: str) -> list[str]:
    """The store subfolders ComfyUI should read for a key (the key, then legacy aliases)."""
    return [folder, *[old for old, new in LEGACY_FOLDERS.items() if new == folder]]


def ensure_layout(store: Path) -> Path:
    """Create the store and its folder-key subfolders (existing content is left alone)."""
    try:
        for key in FOLDER_KEYS:
            (store / key).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(
            f"Cannot use {store} as the model store: {exc.strerror}.",
            "Choose a folder you can write to in Settings.",
        ) from None
    return store


def _pack_folders(store: Path) -> list[str]:
    """Folders in the store that node packs registered (``inpaint``, ...), beyond the known keys."""
    known = {*FOLDER_KEYS, *(f for k in FOLDER_KEYS for f in store_folders(k))}
    try:
        entries = sorted(store.iterdir())
    except OSError:
        return []
    extra = []
    for entry in entries:
        if entry.name in known or entry.name.startswith(".") or not entry.is_dir():
            continue
        if is_pack_folder(entry.name):
            extra.append(entry.name)
    return extra


def render_extra_model_paths(store: Path) -> str:
    base = store.expanduser().resolve()
    lines = [
        "# Written by comfymanager: every project reads models from the shared store.",
        f"{SECTION}:",
        f"  base_path: {_yaml_string(str(base))}",
        "  is_default: true",
    ]
    for key in (*FOLDER_KEYS, *_pack_folders(base)):
        folders = store_folders(key)
        if len(folders) == 1:
            lines.append(f"  {key}: {_yaml_string(folders[0])}")
        else:
            # a literal block: ComfyUI splits it on newlines, one path per line
            lines.append(f"  {key}: |")
            lines.extend(f"    {f}" for f in folders)
    return "\n".join(lines) + "\n"


def write_extra_model_paths(store: Path, yaml_path: Path) -> Path:
    """Write (atomically) the ``extra_model_paths.yaml`` for ``store`` at ``yaml_path``."""
    text = render_extra_model_paths(store)
    with atomic_open(yaml_path, keep_backup=False) as fh:
        fh.write(text)
    return yaml_path
