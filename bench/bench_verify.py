"""Benchmark: verify a project with 5 node packs in its own Python (the node scan + the check),
then again with nothing changed (the cached answer).

The project is real: created by the installer from the fixture ComfyUI repository (a real uv
environment, torch backend "none"), with the five loader-shaped fixture packs cloned into
``custom_nodes/`` and a workflow that uses them. The fixture ComfyUI's nodes import no torch, so
this measures comfymanager's own cost (process start, the packs' imports, INPUT_TYPES, the check);
a real ComfyUI adds its own import time (about 8 s for 0.3.64 with CPU torch on this machine,
see /work/shared/data/comfyui/README.md).

Run: uv run --no-sync python bench/bench_verify.py [--faults]
(--faults adds the reliability figures: 20 repeated runs, a pack that hangs.)
Target: under 15 s for a project with 5 packs.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from comfymanager.core.context import build_core_context  # noqa: E402
from comfymanager.core.errors import ExternalToolError  # noqa: E402
from comfymanager.core.install.install import install  # noqa: E402
from comfymanager.core.progress import CancelToken, Reporter  # noqa: E402
from comfymanager.core.projects import PackRecord, ProjectStore  # noqa: E402
from comfymanager.core.verify.verify import verify_project  # noqa: E402
from tests.fixtures.comfyui import git, make_fake_comfyui  # noqa: E402
from tests.fixtures.node_packs import FIXTURE_PACKS, make_node_packs  # noqa: E402
from tests.fixtures.verify_project import video_workflow  # noqa: E402


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench-verify-"))
    fake = make_fake_comfyui(tmp / "comfyui")
    packs = make_node_packs(tmp / "packs")
    os.environ["COMFYMANAGER_COMFYUI_SOURCE"] = str(fake.repo)
    ctx = build_core_context(tmp / "data")
    t = time.perf_counter()
    spec = install.ProjectSpec(name="bench", torch_backend="none")
    install.create_project(ctx, spec, report=Reporter(), cancel=CancelToken())
    created = time.perf_counter() - t
    store = ProjectStore(ctx.paths)
    project = store.load("bench")
    dirs = store.dirs("bench")
    for name in FIXTURE_PACKS:
        git(dirs.root, "clone", "-q", packs.fixture_urls[name], str(dirs.custom_nodes / name))
        project.packs.append(
            PackRecord(url=packs.fixture_urls[name], folder=name, status="installed")
        )
    dirs.workflows.mkdir(parents=True, exist_ok=True)
    (dirs.workflows / "Video Flow.json").write_text(json.dumps(video_workflow()))
    project.workflows = ["Video Flow.json"]
    store.save(project)

    cold, scans = [], []
    for _ in range(5):
        t = time.perf_counter()
        result = verify_project(ctx, "bench", Reporter(), CancelToken(), force=True)
        cold.append(time.perf_counter() - t)
        scans.append(result.scan_seconds)
    cached = []
    for _ in range(5):
        t = time.perf_counter()
        again = verify_project(ctx, "bench", Reporter(), CancelToken())
        cached.append(time.perf_counter() - t)
    assert again.cached and not result.cached
    print(f"machine: {platform.platform()}, python {platform.python_version()}, "
          f"{os.cpu_count()} cpus")  # fmt: skip
    print(f"project created (uv venv, fixture ComfyUI) in {created:.1f} s")
    print(f"packs: {len(FIXTURE_PACKS)}, node classes: {len(result.nodes)} used by the workflow")
    print(f"nodes: {result.nodes_line()}")
    print(f"models: {result.models_line()}")
    print(
        f"verify, nodes loaded again: median {statistics.median(cold):.2f} s, "
        f"max {max(cold):.2f} s (scan process alone: median {statistics.median(scans):.2f} s)"
    )
    print(
        f"verify, unchanged project (cached): median {statistics.median(cached) * 1000:.1f} ms, "
        f"max {max(cached) * 1000:.1f} ms"
    )
    ok = max(cold) < 15
    print("target (< 15 s with 5 packs):", "met" if ok else "NOT met")
    if "--faults" in sys.argv:
        ok = faults(ctx, dirs, result) and ok
    return 0 if ok else 1


HANG = """\
import subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
time.sleep(600)
"""


def faults(ctx: Any, dirs: Any, reference: Any) -> bool:
    """Reliability: 20 forced runs give the same answer (failed packs with their errors, each
    model's folder); a pack that hangs while importing is stopped, its children too."""
    same = 0
    for _ in range(20):
        again = verify_project(ctx, "bench", Reporter(), CancelToken(), force=True)
        same += again.nodes == reference.nodes and [(m.folder, m.name) for m in again.models] == [
            (m.folder, m.name) for m in reference.models
        ]
    print(f"repeat: {same}/20 forced runs gave the same nodes and model folders")
    hang = dirs.custom_nodes / "ComfyUI-Hang"
    hang.mkdir()
    (hang / "__init__.py").write_text(HANG)
    before = {p.pid for p in psutil.process_iter()}
    t = time.perf_counter()
    try:
        verify_project(ctx, "bench", Reporter(), CancelToken(), force=True, timeout=5)
        stopped = False
    except ExternalToolError as exc:
        stopped = "took longer than 5 s" in exc.message
    took = time.perf_counter() - t
    time.sleep(0.5)
    left = [
        p for p in psutil.process_iter(["cmdline"])
        if p.pid not in before and "time.sleep(600)" in " ".join(p.info["cmdline"] or [])
    ]  # fmt: skip
    print(
        f"hang: stopped={stopped} after {took:.1f} s (timeout 5 s), "
        f"processes left behind: {len(left)}"
    )
    return same == 20 and stopped and not left


if __name__ == "__main__":
    sys.exit(main())
