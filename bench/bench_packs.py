"""Benchmark: a project's pack list and the requirements check done before every pack change.

1. ``list_packs`` and ``changed_since_last_snapshot`` on a project whose ``custom_nodes`` holds N
   git packs (half recorded in project.json, half "added outside"), 20 runs each: what a Packs
   tab pays to refresh (no subprocess: ``.git`` is read directly).
2. ``check_requirements`` (uv ``pip install --dry-run``, cache first) on a real project created
   from the fixture ComfyUI with one pack: when everything resolves, and when a second pack's
   requirement conflicts (5 runs each). uv's cache is a fresh one in a temporary folder (``pip``
   and ``requests`` come from the package index once).

Run: uv run --no-sync python bench/bench_packs.py [N ...]   (default N: 50 200)
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from comfymanager.core.context import build_core_context  # noqa: E402
from comfymanager.core.lifecycle import packs  # noqa: E402
from comfymanager.core.lifecycle.pack_list import (  # noqa: E402
    changed_since_last_snapshot,
    list_packs,
    record_state,
)
from comfymanager.core.lifecycle.pack_reqs import (  # noqa: E402
    check_requirements,
    enabled_requirements,
)
from comfymanager.core.progress import CancelToken, Reporter  # noqa: E402
from comfymanager.core.projects import PackRecord, Project, ProjectStore  # noqa: E402
from tests.fixtures.comfyui import create_installed, git, make_fake_comfyui  # noqa: E402
from tests.fixtures.node_packs import make_managed_packs  # noqa: E402


def _ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:.1f} ms, max {max(values) * 1000:.1f} ms"


def bench_list(n: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-packs-"))
    ctx = build_core_context(root / "data")
    store = ProjectStore(ctx.paths)
    project = store.create(Project(id="B"))
    nodes = store.dirs("B").custom_nodes
    nodes.mkdir(parents=True)
    for i in range(n):
        folder = nodes / f"Pack{i:03d}"
        folder.mkdir()
        git(folder, "init", "-q", "-b", "main")
        (folder / "__init__.py").write_text("NODE_CLASS_MAPPINGS = {}\n")
        git(folder, "add", "-A")
        git(folder, "commit", "-q", "-m", "1")
        git(folder, "remote", "add", "origin", f"https://example.invalid/o/Pack{i}.git")
        if i % 2 == 0:
            url = f"https://example.invalid/o/Pack{i}.git"
            project.packs.append(PackRecord(url=url, folder=folder.name, status="installed"))
    store.save(project)
    listing, changed = [], []
    for _ in range(20):
        t = time.perf_counter()
        rows = list_packs(ctx, "B")
        listing.append(time.perf_counter() - t)
    record_state(ctx, "B")
    for _ in range(20):
        t = time.perf_counter()
        changed_since_last_snapshot(ctx, "B")
        changed.append(time.perf_counter() - t)
    print(
        f"{n} packs ({len(rows)} rows): list_packs {_ms(listing)}; "
        f"changed_since_last_snapshot {_ms(changed)}"
    )


def bench_requirements() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-reqs-"))
    fake = make_fake_comfyui(root / "comfyui")
    managed = make_managed_packs(root / "packs")
    os.environ["COMFYMANAGER_COMFYUI_SOURCE"] = str(fake.repo)
    os.environ.setdefault("COMFYMANAGER_UV_CACHE_DIR", str(root / "uv-cache"))
    create_installed(root / "data", "Q")
    ctx = build_core_context(root / "data")
    t = time.perf_counter()
    packs.add_pack(ctx, "Q", managed.clash_a, report=Reporter(), cancel=CancelToken())
    added = time.perf_counter() - t
    dirs = ProjectStore(ctx.paths).dirs("Q")
    other = root / "ComfyUI-ClashB"
    git(root, "clone", "-q", managed.clash_b, str(other))
    ok, bad, message = [], [], ""
    for _ in range(5):
        files = enabled_requirements(dirs)
        t = time.perf_counter()
        check_requirements(ctx, dirs, files, report=Reporter(), cancel=CancelToken())
        ok.append(time.perf_counter() - t)
        files["ComfyUI-ClashB"] = other / "requirements.txt"
        t = time.perf_counter()
        try:
            check_requirements(ctx, dirs, files, report=Reporter(), cancel=CancelToken())
        except packs.PackConflict as exc:
            message = exc.message
        bad.append(time.perf_counter() - t)
    print(f"pack add (git, one local wheel): {added:.2f} s")
    print(f"requirements resolve together: {_ms(ok)}; conflict named: {_ms(bad)}")
    print(f"  {message}")


if __name__ == "__main__":
    for count in [int(a) for a in sys.argv[1:]] or [50, 200]:
        bench_list(count)
    bench_requirements()
