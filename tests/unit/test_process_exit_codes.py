"""Exit codes as a user reads them, and a refused kill that is never taken for "stopped"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from comfymanager.core import process


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (3221225477, "0xC0000005 (access violation)"),
        (-1073741819, "0xC0000005 (access violation)"),
        (0xC0000409, "0xC0000409 (stack buffer overrun (fast fail))"),
        (0xC000013A, "0xC000013A (stopped with Ctrl+C)"),
        (0xC0000135, "0xC0000135 (a DLL was not found)"),
        (0xC0001234, "0xC0001234"),
        (1, "1"),
        (0, "0"),
    ],
)
def test_windows_exit_codes_are_ntstatus_hex_with_a_name(code: int, text: str) -> None:
    assert process.exit_code_text(code, windows=True) == text


def test_posix_exit_codes_stay_numbers() -> None:
    assert process.exit_code_text(3221225477, windows=False) == "3221225477"
    assert process.exit_code_text(None) == "unknown"


def test_outcome_sentence_uses_the_readable_code() -> None:
    outcome = process.ProcessOutcome(("python.exe",), 3221225477, None, False, ())
    assert outcome.sentence.startswith("python.exe exited with code")


def test_access_denied_on_kill_is_reported_not_taken_for_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        proc = psutil.Process(child.pid)

        def denied(self: psutil.Process) -> None:
            raise psutil.AccessDenied(self.pid)

        # the OS refusing the signal (another user's process, a protected one on Windows)
        monkeypatch.setattr(psutil.Process, "terminate", denied)
        monkeypatch.setattr(psutil.Process, "kill", denied)
        with pytest.raises(process.StopDenied) as err:
            process.kill_tree(proc, timeout=0.2)
        assert f"pid {child.pid}" in err.value.message and "access denied" in err.value.message
        assert child.poll() is None  # still running, and we said so
    finally:
        monkeypatch.undo()
        child.kill()
        child.wait()


def test_pythonutf8_reaches_comfyui(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONUTF8", "1")
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    env = process.clean_env()
    assert env["PYTHONUTF8"] == "1" and "PYTHONPATH" not in env


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
def test_waiting_for_someone_elses_stop_request_then_killing(tmp_path: Path) -> None:
    """``terminate_root=False``: the supervisor's CTRL_BREAK is the first request, not ours."""
    marker = tmp_path / "got-sigterm"
    code = (
        "import signal, time\n"
        f"signal.signal(signal.SIGTERM, lambda *a: open({str(marker)!r}, 'w'))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        proc = psutil.Process(child.pid)
        process.kill_tree(proc, timeout=0.3, terminate_root=False)
        assert not proc.is_running() and not marker.exists()  # killed, never SIGTERMed by us
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        assert child.stdout is not None
        child.stdout.close()
