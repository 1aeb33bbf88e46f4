"""CLI commands for the project lifecycle: create, list, start, status, stop, delete, repair."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import TYPE_CHECKING, Any

from comfymanager.cli.common import StderrProgress, print_json, printable
from comfymanager.core import operations
from comfymanager.core.errors import ComfyManagerError, InvalidInput
from comfymanager.core.progress import CancelToken
from comfymanager.core.projects import DamagedProject, ProjectStore
from comfymanager.core.settings import backends_for

if TYPE_CHECKING:
    from comfymanager.core.context import CoreContext

# install/runs pull in requests and friends: imported by the handlers that need them.


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("create", help="create and install a project")
    p.add_argument("name")
    p.add_argument("--comfyui-source", default="", help="git URL or local repository")
    p.add_argument("--comfyui-ref", default="", help="tag, branch or commit (default: latest)")
    p.add_argument("--torch-backend", choices=backends_for(), default="")
    p.add_argument(
        "--port", type=_port_arg, default=None, help="fixed port (default: from the pool)"
    )
    p.add_argument(
        "--listen-network",
        action="store_true",
        help="listen on every interface, not only 127.0.0.1",
    )
    p.add_argument("--python", default="", help="Python for the environment (version or path)")
    p.add_argument("--manager", action="store_true", help="with ComfyUI-Manager inside the project")
    p.add_argument("--verbose", "-v", action="store_true", help="show tool output")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--workflow",
        action="append",
        metavar="FILE",
        help="install what this workflow needs and save it in the project (repeatable)",
    )
    p.add_argument("--manifest", metavar="FILE", help="rebuild a project from an exported manifest")
    from comfymanager.cli.workflow import add_choice_arguments

    add_choice_arguments(p)  # choices for the --workflow import
    p.set_defaults(func=cmd_create)

    p = sub.add_parser("repair", help="finish or redo a project's install")
    p.add_argument("name")
    p.add_argument("--reinstall", action="store_true", help="redo every stage")
    p.add_argument("--verbose", "-v", action="store_true")
    p.set_defaults(func=cmd_repair)

    p = sub.add_parser("list", help="list projects and their state")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("start", help="start ComfyUI for a project (keeps running)")
    p.add_argument("name")
    p.add_argument("--wait", action="store_true", help="wait until ready; print the URL")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--port", type=_port_arg, default=None, help="this time on this port")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_start)

    p = sub.add_parser("status", help="state, port, pid, url and commit of a project")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("stop", help="stop a project's ComfyUI")
    p.add_argument("name")
    p.add_argument("--timeout", type=float, default=10.0)
    p.set_defaults(func=cmd_stop)

    p = sub.add_parser("delete", help="stop and delete a project (never the shared models)")
    p.add_argument("name")
    p.add_argument("--yes", action="store_true", help="confirm the deletion")
    p.add_argument(
        "--keep-outputs",
        action="store_true",
        help="move the project's outputs to <data>/kept-outputs/<name>-<date>/ first",
    )
    p.set_defaults(func=cmd_delete)


def _port_arg(text: str) -> int | str:
    """Ports are checked by ``ports.validate_port`` (a typed error, not argparse's)."""
    try:
        return int(text)
    except ValueError:
        return text


def cmd_create(args: argparse.Namespace, ctx: CoreContext) -> int:
    from comfymanager.core.install import install
    from comfymanager.core.run import ports

    if args.port is not None:
        ports.validate_port(args.port)

    spec = install.ProjectSpec(
        name=args.name,
        comfyui_source=args.comfyui_source,
        comfyui_ref=args.comfyui_ref,
        torch_backend=args.torch_backend,
        port=args.port,
        listen_network=args.listen_network,
        python=args.python,
    )
    extra = _workflow_hook(args, ctx)
    out = StderrProgress(quiet_log=not args.verbose)
    if extra is not None:  # create --workflow/--manifest: the import prints its own report
        imported = extra(spec, out)
        if getattr(args, "manager", False):
            from comfymanager.core.lifecycle import manager

            manager.set_manager(ctx, spec.name, True, report=out.reporter(), cancel=CancelToken())
        if getattr(args, "json", False):
            print_json(imported.__dict__ if hasattr(imported, "__dict__") else imported)
        return 0
    result = operations.create(ctx, spec, out.reporter(), CancelToken())
    if getattr(args, "manager", False):
        from comfymanager.core.lifecycle import manager

        manager.set_manager(ctx, result.project, True, report=out.reporter(), cancel=CancelToken())
    if getattr(args, "json", False):
        print_json(result.__dict__)
    else:
        print(
            f"Project '{printable(spec.name.strip())}' is ready: ComfyUI {result.ref} "
            f"(commit {result.commit[:10]}), torch {result.torch_backend}, "
            f"Python {result.python_version}. Start it with: comfymanager start "
            f"{shlex.quote(result.project)} --wait",
            file=sys.stderr,
        )
    return 0


def _workflow_hook(args: argparse.Namespace, ctx: CoreContext) -> Any:
    """``create --workflow/--manifest`` is provided by cli/workflow.py when present."""
    if getattr(args, "workflow", None) or getattr(args, "manifest", None):
        from comfymanager.cli.workflow import create_from_files

        return lambda spec, out: create_from_files(args, ctx, spec, out)
    return None


def cmd_repair(args: argparse.Namespace, ctx: CoreContext) -> int:
    out = StderrProgress(quiet_log=not args.verbose)
    try:
        ProjectStore(ctx.paths).load(args.name)
    except DamagedProject as exc:
        print(f"{exc.message} Rebuilding its project.json, then repairing.", file=sys.stderr)
    result = operations.repair(ctx, args.name, out.reporter(), CancelToken(), force=args.reinstall)
    print(f"Project '{result.project}' is ready.", file=sys.stderr)
    return 0


def cmd_list(args: argparse.Namespace, ctx: CoreContext) -> int:
    from comfymanager.core import health
    from comfymanager.core.run import runs

    store = ProjectStore(ctx.paths)
    projects, broken = store.list()
    statuses = [runs.status(ctx, p) for p in projects]
    queue = health.load_queue(ctx)
    shown = {p.id: p.name for p in projects}  # the display name (the id of an older project)
    checks = {
        s.project: health.project_health(ctx, s.project, status=s, queue=queue) for s in statuses
    }
    if args.json:
        print_json(
            {
                "projects": [
                    s.to_json() | {"name": shown[s.project], "health": checks[s.project].to_json()}
                    for s in statuses
                ],
                "broken": [
                    {"name": b.id, "error": b.reason, "fix": b.fix, "damaged": b.damaged}
                    for b in broken
                ],
            }
        )
        return 0
    if not projects and not broken:
        print("No projects yet. Create one with: comfymanager create NAME")
    for s in statuses:
        where = f"  {s.url}" if s.url and s.state in ("running", "starting") else ""
        label = runs.LABELS[s.state]
        if not checks[s.project].ok:
            label += f", needs attention ({len(checks[s.project].problems)})"
        print(f"{printable(shown[s.project]):<24} {label:<16}{where}")
    for b in broken:
        label = "Damaged" if b.damaged else "Unreadable"
        print(f"{b.id:<24} {label:<16}  {b.reason}" + (f" ({b.fix})" if b.fix else ""))
    return 0


def cmd_start(args: argparse.Namespace, ctx: CoreContext) -> int:
    from comfymanager.core import health
    from comfymanager.core.run import ports, runs

    port = ports.validate_port(args.port) if args.port is not None else None
    warnings = health.launch_warnings(health.project_health(ctx, args.name))

    def spawned_note(st: runs.Status) -> None:
        if warnings:  # a launch with open problems goes on; it says which
            print(f"warning: {args.name} needs attention ({len(warnings)}):", file=sys.stderr)
            for line in warnings:
                print(f"  - {line}", file=sys.stderr)
        if st.device_note:
            print(st.device_note, file=sys.stderr)
        if args.wait:
            print(f"Starting {args.name} on port {st.port}...", file=sys.stderr)

    try:
        st = operations.launch(
            ctx,
            args.name,
            port=port,
            timeout=args.timeout,
            wait=args.wait,
            on_spawned=spawned_note,
        )
    except runs.LaunchFailed as exc:  # cause, remedy and the log's last lines, apart
        if args.json:
            print_json({"error": exc.message, "fix": exc.fix, "last_lines": exc.details})
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.fix:
            print(f"fix:   {exc.fix}", file=sys.stderr)
        if exc.details:
            lines = exc.details.replace("\n", "\n  ")
            print(f"last lines of output:\n  {lines}", file=sys.stderr)
        return 1
    if args.json:
        print_json(st.to_json())
    else:
        print(st.url)
    return 0


def cmd_status(args: argparse.Namespace, ctx: CoreContext) -> int:
    from comfymanager.core import health
    from comfymanager.core.run import runs

    project = ProjectStore(ctx.paths).load(args.name)
    st = runs.status(ctx, project)
    checks = health.project_health(ctx, project.id, status=st)
    if args.json:
        print_json(
            st.to_json()
            | {"name": project.name, "health": checks.summary}
            | {"problems": checks.to_json()["problems"]}
        )
        return 0
    print(f"project: {printable(project.name)}")
    if project.name != project.id:
        print(f"folder:  {st.project}")
    print(f"state:   {runs.LABELS[st.state]}")
    if st.supervisor_lost:
        print("supervisor: lost (ComfyUI keeps running; stop still works)")
    for label, value in (
        ("port", st.port),
        ("pid", st.pid),
        ("url", st.url),
        ("commit", st.commit),
        ("exit", st.exit_code),
    ):
        if value not in (None, ""):
            print(f"{label + ':':<8} {value}")
    if st.message:
        print(f"note:    {st.message}")
    if st.device_note:
        print(f"device:  {st.device_note}")
    if st.last_lines:
        print("last lines of output:\n  " + "\n  ".join(st.last_lines[-10:]))
    print(f"health:  {checks.summary}")
    for pr in checks.problems:
        print(f"  - [{pr.kind}] {pr.sentence}\n    fix: {pr.fix}")
    return 0


def cmd_stop(args: argparse.Namespace, ctx: CoreContext) -> int:
    from comfymanager.core.run import runs

    ProjectStore(ctx.paths).load(args.name)
    st = operations.stop(ctx, args.name, timeout=args.timeout)
    print(f"{args.name}: {runs.LABELS[st.state]}", file=sys.stderr)
    return 0


def cmd_delete(args: argparse.Namespace, ctx: CoreContext) -> int:
    store = ProjectStore(ctx.paths)
    in_place = _in_place_root(store, args.name)
    if not args.yes:
        if in_place:
            raise InvalidInput(
                f"Deleting '{args.name}' removes only comfymanager's record of it: the ComfyUI "
                f"at {in_place} it runs in place is not touched.",
                "Add --yes to confirm.",
            )
        raise InvalidInput(
            f"Deleting '{args.name}' removes its folder and environment.",
            "Add --yes to confirm. Shared models are kept.",
        )
    if store.folder(args.name) is None:  # a damaged or unreadable project is deleted all the same
        store.load(args.name)  # says "no project named ..." or why the name is not valid
    kept = operations.delete(ctx, args.name, keep_outputs=args.keep_outputs)
    if in_place:
        print(
            f"Deleted project '{args.name}' (its record; {in_place} is as it was).", file=sys.stderr
        )
    else:
        print(f"Deleted project '{args.name}'.", file=sys.stderr)
    if kept is not None:
        print(f"Its outputs are kept in {kept}", file=sys.stderr)
    return 0


def _in_place_root(store: ProjectStore, name: str) -> str:
    """The adopted folder an in-place project runs, "" for any other (or unreadable) one."""
    try:
        project = store.load(name)
    except ComfyManagerError:
        return ""
    return project.external_root if project.in_place else ""
