"""What display names cost: ``ProjectStore.create`` (which checks every name and picks a free
folder) and ``resolve`` by display name (reads every ``project.json``) against by folder name.

    uv run --no-sync python bench/bench_project_names.py 20 200
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from comfymanager.core.paths import DataPaths
from comfymanager.core.projects import Project, ProjectStore


def median_ms(f: Callable[[], object], k: int = 5) -> float:
    times = []
    for _ in range(k):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def run(n: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="cm-names-"))
    try:
        store = ProjectStore(DataPaths(root).ensure())
        start = time.perf_counter()
        for i in range(n):
            store.create(Project(id=f"Projekt Nummer {i} – Größe ✨"))
        create = (time.perf_counter() - start) / n * 1000
        last = f"Projekt Nummer {n - 1} – Größe ✨"
        folder = store.resolve(last)
        print(
            f"N={n}: create {create:.1f} ms each; resolve by display name "
            f"{median_ms(lambda: store.resolve(last)):.1f} ms, by folder name "
            f"{median_ms(lambda: store.resolve(folder)):.3f} ms; load by display name "
            f"{median_ms(lambda: store.load(last)):.1f} ms"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["20", "200"]:
        run(int(arg))
