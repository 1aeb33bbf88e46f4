"""What a run's records say, and whether the live process behind them is ours.

Used by ``runs`` (start/wait/stop/status): the per-project lock, reading ``run.json`` /
``child.json`` / ``exit.json`` into a ``RunView`` of live processes (records of another run id
are stale; a start killed before it spawned anything is recognised), and the readiness check:
``/system_stats`` with ComfyUI's shape, answered from a socket that ComfyUI's own process tree
listens on.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from filelock import FileLock, Timeout

from comfymanager.core import persist, process
from comfymanager.core.context import CoreContext
from comfymanager.core.errors import ComfyManagerError, Conflict
from comfymanager.core.projects import ProjectDirs
from comfymanager.core.run import ports

RUN_KIND = "comfymanager.run"
RUN_VERSION = 2


# -- the per-project lock ------------------------------------------------------------------


@contextlib.contextmanager
def project_lock(
    ctx: CoreContext, project_id: str, *, timeout: float = 0.5, busy: str = ""
) -> Iterator[None]:
    """One change of a project at a time, across processes; re-entrant in one thread."""
    ctx.paths.locks.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(ctx.paths.locks / f"project-{project_id}.lock"), is_singleton=True)
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise Conflict(
            busy or f"Project '{project_id}' is busy with another job.",
            "Wait for it to finish (see the progress pane), then try again.",
        ) from None
    try:
        yield
    finally:
        lock.release()


def install_lock_held(ctx: CoreContext, project_id: str) -> bool:
    """Does another thread or process hold the project's lock? (A fresh lock: not re-entrant.)"""
    lock = FileLock(str(ctx.paths.locks / f"project-{project_id}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


# -- records ---------------------------------------------------------------------------------


def tail(path: Path, lines: int = 30, max_bytes: int = 65536) -> tuple[str, ...]:
    if not path.exists():
        return ()
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - max_bytes))
        data = fh.read().decode("utf-8", errors="replace")
    return tuple(data.splitlines()[-lines:])


def read_record(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def _identity(data: dict[str, Any] | None) -> process.ProcessIdentity | None:
    return process.ProcessIdentity.from_json(data)


def read_run(dirs: ProjectDirs) -> dict[str, Any] | None:
    try:
        return persist.read_json(dirs.run_file, RUN_KIND, RUN_VERSION)
    except (FileNotFoundError, ComfyManagerError):
        return None


def write_run(dirs: ProjectDirs, run: dict[str, Any]) -> None:
    persist.write_json(
        dirs.run_file,
        RUN_KIND,
        RUN_VERSION,
        {k: v for k, v in run.items() if k not in ("kind", "version")},
    )


@dataclass(frozen=True)
class RunView:
    """The live facts behind one run record."""

    run: dict[str, Any] | None
    child: psutil.Process | None  # ComfyUI, alive and ours
    supervisor: psutil.Process | None  # alive and ours
    ended: dict[str, Any] | None  # exit.json of this run
    stale: bool  # a record of a start that was killed before it spawned anything
    orphan: psutil.Process | None  # a live ComfyUI named by a child.json of another run
    launched: bool = False  # this run's child.json names a ComfyUI pid (it was spawned)

    @property
    def alive(self) -> bool:
        return self.child is not None or (self.supervisor is not None and self.ended is None)


def _find_child(data: dict[str, Any], run: dict[str, Any]) -> psutil.Process | None:
    if not data.get("pid"):
        return None
    ident = _identity(data)
    if ident is not None:
        return ident.find()
    # the supervisor could not read start times here (macOS): trust a process younger than run
    try:
        proc = psutil.Process(int(data["pid"]))
        started = float(run.get("started_at") or 0)
        if proc.create_time() >= started - 2 and proc.status() != psutil.STATUS_ZOMBIE:
            return proc
    except (psutil.Error, TypeError, ValueError):
        pass
    return None


def _by_run_id(run_id: str) -> psutil.Process | None:
    """A supervisor started for ``run_id`` (its argv names it) whose identity was never saved."""
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error, TypeError):
            cmd = proc.info.get("cmdline") or []
            if run_id in cmd and "--run-id" in cmd:
                return proc
    return None


