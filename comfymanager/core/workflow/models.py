"""Model files a workflow needs (COMFYUI.md section 3), keyed by (folder, name).

Sources: ``properties.models`` entries whose name is one of the node's widget values, top-level
``models`` lists, loader widget values (node -> folder table; the value that looks like a model
file, not a fixed position), promoted widget values of subgraph instances, API loader inputs by
input name, and ``embedding:NAME`` in prompt text.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from comfymanager.core.workflow.graph import GraphWalk, InstanceRef, NodeRef
from comfymanager.core.workflow.nodedb import NodeDatabase
from comfymanager.core.workflow.nodedefs import (
    ClassDef,
    NodeDefinitions,
    shipped_definitions,
)
from comfymanager.core.workflow.nodes import CORE_FRONTEND, PACK_FRONTEND

log = logging.getLogger(__name__)

MODEL_EXTS = (
    ".safetensors",
    ".sft",
    ".ckpt",
    ".pt",
    ".pt2",
    ".pth",
    ".bin",
    ".pkl",
    ".gguf",
    ".onnx",
    ".patch",  # Fooocus inpaint patches (comfyui-inpaint-nodes' "inpaint" folder)
)

LOADERS: dict[str, str] = {
    # Custom packs only: core loaders are known from the node definitions (nodedefs.py).
    "ADE_LoadAnimateDiffModel": "animatediff_models",
    "ADE_AnimateDiffLoaderGen1": "animatediff_models",
    "ADE_AnimateDiffLoaderWithContext": "animatediff_models",
    "IPAdapterModelLoader": "ipadapter",
    "SAMLoader": "sams",
    "UltralyticsDetectorProvider": "ultralytics",
    "DownloadAndLoadSAM2Model": "sam2",
    "UnetLoaderGGUF": "diffusion_models",
    "UnetLoaderGGUFAdvanced": "diffusion_models",
    "CLIPLoaderGGUF": "text_encoders",
    "DualCLIPLoaderGGUF": "text_encoders",
    "TripleCLIPLoaderGGUF": "text_encoders",
    "QuadrupleCLIPLoaderGGUF": "text_encoders",
    "CheckpointLoader|pysssss": "checkpoints",
    "LoraLoader|pysssss": "loras",
    "Power Lora Loader (rgthree)": "loras",
    "Lora Loader Stack (rgthree)": "loras",
    "ControlNetLoaderAdvanced": "controlnet",
    "DiffControlNetLoaderAdvanced": "controlnet",
    "WanVideoModelLoader": "diffusion_models",
    "WanVideoVAELoader": "vae",
    "WanVideoLoraSelect": "loras",
    "LoadWanVideoT5TextEncoder": "text_encoders",
    "HyVideoModelLoader": "diffusion_models",
    "HyVideoVAELoader": "vae",
    "HyVideoLoraSelect": "loras",
    "LowVRAMCheckpointLoader": "checkpoints",
    "FaceRestoreModelLoader": "facerestore_models",
    "InstantIDModelLoader": "instantid",
    "PulidModelLoader": "pulid",
}
"""Loader class of a custom pack -> folder of every model-file value among its widgets."""

INPUT_FOLDERS: dict[str, str] = {
    "ckpt_name": "checkpoints",
    "lora_name": "loras",
    "vae_name": "vae",
    "unet_name": "diffusion_models",
    "clip_name": "text_encoders",
    "clip_name1": "text_encoders",
    "clip_name2": "text_encoders",
    "clip_name3": "text_encoders",
    "clip_name4": "text_encoders",
    "text_encoder": "text_encoders",
    "control_net_name": "controlnet",
    "style_model_name": "style_models",
    "gligen_name": "gligen",
    "hypernetwork_name": "hypernetworks",
    "photomaker_model_name": "photomaker",
    "audio_encoder_name": "audio_encoders",
    "ipadapter_file": "ipadapter",
}
"""Input (widget) name -> folder, for API prompts and unlisted loaders."""

_EMBEDDING = re.compile(r"embedding:([^\s,()\[\]{}:|<>\"]+)", re.IGNORECASE)
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class ModelRequirement:
    """One model file: ``directory`` is a folder key (None when unknown)."""

    directory: str | None
    name: str
    urls: tuple[str, ...]
    sha256: str | None
    active: bool


@dataclass(frozen=True)
class ModelSuggestion:
    """A model-list.json entry with the same file name as a model the workflow names."""

    name: str
    directory: str
    filename: str
    url: str
    size: str


def looks_like_model(value: Any) -> bool:
    return isinstance(value, str) and len(value) > 3 and value.lower().endswith(MODEL_EXTS)


def clean_name(name: str) -> str:
    """Windows separators to ``/``, no leading ``./`` or ``/``."""
    name = name.strip().replace("\\", "/")
    while name.startswith(("./", "/")):
        name = name[2:] if name.startswith("./") else name[1:]
    return name


def download_url(url: str) -> str:
    """Hugging Face ``/blob/`` pages become ``/resolve/`` downloads; otherwise unchanged."""
    parts = urlsplit(url)
    if parts.hostname and parts.hostname.endswith("huggingface.co") and "/blob/" in parts.path:
        return url.replace("/blob/", "/resolve/", 1)
    return url


def url_filename(url: str) -> str:
    """The file name a URL points at (query such as ``?download=true`` dropped)."""
    return unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])


def _flat_values(node: NodeRef) -> list[tuple[str | None, Any]]:
    """(widget name or None, value) pairs; dict values (rgthree stacks) opened one level.

    The positional ``widgets_values`` are what the editor loads, so they win; names come from
    ``widgets_values_named`` where a value matches (saved files sometimes disagree)."""
    pairs: list[tuple[str | None, Any]]
    if node.widgets:
        names = {_hashable(v): k for k, v in node.named.items()}
        pairs = [(names.get(_hashable(v)), v) for v in node.widgets]
    else:
        pairs = list(node.named.items())
    out: list[tuple[str | None, Any]] = []
    for key, value in pairs:
        if isinstance(value, dict):
            out += [(str(k), v) for k, v in value.items()]
        else:
            out.append((key, value))
    return out


def _hashable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None))) else id(value)


class _Collector:
    def __init__(self) -> None:
        self.items: dict[tuple[str | None, str], dict[str, Any]] = {}
        self.warnings: list[str] = []
        self.asked: set[str] = set()  # names already warned about (folder unknown)

    def add(
        self,
        directory: str | None,
        name: str,
        active: bool | None,
        url: str | None = None,
        sha256: str | None = None,
    ) -> None:
        name = clean_name(name)
        if not name:
            return
        directory = (directory.strip().strip("/") or None) if isinstance(directory, str) else None
        item = self.items.setdefault((directory, name), {"urls": [], "sha256": None, "active": []})
        if url:
            url = download_url(url)
            if url not in item["urls"]:
                item["urls"].append(url)
        if sha256 and _SHA256.match(sha256) and not item["sha256"]:
            item["sha256"] = sha256.lower()
        item["active"].append(active)

    def declared(self, entry: Any, active: bool | None) -> None:
        if not isinstance(entry, dict):
            return
        url = entry.get("url") if isinstance(entry.get("url"), str) else None
        name = entry.get("name") if isinstance(entry.get("name"), str) else None
        if not name and url:
            name = url_filename(url)
        if not name:
            return
        sha = None
        hash_type = entry.get("hash_type")
        if isinstance(hash_type, str) and hash_type.lower() == "sha256":
            sha = entry.get("hash") if isinstance(entry.get("hash"), str) else None
        self.add(entry.get("directory"), name, active, url, sha)

    def result(self) -> list[ModelRequirement]:
        # entries with no folder join a same-named entry that has one, when there is just one
        by_name: dict[str, list[str]] = {}
        for directory, name in self.items:
            if directory is not None:
                by_name.setdefault(name, []).append(directory)
        for (directory, name), item in list(self.items.items()):
            homes = by_name.get(name, [])
            if directory is None and len(homes) == 1:
                target = self.items[(homes[0], name)]
                target["urls"] += [u for u in item["urls"] if u not in target["urls"]]
                target["sha256"] = target["sha256"] or item["sha256"]
                target["active"] += item["active"]
                del self.items[(directory, name)]
        out = []
        for (directory, name), item in self.items.items():
            flags = item["active"]
            active = any(f is True for f in flags) or all(f is None for f in flags)
            out.append(
                ModelRequirement(directory, name, tuple(item["urls"]), item["sha256"], active)
            )
        return out


_CONTROL_VALUES = frozenset({"fixed", "increment", "decrement", "randomize"})
"""Values of the editor's extra ``control_after_generate`` widget (after a seed)."""


