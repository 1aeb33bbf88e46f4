"""What a project's saved workflows need, for the node verification (``core/verify/verify.py``).

The node classes they use (frontend-only nodes left out), the models the analysis finds
(``workflow.models.collect_models``: declared, loader table, widget name, with their URLs), and
every other model-looking widget value with its node class and widget name where known, so the
real input definitions can give its folder.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from comfymanager.core.errors import ComfyManagerError
from comfymanager.core.workflow.formats import load_workflow
from comfymanager.core.workflow.graph import GraphWalk, NodeRef, walk_api, walk_ui
from comfymanager.core.workflow.models import clean_name, collect_models, looks_like_model
from comfymanager.core.workflow.nodes import CORE_FRONTEND, PACK_FRONTEND

log = logging.getLogger(__name__)

_NOTES = frozenset({"Note", "MarkdownNote", "Comment"})


@dataclass
class WorkflowNeeds:
    classes: set[str] = field(default_factory=set)
    models: list[tuple[str | None, str, tuple[str, ...]]] = field(default_factory=list)
    # (class, widget name or None, model name, position among the node's model values)
    loader_values: list[tuple[str, str | None, str, int]] = field(default_factory=list)
    hints: dict[str, set[str]] = field(default_factory=dict)  # class -> cnr_id / aux_id values
    warnings: list[str] = field(default_factory=list)


def _values(node: NodeRef) -> list[tuple[str | None, Any]]:
    if node.widgets:
        names = {v: k for k, v in node.named.items() if isinstance(v, str)}
        return [(names.get(v) if isinstance(v, str) else None, v) for v in node.widgets]
    return list(node.named.items())


def _add_walk(needs: WorkflowNeeds, walk: GraphWalk) -> None:
    for node in walk.nodes:
        if node.class_type in CORE_FRONTEND or node.class_type in PACK_FRONTEND:
            continue
        needs.classes.add(node.class_type)
        for prop in ("cnr_id", "aux_id"):
            hint = node.properties.get(prop)
            if isinstance(hint, str) and hint and hint != "comfy-core":
                needs.hints.setdefault(node.class_type, set()).add(hint)
        if node.class_type in _NOTES:
            continue
        position = 0
        for widget, value in _values(node):
            if looks_like_model(value):
                needs.loader_values.append((node.class_type, widget, clean_name(value), position))
                position += 1
    for inst in walk.instances:
        for key, value in _values(inst.node):
            if not (key and looks_like_model(value)):
                continue
            for cls, target in inst.input_targets.get(key, ()):
                needs.loader_values.append((cls, target, clean_name(value), -1))
    # a Note's text is not a model reference (its "embedding:" words are prose)
    readable = GraphWalk(
        nodes=[n for n in walk.nodes if n.class_type not in _NOTES],
        instances=walk.instances,
        declared_models=walk.declared_models,
    )
    reqs, warnings = collect_models(readable)
    needs.warnings += warnings
    for r in reqs:
        needs.models.append((r.directory, clean_name(r.name), r.urls))


def workflow_needs(files: list[Path]) -> WorkflowNeeds:
    """Read each workflow file (UI or API format); a file that cannot be read is a warning."""
    needs = WorkflowNeeds()
    for path in files:
        try:
            loaded = load_workflow(path)
        except ComfyManagerError as exc:
            needs.warnings.append(f"{path.name}: {exc.message}")
            continue
        if loaded.ui is not None:
            _add_walk(needs, walk_ui(loaded.ui))
        elif loaded.api is not None:
            _add_walk(needs, walk_api(loaded.api))
    return needs
