"""The port pool: a free port per running project, never the same one twice on this machine.

- ``validate_port`` is the one check of a user's port (create, start, settings, the window).
- A port is free when nothing listens on it (IPv4 or IPv6, seen through the OS's socket table
  where it lets us) and it can be bound the way ComfyUI (aiohttp) binds: ``SO_REUSEADDR`` on
  127.0.0.1 and ``::1``. So our own TIME_WAIT sockets never block a restart, and a listener on
  ``::1`` only still counts as taken.
- Claims live in one file per user and machine (``$XDG_RUNTIME_DIR/comfymanager/ports.json``, a
  per-user temp folder otherwise, ``COMFYMANAGER_RUNTIME_DIR`` to override), under a file lock,
  so every data root of the user sees them. A claim names its owner process (pid + start time):
  the command that allocates, then the supervisor. It ends with ``release`` or when its owner is
  gone.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock

from comfymanager.core import persist
from comfymanager.core.errors import Conflict, InvalidInput
from comfymanager.core.paths import DataPaths
from comfymanager.core.process import ProcessIdentity

log = logging.getLogger(__name__)

KIND = "comfymanager.ports"
VERSION = 2
PORT_MIN = 1024
PORT_MAX = 65535
RUNTIME_ENV = "COMFYMANAGER_RUNTIME_DIR"


def validate_port(value: object, what: str = "Port") -> int:
    """``value`` as a port number between 1024 and 65535, or InvalidInput naming the problem."""
    if isinstance(value, bool):
        value = str(value)
    try:
        port = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise InvalidInput(
            f"{what} {value!r} is not a number.",
            f"Use a port between {PORT_MIN} and {PORT_MAX}, or leave it automatic.",
        ) from None
    if not PORT_MIN <= port <= PORT_MAX:
        raise InvalidInput(
            f"{what} {port} is out of range.",
            f"Use a port between {PORT_MIN} and {PORT_MAX}, or leave it automatic.",
        )
    return port


def runtime_dir() -> Path:
    """This user's per-machine folder for claims (not per data root)."""
    override = os.environ.get(RUNTIME_ENV)
    if override:
        return Path(override)
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg):
        return Path(xdg) / "comfymanager"
    user = str(os.getuid()) if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"comfymanager-{user}"


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


_NO_FAMILY = {errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, getattr(errno, "EPROTONOSUPPORT", -1)}


def bindable(port: int, host: str = "127.0.0.1") -> bool:
    """Can ComfyUI bind ``port``? Binds as aiohttp does (SO_REUSEADDR), on ``host`` and ``::1``."""
    hosts = [(socket.AF_INET, host)] if ":" not in host else [(socket.AF_INET6, host)]
    hosts.append((socket.AF_INET6, "::1") if host != "0.0.0.0" else (socket.AF_INET6, "::"))
    for family, addr in hosts:
        try:
            s = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            continue  # this family does not exist here
        with s:
            if os.name != "nt":  # on Windows SO_REUSEADDR would let us steal a bound port
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                with contextlib.suppress(OSError):
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                s.bind((addr, port))
            except OSError as exc:
                if family == socket.AF_INET6 and exc.errno in _NO_FAMILY:
                    continue
                return False
    return True


def listening() -> dict[int, list[int | None]]:
    """{port: PIDs (None when the OS hides them)} of listening TCP sockets; {} if unknown."""
    found: dict[int, list[int | None]] = {}
    try:
        import psutil

        for c in psutil.net_connections(kind="tcp"):
            if c.laddr and c.status == psutil.CONN_LISTEN:
                found.setdefault(c.laddr.port, []).append(c.pid)
    except Exception:  # AccessDenied on macOS without root, etc.
        return {}
    return found


def listeners(port: int) -> list[int | None]:
    """PIDs (None when the OS hides them) of sockets listening on ``port``; [] if unknown."""
    return listening().get(port, [])


def port_is_free(
    port: int, host: str = "127.0.0.1", table: dict[int, list[int | None]] | None = None
) -> bool:
    table = listening() if table is None else table
    return port not in table and not answers(port) and bindable(port, host)


def owner_process(port: int) -> str:
    """Name and PID of the program listening on ``port``, when the OS lets us see it."""
    import psutil

    for pid in listeners(port):
        if pid:
            with contextlib.suppress(psutil.Error):
                return f"{psutil.Process(pid).name()} (pid {pid})"
    return "another program"


def _me() -> dict[str, Any]:
    import psutil

    pid = os.getpid()
    return {"pid": pid, "create_time": psutil.Process(pid).create_time()}


def _owner_alive(owner: object) -> bool:
    if not isinstance(owner, dict):
        return False
    try:
        return ProcessIdentity(int(owner["pid"]), float(owner["create_time"])).alive()
    except (KeyError, TypeError, ValueError):
        return False


def _claims_file() -> Path:
    return runtime_dir() / "ports.json"


