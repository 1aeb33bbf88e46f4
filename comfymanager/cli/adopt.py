"""CLI: ``adopt PATH [--name NAME] [--rebuild | --in-place] [--dry-run] [--json]`` (an existing
ComfyUI install, read-only scan shown as a plan first) and ``disk [NAME] [--json]`` /
``disk --prune-cache`` (a project's disk use, uv's cache, uv's own prune)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from comfymanager.core.context import CoreContext


def cmd_adopt(args: argparse.Namespace, ctx: CoreContext) -> int:
    from comfymanager.cli.common import StderrProgress, print_json
    from comfymanager.core.adopt.adopt import IN_PLACE, REBUILD, adopt, plan
    from comfymanager.core.progress import CancelToken

    mode = IN_PLACE if args.in_place else REBUILD
    backend = args.torch_backend or ""
    python = args.python  # None: as the install
    if args.dry_run:
        p = plan(ctx, args.path, args.name or "", mode, torch_backend=backend, python=python)
        if args.json:
            print_json({"dry_run": True, "plan": p.to_json()})
        else:
            print("\n".join(p.lines()))
            print("Dry run: nothing was written.")
        return 0
    p = plan(ctx, args.path, args.name or "", mode, torch_backend=backend, python=python)
    if not args.json:
        print("\n".join(p.lines()), file=sys.stderr)
    out = StderrProgress()
    result = adopt(
        ctx,
        args.path,
        p.name,
        mode,
        torch_backend=backend,
        python=python,
        report=out.reporter(),
        cancel=CancelToken(),
    )
    if args.json:
        print_json(
            {
                "dry_run": False,
                "project": result.project,
                "mode": mode,
                "seconds": round(result.seconds, 2),
                "copied_packs": list(result.copied_packs),
                "plan": result.plan.to_json(),
            }
        )
    else:
        print(f"Adopted {result.plan.scan.path} as project '{result.project}' ({mode}).")
        if result.copied_packs:
            print(f"Local packs copied (not reproducible): {', '.join(result.copied_packs)}")
        print(f"Start it with: comfymanager start {result.project}")
    return 0


def _disk_line(d: object) -> str:
    from comfymanager.core.disk import ProjectDisk
    from comfymanager.core.progress import format_bytes

    assert isinstance(d, ProjectDisk)
    line = (
        f"{d.project}: {format_bytes(d.total_bytes)} ({format_bytes(d.unique_bytes)} unique, "
        f"{format_bytes(d.shared_bytes)} shared through uv's cache), snapshots "
        f"{format_bytes(d.snapshots_bytes)}"
    )
    if d.external_root:
        line += f"; runs in place from {d.external_root} (not counted)"
    return line + (" (partial: too many files)" if d.truncated else "")


def cmd_disk(args: argparse.Namespace, ctx: CoreContext) -> int:
    from comfymanager.cli.common import StderrProgress, print_json
    from comfymanager.core import disk
    from comfymanager.core.progress import CancelToken, format_bytes
    from comfymanager.core.projects import ProjectStore

    cancel = CancelToken()
    if args.prune_cache:
        result = disk.prune_cache(ctx, report=StderrProgress().reporter(), cancel=cancel)
        if args.json:
            print_json(
                {
                    "cache": result.path,
                    "bytes_before": result.bytes_before,
                    "bytes_after": result.bytes_after,
                    "freed": result.freed,
                }
            )
        else:
            print(
                f"uv's cache at {result.path}: {format_bytes(result.bytes_before)} -> "
                f"{format_bytes(result.bytes_after)} ({format_bytes(result.freed)} freed)"
            )
        return 0
    store = ProjectStore(ctx.paths)
    names = [args.name] if args.name else [p.id for p in store.list()[0]]
    projects = [disk.project_disk(ctx, n, cancel) for n in names]
    cache = disk.cache_disk(ctx, cancel)
    if args.json:
        print_json({"projects": [d.to_json() for d in projects], "uv_cache": cache.to_json()})
        return 0
    for d in projects:
        print(_disk_line(d))
    print(f"uv's cache at {cache.path}: {format_bytes(cache.bytes)} ({cache.files} files)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "adopt",
        help="bring an existing ComfyUI install in as a project (the folder is only read)",
        description="Scan an existing ComfyUI (a git clone, a Windows portable build or the "
        "desktop app's base folder) without changing a byte of it, show the plan, then either "
        "build a new project pinned to the same ComfyUI commit and packs that reads the install's "
        "models where they are and copies its user folder (--rebuild, the default), or register "
        "the folder to run in place with its own Python (--in-place). ComfyUI is never updated.",
    )
    p.add_argument("path", help="the install's folder")
    p.add_argument("--name", help="the project's name (default: from the folder)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--rebuild", action="store_true", help="build a new project (default)")
    how.add_argument("--in-place", action="store_true", help="run the install where it is")
    p.add_argument(
        "--torch-backend",
        help="torch for the rebuilt environment (default: what the install has, e.g. cu128)",
    )
    p.add_argument(
        "--python",
        help="Python for the rebuilt environment (default: the install's version; '' = ours)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    p.add_argument("--json", action="store_true", help="print the plan/result as JSON")
    p.set_defaults(func=cmd_adopt)

    d = sub.add_parser(
        "disk",
        help="disk use of projects (unique vs shared through uv's cache) and uv's cache",
        description="Show each project's disk use split into what only it holds and what it "
        "shares with uv's cache through hard links, its snapshots' size and uv's cache size. "
        "--prune-cache runs uv's own 'uv cache prune', which removes only cache entries nothing "
        "refers to; files a project's environment uses are hard links and stay.",
    )
    d.add_argument("name", nargs="?", help="one project (default: all)")
    d.add_argument("--json", action="store_true", help="print JSON")
    d.add_argument(
        "--prune-cache", action="store_true", help="clean what uv's cache no longer uses"
    )
    d.set_defaults(func=cmd_disk)
