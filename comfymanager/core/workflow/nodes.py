"""Node class -> node pack, in the order that works on real workflows (COMFYUI.md section 2).

1. ``properties.cnr_id == "comfy-core"`` -> core. 2. ``cnr_id``/``aux_id`` (+ ``ver``) -> that
pack, pinned. 3. The node map: core names, preemptions, a single owner, several owners (all
listed, never silently the first), ``nodename_pattern``. Frontend-only nodes are "frontend".
4. Optionally the Comfy Registry (``lookup_registry``). 5. Otherwise "unknown".
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import requests

from comfymanager.core.workflow.nodedb import NodeDatabase, PackInfo, normalize_repo_url
from comfymanager.core.workflow.nodedefs import NodeDefinitions

log = logging.getLogger(__name__)

Kind = Literal["core", "custom", "frontend", "unknown"]

CORE_FRONTEND = frozenset({"Note", "MarkdownNote", "Reroute", "PrimitiveNode", "Comment"})
"""Frontend-only nodes of ComfyUI itself: nothing to install."""

PACK_FRONTEND: dict[str, str] = {
    "SetNode": "https://github.com/kijai/comfyui-kjnodes",
    "GetNode": "https://github.com/kijai/comfyui-kjnodes",
    **{
        f"{name} (rgthree)": "https://github.com/rgthree/rgthree-comfy"
        for name in (
            "Fast Groups Bypasser",
            "Fast Groups Muter",
            "Fast Bypasser",
            "Fast Muter",
            "Fast Actions Button",
            "Node Collector",
            "Bookmark",
            "Label",
            "Reroute",
            "Mute / Bypass Repeater",
            "Mute / Bypass Relay",
        )
    },
}
"""JavaScript-only nodes of custom packs: never missing as classes, but their pack is needed."""

_HASH = re.compile(r"^[0-9a-f]{4,40}$")
_SEMVER = re.compile(r"^v?\d+(\.\d+){0,3}([-+.][0-9A-Za-z.-]+)?$")


@dataclass(frozen=True)
class PackRef:
    """A pack as the plan shows it. ``key`` (normalised URL) or ``id`` identify it."""

    key: str | None
    id: str | None
    url: str | None
    title: str
    version: str | None = None
    commit: str | None = None

    @property
    def identity(self) -> str:
        return self.key or f"registry:{self.id}"


@dataclass(frozen=True)
class Resolution:
    class_type: str
    kind: Kind
    pack: PackRef | None = None
    candidates: tuple[PackRef, ...] = ()
    via: str = ""  # "cnr_id", "aux_id", "map", "preemption", "pattern", "registry", ...


@dataclass(frozen=True)
class RegistryHit:
    """What the Comfy Registry says provides a class."""

    id: str
    name: str
    repository: str | None
    version: str | None


def _ref(db: NodeDatabase | None, key: str, **pins: str | None) -> PackRef:
    info: PackInfo | None = db.packs.get(key) if db else None
    if info is None:
        return PackRef(key=key, id=None, url=key, title=key.rsplit("/", 1)[-1], **pins)
    return PackRef(key=key, id=info.id, url=info.url, title=info.title or info.key, **pins)


def split_ver(ver: Any) -> dict[str, str | None]:
    """``properties.ver`` as pins: a git hash is a commit, semver a version, else nothing."""
    if not isinstance(ver, str) or not ver or ver == "unknown":
        return {"version": None, "commit": None}
    v = ver.strip()
    if _HASH.match(v.lower()) and not v.isdigit():
        return {"version": None, "commit": v.lower()}
    if _SEMVER.match(v):
        return {"version": v, "commit": None}
    return {"version": None, "commit": None}


def _by_registry_id(db: NodeDatabase | None, cnr_id: str, class_type: str) -> str | None:
    """The map key of a registry pack: its catalogue id, or the one owner whose repo is named
    like the id (registry ids are usually the lower-cased repo name)."""
    if db is None:
        return None
    key = db.by_id.get(cnr_id.lower())
    if key:
        return key
    owners = set(db.owners.get(class_type, ())) | set(db.preemptions.get(class_type, ()))
    named = [k for k in db.by_repo_name.get(cnr_id.lower(), ()) if not owners or k in owners]
    return named[0] if len(named) == 1 else None


def resolve_class(
    class_type: str,
    properties: Any,
    db: NodeDatabase | None,
    defs: NodeDefinitions | None = None,
) -> Resolution:
    """Resolve one class. ``properties`` is the node's properties dict (or anything else);
    ``defs`` the node definitions known (shipped or a project's): their core classes are core
    even without the node database."""
    props = properties if isinstance(properties, dict) else {}
    cnr_id = props.get("cnr_id") if isinstance(props.get("cnr_id"), str) else None
    aux_id = props.get("aux_id") if isinstance(props.get("aux_id"), str) else None
    pins = split_ver(props.get("ver"))
    if cnr_id == "comfy-core":
        return Resolution(class_type, "core", via="cnr_id")
    if class_type in CORE_FRONTEND:
        return Resolution(class_type, "frontend")
    if class_type in PACK_FRONTEND:
        key = normalize_repo_url(f"https://github.com/{aux_id}") if aux_id else None
        key = key or PACK_FRONTEND[class_type]
        return Resolution(class_type, "frontend", _ref(db, key, **pins), via="frontend")
    if aux_id and "/" in aux_id:
        key = normalize_repo_url(f"https://github.com/{aux_id.strip('/')}")
        ref = _ref(db, key, **pins)
        if cnr_id:
            ref = PackRef(ref.key, cnr_id, ref.url, ref.title, ref.version, ref.commit)
        return Resolution(class_type, "custom", ref, via="aux_id")
    if cnr_id:
        key = _by_registry_id(db, cnr_id, class_type)
        if key:
            base = _ref(db, key, **pins)
            ref = PackRef(key, cnr_id, base.url, base.title, base.version, base.commit)
        else:
            ref = PackRef(None, cnr_id, None, cnr_id, **pins)
        return Resolution(class_type, "custom", ref, via="cnr_id")
    if defs is not None and defs.is_core(class_type):
        return Resolution(class_type, "core", via="definitions")
    if db is None:
        return Resolution(class_type, "unknown", via="no-database")
    return resolve_from_map(class_type, db)


def resolve_from_map(class_type: str, db: NodeDatabase) -> Resolution:
    if class_type in db.core:
        return Resolution(class_type, "core", via="map")
    pre = db.preemptions.get(class_type)
    if pre and len(pre) == 1:
        return Resolution(class_type, "custom", _ref(db, pre[0]), via="preemption")
    owners = db.owners.get(class_type)
    if owners and len(owners) == 1:
        return Resolution(class_type, "custom", _ref(db, owners[0]), via="map")
    if owners or pre:
        keys = list(dict.fromkeys([*(pre or ()), *(owners or ())]))
        cands = tuple(_ref(db, k) for k in keys)
        return Resolution(class_type, "custom", None, cands, via="several")
    matches = [key for key, rx in db.patterns if rx.search(class_type)]
    matches = list(dict.fromkeys(matches))
    if len(matches) == 1:
        return Resolution(class_type, "custom", _ref(db, matches[0]), via="pattern")
    if matches:
        cands = tuple(_ref(db, k) for k in matches)
        return Resolution(class_type, "custom", None, cands, via="several")
    return Resolution(class_type, "unknown")


def lookup_registry(
    registry_url: str, class_name: str, session: requests.Session, timeout: float = 15.0
) -> RegistryHit | None:
    """Ask the Comfy Registry which pack provides ``class_name`` (None when it does not know).

    Network problems raise ``requests.RequestException``; the caller decides how to report.
    """
    url = f"{registry_url.rstrip('/')}/comfy-nodes/{quote(class_name, safe='')}/node"
    resp = session.get(url, timeout=timeout)
    if resp.status_code == 404:
        return None
    resp.raise_for_status()
    try:
        data = resp.json()
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        return None
    latest = data.get("latest_version")
    version = latest.get("version") if isinstance(latest, dict) else None
    repo = data.get("repository")
    return RegistryHit(
        id=data["id"],
        name=str(data.get("name") or data["id"]),
        repository=repo if isinstance(repo, str) and repo else None,
        version=version if isinstance(version, str) else None,
    )


def resolution_from_hit(class_type: str, hit: RegistryHit, db: NodeDatabase | None) -> Resolution:
    key = normalize_repo_url(hit.repository) if hit.repository else None
    title = hit.name
    url = hit.repository
    if key and db and key in db.packs:
        title = db.packs[key].title or title
        url = db.packs[key].url
    ref = PackRef(key, hit.id, url, title)
    return Resolution(class_type, "custom", ref, via="registry")
