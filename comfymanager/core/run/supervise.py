"""The small supervisor each ComfyUI runs under.

It is a standalone script, standard library only: the app copies it into the project and runs it
with the PROJECT's Python (``venv/bin/python supervise.py ...``), so the app's own folder can be
upgraded while projects run (``comfymanager --supervise`` remains as a fallback).

What it does:

- writes ``child.json`` (carrying the run id the app put in ``run.json``) with its own identity
  first, then ComfyUI's PID and start time;
- refuses to start ComfyUI when ``run.json`` names another run (a stale supervisor);
- starts ComfyUI with stdout/stderr going straight to the log file (no pipe through us), so
  ComfyUI keeps running and logging if the supervisor dies;
- rotates that log by copy-and-truncate when it grows past the limit (ComfyUI appends, so it
  carries on at the start of the emptied file); a rotation error is reported and skipped;
- forwards a stop request (SIGTERM, or on Windows a ``stop.request`` file) to ComfyUI
  (SIGTERM / CTRL_BREAK), then ends the whole tree;
- always writes ``exit.json`` (exit code, signal, run id) when ComfyUI ends.

On Windows ComfyUI gets its own process group and shares the supervisor's hidden console (no
window; CTRL_BREAK reaches it), and is put in a named Job object (``Local\\comfymanager-<run id>``)
that holds its whole tree, so Stop can end grandchildren too. The job is deliberately not
kill-on-close: ComfyUI must outlive a supervisor that dies.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_BACKUPS = 5
TICK = 0.05  # how often the loop looks at the child, the log size and a stop request
STOP_GRACE = 10.0
IS_WINDOWS = os.name == "nt"
T = TypeVar("T")


def _say(text: str) -> None:
    """A line to the supervisor's own log (its stderr)."""
    with contextlib.suppress(Exception):
        sys.stderr.write(f"[supervise {time.strftime('%H:%M:%S')}] {text}\n")
        sys.stderr.flush()


def retry(fn: Callable[[], T], attempts: int = 8, first_wait: float = 0.05) -> T:
    """Run ``fn``; retry PermissionError (Windows sharing violations) with backoff."""
    wait = first_wait
    for i in range(attempts):
        try:
            return fn()
        except PermissionError:
            if i == attempts - 1:
                raise
            time.sleep(wait)
            wait = min(wait * 2, 0.5)
    raise AssertionError("unreachable")


def write_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
        fh.flush()
        os.fsync(fh.fileno())
    retry(lambda: os.replace(tmp, path))


def rotate(log_file: Path, backups: int = LOG_BACKUPS) -> None:
    """comfyui.log -> comfyui.1.log -> ... keeping ``backups`` old files (nobody writes it)."""
    _shift(log_file, backups)
    if log_file.exists():
        retry(lambda: os.replace(log_file, log_file.with_suffix(".1.log")))


def _shift(log_file: Path, backups: int) -> None:
    for i in range(backups - 1, 0, -1):
        older = log_file.with_suffix(f".{i}.log")
        newer = log_file.with_suffix(f".{i + 1}.log")
        if older.exists():
            retry(lambda o=older, n=newer: os.replace(o, n))  # type: ignore[misc]


