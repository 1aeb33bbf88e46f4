"""The small supervisor each ComfyUI runs under (``python -m comfymanager.core.supervise``).

It outlives the app on purpose: it starts ComfyUI, records ComfyUI's PID and start time, copies
its output into a size-rotated log file, forwards a stop request (SIGTERM) to it, and when ComfyUI
ends writes the exit code to ``exit.json``. That is how the app, a later ``comfymanager status``,
or an app restarted after a crash can tell "Running", "Stopped" and "Crashed (exit code 1)" apart
for processes it did not start itself. Standard library only: it must start fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_BACKUPS = 5


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def rotate(log_file: Path, backups: int = LOG_BACKUPS) -> None:
    """comfyui.log -> comfyui.1.log -> ... keeping ``backups`` old files."""
    for i in range(backups - 1, 0, -1):
        older = log_file.with_suffix(f".{i}.log")
        if older.exists():
            os.replace(older, log_file.with_suffix(f".{i + 1}.log"))
    if log_file.exists():
        os.replace(log_file, log_file.with_suffix(".1.log"))


class _RotatingSink:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh = open(path, "ab")  # noqa: SIM115 - lives as long as the child
        self.size = self.fh.tell()

    def write(self, data: bytes) -> None:
        if self.size + len(data) > LOG_MAX_BYTES:
            self.fh.close()
            rotate(self.path)
            self.fh = open(self.path, "ab")  # noqa: SIM115
            self.size = 0
        self.fh.write(data)
        self.fh.flush()
        self.size += len(data)

    def close(self) -> None:
        self.fh.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="comfymanager-supervise")
    parser.add_argument("--log-file", required=True, type=Path)
    parser.add_argument("--exit-file", required=True, type=Path)
    parser.add_argument("--child-file", required=True, type=Path)
    parser.add_argument("--cwd", required=True, type=Path)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = [c for c in args.command if c != "--"] if args.command[:1] == ["--"] else args.command
    with contextlib.suppress(FileNotFoundError):
        args.exit_file.unlink()
    sink = _RotatingSink(args.log_file)
    try:
        child = subprocess.Popen(
            command,
            cwd=args.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    except OSError as exc:
        sink.write(f"[comfymanager] could not start ComfyUI: {exc}\n".encode())
        _write_atomic(
            args.exit_file,
            {"exit_code": 127, "signal": None, "ended_at": time.time(), "error": str(exc)},
        )
        return 127
    import psutil  # only after the child runs: keeps the start fast

    _write_atomic(
        args.child_file, {"pid": child.pid, "create_time": psutil.Process(child.pid).create_time()}
    )

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(OSError):
            child.terminate()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # survive the terminal closing
    assert child.stdout is not None
    fd = child.stdout.fileno()
    while True:
        try:
            chunk = os.read(fd, 65536)
        except InterruptedError:
            continue
        except OSError:
            break
        if not chunk:
            break
        sink.write(chunk)
    code = child.wait()
    signame = None
    if code < 0:
        try:
            signame = signal.Signals(-code).name
        except ValueError:
            signame = f"signal {-code}"
    sink.write(f"[comfymanager] ComfyUI exited with code {code}\n".encode())
    sink.close()
    _write_atomic(args.exit_file, {"exit_code": code, "signal": signame, "ended_at": time.time()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