def _align(values: tuple[Any, ...], names: tuple[str, ...]) -> list[str | None] | None:
    """Widget names for positional values, skipping ``control_after_generate`` values after an
    integer; None when the counts do not line up (a different ComfyUI version)."""
    out: list[str | None] = []
    n = 0
    prev: Any = None
    for v in values:
        after_int = isinstance(prev, int) and not isinstance(prev, bool)
        if after_int and isinstance(v, str) and v in _CONTROL_VALUES:
            out.append(None)
        else:
            out.append(names[n] if n < len(names) else None)
            n += 1
        prev = v
    return out if n == len(names) else None


def _pairs(node: NodeRef, cdef: ClassDef | None) -> list[tuple[str | None, Any]]:
    """(widget name or None, value): names from the definition's widget order, else from
    ``widgets_values_named``; dict values (rgthree stacks) opened one level."""
    if cdef is not None and cdef.widgets and node.widgets:
        aligned = _align(node.widgets, cdef.widgets)
        if aligned is not None:
            pairs = list(zip(aligned, node.widgets, strict=True))
            out: list[tuple[str | None, Any]] = []
            for key, value in pairs:
                if isinstance(value, dict):
                    out += [(str(k), v) for k, v in value.items()]
                else:
                    out.append((key, value))
            return out
    return _flat_values(node)


