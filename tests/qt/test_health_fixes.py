"""After a checklist Fix the details show the new truth at once (issue 13, the Fix buttons).

Through the real window and real project files: "Pick folder..." for a model whose folder is
unknown queues a real download (a 404 from the local server: the row becomes that download's
failure with its cause, not the old "folder is not known"); "Choose pack..." for a pack whose
install failed adds a real local pack in its place (the row says it is being fixed, then the
failed record is gone).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QLabel, QPushButton
from pytestqt.qtbot import QtBot

from comfymanager.core import health as h
from comfymanager.core.context import build_core_context
from comfymanager.core.models import queue as q
from comfymanager.core.operations import Kind
from comfymanager.core.projects import InstallState, PackRecord, Project, ProjectStore
from comfymanager.ui import actions
from comfymanager.ui.app_context import shutdown
from tests.fixtures.comfyui import create_installed
from tests.fixtures.http_server import FileServer, make_safetensors
from tests.fixtures.node_packs import ManagedPacks
from tests.fixtures.window import Harness, make_window, state


def _buttons(hs: Harness) -> dict[str, QPushButton]:
    return {b.objectName(): b for b in hs.win.details.checklist.buttons}


def _texts(hs: Harness) -> str:
    checklist = hs.win.details.checklist
    if not checklist.isVisible():
        return ""
    return "\n".join(lbl.text() for lbl in checklist.findChildren(QLabel) if lbl.isVisible())


def _subjects(hs: Harness, pid: str) -> list[str]:
    row = hs.win.model.get(pid)
    return [p.subject for p in (row.problems if row else ())]


def test_pick_folder_shows_the_download_it_started_at_once(
    qtbot: QtBot, data_dir: Path, http_files: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ProjectStore(build_core_context(data_dir).paths)
    store.create(
        Project(
            id="pf",
            install=InstallState(status="ready"),
            models=[{"name": "mystery.safetensors"}],  # no folder known
        )
    )
    hs = make_window(qtbot, data_dir)
    try:
        hs.win.select("pf")
        qtbot.waitUntil(lambda: "fix-pick_folder" in _buttons(hs), timeout=10000)
        assert _subjects(hs, "pf") == ["?/mystery.safetensors"]
        assert "its models folder is not known" in _texts(hs)
        gone = http_files.url("/gone/mystery.safetensors")
        monkeypatch.setattr(actions, "ask_item", lambda parent, title, label, items: "loras")
        monkeypatch.setattr(actions, "ask_text", lambda parent, title, label: gone)
        _buttons(hs)["fix-pick_folder"].click()
        # the old row goes at once; the 404 comes back as that download's failure, its cause
        qtbot.waitUntil(lambda: "?/mystery.safetensors" not in _subjects(hs, "pf"), timeout=5000)
        qtbot.waitUntil(lambda: _subjects(hs, "pf") == ["loras/mystery.safetensors"], timeout=15000)
        row = hs.win.model.get("pf")
        assert row is not None and row.problems[0].kind == h.DOWNLOAD
        assert "404" in row.problems[0].cause
        qtbot.waitUntil(lambda: "404" in _texts(hs), timeout=5000)
        assert "folder is not known" not in _texts(hs)
        assert set(_buttons(hs)) == {"fix-retry_download", "fix-other_url", "fix-skip"}
        # another address that works: the problem is gone, the file in the store
        http_files.add("/good/mystery.safetensors", make_safetensors(1024))
        monkeypatch.setattr(
            actions, "ask_text", lambda p, t, lbl: http_files.url("/good/mystery.safetensors")
        )
        _buttons(hs)["fix-other_url"].click()
        target = hs.app.core.store / "loras" / "mystery.safetensors"
        qtbot.waitUntil(target.is_file, timeout=15000)
        item = next(i for i in hs.app.downloads.items() if i.key == "loras/mystery.safetensors")
        qtbot.waitUntil(lambda: hs.app.downloads.item(item.id).state == q.DONE, timeout=15000)
        qtbot.waitUntil(lambda: not _subjects(hs, "pf"), timeout=10000)
        assert not hs.win.details.checklist.isVisible()
    finally:
        hs.win.quit_done = True
        shutdown(hs.app)


def test_health_puts_a_model_under_the_folder_picked_for_it(data_dir: Path) -> None:
    ctx = build_core_context(data_dir)
    store = ProjectStore(ctx.paths)
    store.create(
        Project(
            id="kf",
            install=InstallState(status="ready"),
            models=[{"name": "a.safetensors"}, {"name": "b.safetensors"}],
        )
    )
    before = h.project_health(ctx, "kf")
    assert [p.subject for p in before.problems] == ["?/a.safetensors", "?/b.safetensors"]
    # a.safetensors is in the store under "vae" (downloaded, its queue entry cleared)
    (ctx.store / "vae").mkdir(parents=True)
    (ctx.store / "vae" / "a.safetensors").write_bytes(make_safetensors(64))
    after = h.project_health(ctx, "kf")
    assert [p.subject for p in after.problems] == ["?/b.safetensors"]
    assert after.problems[0].action == h.PICK_FOLDER


@pytest.mark.slow
def test_choose_pack_replaces_a_failed_pack_and_the_row_follows(
    qtbot: QtBot,
    project_data_dir: Path,
    managed_packs: ManagedPacks,
    stop_all: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    create_installed(project_data_dir, "cp")
    store = ProjectStore(build_core_context(project_data_dir).paths)
    project = store.load("cp")
    project.packs.append(
        PackRecord(
            url="https://example.invalid/ComfyUI-Gone",
            folder="ComfyUI-Gone",
            status="failed",
            error="git clone failed: could not resolve host example.invalid",
        )
    )
    store.save(project)
    hs = make_window(qtbot, project_data_dir)
    try:
        qtbot.waitUntil(lambda: state(hs, "cp") == "stopped", timeout=10000)
        hs.win.select("cp")
        qtbot.waitUntil(lambda: "fix-choose_pack" in _buttons(hs), timeout=10000)
        assert "could not resolve host" in _texts(hs)
        # no database entry for a folder name: the user types the pack (a local git repo)
        monkeypatch.setattr(actions, "ask_text", lambda parent, title, label: managed_packs.clash_a)
        with qtbot.waitSignal(hs.app.jobs.job_added, timeout=10000) as added:
            _buttons(hs)["fix-choose_pack"].click()
        job = added.args[0]
        assert job.kind is Kind.PACK_ADD and job.queue == "cp"
        # at once: the row says what is being done, its Fix button gone
        qtbot.waitUntil(lambda: "Being fixed: replacing ComfyUI-Gone" in _texts(hs), timeout=5000)
        assert "fix-choose_pack" not in _buttons(hs)
        qtbot.waitUntil(lambda: job.outcome != "", timeout=120000)
        assert job.outcome == "succeeded", job.error
        # the failed record never shows again: pending until the new health is read, then gone
        assert "fix-choose_pack" not in _buttons(hs)
        qtbot.waitUntil(lambda: not _subjects(hs, "cp"), timeout=10000)
        assert not hs.win.details.checklist.isVisible()
        folders = {p.folder: p.status for p in store.load("cp").packs}
        assert folders == {"ComfyUI-ClashA": "installed"}
        dirs = store.dirs("cp")
        assert (dirs.custom_nodes / "ComfyUI-ClashA" / "__init__.py").is_file()
        assert not hs.win.lifecycle.fixing
    finally:
        hs.win.quit_done = True
        shutdown(hs.app)


def test_the_checklist_gets_its_height_and_no_blank_space_below(
    qtbot: QtBot, data_dir: Path
) -> None:
    store = ProjectStore(build_core_context(data_dir).paths)
    models = [{"directory": "loras", "name": f"lora-{i}-" + "x" * 60} for i in range(6)]
    store.create(Project(id="many", install=InstallState(status="ready"), models=models))
    hs = make_window(qtbot, data_dir)
    try:
        hs.win.select("many")
        checklist = hs.win.details.checklist
        qtbot.waitUntil(lambda: len(checklist.buttons) == 12, timeout=10000)  # Other URL + Skip
        details, scroll = hs.win.details, hs.win.details_scroll

        def fitted() -> None:
            # the pane is as tall as its content at its width: nothing blank to scroll over
            assert details.height() <= details.heightForWidth(details.width()) + 2
            assert checklist.minimumSizeHint().height() <= checklist.height() + 2
            # and the scroll area asks for all of it (the tab gives the details their room)
            assert scroll.sizeHint().height() >= details.heightForWidth(scroll.viewport().width())

        qtbot.waitUntil(fitted, timeout=3000)
    finally:
        hs.win.quit_done = True
        shutdown(hs.app)


def test_a_fix_waiting_in_the_queue_says_so_and_a_failed_one_gives_the_row_back(
    qtbot: QtBot, data_dir: Path
) -> None:
    import threading

    store = ProjectStore(build_core_context(data_dir).paths)
    models = [{"directory": "vae", "name": "v.safetensors"}]
    store.create(Project(id="sk", install=InstallState(status="ready"), models=models))
    hs = make_window(qtbot, data_dir)
    release = threading.Event()
    try:
        hs.win.select("sk")
        qtbot.waitUntil(lambda: "fix-skip" in _buttons(hs), timeout=10000)
        # something else runs on the project's queue first: the Skip waits behind it
        hs.app.jobs.submit(Kind.VERIFY, "sk", lambda report, cancel: release.wait(20))
        with qtbot.waitSignal(hs.app.jobs.job_added, timeout=5000) as added:
            _buttons(hs)["fix-skip"].click()
        skip_job = added.args[0]
        qtbot.waitUntil(
            lambda: "Being fixed: leaving it missing on purpose (waiting)" in _texts(hs),
            timeout=5000,
        )
        assert not _buttons(hs)  # nothing to click twice
        release.set()
        # this project has no ComfyUI to check against: the skip fails with its cause, and
        # the row (still the truth) gets its buttons back
        qtbot.waitUntil(lambda: skip_job.outcome == "failed", timeout=30000)
        assert skip_job.error is not None and skip_job.error.message
        qtbot.waitUntil(lambda: "fix-skip" in _buttons(hs), timeout=10000)
        assert "Being fixed" not in _texts(hs)
        assert not hs.win.lifecycle.fixing
    finally:
        release.set()
        hs.win.quit_done = True
        shutdown(hs.app)


@pytest.mark.slow
def test_choose_another_version_of_a_pack_that_fails_to_load(
    qtbot: QtBot,
    project_data_dir: Path,
    tmp_path: Path,
    stop_all: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from comfymanager.core.lifecycle.packs import add_pack
    from comfymanager.core.progress import CancelToken, Reporter
    from comfymanager.core.verify.verify import verify_project
    from tests.fixtures.comfyui import git
    from tests.fixtures.node_packs import _init_py

    # a pack whose v1.0.0 fails to load (a module that is not there) and v2.0.0 loads
    repo = tmp_path / "ComfyUI-Flaky"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "__init__.py").write_text("import missing_flaky_dep\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "v1")
    git(repo, "tag", "v1.0.0")
    (repo / "__init__.py").write_text(_init_py("FlakyNode"))
    git(repo, "commit", "-q", "-am", "v2")
    git(repo, "tag", "v2.0.0")
    create_installed(project_data_dir, "fl")
    ctx = build_core_context(project_data_dir)
    add_pack(ctx, "fl", f"{repo.as_uri()}@v1.0.0", report=Reporter(), cancel=CancelToken())
    verify_project(ctx, "fl", Reporter(), CancelToken(), force=True)
    hs = make_window(qtbot, project_data_dir)
    try:
        hs.win.select("fl")
        qtbot.waitUntil(lambda: "fix-choose_pack" in _buttons(hs), timeout=10000)
        assert "missing_flaky_dep" in _texts(hs)
        monkeypatch.setattr(
            actions, "ask_text", lambda parent, title, label: f"{repo.as_uri()}@v2.0.0"
        )
        with qtbot.waitSignal(hs.app.jobs.job_added, timeout=10000) as added:
            _buttons(hs)["fix-choose_pack"].click()
        job = added.args[0]
        qtbot.waitUntil(lambda: "Being fixed: adding ComfyUI-Flaky" in _texts(hs), timeout=5000)
        qtbot.waitUntil(lambda: job.outcome != "", timeout=120000)
        assert job.outcome == "succeeded", job.error
        qtbot.waitUntil(lambda: not _subjects(hs, "fl"), timeout=10000)  # verified again: loads
        [rec] = [p for p in ProjectStore(ctx.paths).load("fl").packs if p.folder == "ComfyUI-Flaky"]
        assert rec.status == "installed" and rec.commit == git(repo, "rev-parse", "v2.0.0")
    finally:
        hs.win.quit_done = True
        shutdown(hs.app)
