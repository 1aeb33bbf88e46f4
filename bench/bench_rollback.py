"""Rollback time with a warm uv cache, and what a snapshot costs on disk.

Builds a stand-in ComfyUI repository whose v0.9.0 has ComfyUI's real requirement set (the one
``bench_envs.py`` uses; torch from a local CPU wheel when there is one) and whose v0.9.1
changes it (a newer local wheel, two more packages), creates a project at v0.9.0 (this fills
uv's cache), then repeats: update to v0.9.1, roll back to the snapshot the update took (timed).
After each rollback the environment's freeze must equal the snapshot's lock. Last, the venv is
deleted and a rollback makes it again from the lock (every package from the warm cache).

    uv run --no-sync python bench/bench_rollback.py [--rounds 3] [--torch-wheel PATH] [--out DIR]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_envs import COMFYUI_REQUIREMENTS
from comfymanager.core.context import build_core_context
from comfymanager.core.install import install
from comfymanager.core.lifecycle import rollback as rb
from comfymanager.core.lifecycle import snapshots as snaps
from comfymanager.core.lifecycle.update import update
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import ProjectStore
from tests.fixtures.comfyui import build_wheel, git, make_fake_comfyui


def main() -> None:
    ap = argparse.ArgumentParser()
    wheels = glob.glob("/opt/wheels/torch-*.whl")
    ap.add_argument("--torch-wheel", default=wheels[0] if wheels else "")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="bench-rollback-"))
    fake = make_fake_comfyui(root / "src")
    base = COMFYUI_REQUIREMENTS
    if args.torch_wheel:
        base = f"torch @ {Path(args.torch_wheel).as_uri()}\n" + base
    dep1 = build_wheel(root / "w1", version="1.0")
    dep2 = build_wheel(root / "w2", version="2.0")
    (fake.repo / "requirements.txt").write_text(base + f"fakecomfydep @ {dep1.as_uri()}\n")
    git(fake.repo, "commit", "-qam", "real requirement set")
    git(fake.repo, "tag", "v0.9.0")
    (fake.repo / "requirements.txt").write_text(
        base + f"fakecomfydep @ {dep2.as_uri()}\nhumanize\nsix\n"
    )
    git(fake.repo, "commit", "-qam", "changed requirement set")
    git(fake.repo, "tag", "v0.9.1")
    os.environ["COMFYMANAGER_COMFYUI_SOURCE"] = str(fake.repo)
    ctx = build_core_context(root / "data")

    t0 = time.perf_counter()
    install.create_project(
        ctx,
        install.ProjectSpec(name="bench", comfyui_ref="v0.9.0", torch_backend="none"),
        report=Reporter(),
        cancel=CancelToken(),
    )
    print(f"project created (cache filled) in {time.perf_counter() - t0:.1f} s")
    dirs = ProjectStore(ctx.paths).dirs("bench")

    times: list[float] = []
    size = 0
    packages = 0
    for i in range(args.rounds):
        u0 = time.perf_counter()
        result = update(
            ctx, "bench", ref="v0.9.1", verify=False, report=Reporter(), cancel=CancelToken()
        )
        u1 = time.perf_counter()
        snap = snaps.load_snapshot(ctx, "bench", result.snapshot_id)
        assert snaps.freeze(ctx, dirs) != snap.lock
        r0 = time.perf_counter()
        rb.rollback(ctx, "bench", snap.id, Reporter(), CancelToken(), snapshot_before=False)
        r1 = time.perf_counter()
        assert snaps.freeze(ctx, dirs) == snap.lock, "the freeze differs from the snapshot"
        times.append(r1 - r0)
        size = snaps.snapshot_size(ctx, "bench", snap.id)
        packages = len(snap.lock)
        print(f"round {i + 1}: update {u1 - u0:.2f} s, rollback {r1 - r0:.2f} s")

    # the hard case: the environment is gone; the rollback makes it again from uv's cache
    snap = snaps.list_snapshots(ctx, "bench")[0]
    shutil.rmtree(dirs.venv)
    e0 = time.perf_counter()
    rb.rollback(ctx, "bench", snap.id, Reporter(), CancelToken(), snapshot_before=False)
    empty = time.perf_counter() - e0
    assert snaps.freeze(ctx, dirs) == snap.lock, "the freeze differs from the snapshot"

    s0 = time.perf_counter()
    snaps.take_snapshot(ctx, "bench", "manual", note="bench", force=True)
    take = time.perf_counter() - s0
    l0 = time.perf_counter()
    listed = snaps.list_snapshots(ctx, "bench")
    lst = time.perf_counter() - l0
    print(
        f"rollback, warm cache, {packages} packages: median {statistics.median(times):.2f} s, "
        f"best {min(times):.2f} s, worst {max(times):.2f} s (target < 5 s)"
    )
    print(f"rollback into a deleted environment (venv + {packages} packages): {empty:.2f} s")
    print(f"snapshot on disk: {size} bytes with its .bak (target < 1 MB)")
    print(f"take_snapshot {take * 1000:.0f} ms; list_snapshots ({len(listed)}) {lst * 1000:.1f} ms")


if __name__ == "__main__":
    main()
