"""Start, watch and stop ComfyUI for a project; adopt runs left by an earlier app.

Records (all in the project folder):

- ``run.json`` is written by ``start`` BEFORE anything is spawned: a fresh ``run_id``, the port,
  the starting command's identity (``owner``), then the supervisor's identity once it exists.
- ``child.json`` is written by the supervisor and carries the same ``run_id``: its own identity
  first, then ComfyUI's (pid + start time). A ``child.json`` or ``exit.json`` with another run id
  is stale and ignored.
- ``exit.json``: how ComfyUI ended.

``status`` derives the state from these records plus the live processes each time. "Running"
means: ComfyUI's process is alive, ``/system_stats`` answers with ComfyUI's shape, AND the socket
listening on the port belongs to ComfyUI's process tree. A foreign program answering on the port
is named, never taken for ours. A kill of ``start`` at any instant leaves records that classify
as starting (the supervisor is found by its run id), or stale (nothing was spawned): never
"starting" for ever, and the next ``start`` removes an orphan before it spawns.

``start``/``stop`` (and ``install``'s repair/delete, which re-export ``project_lock``) serialise
per project across processes with one file lock. Reading the records and checking the live
processes (the lock, ``RunView``, the readiness check) is ``runstate``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import signal
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import psutil

from comfymanager.core import process
from comfymanager.core.configure import gpu_env
from comfymanager.core.context import CoreContext
from comfymanager.core.errors import ComfyManagerError, Conflict, InvalidInput
from comfymanager.core.install.envs import comfyui_git_env
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import Project, ProjectStore
from comfymanager.core.run import ports
from comfymanager.core.run.launch import OPTIONAL_FLAGS as OPTIONAL_FLAGS
from comfymanager.core.run.launch import build as _build
from comfymanager.core.run.launch import build_argv as build_argv
from comfymanager.core.run.launch import comfyui_dir
from comfymanager.core.run.launch import device_flags as device_flags
from comfymanager.core.run.launch import supervisor_argv as supervisor_argv
from comfymanager.core.run.launch import supported_flags as supported_flags
from comfymanager.core.run.runstate import RUN_KIND as RUN_KIND
from comfymanager.core.run.runstate import RUN_VERSION as RUN_VERSION
from comfymanager.core.run.runstate import foreign_listener as foreign_listener
from comfymanager.core.run.runstate import install_lock_held as install_lock_held
from comfymanager.core.run.runstate import is_comfyui_stats as is_comfyui_stats
from comfymanager.core.run.runstate import probe as probe
from comfymanager.core.run.runstate import project_lock as project_lock
from comfymanager.core.run.runstate import read_record, read_view, ready, sentence, write_run
from comfymanager.core.run.runstate import read_run as read_run
from comfymanager.core.run.runstate import tail as tail
from comfymanager.core.run.supervise import rotate

log = logging.getLogger(__name__)

READY_LINE = "To see the GUI go to"
BIND_FAILED = re.compile(
    r"address already in use|errno (98|48|10048)|only one usage of each socket address", re.I
)
TICK = 0.02  # wait_ready's step: ready is noticed within a tick or two of the ready line
PROBE_EVERY = 0.5  # without the ready line (older ComfyUI), probe this often
START_LOCK_WAIT = 20.0
STOP_LOCK_WAIT = 30.0
BIND_RETRIES = 3
KILL_AT_ENV = "COMFYMANAGER_TEST_KILL_AT"  # tests: SIGKILL ourselves at a named point of start


class LaunchFailed(ComfyManagerError):
    """ComfyUI did not come up; ``details`` holds the last lines of its output."""

    def __init__(self, message: str, fix: str | None = None, details: str = "") -> None:
        super().__init__(message, fix)
        self.details = details


@dataclass(frozen=True)
class Status:
    """What a user sees for a project. ``state`` is one of STATES.

    ``supervisor_lost``: ComfyUI runs but its supervisor died (its exit code will not be
    recorded; Stop still works). ``foreign``: who answers on the port when it is not our
    ComfyUI. ``device_note``: a launch flag we added and why (``--cpu``).
    """

    project: str
    state: str
    port: int | None = None
    pid: int | None = None
    url: str | None = None
    commit: str = ""
    exit_code: int | None = None
    message: str = ""
    last_lines: tuple[str, ...] = ()
    supervisor_lost: bool = False
    foreign: str = ""
    device_note: str = ""
    run_id: str = ""

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


# -- status ----------------------------------------------------------------------------------


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
    view = read_view(dirs, run)
    if view.alive and run:
        url, port = str(run["url"]), int(run["port"])
        pid = view.child.pid if view.child else None
        lost = view.child is not None and view.supervisor is None
        common: dict[str, Any] = {
            "port": port,
            "pid": pid,
            "url": url,
            "commit": commit,
            "supervisor_lost": lost,
            "device_note": str(run.get("device_note") or ""),
            "run_id": str(run.get("run_id") or ""),
        }
        note = (
            "Its supervisor is gone: ComfyUI keeps running and can be stopped, but how it "
            "ends will not be recorded."
            if lost
            else ""
        )
        if probe_http:
            ok, foreign = ready(view.child, url, port)
            if ok:
                return Status(project.id, "running", message=note, **common)
            msg = " ".join(
                x for x in (f"{foreign[0].upper()}{foreign[1:]}." if foreign else "", note) if x
            )
            return Status(project.id, "starting", message=msg, foreign=foreign, **common)
        return Status(project.id, "starting", message=note, **common)
    if project.install.status != "ready":
        state = "not-installed" if project.install.status == "new" else "install-failed"
        msg = project.install.error or (
            "The install was interrupted."
            if project.install.status in ("installing", "cancelled")
            else ""
        )
        return Status(project.id, state, commit=commit, message=msg)
    if run and not run.get("stop_requested_at") and not view.stale:
        ended = view.ended
        code = ended.get("exit_code") if ended else None
        if ended and ended.get("signal"):
            why = f"was killed by {ended['signal']}"
        elif code is not None:
            why = f"exited with code {process.exit_code_text(code)}"
        elif ended and ended.get("error"):
            why = f"could not be supervised ({ended['error']})"
        elif not view.launched:
            why = "was never launched: its supervisor ended first (see logs/supervisor.log)"
        else:
            why = "stopped while its supervisor was gone (exit code unknown)"
        lines = tail(dirs.comfyui_log, 20)
        if not view.launched and ended is None:
            lines += tuple(f"[supervisor] {ln}" for ln in tail(dirs.logs / "supervisor.log", 10))
        return Status(
            project.id,
            "crashed",
            commit=commit,
            exit_code=code,
            message=f"ComfyUI {why}.",
            last_lines=lines,
        )
    msg = "An earlier start was interrupted before ComfyUI was launched." if view.stale else ""
    return Status(project.id, "stopped", commit=commit, message=msg)


def running_ports(ctx: CoreContext) -> dict[int, str]:
    """{port: project id} of our projects whose ComfyUI (or its supervisor) is alive."""
    store = ProjectStore(ctx.paths)
    found: dict[int, str] = {}
    projects, _ = store.list()
    for p in projects:
        dirs = store.dirs(p.id)
        run = read_run(dirs)
        if run and read_view(dirs, run).alive:
            found[int(run["port"])] = p.id
    return found


def remembered_ports(ctx: CoreContext, project_id: str) -> frozenset[int]:
    """The automatic ports other projects of this data root last had (kept for them)."""
    projects, _ = ProjectStore(ctx.paths).list()
    return frozenset(p.last_port for p in projects if p.id != project_id and p.last_port)


# -- launch ----------------------------------------------------------------------------------


def _kill_point(name: str) -> None:
    """Tests: die here, as a user's kill -9 would (``COMFYMANAGER_TEST_KILL_AT=name``)."""
    if os.environ.get(KILL_AT_ENV) == name:
        if os.name == "nt":  # pragma: no cover
            os._exit(137)
        os.kill(os.getpid(), signal.SIGKILL)


