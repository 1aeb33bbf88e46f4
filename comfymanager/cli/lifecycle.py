"""CLI: a project's life: ``snapshots NAME [--json]``, ``snapshot NAME [--note TEXT]``,
``rollback NAME SNAPSHOT [--yes]``, ``update NAME [--comfyui-ref REF | --latest] [--packs]
[--dry-run]``, over ``core/lifecycle``."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from comfymanager.core.context import CoreContext
    from comfymanager.core.lifecycle.snapshots import Snapshot


def _when(snap: Snapshot) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(snap.created))


def _json(snap: Snapshot) -> dict[str, Any]:
    data = snap.to_json()
    data["packages"] = len(data.pop("lock"))
    return data


def cmd_snapshots(args: argparse.Namespace, ctx: CoreContext) -> int:
    from comfymanager.cli.common import print_json
    from comfymanager.core.lifecycle.snapshots import changes_between, list_snapshots
    from comfymanager.core.projects import ProjectStore

    ProjectStore(ctx.paths).load(args.name)  # a clear error for an unknown project
    found = list_snapshots(ctx, args.name)
    changes = [
        changes_between(found[i + 1] if i + 1 < len(found) else None, s)
        for i, s in enumerate(found)
    ]
    if args.json:
        print_json([{**_json(s), "changes": list(c)} for s, c in zip(found, changes, strict=True)])
        return 0
    if not found:
        print(f"No snapshots of '{args.name}' yet (one is taken before every change).")
        return 0
    for s, changed in zip(found, changes, strict=True):
        packs = ", ".join(p.label for p in s.packs) or "no packs"
        note = f"  \u201c{s.note}\u201d" if s.note else ""
        print(
            f"{s.id}  {_when(s)}  {s.reason:<9} ComfyUI {s.comfyui_commit[:10]}"
            f"  {len(s.lock)} packages  {packs}{note}"
        )
        print(f"    changed: {'; '.join(changed)}")
    return 0


def cmd_snapshot(args: argparse.Namespace, ctx: CoreContext) -> int:
    from comfymanager.cli.common import StderrProgress
    from comfymanager.core.lifecycle.snapshots import take_snapshot
    from comfymanager.core.run.runs import project_lock

    out = StderrProgress(quiet_log=False)
    with project_lock(ctx, args.name):
        snap = take_snapshot(ctx, args.name, "manual", note=args.note, report=out.reporter())
    print(snap.id)
    return 0


def cmd_rollback(args: argparse.Namespace, ctx: CoreContext) -> int:
    from comfymanager.cli.common import StderrProgress
    from comfymanager.core.errors import InvalidInput
    from comfymanager.core.lifecycle.rollback import rollback
    from comfymanager.core.lifecycle.snapshots import load_snapshot
    from comfymanager.core.progress import CancelToken

    snap = load_snapshot(ctx, args.name, args.snapshot)
    if not args.yes:
        packs = ", ".join(p.label for p in snap.packs) or "no packs"
        print(
            f"Rolling '{args.name}' back to {snap.id} ({_when(snap)}, {snap.reason}): "
            f"ComfyUI {snap.comfyui_commit[:10]}, {len(snap.lock)} packages, {packs}."
        )
        raise InvalidInput(
            "A rollback changes the project's ComfyUI, packs and environment.",
            "Add --yes to confirm (the current state is kept as a snapshot first).",
        )
    out = StderrProgress(quiet_log=not args.verbose)
    result = rollback(ctx, args.name, snap.id, out.reporter(), CancelToken())
    print(
        f"'{args.name}' is back at snapshot {result.snapshot_id} (ComfyUI "
        f"{result.comfyui_commit[:10]}, {result.packages} packages) in {result.seconds:.1f} s."
    )
    return 0


def cmd_update(args: argparse.Namespace, ctx: CoreContext) -> int:
    from comfymanager.cli.common import StderrProgress
    from comfymanager.core.lifecycle.update import plan_update, update
    from comfymanager.core.progress import CancelToken

    if args.dry_run:
        plan = plan_update(
            ctx, args.name, ref=args.comfyui_ref or "", latest=args.latest, packs=args.packs
        )
        for line in plan.lines():
            print(line)
        print("Dry run: nothing changed." if plan.changes else "Nothing to update.")
        return 0
    out = StderrProgress(quiet_log=not args.verbose)
    result = update(
        ctx,
        args.name,
        ref=args.comfyui_ref or "",
        latest=args.latest,
        packs=args.packs,
        report=out.reporter(),
        cancel=CancelToken(),
    )
    for line in result.plan.lines():
        print(line)
    if not result.applied:
        print("Nothing to update.")
    else:
        print(f"Updated. The way back: comfymanager rollback {args.name} {result.snapshot_id}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("snapshots", help="list a project's snapshots, newest first")
    p.add_argument("name")
    p.add_argument("--json", action="store_true", help="a JSON list of objects")
    p.set_defaults(func=cmd_snapshots)

    p = sub.add_parser("snapshot", help="record the project's exact state now, with a note")
    p.add_argument("name")
    p.add_argument("--note", default="", help="what this state is (shown in the list)")
    p.set_defaults(func=cmd_snapshot)

    p = sub.add_parser(
        "rollback",
        help="bring a project back to a snapshot",
        description="Restore exactly the snapshot's state: ComfyUI checkout, pack folders "
        "(commits, registry versions, enabled state), the environment synced from its lock "
        "(packages from uv's cache when present), the torch constraints and launch settings.",
    )
    p.add_argument("name")
    p.add_argument("snapshot", help="a snapshot id (see: snapshots NAME)")
    p.add_argument("--yes", action="store_true", help="confirm")
    p.add_argument("-v", "--verbose", action="store_true", help="show every log line")
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser(
        "update",
        help="update (or downgrade) ComfyUI and packs, rolling back by itself on failure",
        description="Shows what changes (ComfyUI commits between the refs, each pack's old and "
        "new version, requirement changes), takes a snapshot, applies it under the torch "
        "constraint and verifies; if anything fails the project goes back to that snapshot.",
    )
    p.add_argument("name")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--comfyui-ref", help="tag, branch or commit (older = downgrade)")
    which.add_argument("--latest", action="store_true", help="the latest release (default)")
    p.add_argument(
        "--packs",
        action="store_true",
        help="also update every enabled pack (alone, without --comfyui-ref or --latest: "
        "only the packs; ComfyUI stays)",
    )
    p.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    p.add_argument("-v", "--verbose", action="store_true", help="show every log line")
    p.set_defaults(func=cmd_update)
