"""The real project lifecycle driven through the main window: create, launch, stop, delete,
a crash, quitting with a running project, and the window's remembered state."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from comfymanager.core.context import build_core_context
from comfymanager.core.projects import Project, ProjectStore
from comfymanager.core.run import runs
from comfymanager.ui.app_context import shutdown
from comfymanager.ui.dialogs import confirm
from comfymanager.ui.dialogs.new_project import NewProjectDialog
from tests.fixtures.comfyui import create_installed
from tests.fixtures.window import Harness, make_window, state


@pytest.mark.slow
def test_create_launch_stop_delete_through_the_window(
    qtbot: QtBot, harness: Harness, project_data_dir: Path
) -> None:
    h = harness
    stages: list[str] = []
    states: list[str] = []
    h.app.jobs.job_progress.connect(
        lambda _j, p: stages.append(h.win.progress.jobs[_j.id].stage.text())
    )
    h.app.monitor.status_changed.connect(lambda st: states.append(st.state))

    def fill_dialog() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, NewProjectDialog)
        qtbot.waitUntil(lambda: dialog.refs is not None, timeout=30000)
        assert dialog.version.itemText(0) == "Latest release (v0.3.2)"
        dialog.name.setText("demo")
        assert dialog.create_button.isEnabled()
        dialog.torch.setCurrentIndex(dialog.torch.findData("none"))
        dialog.accept()

    QTimer.singleShot(0, fill_dialog)
    h.win.actions_["new"].trigger()
    assert state(h, "demo") == "installing"
    assert h.win.selected() == "demo"
    assert h.win.model.get("demo").state_text == "Installing..."  # type: ignore[union-attr]
    qtbot.waitUntil(lambda: state(h, "demo") == "stopped", timeout=180000)
    assert any("Getting ComfyUI" in s for s in stages)
    assert any("requirements" in s for s in stages)
    assert any("--- Getting ComfyUI" in ln for ln in h.win.log_pane.lines("demo"))
    assert h.win.details.buttons["launch"].isEnabled()
    assert "v0.3.2" in h.win.details.info["version"].text()

    h.win.details.buttons["launch"].click()
    qtbot.waitUntil(lambda: state(h, "demo") == "running", timeout=60000)
    assert "starting" in states
    row = h.win.model.get("demo")
    assert row is not None and row.status is not None and row.status.url
    url = row.status.url
    assert h.win.details.state.text().startswith(f'Running on <a href="{url}">')
    assert requests.get(f"{url}/system_stats", timeout=5).status_code == 200
    qtbot.waitUntil(lambda: url in h.opened.urls, timeout=30000)
    qtbot.waitUntil(
        lambda: any("To see the GUI go to" in ln for ln in h.win.log_pane.lines("demo")),
        timeout=30000,
    )
    qtbot.waitUntil(
        lambda: "To see the GUI go to" in h.win.log_pane.view.toPlainText(), timeout=5000
    )
    h.win.details.buttons["browser"].click()
    assert h.opened.urls.count(url) == 2

    h.win.details.buttons["stop"].click()
    qtbot.waitUntil(lambda: state(h, "demo") == "stopped", timeout=60000)
    with pytest.raises(requests.RequestException):
        requests.get(f"{url}/system_stats", timeout=2)

    h.win.details.buttons["folder"].click()
    assert h.opened.paths == [project_data_dir / "projects" / "demo"]

    asked: list[str] = []
    orig = confirm.ask_delete

    def yes(parent: object, project: str, folder: str, running: bool) -> bool:
        asked.append(project)
        return True

    confirm.ask_delete = yes  # type: ignore[assignment]
    # "stopped" can be seen by the monitor a moment before the stop job has ended
    qtbot.waitUntil(h.win.details.buttons["delete"].isEnabled, timeout=10000)
    try:
        h.win.details.buttons["delete"].click()
    finally:
        confirm.ask_delete = orig  # type: ignore[assignment]
    assert asked == ["demo"]
    qtbot.waitUntil(lambda: h.win.model.find("demo") < 0, timeout=30000)
    assert not (project_data_dir / "projects" / "demo").exists()
    assert (project_data_dir / "projects").exists()


@pytest.mark.slow
def test_crash_shows_exit_code_and_last_lines(
    qtbot: QtBot, harness: Harness, project_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    create_installed(project_data_dir, "crashy")
    qtbot.waitUntil(lambda: state(h, "crashy") == "stopped", timeout=10000)
    h.win.select("crashy")
    monkeypatch.setenv("FAKE_COMFYUI_MODE", "crash")
    h.app.intents.start.emit("crashy")
    qtbot.waitUntil(lambda: state(h, "crashy") == "crashed", timeout=60000)
    assert h.win.model.get("crashy").state_text == "Crashed (exit code 3)"  # type: ignore[union-attr]
    assert "Crashed (exit code 3)" in h.win.details.state.text()
    assert h.win.details.last_lines.isVisibleTo(h.win)
    assert "fake crash" in h.win.details.last_lines.toPlainText()
    assert h.win.details.buttons["launch"].isEnabled()
    assert not h.win.details.buttons["stop"].isEnabled()


@pytest.mark.slow
def test_quit_with_a_running_project_asks_and_stops_it(
    qtbot: QtBot, harness: Harness, project_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    create_installed(project_data_dir, "busy")
    qtbot.waitUntil(lambda: state(h, "busy") == "stopped", timeout=10000)
    h.app.intents.start.emit("busy")
    qtbot.waitUntil(lambda: state(h, "busy") == "running", timeout=60000)
    asked: list[list[str]] = []

    def stop_them(parent: object, running: list[str]) -> str:
        asked.append(running)
        return confirm.STOP

    monkeypatch.setattr(confirm, "ask_quit", stop_them)
    h.app.intents.quit.emit()
    assert asked == [["busy"]]
    qtbot.waitUntil(lambda: h.win.quit_done, timeout=60000)
    assert h.quits == [True]
    ctx = build_core_context(project_data_dir)
    assert runs.status(ctx, ProjectStore(ctx.paths).load("busy")).state == "stopped"
    assert not h.app.jobs.running_jobs()


def test_quit_can_be_cancelled_and_nothing_stops(
    qtbot: QtBot, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = make_window(qtbot, data_dir)
    try:
        ProjectStore(h.app.core.paths).create(Project(id="p"))
        h.win.reload()
        from comfymanager.core.run.runs import Status

        h.win.model.update_status(Status("p", "running", 4001, 1, "http://127.0.0.1:4001"))
        monkeypatch.setattr(confirm, "ask_quit", lambda parent, running: confirm.CANCEL)
        h.app.intents.quit.emit()
        assert not h.win.quit_done and not h.quits
    finally:
        h.win.quit_done = True
        shutdown(h.app)


def test_geometry_and_selection_are_restored(qtbot: QtBot, data_dir: Path) -> None:
    store = ProjectStore(build_core_context(data_dir).paths)
    for name in ("first", "second", "third"):
        store.create(Project(id=name))
    h = make_window(qtbot, data_dir)
    try:
        assert h.win.model.ids() == ["first", "second", "third"]
        h.win.resize(700, 520)
        h.win.select("third")
        h.win.save_ui_state()
    finally:
        h.win.quit_done = True
        shutdown(h.app)
    h.win.hide()
    h2 = make_window(qtbot, data_dir)
    try:
        assert h2.win.selected() == "third"
        assert h2.win.details.name.text() == "third"
        assert (h2.win.width(), h2.win.height()) == (700, 520)
    finally:
        h2.win.quit_done = True
        shutdown(h2.app)


def test_no_project_means_the_details_say_how_to_start(qtbot: QtBot, data_dir: Path) -> None:
    h = make_window(qtbot, data_dir)
    try:
        assert h.win.details.placeholder.isVisible()
        assert not h.win.actions_["launch"].isEnabled()
    finally:
        h.win.quit_done = True
        shutdown(h.app)


def test_help_opens_the_logs_folder(qtbot: QtBot, data_dir: Path) -> None:
    h = make_window(qtbot, data_dir)
    try:
        h.win.actions_["logs"].trigger()
        assert h.opened.paths == [data_dir / "logs"]
    finally:
        h.win.quit_done = True
        shutdown(h.app)


def test_smoke_test_exits_zero(tmp_path: Path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.run(
        [sys.executable, "-m", "comfymanager", "--smoke-test", "--data-dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