def _busy_message(project_id: str, st: Status) -> str:
    where = f" on {st.url}" if st.url else ""
    return f"Project '{project_id}' is already {st.state}{where}."


def start(ctx: CoreContext, project_id: str, *, port: int | None = None) -> Status:
    """Start ComfyUI for the project in the background and return at once (state "starting")."""
    if port is not None:
        port = ports.validate_port(port)
    store = ProjectStore(ctx.paths)
    project = store.load(project_id)
    if project.install.status != "ready":
        raise InvalidInput(
            f"Project '{project_id}' is not installed yet.",
            "Wait for the install to finish, or Repair it if it failed.",
        )
    with project_lock(
        ctx,
        project_id,
        timeout=START_LOCK_WAIT,
        busy=f"Project '{project_id}' is busy with another job (starting, stopping or repairing).",
    ):
        current = status(ctx, store.load(project_id))  # probes only when something is alive
        if current.state in ("running", "starting"):
            raise Conflict(
                _busy_message(project_id, current), "Stop it first, or open it in the browser."
            )
        _snapshot_if_changed(ctx, project)
        return _launch(ctx, store.load(project_id), port=port)


def _snapshot_if_changed(ctx: CoreContext, project: Project) -> None:
    """A snapshot when the packs changed since the last one (ComfyUI-Manager during the last
    run). The caller holds the project lock. A failed snapshot never stops the start: it is
    logged, and the next start tries again."""
    if project.in_place:  # an adopted install run where it is: comfymanager keeps no snapshots
        return
    from comfymanager.core.lifecycle.packs import snapshot_if_changed

    try:
        if snapshot_if_changed(ctx, project.id):
            log.info("snapshot taken before starting %s: its packs changed", project.id)
    except (ComfyManagerError, OSError) as exc:
        log.warning("could not snapshot %s before starting: %s", project.id, exc)


