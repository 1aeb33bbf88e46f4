"""CLI for a project's node packs and ComfyUI-Manager:

``packs NAME [--json]``, ``pack add NAME SOURCE[@VERSION] [--folder F]``, ``pack remove NAME
PACK``, ``pack update NAME [PACK]``, ``pack disable|enable NAME PACK`` and
``pack manager NAME --on|--off`` (ComfyUI-Manager inside the project; ``create --manager`` at
creation). Every change resolves all packs' requirements first and takes a snapshot.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from comfymanager.cli.common import StderrProgress, print_json
from comfymanager.core.progress import CancelToken

if TYPE_CHECKING:
    from comfymanager.core.context import CoreContext
    from comfymanager.core.lifecycle.packs import PackChange


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("packs", help="list a project's custom node packs")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_packs)

    p = sub.add_parser("pack", help="add, remove, update, enable or disable a project's packs")
    actions = p.add_subparsers(dest="pack_command", metavar="<action>", required=True)

    a = actions.add_parser("add", help="add a pack: a git URL, a folder or a registry id")
    a.add_argument("name", help="the project")
    a.add_argument("source", help="git URL, folder or registry id, optionally @VERSION")
    a.add_argument("--folder", default="", help="the folder name in custom_nodes")
    _common(a)
    a.set_defaults(func=cmd_add)

    a = actions.add_parser("remove", help="remove a pack (its folder and record)")
    a.add_argument("name")
    a.add_argument("pack", help="the pack's folder name (see 'packs NAME')")
    _common(a)
    a.set_defaults(func=cmd_remove)

    a = actions.add_parser(
        "update", help="update one pack, or every pack: latest tag, branch head or registry"
    )
    a.add_argument("name")
    a.add_argument("pack", nargs="?", default=None)
    _common(a)
    a.set_defaults(func=cmd_update)

    for action, what in (("disable", "move a pack aside"), ("enable", "bring a pack back")):
        a = actions.add_parser(action, help=f"{what} (custom_nodes/.disabled)")
        a.add_argument("name")
        a.add_argument("pack")
        _common(a)
        a.set_defaults(func=cmd_enable if action == "enable" else cmd_disable)

    a = actions.add_parser("manager", help="ComfyUI-Manager inside the project, on or off")
    a.add_argument("name")
    switch = a.add_mutually_exclusive_group(required=True)
    switch.add_argument("--on", dest="enabled", action="store_true")
    switch.add_argument("--off", dest="enabled", action="store_false")
    _common(a)
    a.set_defaults(func=cmd_manager)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--verbose", "-v", action="store_true", help="show tool output")
    p.add_argument("--json", action="store_true")


def cmd_packs(args: argparse.Namespace, ctx: CoreContext) -> int:
    from comfymanager.core.lifecycle.pack_list import list_packs

    rows = list_packs(ctx, args.name)
    if args.json:
        print_json([row.__dict__ for row in rows])
        return 0
    if not rows:
        print(
            f"Project '{args.name}' has no custom node packs. Add one with: "
            f"comfymanager pack add {args.name} SOURCE"
        )
    for r in rows:
        version = r.version or (r.commit[:10] if r.commit else "")
        state = {
            "ok": "loaded",
            "failed": "FAILED",
            "missing": "MISSING",
            "unknown": "not verified",
            "disabled": "",
        }.get(r.state, r.state)
        flags = "" if r.enabled else " (disabled)"
        flags += " (added outside comfymanager)" if r.origin == "outside" else ""
        print(f"{r.name:<28} {version:<14} {state:<13} {r.source}{flags}")
        if r.error:
            print(f"    {r.error}")
    return 0


def _out(args: argparse.Namespace) -> StderrProgress:
    return StderrProgress(quiet_log=not args.verbose)


def _print(args: argparse.Namespace, changes: list[PackChange]) -> int:
    if args.json:
        print_json([c.__dict__ for c in changes])
        return 0
    for c in changes:
        if c.action == "unchanged":
            print(f"{c.pack}: unchanged ({c.after or 'up to date'})", file=sys.stderr)
        elif c.action == "update":
            print(f"{c.pack}: updated {c.before} -> {c.after}", file=sys.stderr)
        else:
            detail = f" ({c.after})" if c.action == "add" and c.after else ""
            print(
                f"{c.pack}: {c.action}{'d' if c.action.endswith('e') else 'ed'}{detail}",
                file=sys.stderr,
            )
    if not changes:
        print("No packs to update.", file=sys.stderr)
    return 0


def cmd_add(args: argparse.Namespace, ctx: CoreContext) -> int:
    from comfymanager.core.lifecycle import packs

    change = packs.add_pack(
        ctx,
        args.name,
        args.source,
        folder=args.folder,
        report=_out(args).reporter(),
        cancel=CancelToken(),
    )
    return _print(args, [change])


def cmd_remove(args: argparse.Namespace, ctx: CoreContext) -> int:
    from comfymanager.core.lifecycle import packs

    change = packs.remove_pack(
        ctx, args.name, args.pack, report=_out(args).reporter(), cancel=CancelToken()
    )
    return _print(args, [change])


def cmd_update(args: argparse.Namespace, ctx: CoreContext) -> int:
    from comfymanager.core.lifecycle import packs

    changes = packs.update_pack(
        ctx, args.name, args.pack, report=_out(args).reporter(), cancel=CancelToken()
    )
    return _print(args, changes)


def _switch(args: argparse.Namespace, ctx: CoreContext, enabled: bool) -> int:
    from comfymanager.core.lifecycle import packs

    change = packs.set_enabled(
        ctx, args.name, args.pack, enabled, report=_out(args).reporter(), cancel=CancelToken()
    )
    return _print(args, [change])


def cmd_enable(args: argparse.Namespace, ctx: CoreContext) -> int:
    return _switch(args, ctx, True)


def cmd_disable(args: argparse.Namespace, ctx: CoreContext) -> int:
    return _switch(args, ctx, False)


def cmd_manager(args: argparse.Namespace, ctx: CoreContext) -> int:
    from comfymanager.core.lifecycle import manager

    change = manager.set_manager(
        ctx, args.name, args.enabled, report=_out(args).reporter(), cancel=CancelToken()
    )
    if args.json:
        print_json(change.__dict__)
    else:
        if change.enabled:
            how = (
                "the comfyui-manager package, --enable-manager"
                if change.how == "pip"
                else "the ComfyUI-Manager custom node"
            )
        else:
            what = "comfyui-manager package" if change.how == "pip" else "custom node"
            how = f"its {what} taken out; the snapshot before can bring it back"
        print(
            f"ComfyUI-Manager is {'on' if change.enabled else 'off'} for "
            f"'{change.project}' ({how}).",
            file=sys.stderr,
        )
    return 0
