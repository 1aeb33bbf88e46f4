"""CLI commands: ``download`` (one file into the store, resumable) and ``models`` (list it)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from comfymanager.cli.common import StderrProgress, print_json, printable
from comfymanager.core.progress import CancelToken, format_bytes

if TYPE_CHECKING:
    from comfymanager.core.context import CoreContext

# The core's download stack (requests, huggingface_hub) is imported inside the handlers so that
# every other command, and --help, starts fast.


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "download",
        help="download a model file into the shared store (resumes if interrupted)",
        description="Download URL into the store folder F. Progress goes to stderr, the "
        "final absolute path to stdout. Run it again after an interruption to resume.",
    )
    p.add_argument("url", nargs="+", help="the file's URL; several URLs are mirrors")
    p.add_argument("--folder", required=True, help="model folder key, e.g. checkpoints, loras")
    p.add_argument("--name", help="file name in the folder (default: from the URL)")
    p.add_argument("--sha256", help="expected sha256; the file is refused if it differs")
    p.add_argument("--size", type=int, help="expected size in bytes")
    p.set_defaults(func=cmd_download)

    m = sub.add_parser("models", help="list the files in the model store")
    m.add_argument("--json", action="store_true", help="one JSON object per file")
    m.set_defaults(func=cmd_models)


def cmd_download(args: argparse.Namespace, ctx: CoreContext) -> int:
    from comfymanager.core.models.download import DownloadRequest, default_name, download_file
    from comfymanager.core.models.folders import canonical_folder
    from comfymanager.core.models.hosts import Endpoints
    from comfymanager.core.models.index import ModelIndex
    from comfymanager.core.secrets import Secrets
    from comfymanager.core.workflow.names import check_model_name

    name = check_model_name(args.name or default_name(args.url[0]), "file name")
    request = DownloadRequest(
        urls=tuple(args.url),
        folder=canonical_folder(args.folder),  # a typo (``lora``) is refused, naming the keys
        name=name,
        sha256=args.sha256,
        size=args.size,
    )
    printer = StderrProgress()
    store = ctx.store
    result = download_file(
        request,
        store=store,
        secrets=Secrets(),
        endpoints=Endpoints.from_settings(ctx.settings),
        report=printer.reporter(),
        cancel=CancelToken(),
        index=ModelIndex.load(store),
    )
    if result.already_present:
        print(f"== already in the store ({format_bytes(result.size)})", file=sys.stderr)
    print(str(result.path.resolve()), flush=True)
    return 0


def cmd_models(args: argparse.Namespace, ctx: CoreContext) -> int:
    from comfymanager.core.cleanup import leftover_bytes
    from comfymanager.core.models.index import scan

    index = scan(ctx.store)
    files = index.files()
    leftovers = leftover_bytes(ctx.paths, ctx.store)
    if leftovers:  # on stderr: stdout stays one line (or JSON object) per file
        print(
            f"Left over from interrupted operations: {format_bytes(leftovers)}, being removed "
            "in the background.",
            file=sys.stderr,
        )
    if args.json:
        for f in files:
            print_json(
                {
                    "folder": f.folder,
                    "name": f.name,
                    "size": f.size,
                    "sha256": f.sha256,
                    "can_run_code": f.can_run_code,
                    "sources": list(f.sources),
                    "used_by": list(f.used_by),
                    "path": str(f.path),
                }
            )
        return 0
    if not files:
        print(f"The model store {ctx.store} is empty.", file=sys.stderr)
        return 0
    for f in files:
        flag = "  [pickle: can run code]" if f.can_run_code else ""
        print(f"{printable(f.folder)}/{printable(f.name)}\t{format_bytes(f.size)}{flag}")
    return 0
