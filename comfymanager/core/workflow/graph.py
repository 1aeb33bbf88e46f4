"""Walk UI and API graphs: every node occurrence, with subgraphs and group nodes expanded.

A subgraph instance (``type`` = a definition's UUID) and a legacy group node (``workflow>NAME``
or ``workflow/NAME``) are not classes: the walk descends into their inner graphs. A node is
``active`` only when it and every instance around it run (mode 2 = muted, 4 = bypassed).
Wrong types anywhere are skipped with a warning; recursion is capped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

MAX_DEPTH = 32
INACTIVE_MODES = (2, 4)


@dataclass(frozen=True)
class NodeRef:
    """One node occurrence. ``widgets`` are positional values, ``named`` by widget name."""

    class_type: str
    node_id: str
    properties: dict[str, Any]
    widgets: tuple[Any, ...]
    named: dict[str, Any]
    active: bool
    input_widgets: tuple[tuple[str, str], ...] = ()  # (``inputs[].widget.name``, slot type)


@dataclass(frozen=True)
class InstanceRef:
    """A subgraph or group-node instance: its own widget values (promoted widgets) and the
    inner nodes, with ``input_targets``: subgraph input name -> (inner class, widget name)."""

    node: NodeRef
    inner: tuple[NodeRef, ...]
    input_targets: dict[str, tuple[tuple[str, str], ...]]


@dataclass
class GraphWalk:
    nodes: list[NodeRef] = field(default_factory=list)
    instances: list[InstanceRef] = field(default_factory=list)
    declared_models: list[tuple[Any, bool | None]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    version_hints: list[str] = field(default_factory=list)


def _widgets(node: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    raw = node.get("widgets_values")
    named: dict[str, Any] = {}
    values: tuple[Any, ...] = ()
    if isinstance(raw, list):
        values = tuple(raw)
    elif isinstance(raw, dict):
        named.update({str(k): v for k, v in raw.items()})
        values = tuple(raw.values())
    extra = node.get("widgets_values_named")
    if isinstance(extra, dict):
        named.update({str(k): v for k, v in extra.items()})
    return values, named


def _input_widgets(node: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    inputs = node.get("inputs")
    if not isinstance(inputs, list):
        return ()
    names = []
    for slot in inputs:
        widget = slot.get("widget") if isinstance(slot, dict) else None
        name = widget.get("name") if isinstance(widget, dict) else None
        if isinstance(name, str):
            kind = slot.get("type")
            names.append((name, kind if isinstance(kind, str) else ""))
    return tuple(names)


def _collect_definitions(
    graph: dict[str, Any], out: dict[str, dict[str, Any]], depth: int, warnings: list[str]
) -> None:
    if depth > MAX_DEPTH:
        warnings.append(f"subgraph definitions nested deeper than {MAX_DEPTH}; the rest ignored")
        return
    defs = graph.get("definitions")
    subs = defs.get("subgraphs") if isinstance(defs, dict) else None
    if subs is None:
        return
    if not isinstance(subs, list):
        warnings.append("definitions.subgraphs is not a list; ignored")
        return
    for sub in subs:
        if isinstance(sub, dict) and isinstance(sub.get("id"), str):
            out.setdefault(sub["id"], sub)
            _collect_definitions(sub, out, depth + 1, warnings)
        else:
            warnings.append("ignored a subgraph definition without an id")


def _link_key(value: Any) -> str | None:
    """A link id as a dict key: integers and numeric text alike; anything else (lists, dicts,
    booleans, seen in damaged files) is no link."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return str(int(value))
    if isinstance(value, str):
        return value
    return None


def _input_targets(sub: dict[str, Any]) -> dict[str, tuple[tuple[str, str], ...]]:
    """Which inner (class, widget) each subgraph input feeds, from the version-1 links."""
    inputs = sub.get("inputs")
    links = sub.get("links")
    nodes = sub.get("nodes")
    if not (isinstance(inputs, list) and isinstance(links, list) and isinstance(nodes, list)):
        return {}
    by_id = {str(n.get("id")): n for n in nodes if isinstance(n, dict)}
    by_link: dict[str, tuple[Any, Any]] = {}
    for link in links:
        if isinstance(link, dict):
            key = _link_key(link.get("id"))
            target = (link.get("target_id"), link.get("target_slot"))
        elif isinstance(link, list) and len(link) >= 5:
            key, target = _link_key(link[0]), (link[3], link[4])
        else:
            continue
        if key is not None:
            by_link[key] = target
    out: dict[str, tuple[tuple[str, str], ...]] = {}
    for inp in inputs:
        if not isinstance(inp, dict) or not isinstance(inp.get("name"), str):
            continue
        link_ids = inp.get("linkIds")
        if not isinstance(link_ids, list):
            continue  # seen in damaged files: a number, null, a dict
        targets: list[tuple[str, str]] = []
        for link_id in link_ids:
            key = _link_key(link_id)
            found = by_link.get(key) if key is not None else None
            if found is None:
                continue
            node = by_id.get(str(found[0]))
            if node is None or not isinstance(node.get("type"), str):
                continue
            slots = node.get("inputs")
            slot = found[1]
            if isinstance(slots, list) and isinstance(slot, int) and 0 <= slot < len(slots):
                s = slots[slot]
                if isinstance(s, dict):
                    widget = s.get("widget")
                    wname = widget.get("name") if isinstance(widget, dict) else s.get("name")
                    if isinstance(wname, str):
                        targets.append((node["type"], wname))
        if targets:
            out[inp["name"]] = tuple(targets)
    return out


