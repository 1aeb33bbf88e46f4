"""The headless command line: ``comfymanager <command>`` over the same core as the window.

Each area registers its commands from its own module (``projects.py``, ``models.py``,
``workflow.py``). A handler takes ``(args, ctx)`` and returns the exit code; errors of the core
become one clear line on stderr (or a JSON object with ``--json``) and exit code 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from comfymanager import __version__
from comfymanager.cli import adopt, config, lifecycle, models, packs, projects, verify, workflow
from comfymanager.cli.common import (
    guard_cli_output,
    print_error,
    resolve_project_args,
    setup_streams,
)
from comfymanager.core.context import build_core_context
from comfymanager.core.errors import Cancelled, ComfyManagerError

MODULES = (projects, config, models, workflow, verify, lifecycle, packs, adopt)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="comfymanager",
        description="Build, run and manage isolated ComfyUI projects. "
        "With no command the window opens.",
    )
    parser.add_argument("--version", action="version", version=f"comfymanager {__version__}")
    parser.add_argument("--data-dir", help="folder holding projects, caches, logs and settings")
    parser.add_argument("--smoke-test", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--minimized",
        action="store_true",
        help="start in the system tray without showing the window (how 'Start with the "
        "system' starts it; the window shows anyway when there is no tray)",
    )
    parser.add_argument(
        "--open",
        nargs="+",
        default=[],
        metavar="FILE",
        help="open the window and import these workflow files (a running window takes them)",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for module in MODULES:
        module.register(sub)
    return parser


def run(args: argparse.Namespace) -> int:
    wants_json = bool(getattr(args, "json", False))
    setup_streams()
    guard_cli_output()
    try:
        ctx = build_core_context(args.data_dir)
        resolve_project_args(args, ctx)  # a display name or a folder name: the folder name
        code: int = args.func(args, ctx)
        return code
    except Cancelled:
        print("Cancelled.", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except ComfyManagerError as exc:
        print_error(exc, wants_json)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    return run(args)
