"""Start, watch and stop ComfyUI for a project; adopt runs left by an earlier app.

``run.json`` (written when we start ComfyUI) holds the port and the supervisor's identity;
``child.json`` (written by the supervisor) ComfyUI's; ``exit.json`` how it ended. ``status`` reads
them, checks the identities against the live processes (a recycled PID never matches) and probes
``/system_stats``: every process that survived the app is found again and shown Running.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from comfymanager.core import persist, ports, process
from comfymanager.core.context import CoreContext
from comfymanager.core.envs import comfyui_git_env, venv_python
from comfymanager.core.errors import ComfyManagerError, Conflict, InvalidInput
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import Project, ProjectDirs, ProjectStore
from comfymanager.core.supervise import rotate

log = logging.getLogger(__name__)

RUN_KIND = "comfymanager.run"
RUN_VERSION = 1
OPTIONAL_FLAGS = (
    "--database-url",
    "--user-directory",
    "--input-directory",
    "--output-directory",
    "--temp-directory",
    "--extra-model-paths-config",
    "--disable-auto-launch",
)


class LaunchFailed(ComfyManagerError):
    """ComfyUI did not come up; ``details`` holds the last lines of its output."""

    def __init__(self, message: str, fix: str | None = None, details: str = "") -> None:
        super().__init__(message, fix)
        self.details = details


@dataclass(frozen=True)
class Status:
    """What a user sees for a project. ``state`` is one of STATES."""

    project: str
    state: str
    port: int | None = None
    pid: int | None = None
    url: str | None = None
    commit: str = ""
    exit_code: int | None = None
    message: str = ""
    last_lines: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["last_lines"] = list(self.last_lines)
        return d


STATES = (
    "not-installed",
    "installing",
    "install-failed",
    "stopped",
    "starting",
    "running",
    "crashed",
)
LABELS = {
    "not-installed": "Not installed",
    "installing": "Installing...",
    "install-failed": "Install failed",
    "stopped": "Stopped",
    "starting": "Starting...",
    "running": "Running",
    "crashed": "Crashed",
}


def tail(path: Path, lines: int = 30, max_bytes: int = 65536) -> tuple[str, ...]:
    if not path.exists():
        return ()
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - max_bytes))
        data = fh.read().decode("utf-8", errors="replace")
    return tuple(data.splitlines()[-lines:])


def _read(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def _identity(data: dict[str, Any] | None) -> process.ProcessIdentity | None:
    if not data or "pid" not in data:
        return None
    try:
        return process.ProcessIdentity(int(data["pid"]), float(data["create_time"]))
    except (TypeError, ValueError, KeyError):
        return None


def read_run(dirs: ProjectDirs) -> dict[str, Any] | None:
    try:
        return persist.read_json(dirs.run_file, RUN_KIND, RUN_VERSION)
    except (FileNotFoundError, ComfyManagerError):
        return None


def _alive(dirs: ProjectDirs, run: dict[str, Any] | None) -> tuple[bool, int | None]:
    """(is our ComfyUI or its supervisor alive, ComfyUI's pid)."""
    if not run:
        return False, None
    sup = _identity(run.get("supervisor"))
    child = _identity(_read(dirs.child_file))
    child_alive = bool(child and child.alive())
    sup_alive = bool(sup and sup.alive())
    if child_alive and child:
        return True, child.pid
    if sup_alive and not dirs.exit_file.exists():
        return True, None
    return False, None


def probe(url: str, timeout: float = 1.0) -> dict[str, Any] | None:
    """``/system_stats`` as a dict when ComfyUI answers, else None."""
    import requests  # first used on the monitor thread: keeps it out of the window's start

    try:
        r = requests.get(f"{url}/system_stats", timeout=timeout)
        if r.status_code == 200:
            data = r.json()
            return data if isinstance(data, dict) else {}
    except (requests.RequestException, ValueError):
        return None
    return None


def status(
    ctx: CoreContext, project: Project, *, probe_http: bool = True, installing: bool = False
) -> Status:
    process.reap_detached()
    store = ProjectStore(ctx.paths)
    dirs = store.dirs(project.id)
    commit = project.comfyui_commit
    if installing or (
        project.install.status == "installing" and install_lock_held(ctx, project.id)
    ):
        return Status(project.id, "installing", commit=commit)
    run = read_run(dirs)
    alive, pid = _alive(dirs, run)
    if alive and run:
        url = str(run["url"])
        if probe_http and probe(url, timeout=0.5) is not None:
            return Status(project.id, "running", int(run["port"]), pid, url, commit)
        return Status(project.id, "starting", int(run["port"]), pid, url, commit)
    if project.install.status != "ready":
        state = "not-installed" if project.install.status == "new" else "install-failed"
        msg = project.install.error or (
            "The install was interrupted."
            if project.install.status in ("installing", "cancelled")
            else ""
        )
        return Status(project.id, state, commit=commit, message=msg)
    if run and not run.get("stop_requested_at"):
        ended = _read(dirs.exit_file)
        code = ended.get("exit_code") if ended else None
        why = (
            f"exited with code {code}"
            if code is not None and not (ended or {}).get("signal")
            else f"was killed by {ended['signal']}"
            if ended and ended.get("signal")
            else "stopped unexpectedly (exit code unknown)"
        )
        return Status(
            project.id,
            "crashed",
            commit=commit,
            exit_code=code,
            message=f"ComfyUI {why}.",
            last_lines=tail(dirs.comfyui_log, 20),
        )
    return Status(project.id, "stopped", commit=commit)


def install_lock_held(ctx: CoreContext, project_id: str) -> bool:
    from filelock import FileLock, Timeout

    lock = FileLock(str(ctx.paths.locks / f"project-{project_id}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def running_ports(ctx: CoreContext) -> dict[int, str]:
    """{port: project id} of our projects whose ComfyUI is alive."""
    store = ProjectStore(ctx.paths)
    found: dict[int, str] = {}
    projects, _ = store.list()
    for p in projects:
        dirs = store.dirs(p.id)
        run = read_run(dirs)
        if run and _alive(dirs, run)[0]:
            found[int(run["port"])] = p.id
    return found


def supported_flags(comfyui: Path) -> list[str]:
    """Which optional launch flags this ComfyUI version knows (read from its source)."""
    text = ""
    for candidate in (comfyui / "comfy" / "cli_args.py", comfyui / "main.py"):
        if candidate.exists():
            text += candidate.read_text(encoding="utf-8", errors="replace")
    return [f for f in OPTIONAL_FLAGS if f'"{f}"' in text or f"'{f}'" in text]


def build_argv(ctx: CoreContext, project: Project, dirs: ProjectDirs, port: int) -> list[str]:
    flags = set(project.supported_flags)
    argv = [
        str(venv_python(dirs.venv)),
        "main.py",
        "--listen",
        "0.0.0.0" if project.listen_network else "127.0.0.1",
        "--port",
        str(port),
    ]
    optional = {
        "--extra-model-paths-config": str(dirs.extra_model_paths),
        "--input-directory": str(dirs.input),
        "--output-directory": str(dirs.output),
        "--user-directory": str(dirs.user),
        "--temp-directory": str(dirs.temp),
        "--database-url": f"sqlite:///{dirs.database.as_posix()}",
    }
    for flag, value in optional.items():
        if flag in flags and (
            flag != "--extra-model-paths-config" or dirs.extra_model_paths.exists()
        ):
            argv += [flag, value]
    if "--disable-auto-launch" in flags:
        argv.append("--disable-auto-launch")
    if project.torch_backend_resolved == "cpu" or project.torch_backend == "cpu":
        argv.append("--cpu")
    return argv + list(ctx.settings.default_launch_args) + list(project.launch_args)


def supervisor_argv() -> list[str]:
    if getattr(sys, "frozen", False):
        return [sys.executable, "--supervise"]
    return [sys.executable, "-m", "comfymanager.core.supervise"]


def start(ctx: CoreContext, project_id: str, *, port: int | None = None) -> Status:
    """Start ComfyUI for the project in the background and return at once (state "starting")."""
    store = ProjectStore(ctx.paths)
    project = store.load(project_id)
    dirs = store.dirs(project_id)
    if project.install.status != "ready":
        raise InvalidInput(
            f"Project '{project_id}' is not installed yet.",
            "Wait for the install to finish, or Repair it if it failed.",
        )
    current = status(ctx, project, probe_http=False)
    if current.state in ("running", "starting"):
        raise Conflict(
            f"Project '{project_id}' is already running on port {current.port}.",
            "Stop it first, or open it in the browser.",
        )
    chosen = ports.allocate(
        ctx.paths,
        project_id,
        fixed=port if port is not None else project.port,
        port_range=(ctx.settings.port_min, ctx.settings.port_max),
        in_use_by_projects=lambda: running_ports(ctx),
    )
    for stale in (dirs.exit_file, dirs.child_file):
        stale.unlink(missing_ok=True)
    dirs.logs.mkdir(parents=True, exist_ok=True)
    rotate(dirs.comfyui_log)
    argv = build_argv(ctx, project, dirs, chosen)
    host = "127.0.0.1"
    env = process.clean_env(
        {"PIP_CONSTRAINT": str(dirs.constraints), "UV_CONSTRAINT": str(dirs.constraints)}
        if dirs.constraints.exists() and dirs.constraints.stat().st_size
        else None
    )
    env.update(comfyui_git_env(dirs.venv))  # no system git: ComfyUI-Manager uses pygit2
    sup = [
        *supervisor_argv(),
        "--log-file",
        str(dirs.comfyui_log),
        "--exit-file",
        str(dirs.exit_file),
        "--child-file",
        str(dirs.child_file),
        "--cwd",
        str(dirs.comfyui),
        "--",
        *argv,
    ]
    with open(dirs.comfyui_log, "ab") as fh:
        fh.write(f"[comfymanager] starting: {' '.join(argv)}\n".encode())
    popen = process.spawn_detached(
        sup, log_file=dirs.logs / "supervisor.log", cwd=dirs.root, env=env
    )
    ident = process.ProcessIdentity.of(popen.pid)
    url = f"http://{host}:{chosen}"
    persist.write_json(
        dirs.run_file,
        RUN_KIND,
        RUN_VERSION,
        {
            "port": chosen,
            "url": url,
            "started_at": time.time(),
            "argv": argv,
            "supervisor": {"pid": ident.pid, "create_time": ident.create_time},
            "stop_requested_at": None,
        },
    )
    ports.release(ctx.paths, project_id)  # run.json now holds the port
    log.info("started %s on port %s (supervisor pid %s)", project_id, chosen, ident.pid)
    return Status(project_id, "starting", chosen, None, url, project.comfyui_commit)


def wait_ready(
    ctx: CoreContext,
    project_id: str,
    *,
    timeout: float = 120.0,
    cancel: CancelToken | None = None,
    report: Reporter | None = None,
) -> Status:
    """Block until ``/system_stats`` answers; raise LaunchFailed if ComfyUI exits or times out."""
    store = ProjectStore(ctx.paths)
    token = cancel or CancelToken()
    deadline = time.monotonic() + timeout
    while True:
        project = store.load(project_id)
        st = status(ctx, project)
        if st.state == "running":
            return st
        if st.state != "starting":
            raise LaunchFailed(
                f"ComfyUI for '{project_id}' did not start: {st.message or st.state}",
                "Read the last lines of its log below; Repair the project if a package is broken.",
                "\n".join(st.last_lines),
            )
        if time.monotonic() > deadline:
            raise LaunchFailed(
                f"ComfyUI for '{project_id}' did not answer within {timeout:.0f} s.",
                "It may still be loading; see its log. Stop and start it again.",
                "\n".join(tail(store.dirs(project_id).comfyui_log, 20)),
            )
        if token.wait(0.25):
            token.check()


def stop(ctx: CoreContext, project_id: str, *, timeout: float = 10.0) -> Status:
    """Ask ComfyUI to stop (SIGTERM), kill the whole tree after ``timeout`` seconds."""
    store = ProjectStore(ctx.paths)
    dirs = store.dirs(project_id)
    run = read_run(dirs)
    if run:
        run["stop_requested_at"] = time.time()
        persist.write_json(
            dirs.run_file,
            RUN_KIND,
            RUN_VERSION,
            {k: v for k, v in run.items() if k not in ("kind", "version")},
        )
        for ident in (_identity(_read(dirs.child_file)), _identity(run.get("supervisor"))):
            proc = ident.find() if ident else None
            if proc is not None:
                process.kill_tree(proc, timeout=timeout)
    ports.release(ctx.paths, project_id)
    return status(ctx, store.load(project_id), probe_http=False)
