"""Benchmark: analyse every official template; node-db and node-definitions load times.

Run: uv run --no-sync python bench/bench_analyze.py [NODE_DB_FOLDER]
Targets (issue 11 item 6): whole set < 1 s, no file > 50 ms; with and without the node database.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import comfyui_workflow_templates_json as pkg

from comfymanager.core.workflow.analyze import analyze
from comfymanager.core.workflow.nodedb import load_node_db, refresh_node_db
from comfymanager.core.workflow.nodedefs import SHIPPED_PATH, read_definitions


def _run(templates: list[Path], db: object, rounds: int = 3) -> list[tuple[float, float, str]]:
    """Per file: (best of ``rounds``, first round, name). The best is the analysis' own cost;
    the first includes what a busy machine adds (other processes, the collector)."""
    out: list[tuple[float, float, str]] = []
    for p in templates:
        times = []
        for _ in range(rounds):
            t = time.perf_counter()
            analyze(p, db)  # type: ignore[arg-type]
            times.append(time.perf_counter() - t)
        out.append((min(times), times[0], p.name))
    return out


def main() -> int:
    source = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data/comfyui-manager"
    cache = Path(tempfile.mkdtemp(prefix="bench-nodedb-"))
    refresh_node_db(source, cache)
    loads = []
    for _ in range(5):
        t = time.perf_counter()
        db = load_node_db(cache)
        loads.append(time.perf_counter() - t)
    templates = []
    for p in sorted((Path(pkg.__file__).parent / "templates").glob("*.json")):
        data = json.loads(p.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("nodes"), list):
            templates.append(p)
    defs_loads = []
    for _ in range(5):
        t = time.perf_counter()
        read_definitions(SHIPPED_PATH)
        defs_loads.append(time.perf_counter() - t)
    analyze(templates[0], db)  # warm imports and the cached shipped definitions
    print(f"machine: {platform.platform()}, python {platform.python_version()}")
    print(
        f"node-db load: median {statistics.median(loads) * 1000:.0f} ms "
        f"(min {min(loads) * 1000:.0f}, max {max(loads) * 1000:.0f}) over 5 runs"
    )
    print(f"shipped node definitions load: median {statistics.median(defs_loads) * 1000:.1f} ms")
    ok = True
    for label, database in (("with node db", db), ("without node db", None)):
        runs = _run(templates, database)
        best = sorted(b for b, _, _ in runs)
        total_best = sum(best)
        total_first = sum(f for _, f, _ in runs)
        p99 = best[min(len(best) - 1, int(len(best) * 0.99))]
        worst = max(runs)
        print(
            f"templates ({label}): {len(templates)} in {total_best:.2f} s (best of 3 per file; "
            f"first pass {total_first:.2f} s); per file median "
            f"{statistics.median(best) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms, "
            f"max {worst[0] * 1000:.2f} ms ({worst[2]})"
        )
        ok = ok and total_best < 1.0 and worst[0] < 0.05
    print("targets (set < 1 s, every file < 50 ms):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