def rotate_live(log_file: Path, backups: int = LOG_BACKUPS) -> None:
    """Rotate a log another process appends to: copy it to ``.1.log``, then empty it."""
    _shift(log_file, backups)
    first = log_file.with_suffix(".1.log")
    with open(log_file, "rb") as src, open(first, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    with open(log_file, "r+b") as fh:
        fh.truncate(0)


def create_time(pid: int) -> float | None:
    """Start time of ``pid`` in seconds since the epoch, as psutil reports it (None if unknown)."""
    try:
        if sys.platform.startswith("linux"):
            with open(f"/proc/{pid}/stat", "rb") as fh:
                stat = fh.read().decode()
            ticks = int(stat[stat.rindex(")") + 2 :].split()[19])
            with open("/proc/stat", encoding="ascii") as fh:
                btime = next(int(ln.split()[1]) for ln in fh if ln.startswith("btime"))
            return btime + ticks / os.sysconf("SC_CLK_TCK")
        if IS_WINDOWS:
            return _win_create_time(pid)
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return None


def _win_create_time(pid: int) -> float | None:  # pragma: no cover - Windows only
    import ctypes
    from ctypes import wintypes

    k32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    handle = k32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return None
    try:
        times = [wintypes.FILETIME() for _ in range(4)]
        if not k32.GetProcessTimes(handle, *[ctypes.byref(t) for t in times]):
            return None
        ft = (times[0].dwHighDateTime << 32) | times[0].dwLowDateTime
        return (ft - 116444736000000000) / 1e7
    finally:
        k32.CloseHandle(handle)


def job_name(run_id: str) -> str:
    return f"Local\\comfymanager-{run_id}"


def _win_job(run_id: str, pid: int) -> object | None:  # pragma: no cover - Windows only
    """A named Job object holding ``pid`` (and so every process it starts)."""
    import ctypes

    k32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    k32.CreateJobObjectW.restype = ctypes.c_void_p
    k32.OpenProcess.restype = ctypes.c_void_p
    job = k32.CreateJobObjectW(None, job_name(run_id))
    if not job:
        _say(f"could not create a job object (error {ctypes.get_last_error()})")  # type: ignore[attr-defined,unused-ignore]
        return None
    proc = k32.OpenProcess(0x0100 | 0x0001, False, pid)  # SET_QUOTA | TERMINATE
    if not proc or not k32.AssignProcessToJobObject(ctypes.c_void_p(job), ctypes.c_void_p(proc)):
        _say(f"could not put ComfyUI in its job object (error {ctypes.get_last_error()})")  # type: ignore[attr-defined,unused-ignore]
    if proc:
        k32.CloseHandle(ctypes.c_void_p(proc))
    return job  # type: ignore[no-any-return]


def _win_terminate_job(job: object) -> None:  # pragma: no cover - Windows only
    import ctypes

    k32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    if not k32.TerminateJobObject(ctypes.c_void_p(job), 1):  # type: ignore[arg-type]
        _say(f"could not end the job object (error {ctypes.get_last_error()})")  # type: ignore[attr-defined,unused-ignore]


def _read_run_id(run_file: Path | None) -> str | None:
    if run_file is None:
        return None
    try:
        with open(run_file, encoding="utf-8") as fh:
            data = json.load(fh)
        return str(data.get("run_id")) if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


class StoppedEarly(Exception):
    """A stop request arrived before ComfyUI was spawned."""


class Supervisor:
    """One ComfyUI from start to ``exit.json``."""

    def __init__(self, args: argparse.Namespace, command: list[str]) -> None:
        self.args = args
        self.command = command
        self.child: subprocess.Popen[bytes] | None = None
        self.stop_at: float | None = None
        self.job: object | None = None
        self.rotation_failures = 0

    # -- records ----------------------------------------------------------------------------
    def _me(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "create_time": create_time(os.getpid())}

    def _write_child(self, pid: int | None) -> None:
        data: dict[str, Any] = {
            "run_id": self.args.run_id,
            "supervisor": self._me(),
            "pid": pid,
            "create_time": create_time(pid) if pid else None,
            "job": job_name(self.args.run_id) if IS_WINDOWS and self.args.run_id else None,
        }
        write_atomic(self.args.child_file, data)

    def _log_line(self, text: str) -> None:
        with contextlib.suppress(OSError), open(self.args.log_file, "ab") as fh:
            fh.write(f"[comfymanager] {text}\n".encode())

    # -- stop -------------------------------------------------------------------------------
    def request_stop(self, *_: object) -> None:
        if self.stop_at is None:
            self.stop_at = time.monotonic()
        child = self.child
        if child is None or child.poll() is not None:
            return
        with contextlib.suppress(OSError):
            if IS_WINDOWS:  # pragma: no cover - Windows only
                os.kill(child.pid, signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined,unused-ignore]
            else:
                child.terminate()

    def _force_stop(self) -> None:
        child = self.child
        if child is None:
            return
        if IS_WINDOWS and self.job is not None:  # pragma: no cover - Windows only
            _win_terminate_job(self.job)
        with contextlib.suppress(OSError):
            child.kill()

    # -- log --------------------------------------------------------------------------------
    def _maybe_rotate(self) -> None:
        try:
            if os.path.getsize(self.args.log_file) <= self.args.max_bytes:
                return
            rotate_live(self.args.log_file)
        except Exception as exc:  # a rotation error must never end supervision
            self.rotation_failures += 1
            if self.rotation_failures <= 3 or self.rotation_failures % 100 == 0:
                _say(f"log rotation failed (skipped): {exc!r}")

    # -- main -------------------------------------------------------------------------------
    def run(self) -> int:
        args = self.args
        with contextlib.suppress(FileNotFoundError):
            args.exit_file.unlink()
        record: dict[str, Any] = {"run_id": args.run_id, "exit_code": None, "signal": None}
        try:
            self._write_child(None)
            current = _read_run_id(args.run_file)
            if args.run_id and args.run_file and current != args.run_id:
                _say(f"run.json names run {current}, not {args.run_id}: not starting ComfyUI")
                return 0  # a stale supervisor: the newer run owns exit.json
            record["exit_code"], record["signal"] = self._run_child()
            return 0
        except StoppedEarly as exc:
            record["error"] = str(exc)
            return 0
        except BaseException as exc:  # exit.json is written whatever happens
            record["error"] = repr(exc)
            _say(f"supervisor error: {exc!r}")
            child = self.child
            if child is None:
                record["exit_code"] = 127
            else:
                if child.poll() is None:
                    self._force_stop()
                    with contextlib.suppress(Exception):
                        child.wait(5)
                record["exit_code"] = child.returncode
            return 1
        finally:
            if "error" in record or record["exit_code"] is not None:
                record["ended_at"] = time.time()
                record["stop_requested"] = self.stop_at is not None
                try:
                    write_atomic(args.exit_file, record)
                except Exception as exc:
                    _say(f"could not write {args.exit_file}: {exc!r}")

    def _run_child(self) -> tuple[int, str | None]:
        args = self.args
        if IS_WINDOWS:  # pragma: no cover - Windows only
            # own process group (CTRL_BREAK), our hidden console (no window of its own)
            kwargs: dict[str, Any] = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}  # type: ignore[attr-defined,unused-ignore]
        else:
            kwargs = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.request_stop)
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, signal.SIG_IGN)  # survive the terminal closing
        if IS_WINDOWS and hasattr(signal, "SIGBREAK"):  # pragma: no cover
            signal.signal(signal.SIGBREAK, self.request_stop)
        if self.stop_at is not None:  # stopped before ComfyUI existed: start nothing
            raise StoppedEarly("stopped before ComfyUI was started")
        try:
            with open(args.log_file, "ab") as out:
                self.child = subprocess.Popen(
                    self.command,
                    cwd=args.cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    **kwargs,
                )
        except OSError as exc:
            self._log_line(f"could not start ComfyUI: {exc}")
            raise
        if self.stop_at is not None:  # the request came while it was being spawned
            self.request_stop()
        if IS_WINDOWS and args.run_id:  # pragma: no cover - Windows only
            self.job = _win_job(args.run_id, self.child.pid)
        self._write_child(self.child.pid)
        stop_file = args.child_file.with_name("stop.request")
        last_rotate = 0.0
        while True:
            try:
                code = self.child.wait(TICK)
                break
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if self.stop_at is None and stop_file.exists():
                self.request_stop()
            if self.stop_at is not None and now - self.stop_at > args.stop_grace:
                self._force_stop()
            if now - last_rotate >= 0.5:
                last_rotate = now
                self._maybe_rotate()
        with contextlib.suppress(OSError):
            stop_file.unlink()
        signame = None
        if code < 0:
            try:
                signame = signal.Signals(-code).name
            except ValueError:
                signame = f"signal {-code}"
        self._log_line(f"ComfyUI exited with code {code}")
        return code, signame


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="comfymanager-supervise")
    parser.add_argument("--log-file", required=True, type=Path)
    parser.add_argument("--exit-file", required=True, type=Path)
    parser.add_argument("--child-file", required=True, type=Path)
    parser.add_argument("--run-file", type=Path, default=None)
    parser.add_argument("--run-id", default="")
    parser.add_argument("--cwd", required=True, type=Path)
    parser.add_argument("--max-bytes", type=int, default=LOG_MAX_BYTES)
    parser.add_argument("--stop-grace", type=float, default=STOP_GRACE)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    return Supervisor(args, command).run()


if __name__ == "__main__":
    threading.current_thread().name = "supervise"
    sys.exit(main())
