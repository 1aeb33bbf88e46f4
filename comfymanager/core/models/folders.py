"""Model folder keys and safe paths inside the store.

Every path we write into the store is built by ``safe_store_path``: the folder must be a known
key and the name (which may hold subfolders, as ComfyUI lists recursively) is checked part by
part, so a name taken from a workflow file can never escape the store.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from comfymanager.core.errors import InvalidInput
from comfymanager.core.log import redact
from comfymanager.core.models.safe_path import check_dirs

log = logging.getLogger(__name__)

#: ComfyUI core folder keys (``folder_paths.folder_names_and_paths``), canonical names only.
CORE_FOLDERS: tuple[str, ...] = (
    "checkpoints",
    "configs",
    "loras",
    "vae",
    "text_encoders",
    "diffusion_models",
    "clip_vision",
    "style_models",
    "embeddings",
    "diffusers",
    "vae_approx",
    "controlnet",
    "gligen",
    "upscale_models",
    "hypernetworks",
    "photomaker",
    "classifiers",
    "model_patches",
    "audio_encoders",
    "latent_upscale_models",
    "background_removal",
    "frame_interpolation",
    "geometry_estimation",
    "optical_flow",
    "detection",
)

#: Folders popular custom node packs read (they register them with ComfyUI themselves).
CUSTOM_FOLDERS: tuple[str, ...] = (
    "animatediff_models",
    "animatediff_motion_lora",
    "ipadapter",
    "sams",
    "sam2",
    "ultralytics",
    "insightface",
    "facerestore_models",
    "unet_gguf",
    "clip_gguf",
    "LLM",
    "depthanything",
    "florence2",
    "instantid",
    "onnx",
    "pulid",
    "xlabs",
)

FOLDER_KEYS: tuple[str, ...] = CORE_FOLDERS + CUSTOM_FOLDERS

#: Legacy folder names ComfyUI still reads, mapped to the canonical key they belong to.
LEGACY_FOLDERS: dict[str, str] = {
    "clip": "text_encoders",
    "unet": "diffusion_models",
    "t2i_adapter": "controlnet",
}

#: Formats that are Python pickles: loading one can run arbitrary code.
PICKLE_SUFFIXES: frozenset[str] = frozenset({".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pt2"})

_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {
    f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10)
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")
_BAD_CHARS = set('<>:"|?*')


#: A folder key a node pack registers itself (``folder_paths.add_model_folder_path("inpaint",
#: ...)``): one plain path component, as ComfyUI's own keys are.
_PACK_FOLDER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def canonical_folder(folder: str, *, pack_folder: bool = False) -> str:
    """The canonical key for ``folder`` (legacy names map to their new key). A user's choice
    must be a known key (a typo such as ``lora`` is refused); ``pack_folder`` also accepts a
    key a node pack registers itself, as the project's node verification learns it from the
    pack's real inputs: one plain path component."""
    key = folder.strip().strip("/\\")
    if key in LEGACY_FOLDERS:
        return LEGACY_FOLDERS[key]
    if key in FOLDER_KEYS:
        return key
    if pack_folder and is_pack_folder(key):
        return key
    raise InvalidInput(
        f"Unknown model folder {folder!r}.",
        f"Use one of: {', '.join(FOLDER_KEYS)}.",
    )


def is_pack_folder(key: str) -> bool:
    """A folder key a node pack may register: one plain component, no reserved name."""
    reserved = key.upper() in _WINDOWS_RESERVED
    return bool(_PACK_FOLDER.match(key)) and not reserved and ".." not in key


def aliases_of(folder: str) -> tuple[str, ...]:
    """On-disk folder names ComfyUI reads for a canonical key (the key first)."""
    key = canonical_folder(folder)
    return (key, *[old for old, new in LEGACY_FOLDERS.items() if new == key])


