"""CLI: ``verify NAME [--json] [--force] [--download]``: load the project's nodes in its own
Python and check its workflows (node types present, each model's folder and presence).
``print_verification`` is the block ``import`` prints too."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from comfymanager.core.context import CoreContext
    from comfymanager.core.errors import ErrorInfo
    from comfymanager.core.verify.verify import VerifyResult


def print_verification(
    result: VerifyResult | None, error: ErrorInfo | None = None, out: TextIO | None = None
) -> None:
    """A short block: node types present / missing with the cause, models by status."""
    out = out or sys.stderr
    if error is not None:
        print(f"Verification: not done: {error}", file=out)
        return
    if result is None:
        return
    how = "kept from the last check" if result.cached else f"loaded in {result.scan_seconds:.1f} s"
    print(f"Verification in the project (ComfyUI {result.comfyui or '?'}, {how}):", file=out)
    if result.missing:
        head = f"{len(result.missing)} of {len(result.nodes)} node types missing"
        print(f"  Nodes: {head}:", file=out)
        for n in result.missing:
            print(f"    {n.sentence}", file=out)
    else:
        print(f"  Nodes: {result.nodes_line()}", file=out)
    print(f"  Models: {result.models_line()}", file=out)
    for m in result.models:
        notes = []
        if m.folder_from == "definition":
            notes.append("folder from the node definition")
        if m.detail and m.status != "present":
            notes.append(m.detail)
        if notes or not m.ok:
            print(f"    [{m.status}] {m.key}: {'; '.join(notes)}", file=out)


def cmd_verify(args: argparse.Namespace, ctx: CoreContext) -> int:
    from comfymanager.cli.common import StderrProgress, print_json
    from comfymanager.core.progress import CancelToken
    from comfymanager.core.verify.verify import result_to_json, verify_project

    enqueue = None
    out = StderrProgress()
    if args.download:
        from comfymanager.cli.workflow_cmds import _cli_enqueue

        enqueue = _cli_enqueue(ctx, out)
    result = verify_project(
        ctx,
        args.name,
        out.reporter(),
        CancelToken(),
        enqueue_download=enqueue,
        force=args.force,
    )
    if args.json:
        print_json(result_to_json(result))
    else:
        print_verification(result, out=sys.stdout)
    return 0 if result.ok else 1


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "verify",
        help="check a project's node types and models in its own environment",
        description="Load ComfyUI's nodes and the installed packs in the project's own Python "
        "(without starting the server) and check every workflow of the project: each node type "
        "present (or why not), each model's folder from the real node definitions, each model "
        "present, queued or missing. A project that did not change answers from the last check. "
        "Exit code 1 when something is missing.",
    )
    p.add_argument("name", help="the project")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--force", action="store_true", help="load the nodes again even if unchanged")
    p.add_argument(
        "--download",
        action="store_true",
        help="download the models whose folder the check found and whose URL is known",
    )
    p.set_defaults(func=cmd_verify)
