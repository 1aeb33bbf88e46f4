"""Benchmark: our download_file vs curl on a local 1 GiB file, CPU time, and the Qt event
loop's longest stall while DownloadManager runs three downloads.

    uv run --no-sync python bench/bench_download.py [--mib 1024] [--rounds 5] [--out FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QCoreApplication, QElapsedTimer, QTimer

from comfymanager.core.models.download import DownloadRequest, download_file
from comfymanager.core.models.hosts import Endpoints
from comfymanager.core.models.manager import DownloadManager
from comfymanager.core.progress import CancelToken, Reporter


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


THROTTLED_SERVER = """
import sys, time
from pathlib import Path
from tests.fixtures.http_server import FileServer, Served
srv = FileServer()
srv.add("/big.bin", Served(Path(sys.argv[1]).read_bytes(), rate=int(sys.argv[2])))
print(srv.base, flush=True)
time.sleep(86400)
"""


def start_server(www: Path, rate: int | None) -> tuple[subprocess.Popen[bytes], str]:
    """A server in its own process: ``python -m http.server``, or the test server throttled
    to ``rate`` bytes/s (a stand-in for a real line)."""
    root = str(Path(__file__).resolve().parents[1])
    if rate is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "http.server",
                str(port),
                "--bind",
                "127.0.0.1",
                "--directory",
                str(www),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
    else:
        proc = subprocess.Popen(
            [sys.executable, "-c", THROTTLED_SERVER, str(www / "big.bin"), str(rate)],
            stdout=subprocess.PIPE,
            cwd=root,
        )
        assert proc.stdout is not None
        base = proc.stdout.readline().decode().strip()
        port = int(base.rsplit(":", 1)[1])
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    return proc, f"{base}/big.bin"


def fs_of(path: Path) -> str:
    """The file system type holding ``path`` (from /proc/mounts), for the report."""
    best, kind = "", "?"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            _dev, mount, fstype, *_ = line.split()
            if str(path).startswith(mount) and len(mount) > len(best):
                best, kind = mount, fstype
    except OSError:
        pass
    return f"{kind} ({best or '?'})"


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall and client CPU seconds of ``fn``; dirty pages are flushed first so that one
    client's writes are not paid for by the next."""
    os.sync()
    c0, t0 = cpu(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, cpu() - c0


def compare(
    url: str, work: Path, rounds: int, with_check: bool, sha256: str
) -> dict[str, list[float]]:
    curl = shutil.which("curl") or "curl"
    out = work / "curl.bin"
    got: dict[str, list[float]] = {k: [] for k in ("curl", "check", "ours", "cpu", "verified")}
    got["hashed"] = []

    def fetch_curl() -> None:
        subprocess.run([curl, "-s", "-o", str(out), url], check=True)

    def fetch_and_check() -> None:
        fetch_curl()
        subprocess.run(["sha256sum", str(out)], check=True, stdout=subprocess.DEVNULL)

    def ours(expected: str | None = None) -> None:
        result = download_file(
            DownloadRequest(urls=(url,), folder="checkpoints", name="ours.bin", sha256=expected),
            store=work / "store",
            secrets=None,
            endpoints=Endpoints(),
            report=Reporter(),
            cancel=CancelToken(),
        )
        if not expected:
            got["hashed"].append(1.0 if result.sha256 else 0.0)

    for _ in range(rounds):
        got["curl"].append(timed(fetch_curl)[0])
        out.unlink()
        if with_check:
            got["check"].append(timed(fetch_and_check)[0])
            out.unlink()
        wall, used = timed(ours)
        got["ours"].append(wall)
        got["cpu"].append(used)
        (work / "store" / "checkpoints" / "ours.bin").unlink()
        if with_check:  # with the sha256 known, so verified while streaming
            got["verified"].append(timed(lambda: ours(sha256))[0])
            (work / "store" / "checkpoints" / "ours.bin").unlink()
    return got


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--line-mib", type=int, default=256, help="size for the throttled runs")
    ap.add_argument("--rate", type=int, default=100, help="throttled line, MiB/s")
    ap.add_argument("--dir", default=None, help="work folder (default: the system temp folder)")
    ap.add_argument("--out", default="/tmp/perf_download.md")
    args = ap.parse_args()
    size = args.mib * 1024 * 1024
    data = os.urandom(size)  # random: nothing compresses, nothing is special-cased
    work = Path(tempfile.mkdtemp(prefix="bench-dl-", dir=args.dir))
    try:
        www = work / "www"
        www.mkdir()
        (www / "big.bin").write_bytes(data)
        server, url = start_server(www, None)
        try:
            fast = compare(url, work, args.rounds, True, hashlib.sha256(data).hexdigest())
        finally:
            server.terminate()
            server.wait()
        (www / "big.bin").write_bytes(data[: args.line_mib * 1024 * 1024])
        server, url = start_server(www, args.rate * 1024 * 1024)
        try:
            line = compare(url, work, max(2, args.rounds // 2), False, "")
        finally:
            server.terminate()
            server.wait()

        app = QCoreApplication.instance() or QCoreApplication([])
        (www / "big.bin").write_bytes(data)
        server, url = start_server(www, None)
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
            mgr.add(DownloadRequest(urls=(url,), folder="loras", name=f"m{i}.bin"))
        app.exec()
        t_three = time.perf_counter() - t0
        mgr.shutdown()
        server.terminate()
        server.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    mib = size / 2**20
    med = statistics.median
    t_curl, t_check, t_ours, c_ours = fast["curl"], fast["check"], fast["ours"], fast["cpu"]
    t_ver = fast["verified"]
    ratios = [c / o for c, o in zip(t_curl, t_ours, strict=True)]
    line_ratios = [c / o for c, o in zip(line["curl"], line["ours"], strict=True)]
    speed = f"{mib / med(t_ours):.0f} MiB/s"
    text = f"""## Download engine (bench/bench_download.py)

Command: `uv run --no-sync python bench/bench_download.py --mib {args.mib} --rounds {args.rounds}\
{f" --dir {args.dir}" if args.dir else ""}`
Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()};
files written to {fs_of(work)}
File: {mib:.0f} MiB of random bytes. Per round, curl, curl + sha256sum and download_file fetch it
in turn from `python -m http.server` in its own process (dirty pages flushed before each run).
Then {args.line_mib} MiB from a server throttled to {args.rate} MiB/s (a fast real line). Last,
DownloadManager fetches three copies at once from the first server while a 5 ms Qt timer measures
how late the event loop runs.

| measure | median | best |
|---|---|---|
| curl -o | {med(t_curl):.2f} s ({mib / med(t_curl):.0f} MiB/s) | {min(t_curl):.2f} s |
| curl -o, then sha256sum | {med(t_check):.2f} s | {min(t_check):.2f} s |
| download_file, no sha256 known (.part, sidecar, atomic move) | {med(t_ours):.2f} s ({speed}) \
| {min(t_ours):.2f} s |
| ratio ours/curl, per round (target >= 0.9) | {med(ratios):.2f} | {max(ratios):.2f} |
| download_file, sha256 known: verified while streaming | {med(t_ver):.2f} s | {min(t_ver):.2f} s |
| ratio verified download / (curl + sha256sum) | {med(t_check) / med(t_ver):.2f} | |
| CPU time of download_file (client process) | {med(c_ours):.2f} s | {min(c_ours):.2f} s |
| ratio ours/curl at {args.rate} MiB/s | {med(line_ratios):.2f} | {max(line_ratios):.2f} |
| downloads hashed while streaming without being asked: unthrottled / at {args.rate} MiB/s \
| {sum(fast["hashed"]):.0f} of {len(fast["hashed"])} / {sum(line["hashed"]):.0f} of \
{len(line["hashed"])} | |
| 3 parallel downloads via DownloadManager | {t_three:.2f} s ({3 * mib / t_three:.0f} MiB/s) | |
| longest Qt event-loop stall meanwhile (target < 50 ms) | {worst[0]:.0f} ms | |

Per-round ratios, unthrottled: {", ".join(f"{r:.2f}" for r in ratios)}; at {args.rate} MiB/s:
{", ".join(f"{r:.2f}" for r in line_ratios)}.
The unthrottled server is Python on the same 2 cores as the client, so the absolute speeds are
bounded by it; the ratio compares the clients under the same limit.
"""
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