def _model_value(value: Any) -> tuple[str, str | None] | None:
    """(file name, URL) when ``value`` names a model file, else None."""
    if not looks_like_model(value):
        return None
    if "://" in value:
        return url_filename(value), value.strip()
    return value, None


class _Folders:
    """Where one node's model values go, from the best knowledge there is."""

    def __init__(self, defs: NodeDefinitions, declared: dict[str, set[str]]) -> None:
        self.defs = defs
        self.declared = declared

    def of(
        self, node: NodeRef, key: str | None, index: int, count: int, name: str
    ) -> tuple[str | None, bool]:
        """(folder or None, whether the value is a model at all)."""
        homes = self.declared.get(clean_name(name))
        if homes and len(homes) == 1:
            return next(iter(homes)), True
        cdef = self.defs.get(node.class_type)
        if cdef is not None:
            if key is not None and key in cdef.widgets:
                folders = cdef.model_inputs.get(key)
                return (folders[0], True) if folders else (None, False)
            if not cdef.model_inputs:
                return None, False  # its real definition has no model input
            ordered = [w for w in cdef.widgets if w in cdef.model_inputs]
            if len(ordered) == count:
                return cdef.model_inputs[ordered[index]][0], True
            if len(cdef.model_folders) == 1:
                return next(iter(cdef.model_folders)), True
        if node.class_type in LOADERS:
            return LOADERS[node.class_type], True
        if key is not None and key in INPUT_FOLDERS:
            return INPUT_FOLDERS[key], True
        if key is None and node.input_widgets:
            combos = [n for n, kind in node.input_widgets if kind.upper() == "COMBO"]
            if len(combos) == count and combos[index] in INPUT_FOLDERS:
                return INPUT_FOLDERS[combos[index]], True
            known = {INPUT_FOLDERS[n] for n, _ in node.input_widgets if n in INPUT_FOLDERS}
            if len(known) == 1 and count == 1:
                return known.pop(), True
        return None, True


def _is_frontend(class_type: str) -> bool:
    return class_type in CORE_FRONTEND or class_type in PACK_FRONTEND


def _declare(c: _Collector, node: NodeRef, values: list[tuple[str | None, Any]]) -> set[str]:
    """Add the node's ``properties.models`` entries in use; the names they give a folder."""
    declared = node.properties.get("models")
    homed: set[str] = set()
    if not (isinstance(declared, list) and declared):
        return homed
    names = {clean_name(v) for _, v in values if isinstance(v, str)}
    names |= {clean_name(v) for v in node.widgets if isinstance(v, str)}
    names |= {clean_name(v) for v in node.named.values() if isinstance(v, str)}
    for entry in declared:
        name = entry.get("name") if isinstance(entry, dict) else None
        if isinstance(name, str) and clean_name(name) in names:
            c.declared(entry, node.active)
            directory = entry.get("directory")
            if isinstance(directory, str) and directory.strip("/"):
                homed.add(clean_name(name))
    return homed


