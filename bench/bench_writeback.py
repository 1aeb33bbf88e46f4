"""Benchmark: how often the download engine starts writeback (``part.WRITEBACK_STEP``).

Downloads a 1 GiB file from a local sendfile server into a store on the given folder with the
step at 8 MiB, 64 MiB and effectively off (only the fsync before the rename), interleaved.

    uv run --no-sync python bench/bench_writeback.py [--dir DIR] [--rounds 4] [--mib 1024]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_download import start_server
from comfymanager.core.models import part as part_mod
from comfymanager.core.models.download import DownloadRequest, download_file
from comfymanager.core.models.hosts import Endpoints
from comfymanager.core.progress import CancelToken, Reporter

STEPS = {"8 MiB": 8, "64 MiB": 64, "off": 1 << 30}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=None)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--mib", type=int, default=1024)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-wb-", dir=args.dir))
    (work / "www").mkdir()
    (work / "www" / "big.bin").write_bytes(os.urandom(args.mib * 1024 * 1024))
    server, url = start_server(work / "www", None, "sendfile")
    got: dict[str, list[tuple[float, float]]] = {k: [] for k in STEPS}
    try:
        for _ in range(args.rounds):
            for label, mib in STEPS.items():
                part_mod.WRITEBACK_STEP = mib * 1024 * 1024
                shutil.rmtree(work / "store", ignore_errors=True)
                os.sync()
                r0 = resource.getrusage(resource.RUSAGE_SELF)
                t0 = time.perf_counter()
                download_file(
                    DownloadRequest(urls=(url,), folder="checkpoints", name="o.bin"),
                    store=work / "store",
                    secrets=None,
                    endpoints=Endpoints(),
                    report=Reporter(),
                    cancel=CancelToken(),
                )
                wall = time.perf_counter() - t0
                r1 = resource.getrusage(resource.RUSAGE_SELF)
                used = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
                got[label].append((wall, used))
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)
    print("| writeback step | median wall | median CPU | all rounds (wall) |")
    print("|---|---|---|---|")
    for label, runs in got.items():
        walls = [w for w, _ in runs]
        cpus = [c for _, c in runs]
        every = ", ".join(f"{w:.2f}" for w in walls)
        print(
            f"| {label} | {statistics.median(walls):.2f} s | {statistics.median(cpus):.2f} s "
            f"| {every} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
