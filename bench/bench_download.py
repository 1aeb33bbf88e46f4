"""Benchmark: our download_file vs curl on a local 1 GiB file, CPU time, and the Qt event
loop's longest stall while DownloadManager runs three downloads.

    uv run --no-sync python bench/bench_download.py [--mib 1024] [--out /tmp/perf_download.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QCoreApplication, QElapsedTimer, QTimer

from comfymanager.core.models.download import DownloadRequest, download_file
from comfymanager.core.models.hosts import Endpoints
from comfymanager.core.models.manager import DownloadManager
from comfymanager.core.progress import CancelToken, Reporter
from tests.fixtures.http_server import FileServer, Served


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--out", default="/tmp/perf_download.md")
    args = ap.parse_args()
    size = args.mib * 1024 * 1024
    data = os.urandom(size)  # random: nothing compresses, nothing is special-cased
    srv = FileServer()
    work = Path(tempfile.mkdtemp(prefix="bench-dl-"))
    try:
        # Both clients fetch from one server in its own process, alternating, best of 2 each.
        (work / "www").mkdir()
        (work / "www" / "big.bin").write_bytes(data)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                                   "127.0.0.1", "--directory", str(work / "www")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ext_url = f"http://127.0.0.1:{port}/big.bin"
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        curl = shutil.which("curl") or "curl"
        t_curl = t_ours = c_ours = float("inf")
        for run in range(2):
            t0 = time.perf_counter()
            subprocess.run([curl, "-s", "-o", str(work / "curl.bin"), ext_url], check=True)
            t_curl = min(t_curl, time.perf_counter() - t0)
            (work / "curl.bin").unlink()
            c0, t0 = cpu(), time.perf_counter()
            download_file(
                DownloadRequest(urls=(ext_url,), folder="checkpoints", name=f"ours{run}.bin"),
                store=work / "store",
                secrets=None,
                endpoints=Endpoints(),
                report=Reporter(),
                cancel=CancelToken(),
            )
            t_ours = min(t_ours, time.perf_counter() - t0)
            c_ours = min(c_ours, cpu() - c0)
            (work / "store" / "checkpoints" / f"ours{run}.bin").unlink()
        server.terminate()
        server.wait()

        app = QCoreApplication.instance() or QCoreApplication([])
        for i in range(3):
            srv.add(f"/m{i}.bin", Served(data))
        mgr = DownloadManager(
            store=work / "store2", queue_file=work / "q.json", endpoints=Endpoints(), parallel=3
        )
        worst = [0.0]
        clock = QElapsedTimer()
        clock.start()
        last = [clock.elapsed()]

        def tick() -> None:
            now = clock.elapsed()
            worst[0] = max(worst[0], now - last[0] - 5)
            last[0] = now

        timer = QTimer()
        timer.setInterval(5)
        timer.timeout.connect(tick)
        timer.start()
        mgr.all_done.connect(app.quit)
        t0 = time.perf_counter()
        for i in range(3):
            mgr.add(
                DownloadRequest(urls=(srv.url(f"/m{i}.bin"),), folder="loras", name=f"m{i}.bin")
            )
        app.exec()
        t_three = time.perf_counter() - t0
        mgr.shutdown()
    finally:
        srv.close()
        shutil.rmtree(work, ignore_errors=True)
    mib = size / 2**20
    text = f"""## Download engine (bench/bench_download.py)

Command: `uv run --no-sync python bench/bench_download.py --mib {args.mib}`
Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}
File: {mib:.0f} MiB of random bytes. curl and download_file fetch it alternately (best of 2
each) from `python -m http.server` in its own process; the three parallel downloads come from
the threaded test server inside the benchmark process.

| measure | value |
|---|---|
| curl -o | {t_curl:.2f} s ({mib / t_curl:.0f} MiB/s) |
| download_file (hashing, .part, atomic move) | {t_ours:.2f} s ({mib / t_ours:.0f} MiB/s) |
| ratio ours/curl throughput (target >= 0.9) | {t_curl / t_ours:.2f} |
| CPU time of download_file (user+sys of the client process) | {c_ours:.2f} s |
| 3 parallel downloads via DownloadManager | {t_three:.2f} s ({3 * mib / t_three:.0f} MiB/s total) |
| longest Qt event-loop stall meanwhile (5 ms timer lateness; target < 50 ms) | {worst[0]:.0f} ms |

Every server here is Python on the same 2 cores as the client, so the absolute speeds are
bounded by the server; the ratio compares the clients under the same limit.
"""
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