class _UiWalker:
    def __init__(self, root: dict[str, Any], walk: GraphWalk) -> None:
        self.walk = walk
        self.defs: dict[str, dict[str, Any]] = {}
        _collect_definitions(root, self.defs, 0, walk.warnings)
        extra = root.get("extra")
        groups = extra.get("groupNodes") if isinstance(extra, dict) else None
        self.groups: dict[str, Any] = groups if isinstance(groups, dict) else {}
        self.done: dict[tuple[str, bool], tuple[NodeRef, ...]] = {}
        self.used: set[str] = set()

    def graph(self, g: dict[str, Any], prefix: str, active: bool, depth: int) -> list[NodeRef]:
        nodes = g.get("nodes")
        if not isinstance(nodes, list):
            if nodes is not None:
                self.walk.warnings.append(f"a graph's nodes is a {type(nodes).__name__}; ignored")
            return []
        models = g.get("models")
        if isinstance(models, list):
            self.walk.declared_models.extend((m, None) for m in models)
        out: list[NodeRef] = []
        bad = 0
        for node in nodes:
            if not isinstance(node, dict) or not isinstance(node.get("type"), str):
                bad += 1
                continue
            out.extend(self.node(node, prefix, active, depth))
        if bad:
            self.walk.warnings.append(f"ignored {bad} nodes without a valid type")
        return out

    def node(self, node: dict[str, Any], prefix: str, active: bool, depth: int) -> list[NodeRef]:
        ntype: str = node["type"]
        nid = f"{prefix}{node.get('id')}"
        mode = node.get("mode")
        here = active and mode not in INACTIVE_MODES
        raw_props = node.get("properties")
        props: dict[str, Any] = raw_props if isinstance(raw_props, dict) else {}
        values, named = _widgets(node)
        ref = NodeRef(ntype, nid, props, values, named, here, _input_widgets(node))
        inner_graph: dict[str, Any] | None = None
        targets: dict[str, tuple[tuple[str, str], ...]] = {}
        if ntype in self.defs:
            inner_graph = self.defs[ntype]
            self.used.add(ntype)
            targets = _input_targets(inner_graph)
        elif ntype.startswith(("workflow>", "workflow/")):
            group = self.groups.get(ntype[9:])
            if isinstance(group, dict):
                inner_graph = group
            else:
                self.walk.warnings.append(f"group node {ntype!r} has no definition in the file")
                self.walk.instances.append(InstanceRef(ref, (), {}))  # keeps its model names
                return []
        if inner_graph is None:
            self.walk.nodes.append(ref)
            return [ref]
        if depth >= MAX_DEPTH:
            self.walk.warnings.append(f"subgraphs nested deeper than {MAX_DEPTH}; the rest ignored")
            return []
        memo_key = (ntype, here)
        inner = self.done.get(memo_key)
        if inner is None:
            self.done[memo_key] = ()  # a definition containing itself stops here
            inner = tuple(self.graph(inner_graph, f"{nid}:", here, depth + 1))
            self.done[memo_key] = inner
        self.walk.instances.append(InstanceRef(ref, inner, targets))
        return list(inner)

    def unused_definitions(self) -> None:
        for def_id, sub in self.defs.items():
            if def_id not in self.used and (def_id, False) not in self.done:
                self.done[(def_id, False)] = ()
                self.graph(sub, f"{def_id[:8]}:", False, 1)


def walk_ui(root: dict[str, Any]) -> GraphWalk:
    """Every node of a UI workflow, subgraphs and group nodes expanded."""
    walk = GraphWalk()
    walker = _UiWalker(root, walk)
    walker.graph(root, "", True, 0)
    walker.unused_definitions()  # definitions no instance uses: listed, but inactive
    extra = root.get("extra")
    if isinstance(extra, dict) and isinstance(extra.get("frontendVersion"), str):
        walk.version_hints.append(extra["frontendVersion"])
    return walk


def walk_api(prompt: dict[str, Any]) -> GraphWalk:
    """Every node of an API prompt. Inputs that are links (``[id, index]``) are left out."""
    walk = GraphWalk()
    bad = 0
    for nid, node in prompt.items():
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str):
            bad += 1
            continue
        inputs = node.get("inputs")
        named: dict[str, Any] = {}
        if isinstance(inputs, dict):
            for k, v in inputs.items():
                if not (isinstance(v, list) and len(v) == 2 and isinstance(v[1], int)):
                    named[str(k)] = v
        walk.nodes.append(
            NodeRef(node["class_type"], str(nid), {}, tuple(named.values()), named, True)
        )
    if bad:
        walk.warnings.append(f"ignored {bad} prompt entries without a class_type")
    return walk
