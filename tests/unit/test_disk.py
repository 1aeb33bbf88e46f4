"""Disk use: unique vs shared through hard links (uv's cache), snapshots, uv's cache and its
prune, on real files, a real uv venv and the real ``uv cache prune``."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from comfymanager.core import disk
from comfymanager.core.context import build_core_context
from comfymanager.core.projects import Project, ProjectStore
from tests.fixtures.comfyui import build_wheel, cli
from tests.fixtures.installs import make_venv
from tests.fixtures.portable import share_uv_cache, venv_python


@pytest.mark.linux_only(reason="symlinks need rights on Windows")
def test_tree_use_splits_unique_and_shared_and_follows_no_link(tmp_path: Path) -> None:
    root, outside = tmp_path / "proj", tmp_path / "cache"
    root.mkdir()
    outside.mkdir()
    (root / "alone.bin").write_bytes(b"a" * 1000)
    (outside / "pkg.py").write_bytes(b"b" * 300)
    os.link(outside / "pkg.py", root / "pkg.py")  # shared with a place outside
    (root / "twice.bin").write_bytes(b"c" * 50)
    os.link(root / "twice.bin", root / "twice-again.bin")  # both links inside: still unique
    big = tmp_path / "big.bin"
    big.write_bytes(b"d" * 100_000)
    (root / "link.bin").symlink_to(big)
    (root / "linkdir").symlink_to(tmp_path)
    use = disk.tree_use(root)
    assert use.shared_bytes == 300
    assert use.unique_bytes == 1050
    assert use.total_bytes == 1350 and use.files == 3
    assert not use.truncated
    assert disk.tree_use(root, limit=2).truncated


@pytest.mark.slow
def test_project_disk_shares_the_venv_with_uv_cache_and_prune_keeps_it(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "uv-cache"
    share_uv_cache(monkeypatch, cache)
    ctx = build_core_context(data_dir)
    store = ProjectStore(ctx.paths)
    store.create(Project(id="p"))
    dirs = store.dirs("p")
    wheel = build_wheel(tmp_path / "wheels", "diskdep", "1.0", body="VALUE = 42\n" * 2000)
    make_venv(dirs.venv, [wheel])
    (dirs.root / "snapshots").mkdir()
    (dirs.root / "snapshots" / "1.json").write_text('{"lock": "diskdep==1.0"}\n')

    d = disk.project_disk(ctx, "p")
    assert d.shared_bytes >= len("VALUE = 42\n" * 2000)  # the package, linked from uv's cache
    assert d.unique_bytes > 0 and d.total_bytes == d.unique_bytes + d.shared_bytes
    assert d.snapshots_bytes == len('{"lock": "diskdep==1.0"}\n')
    c = disk.cache_disk(ctx)
    assert c.path == str(cache) and c.bytes >= d.shared_bytes

    stale = cache / "stale-v0" / "old"
    stale.mkdir(parents=True)
    (stale / "leftover.bin").write_bytes(b"x" * 10_000)
    result = disk.prune_cache(ctx)
    assert not stale.exists() and result.freed >= 10_000
    ok = subprocess.run(
        [str(venv_python(dirs.venv)), "-c", "import diskdep; print(diskdep.VALUE)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert ok.stdout.strip() == "42"  # what the project uses survived the prune

    out = cli(data_dir, "disk", "p", "--json", env={"COMFYMANAGER_UV_CACHE_DIR": str(cache)})
    data = json.loads(out.stdout)
    assert data["projects"][0]["project"] == "p"
    assert data["projects"][0]["shared_bytes"] > 0
    assert data["uv_cache"]["path"] == str(cache)
    text = cli(data_dir, "disk", env={"COMFYMANAGER_UV_CACHE_DIR": str(cache)}).stdout
    assert "p: " in text and "shared through uv's cache" in text
    pruned = cli(
        data_dir, "disk", "--prune-cache", env={"COMFYMANAGER_UV_CACHE_DIR": str(cache)}
    ).stdout
    assert "freed" in pruned


def test_disk_of_an_unknown_project_is_a_clear_error(data_dir: Path) -> None:
    bad = cli(data_dir, "disk", "nope", check=False)
    assert bad.returncode == 1 and "no project named 'nope'" in bad.stderr


def test_an_in_place_project_does_not_count_the_users_folder(
    data_dir: Path, tmp_path: Path
) -> None:
    install_dir = tmp_path / "ComfyUI"
    install_dir.mkdir()
    (install_dir / "big.bin").write_bytes(b"z" * 50_000)
    ctx = build_core_context(data_dir)
    ProjectStore(ctx.paths).create(
        Project(id="inplace", in_place=True, external_root=str(install_dir))
    )
    d = disk.project_disk(ctx, "inplace")
    assert d.external_root == str(install_dir)
    assert d.total_bytes < 50_000  # only comfymanager's record and logs
