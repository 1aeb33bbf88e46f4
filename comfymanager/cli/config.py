"""``comfymanager config NAME``: a project's port, listen, launch arguments, GPUs and extra
environment, shown (no options) or changed (``core/configure.py`` checks them)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from comfymanager.cli.common import print_json

if TYPE_CHECKING:
    from comfymanager.core.context import CoreContext


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "config",
        help="show or change a project's port, listen, launch arguments, GPUs and environment",
        description="With no options, print the project's settings. Changes apply at the "
        "next start.",
    )
    p.add_argument("name")
    p.add_argument("--port", metavar="N|auto", help="a fixed port, or auto (kept while free)")
    listen = p.add_mutually_exclusive_group()
    listen.add_argument(
        "--listen", dest="listen", action="store_const", const=True, default=None,
        help="listen on every interface (the network can reach it)",
    )  # fmt: skip
    listen.add_argument(
        "--no-listen", dest="listen", action="store_const", const=False,
        help="listen on 127.0.0.1 only",
    )  # fmt: skip
    p.add_argument(
        "--launch-args",
        metavar="ARGS",
        help='extra ComfyUI arguments, as one string ("" clears them); one flag alone needs '
        "'=': --launch-args=--lowvram",
    )
    p.add_argument("--gpu", metavar="IDS", help='GPU numbers, e.g. 0 or 0,1 ("" or all: every GPU)')
    p.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE",
        help="set an environment variable for ComfyUI (repeatable)",
    )  # fmt: skip
    p.add_argument(
        "--unset-env", action="append", default=[], metavar="KEY",
        help="remove a variable set with --env (repeatable)",
    )  # fmt: skip
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_config)


def cmd_config(args: argparse.Namespace, ctx: CoreContext) -> int:
    from comfymanager.core import configure
    from comfymanager.core.projects import ProjectStore
    from comfymanager.core.run import runs

    changes = (
        args.port is not None
        or args.listen is not None
        or args.launch_args is not None
        or args.gpu is not None
        or bool(args.env)
        or bool(args.unset_env)
    )
    store = ProjectStore(ctx.paths)
    if changes:
        project = configure.configure(
            ctx,
            args.name,
            port=args.port if args.port is not None else configure.UNSET,
            listen=args.listen,
            launch_args=args.launch_args,
            gpu=args.gpu,
            env=configure.parse_env_pairs(args.env),
            unset_env=args.unset_env,
        )
    else:
        project = store.load(args.name)
    shown = configure.settings_of(project)
    if args.json:
        print_json(shown.to_json())
    else:
        data = shown.to_json()
        port = str(data["port"])
        if shown.port is None and shown.last_port:
            port += f" (last {shown.last_port}, reused while free)"
        print(f"project:     {shown.project}")
        print(f"port:        {port}")
        print(f"listen:      {'every interface' if shown.listen else '127.0.0.1 only'}")
        print(f"launch args: {data['launch_args_text'] or '(none)'}")
        print(f"gpu:         {shown.gpu or 'all'}")
        if shown.env:
            print("env:")
            for key, value in sorted(shown.env.items()):
                print(f"  {key}={value}")
        else:
            print("env:         (none)")
    if changes:
        st = runs.status(ctx, project, probe_http=False)
        if st.state in ("running", "starting"):
            print(
                f"'{project.id}' is {st.state}: the changes apply when it is started again.",
                file=sys.stderr,
            )
    return 0
