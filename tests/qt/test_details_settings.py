"""The details pane's "Settings..." opens Project > Settings for that project, enabled exactly
when the menu item is (issue 13, per-project settings)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from comfymanager.core.context import build_core_context
from comfymanager.core.operations import Kind
from comfymanager.core.projects import InstallState, Project, ProjectStore
from comfymanager.ui.app_context import shutdown
from comfymanager.ui.dialogs.project_settings import ProjectSettingsDialog
from tests.fixtures.window import make_window


def test_settings_button_opens_project_settings_like_the_menu(
    qtbot: QtBot, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ProjectStore(build_core_context(data_dir).paths)
    store.create(Project(id="s1", install=InstallState(status="ready")))
    store.create(Project(id="torn"))
    store.dirs("torn").file.write_text("{ torn")
    opened: list[str] = []

    def shown(dialog: ProjectSettingsDialog) -> int:
        opened.append(dialog.windowTitle())
        return ProjectSettingsDialog.DialogCode.Rejected

    monkeypatch.setattr(ProjectSettingsDialog, "exec", shown)
    h = make_window(qtbot, data_dir)
    try:
        button = h.win.details.buttons["project-settings"]
        menu = h.win.actions_["project-settings"]
        h.win.select("s1")
        assert button.isVisible() and button.text() == "Setti&ngs..."
        assert button.isEnabled() and menu.isEnabled()
        button.click()
        assert len(opened) == 1 and "s1" in opened[0]
        # something is changing the project: neither offers it
        release = threading.Event()
        h.app.jobs.submit(Kind.VERIFY, "s1", lambda report, cancel: release.wait(20))
        try:
            assert not button.isEnabled() and not menu.isEnabled()
        finally:
            release.set()
        qtbot.waitUntil(lambda: not h.app.jobs.busy("s1"), timeout=10000)
        qtbot.waitUntil(button.isEnabled, timeout=5000)
        assert menu.isEnabled()
        # a damaged project has no settings to show (Repair first)
        h.win.select("torn")
        assert not button.isEnabled() and not menu.isEnabled()
    finally:
        h.win.quit_done = True
        shutdown(h.app)
