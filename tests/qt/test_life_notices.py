"""Every lifecycle job the window runs ends in exactly one notice that names what happened or why
it failed: update (a failed one says which snapshot it rolled back to), rollback, snapshot,
node pack changes, ComfyUI-Manager, uv's cache cleaned, adopt. Driven through the real
``ProjectActions`` on a real project (real uv environment, local git sources), counted at the
notification router."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from comfymanager.core import disk
from comfymanager.core.context import build_core_context
from comfymanager.core.jobs import Job
from comfymanager.core.notifier import Notice
from comfymanager.core.operations import Kind
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.ui.app_context import shutdown
from comfymanager.ui.notifications import NotificationRouter
from comfymanager.ui.panes.disk_view import CACHE_QUEUE
from tests.fixtures.node_packs import ManagedPacks
from tests.fixtures.window import Harness, make_window

pytestmark = [pytest.mark.slow]


def _run(
    qtbot: QtBot, h: Harness, seen: list[Notice], start: Callable[[], Job]
) -> tuple[Job, Notice]:
    """Start a job, wait until the outcome subscriber handled it, and return it with the one
    notice it gave."""
    before = len(seen)
    handled: list[object] = []
    h.win.outcomes.handled.connect(handled.append)
    try:
        job = start()
        qtbot.waitUntil(lambda: job in handled, timeout=180000)
    finally:
        h.win.outcomes.handled.disconnect(handled.append)
    assert len(seen) == before + 1, [(n.title, n.text) for n in seen[before:]]
    return job, seen[-1]


def test_each_lifecycle_outcome_gives_exactly_one_notice_with_its_cause(
    qtbot: QtBot,
    project_data_dir: Path,
    tmp_path: Path,
    managed_packs: ManagedPacks,
    stop_all: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.e2e.test_lifecycle import _create, make_life_sources

    monkeypatch.setenv("COMFYMANAGER_MANAGER_SOURCE", managed_packs.manager_repo)
    src = make_life_sources(tmp_path / "src")
    ctx = build_core_context(project_data_dir)
    _create(ctx, src, "N")  # at v0.3.1 with LifePack 1.0.0 and StablePack 1.0.0
    h = make_window(qtbot, project_data_dir)
    try:
        seen: list[Notice] = []
        h.win.notifications = NotificationRouter(
            h.app, None, fallback=seen.append, outcomes=h.win.outcomes
        )
        life = h.win.lifecycle

        # update: v0.5.0's requirements cannot install -> rolled back, and the notice says so
        job, n = _run(
            qtbot, h, seen, lambda: life.update("N", ref="v0.5.0", latest=False, packs=False)
        )
        assert job.outcome == "failed"
        assert n.title == "Updating 'N' failed" and n.kind == "install-failed"
        assert "rolled back to snapshot" in n.text and n.project == "N"
        job, n = _run(
            qtbot, h, seen, lambda: life.update("N", ref="v0.4.0", latest=False, packs=False)
        )
        assert job.outcome == "succeeded", job.error
        way_back = job.result.snapshot_id
        assert n.title == "'N' is updated" and f"snapshot {way_back}" in n.text
        job, n = _run(
            qtbot, h, seen, lambda: life.update("N", ref="v0.4.0", latest=False, packs=False)
        )
        assert n.title == "'N' is up to date"

        # rollback: to a snapshot that does not exist (the cause), then to the real one
        job, n = _run(qtbot, h, seen, lambda: life.rollback("N", "no-such-snapshot"))
        assert job.outcome == "failed" and n.title == "Rolling back 'N' failed"
        assert "no-such-snapshot" in n.text
        job, n = _run(qtbot, h, seen, lambda: life.rollback("N", way_back))
        assert job.outcome == "succeeded", job.error
        assert n.title == "'N' is rolled back" and way_back in n.text

        # a snapshot by hand
        job, n = _run(qtbot, h, seen, lambda: life.snapshot("N", "before trying things"))
        assert job.outcome == "succeeded" and n.title == "Snapshot of 'N' taken"
        assert job.result.id in n.text

        # node packs: a source that is not there, a disable, an enable, a remove of nothing
        missing = str(tmp_path / "no-such-pack")
        job, n = _run(qtbot, h, seen, lambda: life.pack_add("N", missing))
        assert job.outcome == "failed" and n.title == "Add node pack to 'N' failed"
        assert "no-such-pack" in n.text
        job, n = _run(
            qtbot, h, seen, lambda: life.pack_set_enabled("N", "ComfyUI-StablePack", False)
        )
        assert n.title == "Node packs of 'N' changed" and n.text == "ComfyUI-StablePack disabled."
        job, n = _run(
            qtbot, h, seen, lambda: life.pack_set_enabled("N", "ComfyUI-StablePack", True)
        )
        assert n.text == "ComfyUI-StablePack enabled."
        job, n = _run(qtbot, h, seen, lambda: life.pack_remove("N", "Nope"))
        assert job.outcome == "failed" and n.title == "Remove node pack from 'N' failed"
        assert "has no pack 'Nope'" in n.text

        # ComfyUI-Manager on and off (this ComfyUI is older: the custom node)
        job, n = _run(qtbot, h, seen, lambda: life.set_manager("N", True))
        assert job.outcome == "succeeded", job.error
        assert n.title == "ComfyUI-Manager is on in 'N'"
        job, n = _run(qtbot, h, seen, lambda: life.set_manager("N", False))
        assert n.title == "ComfyUI-Manager is off in 'N'"

        # uv's cache "Clean unused" (Settings): app-wide, no project
        def prune(report: Reporter, cancel: CancelToken) -> object:
            return disk.prune_cache(h.app.core, report=report, cancel=cancel)

        job, n = _run(
            qtbot, h, seen, lambda: h.app.jobs.submit(Kind.CACHE_PRUNE, CACHE_QUEUE, prune)
        )
        assert job.outcome == "succeeded", job.error
        assert n.title == "uv's cache cleaned" and n.text.endswith("MB freed.") and not n.project

        # adopt: a folder that is no ComfyUI install says why
        nothing = str(tmp_path / "nothing-here")
        job, n = _run(qtbot, h, seen, lambda: life.adopt(nothing, "Adopted", "in-place"))
        assert job.outcome == "failed"
        assert n.title == "Adding the existing ComfyUI as 'Adopted' failed" and n.text
        assert job.kind is Kind.ADOPT
    finally:
        if not h.win.quit_done:
            h.win.quit_done = True
            shutdown(h.app)
