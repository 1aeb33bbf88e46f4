"""The node verification's data: reading a project's node definitions (the shared format of
``workflow/nodedefs.py``) and the result of a verification (what the CLI, the import and the
window show), with its JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from comfymanager.core.errors import NotFound
from comfymanager.core.workflow import nodedefs
from comfymanager.core.workflow.nodedefs import ClassDef as ClassDef
from comfymanager.core.workflow.nodedefs import NodeDefinitions as NodeDefinitions
from comfymanager.core.workflow.nodedefs import definitions_from_data

DEFS_VERSION = nodedefs.FORMAT_VERSION
NOT_INSTALLED = "not installed"


# --- node definitions: the shared format lives in workflow/nodedefs.py -----------------------


def definitions_from_dict(data: Mapping[str, Any]) -> NodeDefinitions:
    """The scan's JSON (our project file carries ``kind`` and ``state`` too)."""
    return definitions_from_data(dict(data), "the node scan's answer")


def read_definitions(path: Path) -> NodeDefinitions:
    """A project's node-definitions file; ``NotFound`` when absent, ``CorruptFile`` when bad."""
    try:
        return nodedefs.read_definitions(path)
    except FileNotFoundError:
        raise NotFound(f"{path} does not exist.") from None


# --- the result -------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeCheck:
    """``status``: present | missing | skipped (missing, and left out on purpose: its pack was
    skipped at import, or the user chose Skip). ``error``: why it is missing (the pack's import
    error or "not installed"), or a note on a present class whose ``INPUT_TYPES()`` failed
    here."""

    class_type: str
    status: str
    pack: str | None = None  # the pack that provides it (or should)
    error: str = ""  # why it is missing or broken

    @property
    def sentence(self) -> str:
        if self.status == "present":
            return f"{self.class_type}: present"
        if self.status == "skipped":
            return f"{self.class_type}: left out on purpose"
        if self.pack and self.error == NOT_INSTALLED:
            return f"{self.class_type} ({self.pack} is not installed)"
        if self.pack and self.error:
            return f"{self.class_type} ({self.pack} failed to load: {self.error})"
        if self.pack:
            return f"{self.class_type} ({self.pack} is installed but does not provide it)"
        return f"{self.class_type} (no installed pack provides it)"


@dataclass(frozen=True)
class ModelCheck:
    """``status``: present | queued | downloaded | skipped | needs-url | unknown-folder |
    failed. ``folder_from``: "workflow" (its own folder) or "definition" (the real input)."""

    folder: str | None
    name: str
    status: str
    folder_from: str = "workflow"
    detail: str = ""

    @property
    def key(self) -> str:
        return f"{self.folder or '?'}/{self.name}"

    @property
    def ok(self) -> bool:
        return self.status in ("present", "queued", "downloaded", "skipped")


@dataclass(frozen=True)
class VerifyResult:
    project: str
    state: str
    comfyui: str
    nodes: tuple[NodeCheck, ...]
    models: tuple[ModelCheck, ...]
    failed_packs: Mapping[str, str] = field(default_factory=dict)
    checked_at: float = 0.0
    scan_seconds: float = 0.0
    cached: bool = False

    @property
    def missing(self) -> tuple[NodeCheck, ...]:
        return tuple(n for n in self.nodes if n.status == "missing")

    @property
    def skipped(self) -> tuple[NodeCheck, ...]:
        """Node types missing on purpose (not a problem; said so in the lines)."""
        return tuple(n for n in self.nodes if n.status == "skipped")

    @property
    def ok(self) -> bool:
        return not self.missing and all(m.ok for m in self.models)

    def nodes_line(self) -> str:
        total = len(self.nodes)
        if not total:
            return "no node types to check (the project has no workflows)"
        left = self.skipped
        aside = f"; {len(left)} left out on purpose ({', '.join(n.class_type for n in left)})"
        aside = aside if left else ""
        if not self.missing:
            if left:
                return f"{total - len(left)} of {total} node types present" + aside
            return f"all {total} node types present" if total > 1 else "the 1 node type present"
        bad = self.missing
        line = f"{len(bad)} of {total} node types missing: " + "; ".join(n.sentence for n in bad)
        return line + aside

    def models_line(self) -> str:
        if not self.models:
            return "no models named"
        counts: dict[str, int] = {}
        for m in self.models:
            counts[m.status] = counts.get(m.status, 0) + 1
        parts = [f"{counts.pop(s)} {label}" for s, label in STATUS_LABELS.items() if s in counts]
        parts += [f"{n} {s}" for s, n in sorted(counts.items())]
        n = len(self.models)
        return f"{n} model{'' if n == 1 else 's'}: " + ", ".join(parts)


STATUS_LABELS = {
    "present": "present",
    "downloaded": "downloaded",
    "queued": "queued",
    "skipped": "skipped",
    "needs-url": "without a download address",
    "unknown-folder": "with an unknown folder",
    "failed": "failed",
}
"""A model status as the summary line says it, in the order it lists them."""


def result_to_json(result: VerifyResult) -> dict[str, Any]:
    data = asdict(result)
    data["failed_packs"] = dict(result.failed_packs)
    data["summary"] = {"nodes": result.nodes_line(), "models": result.models_line()}
    data["ok"] = result.ok
    return data


def result_from_json(data: Mapping[str, Any]) -> VerifyResult:
    return VerifyResult(
        project=str(data["project"]),
        state=str(data.get("state") or ""),
        comfyui=str(data.get("comfyui") or ""),
        nodes=tuple(NodeCheck(**n) for n in data.get("nodes") or ()),
        models=tuple(ModelCheck(**m) for m in data.get("models") or ()),
        failed_packs=dict(data.get("failed_packs") or {}),
        checked_at=float(data.get("checked_at") or 0.0),
        scan_seconds=float(data.get("scan_seconds") or 0.0),
    )
