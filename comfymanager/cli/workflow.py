"""CLI: ``analyze FILE... [--json] [--lookup]``, ``import FILE... [--project NAME]``,
``export NAME`` (manifest JSON on stdout), and the ``create NAME --workflow/--manifest`` hook.
``add_choice_arguments`` gives ``import`` and ``create`` the same plan choices (``--pack``,
``--model``, ``--model-folder``, ``--skip-model``; see ``import_choices.py``).

Only the arguments live here; the handlers are in ``workflow_cmds.py``, imported on use.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from comfymanager.cli.common import StderrProgress
    from comfymanager.core.context import CoreContext
    from comfymanager.core.install.install import ProjectSpec


def _lazy(name: str) -> Callable[[argparse.Namespace, CoreContext], int]:
    def handler(args: argparse.Namespace, ctx: CoreContext) -> int:
        module = importlib.import_module("comfymanager.cli.workflow_cmds")
        result: int = getattr(module, name)(args, ctx)
        return result

    return handler


def create_from_files(
    args: argparse.Namespace, ctx: CoreContext, spec: ProjectSpec, out: StderrProgress
) -> Any:
    from comfymanager.cli.workflow_cmds import create_from_files as run

    return run(args, ctx, spec, out)


def _pair(text: str) -> tuple[str, str]:
    row, sep, value = text.partition("=")
    if not sep or not row.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected ROW=VALUE, got {text!r}")
    return row.strip(), value.strip()


def add_choice_arguments(p: argparse.ArgumentParser) -> None:
    """The import plan's choices, for ``import`` and ``create --workflow`` alike."""
    g = p.add_argument_group(
        "import choices",
        "ROW names a row of the import plan: its key as the plan shows it, a node class, a "
        "pack title or a model file name. The plan prints the exact option for each open row.",
    )
    g.add_argument(
        "--pack",
        action="append",
        type=_pair,
        metavar="ROW=CHOICE",
        help="the pack for a node class: one of its listed candidates, or a git URL",
    )
    g.add_argument(
        "--model",
        action="append",
        type=_pair,
        metavar="ROW=URL",
        help="download address of a model the workflow gives none for",
    )
    g.add_argument(
        "--model-folder",
        action="append",
        type=_pair,
        metavar="ROW=FOLDER",
        help="models folder (checkpoints, loras, ...) of a model whose folder is unknown",
    )
    g.add_argument(
        "--skip-model", action="append", metavar="ROW", help="do not download this model"
    )


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "analyze",
        help="list the node packs and model files workflow files need",
        description="Analyse workflow files (JSON, PNG, WebP, audio/video with an embedded "
        "workflow, launcher files, manifests) without installing anything. A file that cannot "
        "be read is reported and the others are still analysed; the exit code is 1 when any "
        "file failed, 0 otherwise.",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true", help="one JSON object per file per line")
    p.add_argument(
        "--lookup",
        action="store_true",
        help="ask the Comfy Registry about node classes the local database does not know, and "
        "Hugging Face and CivitAI about models with no download address",
    )
    p.set_defaults(func=_lazy("cmd_analyze"))
    _register_import(sub)


def _register_import(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "import",
        help="import workflow files: a new project (or --project) with what they need",
        description="Analyse the files, show the plan, then create a project (named after the "
        "first file, or --name) or add to an existing one (--project): node packs installed, "
        "models downloaded into the store, workflows saved in the project.",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--project", help="add to this existing project instead of creating one")
    p.add_argument("--name", help="name of the new project (default: the first file's name)")
    p.add_argument("--torch-backend", default="", help="torch backend of a new project")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask before installing")
    p.add_argument(
        "--lookup",
        action="store_true",
        help="ask the Comfy Registry about unknown node classes, Hugging Face and CivitAI about "
        "models with no download address",
    )
    p.add_argument("--verbose", "-v", action="store_true", help="show tool output")
    add_choice_arguments(p)
    p.set_defaults(func=_lazy("cmd_import"))

    p = sub.add_parser(
        "export",
        help="print a project's manifest (JSON) to stdout",
        description="Everything needed to rebuild the project elsewhere: ComfyUI commit, "
        "Python, torch backend, node packs with commits, models with URLs and sha256, "
        "workflows. Rebuild with: comfymanager create NAME --manifest FILE",
    )
    p.add_argument("name")
    p.set_defaults(func=_lazy("cmd_export"))