def _node_models(c: _Collector, node: NodeRef, folders: _Folders) -> None:
    if _is_frontend(node.class_type):
        return  # Note/MarkdownNote text, reroutes, primitives: never model references
    values = _pairs(node, folders.defs.get(node.class_type))
    homed = _declare(c, node, values)
    models: list[tuple[str | None, str, str | None]] = []
    for key, value in values:
        if isinstance(value, str) and "embedding:" in value.lower():
            for m in _EMBEDDING.finditer(value):
                name = m.group(1).strip("`'").rstrip(".,;`'")
                if any(ch.isalnum() for ch in name):
                    c.add("embeddings", name, node.active)
            continue
        found = _model_value(value)
        if found is not None:
            models.append((key, *found))
    for index, (key, name, url) in enumerate(models):
        if clean_name(name) in homed:
            continue  # the node's own declaration says where it goes
        folder, is_model = folders.of(node, key, index, len(models), name)
        if not is_model:
            continue
        c.add(folder, name, node.active, url)
        if folder is None and clean_name(name) not in c.asked:
            c.asked.add(clean_name(name))
            widget = f"widget {key!r} of " if key else ""
            c.warnings.append(
                f"the folder of {clean_name(name)!r} ({widget}{node.class_type} node "
                f"{node.node_id}) is unknown"
            )


def _folder_for_target(defs: NodeDefinitions, class_type: str, widget: str) -> str | None:
    cdef = defs.get(class_type)
    if cdef is not None and widget in cdef.model_inputs:
        return cdef.model_inputs[widget][0]
    return LOADERS.get(class_type) or INPUT_FOLDERS.get(widget)


def _inner_folders(defs: NodeDefinitions, inner: tuple[NodeRef, ...]) -> set[str]:
    out: set[str] = set()
    for n in inner:
        cdef = defs.get(n.class_type)
        if cdef is not None:
            out |= cdef.model_folders
        elif n.class_type in LOADERS:
            out.add(LOADERS[n.class_type])
    return out


def _instance_models(c: _Collector, inst: InstanceRef, defs: NodeDefinitions) -> None:
    inner_values = {
        clean_name(v) for n in inst.inner for _, v in _flat_values(n) if isinstance(v, str)
    }
    inner_folders = _inner_folders(defs, inst.inner)
    for key, value in _flat_values(inst.node):
        found = _model_value(value)
        if found is None or clean_name(found[0]) in inner_values:
            continue  # the inner loader already holds this value
        name, url = found
        folders: set[str] = set()
        if key and key in inst.input_targets:
            folders = {
                f for cls, w in inst.input_targets[key] if (f := _folder_for_target(defs, cls, w))
            }
        if not folders and key and key in INPUT_FOLDERS:
            folders = {INPUT_FOLDERS[key]}
        if not folders and len(inner_folders) == 1:
            folders = set(inner_folders)
        if len(folders) == 1:
            c.add(folders.pop(), name, inst.node.active, url)
        else:
            c.add(None, name, inst.node.active, url)
            kind = "subgraph" if inst.inner else "group node"
            c.warnings.append(
                f"the folder of {clean_name(name)!r} (a widget of {kind} {inst.node.node_id}) "
                "is unknown"
            )


def _declared_homes(walk: GraphWalk) -> dict[str, set[str]]:
    homes: dict[str, set[str]] = {}
    for entry, _ in walk.declared_models:
        if not isinstance(entry, dict):
            continue
        name, directory = entry.get("name"), entry.get("directory")
        if isinstance(name, str) and isinstance(directory, str) and directory.strip("/"):
            homes.setdefault(clean_name(name), set()).add(directory.strip().strip("/"))
    return homes


def collect_models(
    walk: GraphWalk, defs: NodeDefinitions | None = None
) -> tuple[list[ModelRequirement], list[str]]:
    """Every model the walked graph names, merged by (folder, name); plus warnings.

    ``defs``: the node definitions to trust (a project's, else the shipped ones)."""
    defs = defs if defs is not None else shipped_definitions()
    c = _Collector()
    for entry, active in walk.declared_models:
        c.declared(entry, active)
    folders = _Folders(defs, _declared_homes(walk))
    seen: set[int] = set()
    for node in walk.nodes:
        if id(node) not in seen:
            seen.add(id(node))
            _node_models(c, node, folders)
    for inst in walk.instances:
        _declare(c, inst.node, _flat_values(inst.node))  # properties.models on the instance
        _instance_models(c, inst, defs)
    return c.result(), list(dict.fromkeys(c.warnings))


def suggest_models(name: str, db: NodeDatabase | None) -> list[ModelSuggestion]:
    """model-list.json entries with exactly this file name (case-insensitive)."""
    if db is None:
        return []
    filename = clean_name(name).rsplit("/", 1)[-1].lower()
    return [
        ModelSuggestion(e.name, e.directory, e.filename, e.url, e.size)
        for e in db.models_by_filename.get(filename, ())
    ]
