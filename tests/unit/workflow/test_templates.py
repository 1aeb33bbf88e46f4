"""Every official template analyses, with every declared model found and no core node missing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from comfymanager.core.workflow.analyze import analysis_to_json, analyze
from comfymanager.core.workflow.nodedb import NodeDatabase
from tests.fixtures.nodedb import templates_dir


def _templates() -> list[Path]:
    out = []
    for p in sorted(templates_dir().glob("*.json")):
        data = json.loads(p.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("nodes"), list):
            out.append(p)
    return out


def _declared(graph: dict[str, Any], out: set[tuple[str, str, str]], core: set[str]) -> None:
    for entry in graph.get("models") or []:
        out.add((entry["directory"], entry["name"], entry["url"]))
    for node in graph.get("nodes", []):
        props = node.get("properties") or {}
        if props.get("cnr_id") == "comfy-core":
            core.add(node["type"])
        for entry in props.get("models") or []:
            out.add((entry["directory"], entry["name"], entry["url"]))
    for sub in (graph.get("definitions") or {}).get("subgraphs") or []:
        _declared(sub, out, core)


def _definition_ids(graph: dict[str, Any]) -> set[str]:
    ids: set[str] = set()
    for sub in (graph.get("definitions") or {}).get("subgraphs") or []:
        ids.add(sub["id"])
        ids |= _definition_ids(sub)
    return ids


def test_every_template(node_db: NodeDatabase) -> None:
    templates = _templates()
    assert len(templates) > 500
    problems: list[str] = []
    for path in templates:
        data = json.loads(path.read_text(encoding="utf-8"))
        declared: set[tuple[str, str, str]] = set()
        core: set[str] = set()
        _declared(data, declared, core)
        result = analysis_to_json(analyze(path, node_db), path.name)
        found = {(m["directory"], m["name"]): m for m in result["models"]}
        for directory, name, url in declared:
            m = found.get((directory, name.replace("\\", "/")))
            if m is None:
                problems.append(f"{path.name}: {directory}/{name} not found")
            elif url.replace("/blob/", "/resolve/") not in m["urls"]:
                problems.append(f"{path.name}: {directory}/{name} lacks {url}")
        kinds = {n["class_type"]: n["kind"] for n in result["nodes"]}
        for cls in core - _definition_ids(data):  # instances of subgraphs are not classes
            if kinds.get(cls) != "core":
                problems.append(f"{path.name}: core node {cls} reported as {kinds.get(cls)}")
    assert problems[:20] == []


@pytest.mark.parametrize("name", ["index.json", "fuse_options.json"])
def test_non_workflow_json_in_the_package_is_refused(name: str, node_db: NodeDatabase) -> None:
    from comfymanager.core.workflow.formats import WorkflowError

    with pytest.raises(WorkflowError, match="not a ComfyUI workflow"):
        analyze(templates_dir() / name, node_db)
