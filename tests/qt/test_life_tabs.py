"""A project's life in the window, driven through real jobs on real projects: the History tab
lists the snapshots with what changed and rolls back to one (asked first); the Node packs tab
adds, disables, enables and removes packs, names a requirements conflict, shows a pack that fails
to import, and turns ComfyUI-Manager on; an in-place project's tabs are closed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from comfymanager.core.context import build_core_context
from comfymanager.core.lifecycle import packs
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import ProjectStore
from comfymanager.ui.app_context import shutdown
from comfymanager.ui.panes import history, packs_tab
from tests.fixtures.comfyui import FakeComfyUI, create_installed
from tests.fixtures.node_packs import ManagedPacks, NodePacks
from tests.fixtures.verify_project import make_scan_project
from tests.fixtures.window import Harness, make_window

pytestmark = [pytest.mark.slow]

TAGGED = "ComfyUI-TaggedPack"
SHOTS = os.environ.get("COMFYMANAGER_SHOTS", "")  # a folder: the screenshots are saved there


def _close(h: Harness) -> None:
    if not h.win.quit_done:
        h.win.quit_done = True
        shutdown(h.app)


def _shot(h: Harness, name: str) -> None:
    if SHOTS:
        h.win.resize(1100, 760)
        h.win.right.setSizes([430, 140, 190])
        h.win.grab().save(str(Path(SHOTS) / name))


def _rows(tree: object) -> list[list[str]]:
    t = tree  # a QTreeWidget
    return [
        [t.topLevelItem(i).text(c) for c in range(t.columnCount())]  # type: ignore[attr-defined]
        for i in range(t.topLevelItemCount())  # type: ignore[attr-defined]
    ]


def test_history_lists_snapshots_and_rolls_back_to_one(
    qtbot: QtBot,
    project_data_dir: Path,
    managed_packs: ManagedPacks,
    stop_all: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    create_installed(project_data_dir, "H")
    ctx = build_core_context(project_data_dir)
    r, c = Reporter(), CancelToken()
    packs.add_pack(ctx, "H", f"{managed_packs.tagged}@1.0.0", report=r, cancel=c)
    packs.update_pack(ctx, "H", TAGGED, report=r, cancel=c)
    dirs = ProjectStore(ctx.paths).dirs("H")
    h = make_window(qtbot, project_data_dir)
    try:
        win = h.win
        win.select("H")
        pane = win.life.history
        win.life.setCurrentWidget(pane)
        qtbot.waitUntil(lambda: pane.tree.topLevelItemCount() == 2, timeout=10000)
        rows = _rows(pane.tree)
        assert [row[1] for row in rows] == [
            f"before pack update {TAGGED}",
            f"before pack add {TAGGED}",
        ]
        assert rows[1][2] == "first snapshot"
        assert rows[0][2].startswith(f"pack {TAGGED} ") and "added" in rows[0][2]
        assert pane.tree.topLevelItem(0).toolTip(2).startswith(rows[0][2].split("\n")[0])
        assert not pane.rollback_button.isEnabled()  # nothing chosen yet

        asked: list[str] = []
        monkeypatch.setattr(history, "ask_note", lambda parent, project: "before experiments")
        pane.snapshot_button.click()
        qtbot.waitUntil(lambda: pane.status.text() == "Snapshot taken.", timeout=30000)
        qtbot.waitUntil(lambda: pane.tree.topLevelItemCount() == 3, timeout=10000)
        newest = _rows(pane.tree)[0]
        assert (newest[1], newest[3]) == ("taken by hand", "before experiments")

        # roll back to before the pack came: asked first, then a job; the pack folder goes
        monkeypatch.setattr(
            history, "ask_rollback", lambda parent, project, snap: asked.append(snap.id) or False
        )
        pane.tree.topLevelItem(2).setSelected(True)
        _shot(h, "history-rollback.png")
        pane.rollback_button.click()
        assert len(asked) == 1 and not pane.status.text().startswith("Rolling")
        assert (dirs.custom_nodes / TAGGED).exists()  # "no" changes nothing
        monkeypatch.setattr(history, "ask_rollback", lambda parent, project, snap: True)
        loads = pane.loads
        pane.rollback_button.click()
        assert not pane.rollback_button.isEnabled()  # one job per project at a time
        qtbot.waitUntil(lambda: pane.status.text().startswith("Rolled back"), timeout=60000)
        qtbot.waitUntil(lambda: pane.loads > loads, timeout=10000)  # read again after it
        assert asked[0] in pane.status.text()
        assert not (dirs.custom_nodes / TAGGED).exists()
    finally:
        _close(h)


def test_packs_tab_adds_disables_names_a_conflict_and_removes(
    qtbot: QtBot,
    project_data_dir: Path,
    managed_packs: ManagedPacks,
    stop_all: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    create_installed(project_data_dir, "K")
    dirs = ProjectStore(build_core_context(project_data_dir).paths).dirs("K")
    h = make_window(qtbot, project_data_dir)
    try:
        win = h.win
        win.select("K")
        tab = win.life.packs
        win.life.setCurrentWidget(tab)
        qtbot.waitUntil(lambda: tab.loads >= 1, timeout=10000)
        assert tab.empty.isVisible() and not tab.buttons["remove"].isEnabled()

        spec = iter([f"{managed_packs.tagged}@1.0.0", managed_packs.clash_a, managed_packs.clash_b])
        monkeypatch.setattr(packs_tab, "ask_pack", lambda parent: next(spec))
        tab.buttons["add"].click()
        assert not tab.buttons["add"].isEnabled()
        qtbot.waitUntil(lambda: tab.status.text().startswith("Done"), timeout=60000)
        assert TAGGED in tab.status.text()
        qtbot.waitUntil(lambda: tab.tree.topLevelItemCount() == 1, timeout=10000)
        [row] = _rows(tab.tree)
        assert row[0] == TAGGED and row[2] == "v1.0.0" and row[3] == "yes"

        tab.tree.topLevelItem(0).setSelected(True)
        assert tab.buttons["toggle"].text() == "Disable"
        tab.buttons["toggle"].click()
        qtbot.waitUntil(lambda: f"{TAGGED} disabled" in tab.status.text(), timeout=60000)
        qtbot.waitUntil(lambda: _rows(tab.tree)[0][3] == "no", timeout=10000)
        assert (dirs.custom_nodes / ".disabled" / TAGGED).is_dir()
        tab.tree.topLevelItem(0).setSelected(True)
        assert tab.buttons["toggle"].text() == "Enable"
        tab.buttons["toggle"].click()
        qtbot.waitUntil(lambda: f"{TAGGED} enabled" in tab.status.text(), timeout=60000)
        assert (dirs.custom_nodes / TAGGED).is_dir()

        tab.buttons["add"].click()  # ClashA
        qtbot.waitUntil(lambda: "ComfyUI-ClashA added" in tab.status.text(), timeout=60000)
        tab.buttons["add"].click()  # ClashB: its requirement clashes with ClashA's
        qtbot.waitUntil(lambda: "failed" in tab.status.text(), timeout=60000)
        text = tab.status.text()
        assert "pack ComfyUI-ClashA needs 'clashdep==1.0'" in text, text
        assert "pack ComfyUI-ClashB needs 'clashdep>=2.0'" in text, text
        assert not (dirs.custom_nodes / "ComfyUI-ClashB").exists()

        monkeypatch.setattr(packs_tab, "ask_remove", lambda parent, project, pack: True)
        qtbot.waitUntil(lambda: tab.tree.topLevelItemCount() == 2, timeout=10000)
        tab.tree.topLevelItem(0).setSelected(True)
        tab.buttons["remove"].click()
        qtbot.waitUntil(lambda: "removed" in tab.status.text(), timeout=60000)
        qtbot.waitUntil(lambda: tab.tree.topLevelItemCount() == 1, timeout=10000)
    finally:
        _close(h)


def test_packs_tab_shows_a_pack_that_fails_to_import(
    qtbot: QtBot, data_dir: Path, fake_comfyui: FakeComfyUI, node_packs: NodePacks
) -> None:
    make_scan_project(build_core_context(data_dir).paths, "vid", fake_comfyui, node_packs)
    h = make_window(qtbot, data_dir)
    try:
        win = h.win
        win.select("vid")
        win.details.buttons["verify"].click()
        qtbot.waitUntil(lambda: "missing" in win.details.verification.text(), timeout=30000)
        tab = win.life.packs
        win.life.setCurrentWidget(tab)
        qtbot.waitUntil(
            lambda: any(r[4].startswith("failed") for r in _rows(tab.tree)), timeout=10000
        )
        broken = {r[0]: r for r in _rows(tab.tree)}["ComfyUI-FixtureBroken"]
        assert broken[4].startswith("failed: ") and "missingdep" in broken[4]
        item = tab.tree.findItems("ComfyUI-FixtureBroken", Qt.MatchFlag.MatchExactly, 0)[0]
        item.setSelected(True)
        assert tab.error.isVisible() and "No module named 'missingdep'" in tab.error.text()
        _shot(h, "packs-failed.png")
    finally:
        _close(h)


def test_an_in_place_project_has_no_packs_or_history_tab(
    qtbot: QtBot, project_data_dir: Path, tmp_path: Path, fake_comfyui: FakeComfyUI
) -> None:
    from comfymanager.core.adopt import adopt
    from tests.fixtures.installs import make_portable

    inst = make_portable(tmp_path / "portable", fake_comfyui)
    adopt.adopt(build_core_context(project_data_dir), inst.root, "port", adopt.IN_PLACE)
    h = make_window(qtbot, project_data_dir)
    try:
        h.win.select("port")
        life = h.win.life
        assert not life.isTabEnabled(life.packs_index)
        assert not life.isTabEnabled(life.history_index)
        assert "rebuild" in life.tabToolTip(life.packs_index)
        assert life.packs.project == "" and life.history.project == ""
    finally:
        _close(h)


def test_update_available_dialog_downgrade_and_a_failed_update_rolls_back(
    qtbot: QtBot, project_data_dir: Path, tmp_path: Path, stop_all: None
) -> None:
    from comfymanager.core.install import sources
    from comfymanager.ui.dialogs.update_dialog import UpdateDialog
    from tests.e2e.test_lifecycle import _create, make_life_sources

    src = make_life_sources(tmp_path / "src")
    ctx = build_core_context(project_data_dir)
    _create(ctx, src, "U")  # at v0.3.1; LifePack 1.0.0 (1.1.0 exists), StablePack 1.0.0
    dirs = ProjectStore(ctx.paths).dirs("U")
    h = make_window(qtbot, project_data_dir)
    try:
        win = h.win
        win.select("U")  # never checked: the selection asks at once
        bar = win.life.updates
        qtbot.waitUntil(lambda: bar.label.text().startswith("Update available"), timeout=30000)
        assert bar.label.text() == "Update available: ComfyUI v0.5.0, 1 pack (checked just now)"
        assert "ComfyUI-LifePack: " in bar.label.toolTip()
        assert bar.label.toolTip().endswith("Checked just now")
        _shot(h, "update-available.png")
        watch = h.app.updates
        assert watch is not None
        qtbot.waitUntil(lambda: not watch.running, timeout=30000)
        assert watch.check_due() == []  # answered now: not due again for hours
        watch.clock = lambda: time.time() + 6 * 3600 + 1
        assert watch.check_due() == ["U"]
        qtbot.waitUntil(lambda: not watch.running and not watch.queue, timeout=30000)
        watch.clock = time.time

        dialog = UpdateDialog(h.app, "U", win)
        qtbot.addWidget(dialog)
        qtbot.waitUntil(lambda: dialog.ref.count() >= 5 and dialog.plans >= 1, timeout=30000)
        text = dialog.changes.toPlainText()
        assert "Update ComfyUI" in text and "(v0.5.0)" in text, text
        assert "Pack ComfyUI-LifePack: " in text and "1.1.0" in text, text
        assert dialog.ok.isEnabled() and dialog.ok.text() == "Update"
        dialog.ref.setCurrentIndex(dialog.ref.findData("v0.4.0"))
        qtbot.waitUntil(lambda: dialog.plan is not None and dialog.plan.comfyui_ref == "v0.4.0")
        assert "+fakecomfydep" in dialog.changes.toPlainText() or "Requirement changes" in (
            dialog.changes.toPlainText()
        )
        if SHOTS:
            dialog.resize(640, 460)
            dialog.grab().save(str(Path(SHOTS) / "update-dialog.png"))
        dialog.reject()

        # v0.5.0's requirements cannot install: the update rolls back by itself and says so
        pane = win.life.history
        win.lifecycle.update("U", ref="v0.5.0", latest=False, packs=False)
        qtbot.waitUntil(lambda: pane.status.text().startswith("Update failed"), timeout=120000)
        assert "rolled back to snapshot" in pane.status.text()
        assert sources.head_commit(dirs.comfyui) == src.tags["v0.3.1"]

        win.lifecycle.update("U", ref="v0.4.0", latest=False, packs=True)
        qtbot.waitUntil(lambda: pane.status.text().startswith("Updated"), timeout=120000)
        assert sources.head_commit(dirs.comfyui) == src.tags["v0.4.0"]

        back = UpdateDialog(h.app, "U", win)  # an older tag is a downgrade
        qtbot.addWidget(back)
        qtbot.waitUntil(lambda: back.ref.count() >= 5 and back.plans >= 1, timeout=30000)
        back.ref.setCurrentIndex(back.ref.findData("v0.3.1"))
        qtbot.waitUntil(lambda: back.plan is not None and back.plan.comfyui_ref == "v0.3.1")
        assert back.ok.text() == "Downgrade" and "Downgrade ComfyUI" in back.changes.toPlainText()
        back.accept()
        assert back.choice == ("v0.3.1", False, True)
    finally:
        _close(h)


def test_add_existing_comfyui_shows_the_plan_then_adopts_as_a_job(
    qtbot: QtBot,
    project_data_dir: Path,
    tmp_path: Path,
    fake_comfyui: FakeComfyUI,
    stop_all: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from comfymanager.ui.dialogs.adopt_dialog import AdoptDialog
    from tests.fixtures.installs import make_git_install, tree_checksum

    inst = make_git_install(tmp_path / "ComfyUI-home", fake_comfyui)
    before = tree_checksum(inst.root)
    h = make_window(qtbot, project_data_dir)
    try:
        win = h.win
        assert "adopt" in win.actions_  # File > Add existing ComfyUI...
        dialog = AdoptDialog(h.app, win, str(inst.root))
        qtbot.addWidget(dialog)
        qtbot.waitUntil(lambda: dialog.plans >= 1, timeout=30000)
        text = dialog.changes.toPlainText()
        assert f"commit {inst.commit[:12]}" in text, text
        assert "ComfyUI-AdoptedGit: git" in text
        assert "my-local-pack: copy" in text and "<- local only" in text
        assert "Models read where they are" in text and "(rebuild)" in text
        assert dialog.ok.isEnabled()
        if SHOTS:
            dialog.resize(820, 520)
            dialog.grab().save(str(Path(SHOTS) / "adopt-plan.png"))
        dialog.in_place.setChecked(True)
        qtbot.waitUntil(lambda: dialog.plans >= 2, timeout=30000)
        assert "Runs in place" in dialog.changes.toPlainText()
        dialog.rebuild.setChecked(True)
        qtbot.waitUntil(lambda: dialog.plans >= 3, timeout=30000)
        dialog.name.setText("home")
        dialog.rescan()
        qtbot.waitUntil(lambda: dialog.plan is not None and dialog.plan.name == "home")
        dialog.accept()
        assert dialog.choice == (str(inst.root), "home", "rebuild")

        job = win.lifecycle.adopt(*dialog.choice)
        assert win.model.get("home") is not None and win.selected() == "home"
        qtbot.waitUntil(lambda: job.outcome != "", timeout=180000)
        assert job.outcome == "succeeded", job.error
        qtbot.waitUntil(lambda: (r := win.model.get("home")) is not None and r.project is not None)
        assert tree_checksum(inst.root) == before

        bad = AdoptDialog(h.app, win, str(tmp_path / "nothing-here"))
        qtbot.addWidget(bad)
        qtbot.waitUntil(lambda: bad.plans >= 1, timeout=30000)
        assert bad.changes.toPlainText().startswith("This folder cannot be adopted")
        assert not bad.ok.isEnabled()
    finally:
        _close(h)


def test_new_project_with_manager_turns_it_on_after_the_create(
    qtbot: QtBot,
    project_data_dir: Path,
    managed_packs: ManagedPacks,
    stop_all: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from comfymanager.ui.dialogs.new_project import NewProjectDialog

    monkeypatch.setenv("COMFYMANAGER_MANAGER_SOURCE", managed_packs.manager_repo)

    def answer(self: NewProjectDialog) -> int:
        self.name.setText("M")
        self.torch.setCurrentIndex(self.torch.findData("none"))
        self.manager.setChecked(True)
        self.accept()
        return int(self.result())

    monkeypatch.setattr(NewProjectDialog, "exec", answer)
    h = make_window(qtbot, project_data_dir)
    try:
        create = h.win.lifecycle.new_project()
        assert create is not None
        qtbot.waitUntil(lambda: not h.app.jobs.busy("M"), timeout=180000)
        assert create.outcome == "succeeded", create.error
        store = ProjectStore(build_core_context(project_data_dir).paths)
        project = store.load("M")
        assert project.manager  # the fake ComfyUI is older: Manager as the custom node
        assert (store.dirs("M").custom_nodes / "ComfyUI-Manager" / "__init__.py").exists()
        tab = h.win.life.packs
        h.win.life.setCurrentWidget(tab)
        qtbot.waitUntil(lambda: tab.manager.isChecked(), timeout=10000)
        assert "ComfyUI-Manager" in [r[0] for r in _rows(tab.tree)]
    finally:
        _close(h)


def test_disk_use_under_the_details_and_cleaning_uvs_cache(
    qtbot: QtBot, project_data_dir: Path, stop_all: None
) -> None:
    from comfymanager.core import disk
    from comfymanager.core.install import envs
    from comfymanager.ui.panes.disk_view import CacheLine, human

    create_installed(project_data_dir, "D")
    ctx = build_core_context(project_data_dir)
    h = make_window(qtbot, project_data_dir)
    try:
        h.win.select("D")
        label = h.win.life.disk
        qtbot.waitUntil(lambda: label.loads >= 1, timeout=30000)
        d = disk.project_disk(ctx, "D")
        assert label.text() == (
            f"Disk: {human(d.total_bytes)} ({human(d.unique_bytes)} its own, "
            f"{human(d.shared_bytes)} shared through uv's cache); snapshots 0 bytes"
        )
        assert d.total_bytes > 0

        line = CacheLine(h.app)
        qtbot.addWidget(line)
        qtbot.waitUntil(lambda: line.loads >= 1, timeout=30000)
        assert str(disk.uv_cache_dir(ctx)) in line.label.text()
        line.clean.click()
        assert not line.clean.isEnabled()
        qtbot.waitUntil(lambda: "cleaning freed" in line.label.text(), timeout=120000)
        assert line.clean.isEnabled()
        python = envs.venv_python(ProjectStore(ctx.paths).dirs("D").venv)
        assert python.exists()  # the project keeps what it uses
    finally:
        _close(h)


def test_rollback_of_a_running_project_says_stop_it_first_and_manager_turns_off(
    qtbot: QtBot,
    project_data_dir: Path,
    managed_packs: ManagedPacks,
    stop_all: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.fixtures.window import state

    monkeypatch.setenv("COMFYMANAGER_MANAGER_SOURCE", managed_packs.manager_repo)
    create_installed(project_data_dir, "R")
    ctx = build_core_context(project_data_dir)
    packs.add_pack(ctx, "R", managed_packs.tagged, report=Reporter(), cancel=CancelToken())
    dirs = ProjectStore(ctx.paths).dirs("R")
    h = make_window(qtbot, project_data_dir)
    try:
        win = h.win
        win.select("R")
        pane = win.life.history
        qtbot.waitUntil(lambda: pane.tree.topLevelItemCount() == 1, timeout=10000)
        launch = win.lifecycle.launch("R")
        qtbot.waitUntil(lambda: launch.outcome != "", timeout=60000)
        assert launch.outcome == "succeeded", launch.error
        qtbot.waitUntil(lambda: state(h, "R") == "running", timeout=30000)
        monkeypatch.setattr(history, "ask_rollback", lambda parent, project, snap: True)
        pane.tree.topLevelItem(0).setSelected(True)
        pane.rollback_button.click()
        qtbot.waitUntil(lambda: pane.status.text().startswith("Rollback failed"), timeout=60000)
        assert "'R' is running" in pane.status.text() and "Stop it" in pane.status.text()
        assert (dirs.custom_nodes / TAGGED).is_dir()  # nothing changed under ComfyUI
        stop = win.lifecycle.stop("R")
        qtbot.waitUntil(lambda: stop.outcome != "", timeout=60000)

        tab = win.life.packs
        win.life.setCurrentWidget(tab)
        qtbot.waitUntil(lambda: tab.tree.topLevelItemCount() == 1, timeout=10000)
        tab.manager.click()  # on: the fake ComfyUI is older, so the custom node
        qtbot.waitUntil(lambda: tab.status.text() == "ComfyUI-Manager on.", timeout=60000)
        qtbot.waitUntil(lambda: tab.tree.topLevelItemCount() == 2, timeout=10000)
        assert tab.manager.isChecked()
        tab.manager.click()  # off: the custom node comfymanager installed is removed
        qtbot.waitUntil(lambda: tab.status.text() == "ComfyUI-Manager off.", timeout=60000)
        assert not (dirs.custom_nodes / "ComfyUI-Manager").exists()
        assert not (dirs.custom_nodes / ".disabled" / "ComfyUI-Manager").exists()
        qtbot.waitUntil(lambda: not tab.manager.isChecked(), timeout=10000)
        qtbot.waitUntil(lambda: tab.tree.topLevelItemCount() == 1, timeout=10000)

        # Project > Settings has the same switch: on again installs it again
        from comfymanager.ui.dialogs.project_settings import ProjectSettingsDialog

        def switch_on(dialog: ProjectSettingsDialog) -> int:
            assert not dialog.manager.isChecked() and dialog.manager.isEnabled()
            dialog.manager.setChecked(True)
            dialog.accept()
            return int(dialog.result())

        monkeypatch.setattr(ProjectSettingsDialog, "exec", switch_on)
        assert win.lifecycle.configure("R") is not None
        qtbot.waitUntil(lambda: ProjectStore(ctx.paths).load("R").manager, timeout=60000)
        qtbot.waitUntil(lambda: h.app.jobs.busy("R") is False, timeout=60000)
        assert (dirs.custom_nodes / "ComfyUI-Manager" / "__init__.py").is_file()
    finally:
        _close(h)
