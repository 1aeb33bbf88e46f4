"""Entry point: ``comfymanager`` opens the window; ``comfymanager <command>`` runs headless.

Opening the window does not import the command line (which pulls in every area's modules):
a small parser reads the global options, and only when something else is on the command line
(a command, ``--help``) the full parser takes over.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence


def gui_parser() -> argparse.ArgumentParser:
    """The global options the window needs; mirrors those of ``cli.build_parser``."""
    parser = argparse.ArgumentParser(prog="comfymanager", add_help=False)
    parser.add_argument("--data-dir")
    parser.add_argument("--smoke-test", action="store_true")
    parser.add_argument("--minimized", action="store_true")
    parser.add_argument("--open", nargs="+", default=[], metavar="FILE")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["--supervise"]:  # frozen builds run the ComfyUI supervisor this way
        from comfymanager.core.run.supervise import main as supervise_main

        return supervise_main(args_list[1:])
    if args_list[:1] == ["--cleanup"]:  # frozen builds remove interrupted deletes this way
        from comfymanager.core.cleanup import main as cleanup_main

        return cleanup_main(args_list[1:])
    try:
        gui_args, rest = gui_parser().parse_known_args(args_list)
    except SystemExit:
        rest = ["?"]  # let the full parser explain the mistake
    if not rest:
        gui_args.command = None
        from comfymanager.app import run_gui

        return run_gui(gui_args)
    from comfymanager.cli import build_parser, run

    parser = build_parser()
    args = parser.parse_args(args_list)
    if args.command:
        _start_cleanup(args)
        return run(args)
    from comfymanager.app import run_gui

    return run_gui(args)


def _start_cleanup(args: argparse.Namespace) -> None:
    """Leftovers of interrupted operations go in the background (``core/cleanup.py``)."""
    try:
        from comfymanager.core.cleanup import start_for_command
        from comfymanager.core.context import build_core_context

        ctx = build_core_context(getattr(args, "data_dir", None))
        start_for_command(ctx.paths, ctx.store)
    except Exception as exc:  # the clean-up never keeps a command from running
        logging.getLogger(__name__).info("no clean-up at start: %s", exc)


if __name__ == "__main__":
    sys.exit(main())
