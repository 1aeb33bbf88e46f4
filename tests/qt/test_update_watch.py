""" "Update available" per project, from the window's one ``UpdateWatch``: a project on a local
ComfyUI source that has a newer release tag shows it in the project list and in its tray menu;
the answer is kept in the data root and shown at once after a restart, with its age; a source
that does not answer shows the cause in the project's tab, no marker and no notice, and is asked
again only after a back-off."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMenu, QStyleOptionViewItem
from pytestqt.qtbot import QtBot

from comfymanager.core.context import build_core_context
from comfymanager.core.install import install
from comfymanager.core.lifecycle import update_cache
from comfymanager.core.notifier import Notice
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import ProjectStore
from comfymanager.ui.app_context import shutdown
from comfymanager.ui.tray import Tray
from comfymanager.ui.update_watch import UpdateWatch
from tests.fixtures.comfyui import FakeComfyUI
from tests.fixtures.window import Harness, make_window

pytestmark = [pytest.mark.slow]


def _create_at(data_dir: Path, name: str, ref: str) -> None:
    spec = install.ProjectSpec(name=name, torch_backend="none", comfyui_ref=ref)
    install.create_project(
        build_core_context(data_dir), spec, report=Reporter(), cancel=CancelToken()
    )


def _row_text(h: Harness, project: str) -> str:
    """What the list paints for a project's row (the delegate's text)."""
    view = h.win.list
    index = view.model().index(h.win.model.find(project), 0)
    option = QStyleOptionViewItem()
    view.itemDelegate().initStyleOption(option, index)  # type: ignore[attr-defined]
    return str(option.text)


def _tray_entry(tray: Tray, project: str) -> QMenu:
    tray.rebuild_menu()
    for action in tray.menu.actions():
        menu = action.menu()
        if isinstance(menu, QMenu) and menu.title().startswith(f"{project} - "):
            return menu
    raise AssertionError(f"no tray entry for {project}")


def _close(h: Harness) -> None:
    if not h.win.quit_done:
        h.win.quit_done = True
        shutdown(h.app)


def test_newer_tag_is_shown_in_the_list_and_tray_and_kept_across_a_restart(
    qtbot: QtBot, project_data_dir: Path, fake_comfyui: FakeComfyUI, stop_all: None
) -> None:
    _create_at(project_data_dir, "old", "v0.3.1")  # the fake source's latest release: v0.3.2
    _create_at(project_data_dir, "new", "v0.3.2")
    h = make_window(qtbot, project_data_dir)
    try:
        watch = h.app.updates
        assert isinstance(watch, UpdateWatch) and watch.timer.isActive()
        assert sorted(watch.check_due()) == ["new", "old"]  # never checked: both due
        qtbot.waitUntil(lambda: watch.checks >= 2 and not watch.running, timeout=60000)
        assert watch.marker("old") == "Update available: v0.3.2"
        assert watch.marker("new") == ""
        assert _row_text(h, "old").endswith("\u2028Update available: v0.3.2")
        assert "Update available" not in _row_text(h, "new")
        tray = Tray(h.app)
        entry = _tray_entry(tray, "old")
        assert entry.title().endswith(" - update available")
        assert "Update available: v0.3.2..." in [a.text() for a in entry.actions()]
        assert "update available" not in _tray_entry(tray, "new").title()
        assert [a.text() for a in _tray_entry(tray, "new").actions() if a.text()] == [
            "Start",
            "Stop",
            "Open in browser",
        ]
        with qtbot.waitSignal(h.app.intents.show_window):
            next(a for a in entry.actions() if a.text().startswith("Update available")).trigger()
        # the list's row grows its line as soon as the answer comes (no reload needed)
        h.win.select("old")
        bar = h.win.life.updates
        assert bar.label.text().startswith("Update available: ComfyUI v0.3.2 (checked")
        assert watch.check_due() == []  # answered: not due again for update_check_hours

        cached = json.loads(update_cache.cache_file(h.app.core.paths).read_text())
        assert cached["kind"] == "comfymanager.update-checks" and cached["version"] == 1
        assert cached["projects"]["old"]["check"]["comfyui_latest"] == "v0.3.2"
    finally:
        _close(h)

    # a restart: the last answer is there at once, before any check, with its age
    h2 = make_window(qtbot, project_data_dir)
    try:
        watch2 = h2.app.updates
        assert watch2 is not None and not watch2.running and watch2.checks == 0
        assert watch2.marker("old") == "Update available: v0.3.2"
        assert _row_text(h2, "old").endswith("\u2028Update available: v0.3.2")
        h2.win.select("old")
        watch2.clock = lambda: time.time() + 2 * 3600
        watch2._on_timer_timeout()  # a minute's tick: the ages shown are refreshed
        assert h2.win.life.updates.label.text().endswith("(checked 2 h ago)")
        assert watch2.check_due() == []  # 2 h < 6 h: nothing asked
        assert watch2.checks == 0 and not watch2.running
    finally:
        _close(h2)


def test_an_unreachable_source_shows_the_cause_in_the_tab_no_marker_and_backs_off(
    qtbot: QtBot, project_data_dir: Path, tmp_path: Path, stop_all: None
) -> None:
    _create_at(project_data_dir, "off", "v0.3.1")
    store = ProjectStore(build_core_context(project_data_dir).paths)
    project = store.load("off")
    project.comfyui_source = str(tmp_path / "moved-away")  # the source is gone
    store.save(project)
    h = make_window(qtbot, project_data_dir)
    try:
        seen: list[Notice] = []
        h.app.notifier.connect_ui(seen.append)
        watch = h.app.updates
        assert watch is not None
        h.win.select("off")  # never checked: asked now
        bar = h.win.life.updates
        qtbot.waitUntil(lambda: watch.checks >= 1 and not watch.running, timeout=60000)
        label = bar.label.text()
        assert label.startswith("Could not check: The source folder ") and label.endswith(
            "moved-away does not exist."
        ), label
        assert "moved-away" in bar.label.toolTip()
        assert watch.marker("off") == "" and "Update available" not in _row_text(h, "off")
        assert seen == []  # a failed check is no notice
        entry = watch.entries["off"]
        assert entry.failures == 1
        now = time.time()
        watch.clock = lambda: now + 300
        assert watch.check_due() == []  # backed off: not asked again at once
        watch.clock = lambda: now + update_cache.RETRY_FIRST + 1
        assert watch.check_due() == ["off"]
        qtbot.waitUntil(lambda: watch.checks >= 2 and not watch.running, timeout=60000)
        assert watch.entries["off"].failures == 2  # the next wait is twice as long
        assert watch.entries["off"].due_at(6 * 3600) == pytest.approx(
            watch.entries["off"].checked_at + 2 * update_cache.RETRY_FIRST
        )
    finally:
        _close(h)
    # after the app's shutdown nothing new starts (no worker may outlive the widgets)
    assert watch.stopped and not watch.timer.isActive()
    watch.check_now("off")
    assert watch.running == ""
