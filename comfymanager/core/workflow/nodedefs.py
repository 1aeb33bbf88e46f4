"""Node definitions as data: which classes a ComfyUI has, their widgets, and the models folder
each model input reads.

One versioned JSON file (format in ``docs/ARCHITECTURE.md`` / the shared brief)::

    {"version": 1, "comfyui": "0.3.64", "made_by": "shipped" | "project-scan",
     "classes": {"CheckpointLoader": {"module": "nodes", "pack": null,
                                       "widgets": ["config_name", "ckpt_name"],
                                       "model_inputs": {"ckpt_name": ["checkpoints"], ...}}},
     "failed_packs": {"ComfyUI-X": "ModuleNotFoundError: ..."}}

The app ships the definitions of a ComfyUI release (``data/node-definitions.json``, made by
``scripts/make_node_definitions.py``) so core classes are known offline; a project keeps its own
copy (``<project>/node-definitions.json``, written by the scan in the project's Python), which is
read ahead of the shipped one.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from comfymanager.core.errors import CorruptFile
from comfymanager.core.persist import atomic_open

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
SHIPPED_PATH = Path(__file__).with_name("data") / "node-definitions.json"
PROJECT_FILE = "node-definitions.json"


@dataclass(frozen=True)
class ClassDef:
    """One node class. ``pack`` is the custom_nodes folder of a pack's class (None: core)."""

    name: str
    module: str
    pack: str | None
    widgets: tuple[str, ...]
    model_inputs: Mapping[str, tuple[str, ...]]
    input_error: str = ""  # a project scan: this class's INPUT_TYPES() failed there

    @property
    def model_folders(self) -> frozenset[str]:
        return frozenset(f for folders in self.model_inputs.values() for f in folders)


@dataclass(frozen=True)
class NodeDefinitions:
    """The classes of one ComfyUI (core, and the packs a project scan loaded)."""

    comfyui: str
    made_by: str
    classes: Mapping[str, ClassDef]
    failed_packs: Mapping[str, str] = field(default_factory=dict)
    state: str = ""  # a project scan: the project state it was made in (its cache key)

    def get(self, class_type: str) -> ClassDef | None:
        return self.classes.get(class_type)

    def is_core(self, class_type: str) -> bool:
        c = self.classes.get(class_type)
        return c is not None and c.pack is None

    @property
    def packs(self) -> frozenset[str]:
        """The pack folders whose classes are listed."""
        return frozenset(c.pack for c in self.classes.values() if c.pack)


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str))
    return ()


def _class(name: str, raw: Any) -> ClassDef | None:
    if not isinstance(raw, dict):
        return None
    module = raw.get("module")
    pack = raw.get("pack")
    inputs = raw.get("model_inputs")
    model_inputs: dict[str, tuple[str, ...]] = {}
    if isinstance(inputs, dict):
        for key, folders in inputs.items():
            clean = tuple(f.strip("/") for f in _strings(folders) if f.strip("/"))
            if isinstance(key, str) and clean:
                model_inputs[key] = clean
    return ClassDef(
        name=name,
        module=module if isinstance(module, str) else "",
        pack=pack if isinstance(pack, str) and pack else None,
        widgets=_strings(raw.get("widgets")),
        model_inputs=model_inputs,
        input_error=str(raw.get("input_error") or ""),
    )


def definitions_from_data(data: Any, source: str = "node definitions") -> NodeDefinitions:
    """Parse the JSON document; ``CorruptFile`` naming ``source`` when it is not one."""
    if not isinstance(data, dict) or not isinstance(data.get("classes"), dict):
        raise CorruptFile(
            f"{source} is not a node-definitions file (no 'classes' object).",
            "Delete it; it is made again by the next project scan.",
        )
    version = data.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CorruptFile(
            f"{source} has format version {version!r}; this comfymanager reads version "
            f"{FORMAT_VERSION}.",
            "Update comfymanager, or delete the file so the next scan makes it again.",
        )
    classes: dict[str, ClassDef] = {}
    for name, raw in data["classes"].items():
        c = _class(name, raw) if isinstance(name, str) else None
        if c is not None:
            classes[name] = c
    failed = data.get("failed_packs")
    failed_packs = {str(k): str(v) for k, v in failed.items()} if isinstance(failed, dict) else {}
    return NodeDefinitions(
        comfyui=str(data.get("comfyui") or ""),
        made_by=str(data.get("made_by") or ""),
        classes=classes,
        failed_packs=failed_packs,
        state=str(data.get("state") or ""),
    )


def read_definitions(path: Path) -> NodeDefinitions:
    """Read a node-definitions file. ``FileNotFoundError`` when absent, ``CorruptFile`` when
    it cannot be used."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, RecursionError) as exc:
        raise CorruptFile(
            f"{path} cannot be read ({exc}).",
            "Delete it; it is made again by the next project scan.",
        ) from None
    return definitions_from_data(data, str(path))


def definitions_to_data(defs: NodeDefinitions) -> dict[str, Any]:
    return {
        "version": FORMAT_VERSION,
        "comfyui": defs.comfyui,
        "made_by": defs.made_by,
        "classes": {
            name: {
                "module": c.module,
                "pack": c.pack,
                "widgets": list(c.widgets),
                "model_inputs": {k: list(v) for k, v in c.model_inputs.items()},
            }
            for name, c in sorted(defs.classes.items())
        },
        "failed_packs": dict(defs.failed_packs),
    }


def write_definitions(path: Path, defs: NodeDefinitions) -> None:
    """Write atomically (temp file, fsync, replace)."""
    with atomic_open(path, keep_backup=False) as fh:
        json.dump(definitions_to_data(defs), fh, indent=1, sort_keys=False)
        fh.write("\n")


@functools.lru_cache(maxsize=1)
def shipped_definitions() -> NodeDefinitions:
    """The definitions of the ComfyUI release shipped with the app (empty if the data file is
    missing from a broken install: analysis then works as without it)."""
    try:
        return read_definitions(SHIPPED_PATH)
    except (FileNotFoundError, CorruptFile) as exc:
        log.warning("shipped node definitions unusable (%s); core classes unknown offline", exc)
        return NodeDefinitions("", "shipped", {})


def project_definitions(project_dir: Path) -> NodeDefinitions | None:
    """A project's own definitions (None when it has none or they are unusable)."""
    try:
        return read_definitions(project_dir / PROJECT_FILE)
    except FileNotFoundError:
        return None
    except CorruptFile as exc:
        log.warning("%s; using the shipped definitions", exc.message)
        return None


def layered(project: NodeDefinitions | None) -> NodeDefinitions:
    """A project's definitions ahead of the shipped ones (core classes a scan missed stay)."""
    shipped = shipped_definitions()
    if project is None:
        return shipped
    classes = dict(shipped.classes)
    classes.update(project.classes)
    return NodeDefinitions(project.comfyui, project.made_by, classes, project.failed_packs)
