"""Start-up time of the window and idle memory.

Measures, in fresh subprocesses, the wall time from spawning ``python -m comfymanager`` to the
first event-loop turn after the main window is shown (the app prints ``window-shown`` when
COMFYMANAGER_STARTUP_PROBE is set), against a baseline of a bare PySide6 QApplication + QWidget.
Then the resident memory of the idle app 5 s after the window is shown (psutil).

    uv run --no-sync python bench/bench_startup.py [--runs 5] [--platform offscreen]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

BASELINE = (
    "from PySide6.QtCore import QTimer\n"
    "from PySide6.QtWidgets import QApplication, QWidget\n"
    "app = QApplication([])\n"
    "w = QWidget(); w.resize(800, 600); w.show()\n"
    "QTimer.singleShot(0, lambda: (print('window-shown', flush=True), app.quit()))\n"
    "app.exec()\n"
)


def _env(platform_name: str) -> dict[str, str]:
    env = {**os.environ, "QT_QPA_PLATFORM": platform_name, "COMFYMANAGER_STARTUP_PROBE": "1"}
    env.pop("VIRTUAL_ENV", None)
    return env


def time_to_shown(argv: list[str], env: dict[str, str], keep: float = 0.0) -> tuple[float, int]:
    """(seconds until 'window-shown', RSS in bytes ``keep`` seconds later or 0)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("window-shown"):
                break
        else:
            raise RuntimeError(f"{argv} ended without showing a window")
        shown = time.perf_counter() - t0
        rss = 0
        if keep:
            time.sleep(keep)
            rss = psutil.Process(proc.pid).memory_info().rss
        return shown, rss
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--platform", default="offscreen")
    args = parser.parse_args()
    env = _env(args.platform)
    base = [time_to_shown([sys.executable, "-c", BASELINE], env)[0] for _ in range(args.runs)]
    app_times = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            data = Path(tmp) / f"d{i}"
            argv = [sys.executable, "-m", "comfymanager", "--data-dir", str(data)]
            app_times.append(time_to_shown(argv, env)[0])
        argv = [sys.executable, "-m", "comfymanager", "--data-dir", str(Path(tmp) / "idle")]
        _, rss = time_to_shown(argv, env, keep=5.0)
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, QT_QPA_PLATFORM={args.platform}"
    )
    print(
        f"baseline QApplication+QWidget shown: median {statistics.median(base):.3f} s "
        f"(min {min(base):.3f}, max {max(base):.3f}, n={len(base)})"
    )
    print(
        f"comfymanager window shown:           median {statistics.median(app_times):.3f} s "
        f"(min {min(app_times):.3f}, max {max(app_times):.3f}, n={len(app_times)})"
    )
    print(f"idle RSS 5 s after the window is shown: {rss / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