def _private(folder: Path) -> Path:
    """Create ``folder`` for us alone; refuse one another user made (e.g. in a shared /tmp)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if hasattr(os, "getuid"):
        st = os.lstat(folder)
        if stat.S_ISLNK(st.st_mode) or st.st_uid != os.getuid():
            raise Conflict(
                f"The folder for port claims, {folder}, is a link or belongs to another user.",
                f"Set XDG_RUNTIME_DIR or {RUNTIME_ENV} to a folder of yours.",
            )
    return folder


@contextlib.contextmanager
def _locked() -> Iterator[dict[str, Any]]:
    folder = _private(runtime_dir())
    path = _claims_file()
    with FileLock(str(folder / "ports.lock"), timeout=30):
        try:
            data = persist.read_json(path, KIND, VERSION)
        except FileNotFoundError:
            data = {"claims": {}}
        except Exception as exc:  # a damaged claims file only costs the claims
            log.warning("port claims reset: %s", exc)
            data = {"claims": {}}
        if not isinstance(data.get("claims"), dict):
            data["claims"] = {}
        # a claim lives as long as its owner (the starting command, then the supervisor)
        data["claims"] = {
            p: c
            for p, c in data["claims"].items()
            if isinstance(c, dict) and _owner_alive(c.get("owner"))
        }
        yield data
        persist.write_json(path, KIND, VERSION, {"claims": data["claims"]})


def _key(paths: DataPaths) -> str:
    return str(paths.root.resolve())


def allocate(
    paths: DataPaths,
    project_id: str,
    *,
    fixed: int | None,
    port_range: tuple[int, int],
    in_use_by_projects: Callable[[], dict[int, str]],
    host: str = "127.0.0.1",
    skip: frozenset[int] = frozenset(),
    prefer: int | None = None,
    avoid: frozenset[int] = frozenset(),
) -> int:
    """Reserve a port for ``project_id``: ``fixed`` if given and free, else the pool's first free.

    Without ``fixed``, ``prefer`` (the project's last automatic port) is taken while it is free
    and in the range, and ports in ``avoid`` (other projects' last ports) are left to them
    unless nothing else is free: a project's URL stays the same across launches.

    ``in_use_by_projects`` returns {port: project id} for this data root's live projects; it is
    called under the lock so a project that just started is seen. ``skip`` are ports not to
    try (a retry after ComfyUI lost a bind race).
    """
    if fixed is not None:
        fixed = validate_port(fixed)
    root = _key(paths)
    with _locked() as data:
        claims: dict[str, dict[str, Any]] = {
            p: c
            for p, c in data["claims"].items()
            if not (c.get("root") == root and c.get("project") == project_id)
        }
        taken: dict[int, str] = {}
        for p, c in claims.items():
            same_root = c.get("root") == root
            taken[int(p)] = (
                f"project '{c.get('project')}'"
                if same_root
                else f"project '{c.get('project')}' of data folder {c.get('root')}"
            )
        taken.update(
            {p: f"project '{o}'" for p, o in in_use_by_projects().items() if o != project_id}
        )
        table = listening()
        if fixed is not None:
            if fixed in taken:
                raise Conflict(
                    f"Port {fixed} is in use by {taken[fixed]}.",
                    "Stop that project, or give this one another port (or the automatic pool).",
                )
            if not port_is_free(fixed, host, table):
                raise Conflict(
                    f"Port {fixed} is in use by {owner_process(fixed)}.",
                    "Close that program, or give this project another port.",
                )
            port = fixed
        else:
            low, high = port_range

            def usable(p: int) -> bool:
                return p not in taken and p not in skip and port_is_free(p, host, table)

            pool = range(low, high + 1)
            port = next(
                (p for p in (prefer,) if p is not None and low <= p <= high and usable(p)),
                0,
            ) or next((p for p in pool if p not in avoid and usable(p)), 0)
            port = port or next((p for p in pool if p in avoid and usable(p)), 0)
            if not port:
                raise Conflict(
                    f"No free port between {low} and {high}.",
                    "Stop a project, or widen the port range in Settings.",
                )
        claims[str(port)] = {"root": root, "project": project_id, "at": time.time(), "owner": _me()}
        data["claims"] = claims
        return port


def hold(paths: DataPaths, project_id: str, owner: dict[str, Any]) -> None:
    """Hand the project's claim to ``owner`` (the supervisor): it lives while that process does."""
    root = _key(paths)
    with _locked() as data:
        for c in data["claims"].values():
            if c.get("root") == root and c.get("project") == project_id:
                c["owner"] = owner


def release(paths: DataPaths, project_id: str) -> None:
    root = _key(paths)
    with _locked() as data:
        data["claims"] = {
            p: c
            for p, c in data["claims"].items()
            if not (c.get("root") == root and c.get("project") == project_id)
        }


def claims() -> dict[int, dict[str, Any]]:
    """The live claims on this machine (for tests and diagnostics)."""
    with _locked() as data:
        return {int(p): dict(c) for p, c in data["claims"].items()}
