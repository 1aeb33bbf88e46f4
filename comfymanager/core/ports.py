"""The port pool: a free port per running project, never the same one twice.

A port is free only if nothing answers on 127.0.0.1 or ::1 and it can be bound. Allocation runs
under a cross-process file lock (the window and command-line runs share it) and leaves a claim in
``ports.json`` that holds the port until the project's run record takes over, so two projects
launched at the same moment never get the same port.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

from filelock import FileLock

from comfymanager.core import persist
from comfymanager.core.errors import Conflict
from comfymanager.core.paths import DataPaths

log = logging.getLogger(__name__)

KIND = "comfymanager.ports"
VERSION = 1
CLAIM_SECONDS = 120.0


def answers(port: int, timeout: float = 0.2) -> bool:
    """True if something accepts connections on 127.0.0.1 or ::1 at ``port``."""
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(timeout)
                if s.connect_ex((host, port)) == 0:
                    return True
        except OSError:
            continue  # no IPv6 on this machine
    return False


def bindable(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, port))
        return True
    except OSError:
        return False


def port_is_free(port: int) -> bool:
    return not answers(port) and bindable(port)


def owner_process(port: int) -> str:
    """Name and PID of the program listening on ``port``, when the OS lets us see it."""
    try:
        import psutil

        for conn in psutil.net_connections(kind="inet"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
                if conn.pid:
                    with contextlib.suppress(psutil.Error):
                        return f"{psutil.Process(conn.pid).name()} (PID {conn.pid})"
                return "another program"
    except Exception:  # AccessDenied on macOS, etc.
        pass
    return "another program"


@contextlib.contextmanager
def _locked(paths: DataPaths) -> Iterator[dict[str, Any]]:
    paths.locks.mkdir(parents=True, exist_ok=True)
    with FileLock(str(paths.locks / "ports.lock"), timeout=30):
        try:
            data = persist.read_json(paths.ports_file, KIND, VERSION)
        except FileNotFoundError:
            data = {"claims": {}}
        except Exception as exc:  # a damaged claims file only costs the claims
            log.warning("port claims reset: %s", exc)
            data = {"claims": {}}
        yield data
        persist.write_json(paths.ports_file, KIND, VERSION, {"claims": data["claims"]})


def allocate(
    paths: DataPaths,
    project_id: str,
    *,
    fixed: int | None,
    port_range: tuple[int, int],
    in_use_by_projects: Callable[[], dict[int, str]],
) -> int:
    """Reserve a port for ``project_id``: ``fixed`` if given and free, else the pool's first free.

    ``in_use_by_projects`` returns {port: project id} for our running projects; it is called
    under the lock so a project that just started is seen.
    """
    with _locked(paths) as data:
        now = time.time()
        claims: dict[str, dict[str, Any]] = {
            p: c
            for p, c in data["claims"].items()
            if now - float(c.get("at", 0)) < CLAIM_SECONDS and c.get("project") != project_id
        }
        ours = in_use_by_projects()
        taken: dict[int, str] = {int(p): str(c["project"]) for p, c in claims.items()}
        taken.update({p: o for p, o in ours.items() if o != project_id})
        if fixed is not None:
            if fixed in taken:
                raise Conflict(
                    f"Port {fixed} is in use by project '{taken[fixed]}'.",
                    "Stop that project, or give this one another port (or the automatic pool).",
                )
            if not port_is_free(fixed):
                raise Conflict(
                    f"Port {fixed} is in use by {owner_process(fixed)}.",
                    "Close that program, or give this project another port.",
                )
            port = fixed
        else:
            low, high = port_range
            port = next((p for p in range(low, high + 1) if p not in taken and port_is_free(p)), 0)
            if not port:
                raise Conflict(
                    f"No free port between {low} and {high}.",
                    "Stop a project, or widen the port range in Settings.",
                )
        claims[str(port)] = {"project": project_id, "at": now}
        data["claims"] = claims
        return port


def release(paths: DataPaths, project_id: str) -> None:
    with _locked(paths) as data:
        data["claims"] = {p: c for p, c in data["claims"].items() if c.get("project") != project_id}