def _launch(
    ctx: CoreContext, project: Project, *, port: int | None, skip: frozenset[int] = frozenset()
) -> Status:
    """Spawn the supervisor for a new run. The caller holds the project lock."""
    store = ProjectStore(ctx.paths)
    dirs = store.dirs(project.id)
    view = read_view(dirs, read_run(dirs))
    if view.orphan is not None:  # a ComfyUI from a run nobody records any more
        log.warning("stopping orphaned ComfyUI pid %s of %s", view.orphan.pid, project.id)
        with contextlib.suppress(psutil.Error):
            process.kill_tree(view.orphan, timeout=5)
    fixed = port if port is not None else project.port
    host = "0.0.0.0" if project.listen_network else "127.0.0.1"
    chosen = ports.allocate(
        ctx.paths,
        project.id,
        fixed=fixed,
        port_range=(ctx.settings.port_min, ctx.settings.port_max),
        in_use_by_projects=lambda: running_ports(ctx),
        host=host,
        skip=skip,
        prefer=project.last_port,
        avoid=remembered_ports(ctx, project.id),
    )
    _kill_point("claimed")
    try:
        if fixed is None and chosen != project.last_port:  # an automatic port sticks to it
            project = store.update(project.id, last_port=chosen)
        for stale in (dirs.exit_file, dirs.child_file, dirs.root / "stop.request"):
            stale.unlink(missing_ok=True)
        dirs.logs.mkdir(parents=True, exist_ok=True)
        rotate(dirs.comfyui_log)
        argv, device_note = _build(ctx, project, dirs, chosen)
        run_id = uuid.uuid4().hex
        url = f"http://127.0.0.1:{chosen}"
        run: dict[str, Any] = {
            "run_id": run_id,
            "port": chosen,
            "url": url,
            "auto_port": fixed is None,
            "started_at": time.time(),
            "argv": argv,
            "owner": process.ProcessIdentity.of(os.getpid()).to_json(),
            "supervisor": None,
            "stop_requested_at": None,
            "device_note": device_note,
        }
        write_run(dirs, run)
        _kill_point("recorded")
        env = process.clean_env(
            {"PIP_CONSTRAINT": str(dirs.constraints), "UV_CONSTRAINT": str(dirs.constraints)}
            if dirs.constraints.exists() and dirs.constraints.stat().st_size
            else None
        )
        env.update(comfyui_git_env(dirs.venv))  # no system git: ComfyUI-Manager uses pygit2
        env.update(project.env)  # the project's own variables, then its GPU choice
        env.update(gpu_env(project))
        with open(dirs.comfyui_log, "ab") as fh:
            fh.write(f"[comfymanager] starting: {' '.join(argv)}\n".encode())
            if device_note:
                fh.write(f"[comfymanager] {device_note}\n".encode())
        sup = [
            *supervisor_argv(dirs),
            "--log-file",
            str(dirs.comfyui_log),
            "--exit-file",
            str(dirs.exit_file),
            "--child-file",
            str(dirs.child_file),
            "--run-file",
            str(dirs.run_file),
            "--run-id",
            run_id,
            "--cwd",
            str(comfyui_dir(project, dirs)),
            "--",
            *argv,
        ]
        popen = process.spawn_detached(
            sup, log_file=dirs.logs / "supervisor.log", cwd=dirs.root, env=env
        )
        _kill_point("spawned")
        ident = process.ProcessIdentity.of(popen.pid)
        run["supervisor"] = ident.to_json()
        write_run(dirs, run)
        _kill_point("updated")
        ports.hold(ctx.paths, project.id, ident.to_json())  # the claim lives with the supervisor
    except BaseException:
        ports.release(ctx.paths, project.id)
        raise
    log.info("started %s on port %s (supervisor pid %s)", project.id, chosen, ident.pid)
    return Status(
        project.id,
        "starting",
        chosen,
        None,
        url,
        project.comfyui_commit,
        device_note=device_note,
        run_id=run_id,
    )


