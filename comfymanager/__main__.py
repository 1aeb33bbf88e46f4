"""Entry point: ``comfymanager`` opens the window; ``comfymanager <command>`` runs headless."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["--supervise"]:  # frozen builds run the ComfyUI supervisor this way
        from comfymanager.core.supervise import main as supervise_main

        return supervise_main(args_list[1:])
    from comfymanager.cli import build_parser, run

    parser = build_parser()
    args = parser.parse_args(args_list)
    if args.command:
        return run(args)
    from comfymanager.app import run_gui

    return run_gui(args)


if __name__ == "__main__":
    sys.exit(main())
