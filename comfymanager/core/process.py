"""The one process wrapper: every child process (git, uv, ComfyUI) starts here.

- ``resolve_executable`` turns a program name into a path or a readable error.
- ``clean_env`` gives children an environment without our virtualenv, ``PYTHONHOME``, ``UV_*``
  or frozen-app variables leaking in.
- ``run_tool`` runs a command to completion, streams decoded lines to a callback, honours a
  cancel token (terminate, grace period, kill the whole tree) and returns a ``ProcessOutcome``.
- ``spawn_detached`` starts a long-lived child in its own session with output to a file, so it
  outlives the app (ComfyUI); ``ProcessIdentity`` (pid + start time) finds it again later
  without ever touching a recycled PID.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil

from comfymanager.core.errors import Cancelled, ComfyManagerError, ExternalToolError, NotFound
from comfymanager.core.progress import CancelToken

LEAKY_PREFIXES = ("UV_", "PYTHON", "PIP_", "CONDA_", "_PYI_", "_MEI", "__PYVENV")
# the user's own choices, not leaks: UTF-8 mode, and uv's network patience (slow proxies)
KEPT_NAMES = {"PYTHONUTF8", "UV_HTTP_TIMEOUT", "UV_HTTP_RETRIES"}
LEAKY_NAMES = {
    "VIRTUAL_ENV",
    "VIRTUAL_ENV_PROMPT",
    "PYTHONHOME",
    "PYTHONPATH",
    "QT_PLUGIN_PATH",
    "QML2_IMPORT_PATH",
    "SSL_CERT_FILE",
}
TAIL_LINES = 60


@dataclass(frozen=True)
class ProcessOutcome:
    """How a child ended. ``sentence`` is what a user reads."""

    argv: tuple[str, ...]
    exit_code: int | None
    signal_name: str | None
    cancelled: bool
    tail: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.cancelled

    @property
    def sentence(self) -> str:
        prog = Path(self.argv[0]).name if self.argv else "process"
        if self.cancelled:
            return f"{prog} was stopped."
        if self.signal_name:
            return f"{prog} was killed by {self.signal_name}."
        if self.exit_code == 0:
            return f"{prog} finished."
        return f"{prog} exited with code {exit_code_text(self.exit_code)}."


NTSTATUS_NAMES = {
    0xC0000005: "access violation",
    0xC000001D: "illegal instruction",
    0xC0000017: "out of memory",
    0xC00000FD: "stack overflow",
    0xC0000094: "integer division by zero",
    0xC0000135: "a DLL was not found",
    0xC0000139: "a DLL entry point was not found",
    0xC0000142: "a DLL failed to initialise",
    0xC000013A: "stopped with Ctrl+C",
    0xC0000409: "stack buffer overrun (fast fail)",
    0xC0000374: "heap corruption",
    0xC06D007E: "a delay-loaded DLL was not found",
    0x40010004: "the process was terminated by the debugger",
}


def exit_code_text(code: int | None, windows: bool | None = None) -> str:
    """An exit code as a user reads it: Windows NTSTATUS codes in hex with their name.

    ``3221225477`` (or ``-1073741819``) on Windows is ``0xC0000005 (access violation)``.
    """
    if code is None:
        return "unknown"
    if windows is None:
        windows = os.name == "nt"
    unsigned = code & 0xFFFFFFFF
    if windows and (unsigned >= 0xC0000000 or unsigned in NTSTATUS_NAMES):
        name = NTSTATUS_NAMES.get(unsigned)
        return f"0x{unsigned:08X}" + (f" ({name})" if name else "")
    return str(code)


@dataclass(frozen=True)
class ProcessIdentity:
    """A process as we recorded it: PID plus its start time, so a reused PID never matches."""

    pid: int
    create_time: float

    @classmethod
    def of(cls, pid: int) -> ProcessIdentity:
        return cls(pid, psutil.Process(pid).create_time())

    @classmethod
    def from_json(cls, data: object) -> ProcessIdentity | None:
        """``{"pid": N, "create_time": T}`` as written in our records, None if unusable."""
        if not isinstance(data, dict):
            return None
        try:
            return cls(int(data["pid"]), float(data["create_time"]))
        except (KeyError, TypeError, ValueError):
            return None

    def to_json(self) -> dict[str, float]:
        return {"pid": self.pid, "create_time": self.create_time}

    def find(self) -> psutil.Process | None:
        """The live process if it is still the one we started, else None."""
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.create_time) > 0.5:
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None

    def alive(self) -> bool:
        return self.find() is not None


def resolve_executable(program: str | Path, hint: str = "") -> str:
    """Absolute path of ``program`` or a NotFound naming it and how to get it."""
    p = Path(program)
    if p.is_absolute() or os.sep in str(program):
        if p.exists():
            return str(p)
        raise NotFound(f"{program} does not exist.", hint or None)
    found = shutil.which(str(program))
    if not found:
        raise NotFound(f"The program '{program}' was not found on PATH.", hint or None)
    return found


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The parent's environment minus anything that would make a child use the wrong Python."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k in KEPT_NAMES or (k not in LEAKY_NAMES and not k.startswith(LEAKY_PREFIXES))
    }
    if getattr(sys, "frozen", False):
        # PyInstaller rewrites the library path; give children the original one back.
        for var in ("LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH"):
            orig = os.environ.get(var + "_ORIG")
            env.pop(var + "_ORIG", None)
            if orig is not None:
                env[var] = orig
            else:
                env.pop(var, None)
    venv = os.environ.get("VIRTUAL_ENV")
    if venv:  # drop our own venv's bin from PATH
        bin_dir = str(Path(venv) / ("Scripts" if os.name == "nt" else "bin"))
        env["PATH"] = os.pathsep.join(
            p for p in env.get("PATH", "").split(os.pathsep) if p != bin_dir
        )
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    if extra:
        env.update(extra)
    return env


def _session_flags() -> tuple[bool, int]:
    """(start_new_session, creationflags): a child in its own session / process group."""
    if os.name == "nt":
        return False, subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW  # type: ignore[attr-defined,unused-ignore]
    return True, 0


class StopDenied(ComfyManagerError):
    """The OS refused to end a process: it is still running, never "stopped"."""


def kill_tree(root: psutil.Process, timeout: float = 10.0, *, terminate_root: bool = True) -> None:
    """Terminate ``root`` and its descendants, wait ``timeout``, then kill what is left.

    ``terminate_root=False`` leaves the first request to someone else (on Windows the
    supervisor sends CTRL_BREAK to ComfyUI's whole process group) and only waits, then kills.
    Raises ``StopDenied`` when a process is still alive because the OS refused to signal it,
    or survived the kill.
    """
    try:
        children = root.children(recursive=True)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        children = []
    procs = [root, *children]
    for p in procs if terminate_root else ():
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            p.terminate()  # a refusal here is retried below with kill
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    denied: list[psutil.Process] = []
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
        except psutil.AccessDenied:
            denied.append(p)
    _, still = psutil.wait_procs([p for p in alive if p not in denied], timeout=5)
    refused = [p for p in denied if p.is_running()]
    if refused:
        names = ", ".join(f"pid {p.pid}" for p in refused)
        raise StopDenied(
            f"The system refused to stop {names}: access denied.",
            "Stop it from the Task Manager / Activity Monitor, or run comfymanager as the user "
            "that started it.",
        )
    if still:
        names = ", ".join(f"pid {p.pid}" for p in still)
        raise StopDenied(
            f"{names} did not end even when killed (it may be stuck in the system).",
            "Wait a moment and stop it again; a restart of the computer ends it for sure.",
        )


def terminate_job(name: str) -> bool:
    """Windows: end every process in the named Job object (the supervisor's). False if absent."""
    if os.name != "nt" or not name:
        return False
    import ctypes  # pragma: no cover - Windows only

    k32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    k32.OpenJobObjectW.restype = ctypes.c_void_p
    job = k32.OpenJobObjectW(0x0008, False, name)  # JOB_OBJECT_TERMINATE
    if not job:
        return False
    try:
        if not k32.TerminateJobObject(ctypes.c_void_p(job), 1):
            if ctypes.get_last_error() == 5:  # type: ignore[attr-defined,unused-ignore]
                raise StopDenied(
                    "The system refused to stop ComfyUI's processes: access denied.",
                    "Stop them from the Task Manager, or run comfymanager as the user that "
                    "started them.",
                )
            return False
        return True
    finally:
        k32.CloseHandle(ctypes.c_void_p(job))


def _signal_name(code: int | None) -> str | None:
    if code is None or code >= 0 or os.name == "nt":
        return None
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _pump(stream: IO[bytes], on_line: Callable[[str], None], tail: deque[str]) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        # tools that redraw a line with \r: keep the last state only
        line = line.rsplit("\r", 1)[-1]
        tail.append(line)
        on_line(line)
    stream.close()


def run_tool(
    argv: Sequence[str | Path],
    *,
    on_line: Callable[[str], None] | None = None,
    cancel: CancelToken | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    grace: float = 5.0,
) -> ProcessOutcome:
    """Run a command to completion (stdout and stderr merged, decoded as UTF-8 lines).

    On cancel or timeout the whole tree is terminated, then killed after ``grace`` seconds, and
    ``Cancelled`` is raised. Other outcomes are returned; use ``check`` to turn failure into an
    ``ExternalToolError``.
    """
    args = [str(a) for a in argv]
    args[0] = resolve_executable(args[0])
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    proc = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env=dict(env) if env is not None else clean_env(),
        start_new_session=_session_flags()[0],
        creationflags=_session_flags()[1],
    )
    assert proc.stdout is not None
    reader = threading.Thread(
        target=_pump, args=(proc.stdout, on_line or (lambda _l: None), tail), daemon=True
    )
    reader.start()
    token = cancel or CancelToken()
    waited = 0.0
    stopped = False
    while True:
        try:
            proc.wait(timeout=0.1)
            break
        except subprocess.TimeoutExpired:
            waited += 0.1
            if token.cancelled or (timeout is not None and waited >= timeout):
                with contextlib.suppress(psutil.NoSuchProcess):
                    kill_tree(psutil.Process(proc.pid), timeout=grace)
                proc.wait()
                stopped = True
                break
    reader.join(timeout=5)
    outcome = ProcessOutcome(
        argv=tuple(args),
        exit_code=proc.returncode,
        signal_name=_signal_name(proc.returncode),
        cancelled=stopped,
        tail=tuple(tail),
    )
    if stopped:
        if token.cancelled:
            raise Cancelled(f"{Path(args[0]).name} was stopped.")
        raise ExternalToolError(
            f"{Path(args[0]).name} took longer than {timeout:.0f} s and was stopped.",
            details="\n".join(tail),
        )
    return outcome


def check(outcome: ProcessOutcome, what: str, fix: str | None = None) -> ProcessOutcome:
    """Raise ExternalToolError with the output's tail unless the outcome is a success."""
    if not outcome.ok:
        last = next((ln for ln in reversed(outcome.tail) if ln.strip()), "")
        reason = f": {last.strip()}" if last else ""
        raise ExternalToolError(
            f"{what} failed ({outcome.sentence}){reason}", fix, "\n".join(outcome.tail)
        )
    return outcome


class _DetachedPopen(subprocess.Popen[bytes]):
    """A child meant to outlive us: no "still running" warning when the object is dropped."""

    def __del__(self) -> None:  # reaping is done by ``reap_detached``
        return None


_detached: list[subprocess.Popen[bytes]] = []
_detached_lock = threading.Lock()


def reap_detached() -> None:
    """Collect exit statuses of detached children that ended, so none lingers as a zombie."""
    with _detached_lock:
        _detached[:] = [p for p in _detached if p.poll() is None]


def spawn_detached(
    argv: Sequence[str | Path],
    *,
    log_file: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a child in its own session, stdout+stderr appended to ``log_file``.

    It survives the app being closed or killed; the caller records its ``ProcessIdentity``.
    """
    args = [str(a) for a in argv]
    args[0] = resolve_executable(args[0])
    log_file.parent.mkdir(parents=True, exist_ok=True)
    reap_detached()
    with open(log_file, "ab") as out:
        child = _DetachedPopen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env) if env is not None else clean_env(),
            close_fds=True,
            start_new_session=_session_flags()[0],
            creationflags=_session_flags()[1],
        )
    with _detached_lock:
        _detached.append(child)
    return child
