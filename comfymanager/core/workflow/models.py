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
)

LOADERS: dict[str, str] = {
    # core
    "CheckpointLoaderSimple": "checkpoints",
    "CheckpointLoader": "checkpoints",
    "ImageOnlyCheckpointLoader": "checkpoints",
    "unCLIPCheckpointLoader": "checkpoints",
    "LoraLoader": "loras",
    "LoraLoaderModelOnly": "loras",
    "VAELoader": "vae",
    "UNETLoader": "diffusion_models",
    "CLIPLoader": "text_encoders",
    "DualCLIPLoader": "text_encoders",
    "TripleCLIPLoader": "text_encoders",
    "QuadrupleCLIPLoader": "text_encoders",
    "CLIPVisionLoader": "clip_vision",
    "ControlNetLoader": "controlnet",
    "DiffControlNetLoader": "controlnet",
    "UpscaleModelLoader": "upscale_models",
    "StyleModelLoader": "style_models",
    "GLIGENLoader": "gligen",
    "HypernetworkLoader": "hypernetworks",
    "PhotoMakerLoader": "photomaker",
    "ModelPatchLoader": "model_patches",
    "AudioEncoderLoader": "audio_encoders",
    "LatentUpscaleModelLoader": "latent_upscale_models",
    # popular custom loaders
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
    "FaceRestoreModelLoader": "facerestore_models",
    "InstantIDModelLoader": "instantid",
    "PulidModelLoader": "pulid",
}
"""Loader class -> folder of every model-file value among its widgets."""

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


def _node_models(c: _Collector, node: NodeRef) -> None:
    values = _flat_values(node)
    declared = node.properties.get("models")
    if isinstance(declared, list) and declared:
        names = {clean_name(v) for _, v in values if isinstance(v, str)}
        names |= {clean_name(v) for v in node.named.values() if isinstance(v, str)}
        for entry in declared:
            name = entry.get("name") if isinstance(entry, dict) else None
            if isinstance(name, str) and clean_name(name) in names:
                c.declared(entry, node.active)
    folder = LOADERS.get(node.class_type)
    for key, value in values:
        if isinstance(value, str) and "embedding:" in value.lower():
            for m in _EMBEDDING.finditer(value):
                c.add("embeddings", m.group(1).rstrip(".,;"), node.active)
            continue
        if not looks_like_model(value):
            continue
        target = folder or (INPUT_FOLDERS.get(key) if key else None)
        if target:
            c.add(target, value, node.active)


def _folder_for_target(class_type: str, widget: str) -> str | None:
    return LOADERS.get(class_type) or INPUT_FOLDERS.get(widget)


def _instance_models(c: _Collector, inst: InstanceRef) -> None:
    inner_values = {
        clean_name(v) for n in inst.inner for _, v in _flat_values(n) if isinstance(v, str)
    }
    inner_folders = {LOADERS[n.class_type] for n in inst.inner if n.class_type in LOADERS}
    for key, value in _flat_values(inst.node):
        if not looks_like_model(value) or clean_name(value) in inner_values:
            continue  # the inner loader already holds this value
        folders: set[str] = set()
        if key and key in inst.input_targets:
            folders = {f for cls, w in inst.input_targets[key] if (f := _folder_for_target(cls, w))}
        if not folders and key and key in INPUT_FOLDERS:
            folders = {INPUT_FOLDERS[key]}
        if not folders and len(inner_folders) == 1:
            folders = set(inner_folders)
        if len(folders) == 1:
            c.add(folders.pop(), value, inst.node.active)
        else:
            c.add(None, value, inst.node.active)
            c.warnings.append(
                f"the folder of {value!r} (a widget of subgraph {inst.node.node_id}) is unknown"
            )


def collect_models(walk: GraphWalk) -> tuple[list[ModelRequirement], list[str]]:
    """Every model the walked graph names, merged by (folder, name); plus warnings."""
    c = _Collector()
    for entry, active in walk.declared_models:
        c.declared(entry, active)
    seen: set[int] = set()
    for node in walk.nodes:
        if id(node) not in seen:
            seen.add(id(node))
            _node_models(c, node)
    for inst in walk.instances:
        _node_models(c, inst.node)  # properties.models on the instance itself
        _instance_models(c, inst)
    return c.result(), c.warnings


def suggest_models(name: str, db: NodeDatabase | None) -> list[ModelSuggestion]:
    """model-list.json entries with exactly this file name (case-insensitive)."""
    if db is None:
        return []
    filename = clean_name(name).rsplit("/", 1)[-1].lower()
    return [
        ModelSuggestion(e.name, e.directory, e.filename, e.url, e.size)
        for e in db.models_by_filename.get(filename, ())
    ]