def _launch_error(
    project_id: str, ended: dict[str, Any] | None, lines: tuple[str, ...], port: int | None
) -> LaunchFailed:
    code = ended.get("exit_code") if ended else None
    sig = ended.get("signal") if ended else None
    how = (
        f"was killed by {sig}"
        if sig
        else f"exited with code {process.exit_code_text(code)}"
        if code is not None
        else "ended (exit code unknown)"
    )
    foreign = foreign_listener(port) if port and ports.listeners(port) else ""
    message = f"ComfyUI for '{project_id}' did not start: it {how} before it was ready."
    if foreign:
        message += f" {sentence(foreign)}"
    return LaunchFailed(
        message,
        "Read the last lines of its log below; Repair the project if a package is broken."
        if not foreign
        else "Close that program, or give this project another port.",
        "\n".join(lines),
    )


def wait_ready(
    ctx: CoreContext,
    project_id: str,
    *,
    timeout: float = 120.0,
    cancel: CancelToken | None = None,
    report: Reporter | None = None,
) -> Status:
    """Block until ComfyUI is ready and ours; raise LaunchFailed as soon as it exits.

    Follows ComfyUI's log for its ready line (then confirms: ``/system_stats`` shape and the
    listening socket in ComfyUI's process tree), probing every 0.5 s as a fallback. When
    ComfyUI lost a bind race on an automatic port, starts again on the next free port.
    """
    from comfymanager.core.run.monitor import LogTail

    store = ProjectStore(ctx.paths)
    dirs = store.dirs(project_id)
    token = cancel or CancelToken()
    deadline = time.monotonic() + timeout
    retries = BIND_RETRIES
    skip: set[int] = set()
    logtail = LogTail(dirs.comfyui_log, from_end=False)
    last_probe = 0.0
    seen_ready_line = False
    foreign = ""
    while True:
        run = read_run(dirs)
        view = read_view(dirs, run)
        now = time.monotonic()
        seen_ready_line = seen_ready_line or any(READY_LINE in ln for ln in logtail.read())
        if run and view.child is not None and (seen_ready_line or now - last_probe >= PROBE_EVERY):
            last_probe = now
            ok, foreign = ready(view.child, str(run["url"]), int(run["port"]))
            if ok:  # just confirmed: no second probe
                st = status(ctx, store.load(project_id), probe_http=False)
                return dataclasses.replace(st, state="running") if st.state == "starting" else st
        if not view.alive:
            if run and run.get("stop_requested_at"):
                raise LaunchFailed(
                    f"ComfyUI for '{project_id}' was stopped before it was ready.",
                    "Start it again when you want it.",
                )
            if view.supervisor is None and view.ended is None and view.run and not view.stale:
                # the supervisor is gone: give it a moment to have written exit.json
                time.sleep(TICK)
                view = read_view(dirs, read_run(dirs))
            lines = tail(dirs.comfyui_log, 20)
            if view.ended is None:  # the supervisor itself failed: its own words matter
                lines += tuple(
                    f"[supervisor] {ln}" for ln in tail(dirs.logs / "supervisor.log", 10)
                )
            port = int(run["port"]) if run else None
            if (
                run
                and run.get("auto_port")
                and retries > 0
                and any(BIND_FAILED.search(ln) for ln in lines)
            ):
                retries -= 1
                skip.add(int(run["port"]))
                if report:
                    report.log(f"Port {run['port']} was taken at the last moment; trying another")
                with project_lock(ctx, project_id, timeout=START_LOCK_WAIT):
                    _launch(ctx, store.load(project_id), port=None, skip=frozenset(skip))
                logtail = LogTail(dirs.comfyui_log, from_end=False)
                seen_ready_line = False
                continue
            raise _launch_error(project_id, view.ended, lines, port)
        if now > deadline:
            why = f" {sentence(foreign)}" if foreign else ""
            raise LaunchFailed(
                f"ComfyUI for '{project_id}' did not answer within {timeout:.0f} s.{why}",
                "It may still be loading; see its log. Stop and start it again.",
                "\n".join(tail(dirs.comfyui_log, 20)),
            )
        if token.wait(TICK):
            token.check()