def read_view(dirs: ProjectDirs, run: dict[str, Any] | None) -> RunView:
    child_rec = read_record(dirs.child_file)
    if not run:
        return RunView(None, None, None, None, False, _orphan(child_rec, dirs))
    run_id = str(run.get("run_id") or "")
    matches = bool(child_rec) and str((child_rec or {}).get("run_id") or "") == run_id
    child = _find_child(child_rec, run) if matches and child_rec else None
    sup_ident = _identity(run.get("supervisor")) or (
        _identity(child_rec.get("supervisor")) if matches and child_rec else None
    )
    sup = sup_ident.find() if sup_ident else None
    ended = read_record(dirs.exit_file)
    if ended and str(ended.get("run_id") or "") != run_id:
        ended = None
    stale = False
    if sup_ident is None and not matches and ended is None:
        owner = _identity(run.get("owner"))
        if not (owner and owner.alive()):  # the starting command died before we knew more
            sup = _by_run_id(run_id) if run_id else None
            stale = sup is None
    orphan = None if matches else _orphan(child_rec, dirs)
    launched = bool(matches and child_rec and child_rec.get("pid"))
    return RunView(run, child, sup, ended, stale, orphan, launched)


def _orphan(child_rec: dict[str, Any] | None, dirs: ProjectDirs) -> psutil.Process | None:
    """A live ComfyUI named by a ``child.json`` of another run, if it really is this project's."""
    if not child_rec:
        return None
    ident = _identity(child_rec)
    proc = ident.find() if ident else None
    if proc is None:
        return None
    with contextlib.suppress(psutil.Error):
        if any(str(dirs.root) in part for part in proc.cmdline()):
            return proc
    return None


# -- is it ComfyUI, and ours? ---------------------------------------------------------------


def is_comfyui_stats(data: object) -> bool:
    """True for the shape ComfyUI's ``/system_stats`` has (not just any JSON object)."""
    if not isinstance(data, dict):
        return False
    system, devices = data.get("system"), data.get("devices")
    return (
        isinstance(system, dict)
        and isinstance(devices, list)
        and ("python_version" in system or "comfyui_version" in system)
    )


def probe(url: str, timeout: float = 1.0) -> dict[str, Any] | None:
    """``/system_stats`` as a dict when something that looks like ComfyUI answers, else None."""
    import requests  # first used on the monitor thread: keeps it out of the window's start

    try:
        r = requests.get(f"{url}/system_stats", timeout=timeout)
        if r.status_code == 200:
            data = r.json()
            return data if is_comfyui_stats(data) else None
    except (requests.RequestException, ValueError):
        return None
    return None


def _tree_listens(root: psutil.Process, port: int) -> bool | None:
    """Does ``root`` or a descendant listen on ``port``? None when the OS will not say."""
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    if sys.platform.startswith("linux"):
        found = _linux_tree_listens([p.pid for p in procs], port)
        if found is not None:
            return found
    denied = False
    for p in procs:
        try:
            conns = p.net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        except psutil.AccessDenied:
            denied = True
            continue
        if any(c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN for c in conns):
            return True
    return None if denied else False


def _linux_tree_listens(pids: list[int], port: int) -> bool | None:
    """Linux fast path (~1 ms, psutil's per-process scan takes ~15): the listening sockets'
    inodes from /proc/net/tcp{,6}, then the tree's open file descriptors."""
    inodes: set[str] = set()
    try:
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(FileNotFoundError), open(table, encoding="ascii") as fh:
                next(fh, None)
                for line in fh:
                    f = line.split()
                    if len(f) > 9 and f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(f"socket:[{f[9]}]")
        if not inodes:
            return False
        for pid in pids:
            fd_dir = f"/proc/{pid}/fd"
            try:
                fds = os.listdir(fd_dir)
            except FileNotFoundError:
                continue
            for fd in fds:
                with contextlib.suppress(OSError):
                    if os.readlink(f"{fd_dir}/{fd}") in inodes:
                        return True
    except (OSError, ValueError):
        return None  # not readable here (another user's process): let psutil say
    return False


def sentence(text: str) -> str:
    return f"{text[0].upper()}{text[1:]}." if text else ""


def foreign_listener(port: int) -> str:
    """ "port N is answered by <program> (pid N), not by this project's ComfyUI"."""
    return f"port {port} is answered by {ports.owner_process(port)}, not by this project's ComfyUI"


def ready(child: psutil.Process | None, url: str, port: int) -> tuple[bool, str]:
    """(ready and ours, who else answers when it is not ours)."""
    if child is None:
        return False, foreign_listener(port) if ports.listeners(port) else ""
    if probe(url, timeout=0.5) is None:  # cheap first: nothing answers yet while loading
        return False, ""
    if _tree_listens(child, port) is False:
        return False, foreign_listener(port)
    return True, ""  # ours, or the OS hid the sockets (then the answer is all we can know)
