"""Snapshots without an environment: what is recorded, de-duplication, notes, pruning, the
cheap list, damaged files, bad ids, enabled/disabled packs and the rollback intent."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from comfymanager.core.context import CoreContext, build_core_context
from comfymanager.core.errors import NotFound
from comfymanager.core.lifecycle import rollback as rb
from comfymanager.core.lifecycle import snapshots as snaps
from comfymanager.core.projects import Project, ProjectStore
from tests.fixtures.comfyui import git


@pytest.fixture
def ctx(data_dir: Path) -> CoreContext:
    c = build_core_context(data_dir)
    project = Project(id="p", comfyui_commit="abc", port=4100, launch_args=["--cpu"])
    ProjectStore(c.paths).create(project)
    dirs = ProjectStore(c.paths).dirs("p")
    dirs.custom_nodes.mkdir(parents=True)
    dirs.workflows.mkdir(parents=True)
    dirs.constraints.write_text("torch==2.5.1\n")
    return c


def _dirs(ctx: CoreContext):  # type: ignore[no-untyped-def]
    return ProjectStore(ctx.paths).dirs("p")


def _git_pack(folder: Path) -> str:
    folder.mkdir(parents=True)
    git(folder, "init", "-q", "-b", "main")
    (folder / "__init__.py").write_text("NODE_CLASS_MAPPINGS = {}\n")
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", "one")
    git(folder, "remote", "add", "origin", "https://example.invalid/o/Pack.git")
    return git(folder, "rev-parse", "HEAD")


def test_records_packs_settings_workflows_and_skips_an_unchanged_state(ctx: CoreContext) -> None:
    dirs = _dirs(ctx)
    commit = _git_pack(dirs.custom_nodes / "ComfyUI-Git")
    (dirs.custom_nodes / "Hand.disabled").mkdir()
    (dirs.custom_nodes / "Hand.disabled" / "__init__.py").write_text("")
    (dirs.custom_nodes / "README.md").write_text("not a pack")
    (dirs.workflows / "a.json").write_text("{}")

    first = snaps.take_snapshot(ctx, "p", "manual")
    packs = {p.folder: p for p in first.packs}
    assert set(packs) == {"ComfyUI-Git", "Hand"}
    assert packs["ComfyUI-Git"].kind == "git" and packs["ComfyUI-Git"].commit == commit
    assert packs["ComfyUI-Git"].url == "https://example.invalid/o/Pack.git"
    assert packs["Hand"].kind == "local" and not packs["Hand"].enabled
    assert "not reproducible" in packs["Hand"].label
    assert first.constraints == "torch==2.5.1\n" and first.lock == ()
    assert first.settings["port"] == 4100 and first.settings["launch_args"] == ["--cpu"]
    assert [n for n, _ in first.workflows] == ["a.json"]

    again = snaps.take_snapshot(ctx, "p", "repair")
    assert again.id == first.id  # same content: not written twice
    assert len(snaps.list_snapshots(ctx, "p")) == 1
    noted = snaps.take_snapshot(ctx, "p", "manual", note="before trying X")
    assert noted.id != first.id and noted.note == "before trying X"

    (dirs.workflows / "a.json").write_text('{"changed": 1}')
    changed = snaps.take_snapshot(ctx, "p", "import")
    listed = snaps.list_snapshots(ctx, "p")
    assert [s.id for s in listed] == [changed.id, noted.id, first.id]  # newest first
    assert snaps.changes_between(noted, changed) == ("workflows",)
    assert snaps.changes_between(first, noted) == ("no change",)
    assert snaps.changes_between(None, first) == ("first snapshot",)
    assert snaps.snapshot_size(ctx, "p", changed.id) < 1_000_000


def test_prune_keeps_the_setting_and_list_skips_damaged_files(ctx: CoreContext) -> None:
    dirs = _dirs(ctx)
    ctx.settings.snapshots_keep = 3
    ids = []
    for i in range(5):
        (dirs.workflows / "w.json").write_text(json.dumps({"i": i}))
        ids.append(snaps.take_snapshot(ctx, "p", "manual").id)
    left = [s.id for s in snaps.list_snapshots(ctx, "p")]
    assert left == ids[:1:-1]  # the 3 newest
    folder = snaps.snapshots_dir(dirs)
    assert sorted(p.name for p in folder.glob("*.json")) == sorted(f"{i}.json" for i in left)

    (folder / "zzz-broken.json").write_text("{not json")
    assert [s.id for s in snaps.list_snapshots(ctx, "p")] == left


def test_unknown_or_unsafe_snapshot_ids_are_named(ctx: CoreContext) -> None:
    for bad in ("nope", "../p/project", ""):
        with pytest.raises(NotFound) as err:
            snaps.load_snapshot(ctx, "p", bad)
        assert err.value.fix and "snapshots" in err.value.fix


def test_list_is_cheap(ctx: CoreContext) -> None:
    dirs = _dirs(ctx)
    for i in range(20):
        (dirs.workflows / "w.json").write_text(json.dumps({"i": i}))
        snaps.take_snapshot(ctx, "p", "manual")
    started = time.perf_counter()
    found = snaps.list_snapshots(ctx, "p")
    assert len(found) == 20
    assert time.perf_counter() - started < 0.5


def test_first_install_has_no_snapshot_and_intent_round_trip(ctx: CoreContext) -> None:
    ProjectStore(ctx.paths).create(Project(id="fresh"))
    assert snaps.snapshot_before_change(ctx, "fresh", "repair") is None
    dirs = _dirs(ctx)
    assert rb.read_intent(dirs) is None
    rb.write_intent(dirs, "20260101-000000", "update")
    intent = rb.read_intent(dirs)
    assert intent is not None and intent["snapshot_id"] == "20260101-000000"
    rb.clear_intent(dirs)
    assert rb.read_intent(dirs) is None and not rb.intent_file(dirs).exists()


def test_prune_never_removes_the_snapshot_a_rollback_returns_to(ctx: CoreContext) -> None:
    dirs = _dirs(ctx)
    ctx.settings.snapshots_keep = 2
    (dirs.workflows / "w.json").write_text("0")
    oldest = snaps.take_snapshot(ctx, "p", "manual")
    rb.write_intent(dirs, oldest.id, "rollback")
    for i in range(1, 4):
        (dirs.workflows / "w.json").write_text(str(i))
        snaps.take_snapshot(ctx, "p", "manual")
    ids = [s.id for s in snaps.list_snapshots(ctx, "p")]
    assert len(ids) == 3 and ids[-1] == oldest.id  # the 2 newest and the intent's
    rb.clear_intent(dirs)
    (dirs.workflows / "w.json").write_text("last")
    newest = snaps.take_snapshot(ctx, "p", "rollback", protect=(oldest.id,))
    ids = [s.id for s in snaps.list_snapshots(ctx, "p")]
    assert ids[0] == newest.id and oldest.id in ids and len(ids) == 3


def test_check_updates_gives_up_on_a_source_that_never_answers(ctx: CoreContext) -> None:
    import socket

    from comfymanager.core.lifecycle.update import check_updates

    with socket.socket() as silent:  # accepts, then says nothing
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        ProjectStore(ctx.paths).update("p", comfyui_source=f"http://127.0.0.1:{port}/ComfyUI.git")
        started = time.monotonic()
        check = check_updates(ctx, "p", timeout=1.0)
        took = time.monotonic() - started
    assert not check.available and "No answer within 1 s" in check.error
    assert took < 5