# -- stop ------------------------------------------------------------------------------------


def stop(ctx: CoreContext, project_id: str, *, timeout: float = 10.0) -> Status:
    """Stop ComfyUI: its stop signal first (SIGTERM; CTRL_BREAK on Windows), the whole tree
    killed after ``timeout`` seconds. Returns as soon as ComfyUI and its supervisor are gone."""
    store = ProjectStore(ctx.paths)
    dirs = store.dirs(project_id)
    with project_lock(ctx, project_id, timeout=STOP_LOCK_WAIT):
        run = read_run(dirs)
        if run:
            run["stop_requested_at"] = time.time()
            write_run(dirs, run)
        view = read_view(dirs, run)
        if os.name == "nt" and view.supervisor is not None:  # pragma: no cover - Windows only
            (dirs.root / "stop.request").write_text("stop\n")
        for proc in (view.child, view.orphan):
            if proc is None:
                continue
            if os.name == "nt":  # pragma: no cover - Windows only
                if view.supervisor is not None:  # it sends CTRL_BREAK, we wait, then force
                    process.kill_tree(proc, timeout=timeout, terminate_root=False)
                else:
                    job = read_record(dirs.child_file) or {}
                    process.terminate_job(str(job.get("job") or ""))
                    process.kill_tree(proc, timeout=timeout)
            else:
                process.kill_tree(proc, timeout=timeout)
        if view.supervisor is not None:
            if view.child is None and view.orphan is None:  # nothing spawned yet: tell it now
                process.kill_tree(view.supervisor, timeout=timeout)
            # it writes exit.json and leaves on its own once ComfyUI is gone
            _gone, alive = psutil.wait_procs([view.supervisor], timeout=2)
            for p in alive:
                process.kill_tree(p, timeout=2)
        with contextlib.suppress(OSError):
            (dirs.root / "stop.request").unlink(missing_ok=True)
        ports.release(ctx.paths, project_id)
    return status(ctx, store.load(project_id), probe_http=False)
