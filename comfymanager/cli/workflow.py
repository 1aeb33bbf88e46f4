"""CLI commands: ``comfymanager analyze FILE... [--json] [--lookup]``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import requests

from comfymanager.cli.common import print_json
from comfymanager.core.context import CoreContext
from comfymanager.core.errors import ComfyManagerError
from comfymanager.core.workflow.nodedb import NodeDatabase, load_node_db, refresh_node_db
from comfymanager.core.workflow.nodes import Resolution, lookup_registry, resolution_from_hit
from comfymanager.core.workflow.plan import Analysis, analysis_to_json, analyze, error_to_json

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "analyze",
        help="list the node packs and model files workflow files need",
        description="Analyse workflow files (JSON, PNG, WebP, audio/video with an embedded "
        "workflow, launcher files, manifests) without installing anything.",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true", help="one JSON object per file per line")
    p.add_argument(
        "--lookup",
        action="store_true",
        help="ask the Comfy Registry about node classes the local database does not know",
    )
    p.set_defaults(func=cmd_analyze)


def _node_db(ctx: CoreContext) -> tuple[NodeDatabase | None, str]:
    try:
        status = refresh_node_db(ctx.settings.node_db_source, ctx.paths.node_db, timeout=10)
    except ComfyManagerError as exc:
        return load_node_db(ctx.paths.node_db), f"node database source: {exc}"
    note = "" if status.state in ("cached", "updated", "not-modified") else status.message
    return load_node_db(ctx.paths.node_db), note


class _RegistryLookup:
    """Asks the registry once per class; after a network failure it stops asking."""

    def __init__(self, url: str, db: NodeDatabase | None) -> None:
        self.url = url
        self.db = db
        self.session = requests.Session()
        self.failed: str | None = None
        self.cache: dict[str, Resolution | None] = {}

    def __call__(self, class_name: str) -> Resolution | None:
        if self.failed or class_name in self.cache:
            return self.cache.get(class_name)
        try:
            hit = lookup_registry(self.url, class_name, self.session)
        except requests.RequestException as exc:
            self.failed = f"registry lookup failed ({exc}); unknown classes stay unknown"
            return None
        res = resolution_from_hit(class_name, hit, self.db) if hit else None
        self.cache[class_name] = res
        return res


def _print_plan(a: Analysis, shown: str) -> None:
    out = sys.stdout
    print(f"{shown} ({a.format} workflow)", file=out)
    if a.comfyui_version:
        print(f"  ComfyUI version: {a.comfyui_version}", file=out)
    custom = [n for n in a.nodes if n.kind == "custom"]
    unknown = [n for n in a.nodes if n.kind == "unknown"]
    core = sum(1 for n in a.nodes if n.kind == "core")
    print(
        f"  Node classes: {len(a.nodes)} ({core} core, {len(custom)} custom, "
        f"{len(unknown)} unknown)",
        file=out,
    )
    for p in a.packs:
        pin = p.pack.version or (p.pack.commit[:12] if p.pack.commit else "latest")
        print(f"  Pack: {p.pack.title} [{pin}] {p.pack.url or p.pack.id or ''}", file=out)
    for n in custom:
        if n.pack is None:
            names = ", ".join(c.title for c in n.candidates)
            print(f"  Choose a pack for {n.class_type}: {names}", file=out)
    for n in unknown:
        print(f"  Unknown node class: {n.class_type}", file=out)
    for m in a.models:
        r = m.requirement
        state = {True: "present", False: "missing", None: "?"}[m.present]
        flag = "" if r.active else " (only used by muted/bypassed nodes)"
        print(f"  Model: {r.directory or '?'}/{r.name} [{state}]{flag}", file=out)
        for url in r.urls[:3]:
            print(f"      {url}", file=out)
    for w in a.warnings:
        print(f"  Warning: {w}", file=out)


def cmd_analyze(args: argparse.Namespace, ctx: CoreContext) -> int:
    db, note = _node_db(ctx)
    if note:
        print(f"note: {note}", file=sys.stderr)
    store = ctx.store

    def is_present(folder: str, name: str) -> bool:
        return (store / folder / name).is_file()

    lookup = _RegistryLookup(ctx.settings.registry_url, db) if args.lookup else None
    failed = 0
    for given in args.files:
        try:
            analysis = analyze(Path(given), db, is_present, lookup=lookup)
        except ComfyManagerError as exc:
            failed += 1
            if args.json:
                print_json(error_to_json(given, str(exc)))
            else:
                print(f"error: {exc}", file=sys.stderr)  # the message names the file
            continue
        if args.json:
            data = analysis_to_json(analysis, given)
            if lookup is not None and lookup.failed:
                data["warnings"].append(lookup.failed)
            print_json(data)
        else:
            _print_plan(analysis, given)
    if lookup is not None and lookup.failed and not args.json:
        print(f"note: {lookup.failed}", file=sys.stderr)
    return 1 if failed else 0