def safe_relative_name(name: str) -> str:
    """Normalise a model file name (``/`` separators) or raise ``InvalidInput`` naming the part."""
    if not name or not name.strip():
        raise InvalidInput("The model file name is empty.", "Give the file a name.")
    text = name.replace("\\", "/")
    if _CONTROL.search(text):
        raise InvalidInput(
            f"The model file name {name!r} contains control characters.",
            "Remove them from the name.",
        )
    if text.startswith("/") or _DRIVE.match(text):
        raise InvalidInput(
            f"The model file name {name!r} is an absolute path.",
            "Give a name relative to the model folder, like 'sub/model.safetensors'.",
        )
    parts = text.split("/")
    for part in parts:
        if part == "":
            raise InvalidInput(
                f"The model file name {name!r} has an empty path part.",
                "Remove the doubled or trailing '/'.",
            )
        if part in (".", ".."):
            raise InvalidInput(
                f"The model file name {name!r} contains {part!r}.",
                "Model names may not point outside their folder; remove the '..' part.",
            )
        bad = sorted(_BAD_CHARS.intersection(part))
        if bad:
            raise InvalidInput(
                f"The model file name {name!r} contains {''.join(bad)!r} in {part!r}.",
                "Windows cannot store those characters; rename the file.",
            )
        if part.endswith((" ", ".")):
            raise InvalidInput(
                f"The part {part!r} of {name!r} ends with a space or a dot.",
                "Windows cannot store such names; rename it.",
            )
        if part.split(".")[0].upper().rstrip() in _WINDOWS_RESERVED:
            raise InvalidInput(
                f"The part {part!r} of {name!r} is a reserved name on Windows.",
                "Rename it (for example add a prefix).",
            )
    return "/".join(parts)


def safe_store_path(store: Path, folder: str, name: str) -> Path:
    """``store/<canonical folder>/<name>``, guaranteed to stay inside that folder: every
    existing folder on the way is checked with ``lstat`` (``safe_path.check_dirs``) and a link
    that leaves the store is refused, naming it."""
    key = canonical_folder(folder, pack_folder=True)
    rel = safe_relative_name(name)
    check_dirs(store, store / key / PurePosixPath(rel).parent, area="the model store")
    base = (store / key).resolve()
    relative = PurePosixPath(rel)
    # the folders are resolved, the file name is not: a link there is the caller's to refuse
    # (``safe_path.check_files``) naming it, before anything is written
    target = (base / relative.parent).resolve() / relative.name
    if target == base or base not in target.parents:
        raise InvalidInput(
            f"The model file name {name!r} resolves outside the {key} folder "
            f"(a link inside the store points elsewhere).",
            "Choose another name or remove the link.",
        )
    return base / relative


def can_run_code(name: str) -> bool:
    """True for pickle-based formats, which can execute code when loaded."""
    return PurePosixPath(name.replace("\\", "/")).suffix.lower() in PICKLE_SUFFIXES


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str) -> str:
    """Accept https URLs, and http only to this machine; raise ``InvalidInput`` otherwise."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return url
    if parts.scheme == "http":
        raise InvalidInput(
            f"Refusing the unencrypted download address {url_for_log(url)}.",
            "Use the https:// address of the file.",
        )
    raise InvalidInput(
        f"{url_for_log(url)!r} is not a download address.",
        "Give an https:// link to the model file.",
    )


def url_for_log(url: str) -> str:
    """The URL without its query string or user info (signed CDN links carry secrets there),
    and through ``log.redact`` (a token in the path, a URL that does not parse)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port:
            host = f"{host}:{parts.port}"
    except ValueError:  # a bad port or bracket: keep only what is before the query
        return redact(url.split("?")[0].split("#")[0])
    shown = f"{parts.scheme}://{host}{parts.path}" if parts.scheme else url.split("?")[0]
    return redact(shown)


def host_for_log(url: str) -> str:
    """``host[:port]`` of ``url`` for a message: never the user-info part of ``netloc``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        return f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return "?"
