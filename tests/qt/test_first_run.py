"""First run: hardware (detected off the UI thread), data folder and free space, the three
choices, and that the welcome is not shown again."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog
from pytestqt.qtbot import QtBot

from comfymanager.core.context import build_core_context
from comfymanager.core.install import hardware
from comfymanager.core.progress import format_bytes
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.dialogs.first_run import FirstRunDialog


def make(qtbot: QtBot, app: AppContext) -> FirstRunDialog:
    d = FirstRunDialog(app)
    qtbot.addWidget(d)
    return d


def test_shows_hardware_folder_and_free_space(qtbot: QtBot, app: AppContext) -> None:
    d = make(qtbot, app)
    expected = hardware.detect()
    qtbot.waitUntil(lambda: d.hardware_label.text() != "Detecting...", timeout=20000)
    shown_hw = d.hardware_label.text()
    assert expected.name in shown_hw
    assert f"PyTorch build: {expected.suggested_backend}." in shown_hw
    assert d.data_label.text() == str(app.core.paths.root)
    assert d.store_label.text() == str(app.core.paths.default_store)
    free = shutil.disk_usage(app.core.paths.root).free
    # the figure shown is the real free space (allow for other writers in between)
    shown = d.space_label.text()
    assert " free" in shown and shown.split(" free")[0][-2:] in ("GB", "TB", "MB")
    assert format_bytes(free).split()[-1] in shown


def test_create_emits_new_project_after_closing(qtbot: QtBot, app: AppContext) -> None:
    d = make(qtbot, app)
    d.show()
    with qtbot.waitSignal(app.intents.new_project):
        d.create_button.click()
    assert not d.isVisible() and d.result() == d.DialogCode.Accepted
    assert build_core_context(app.core.paths.root).settings.first_run_done


def test_import_emits_the_chosen_files(qtbot: QtBot, app: AppContext, tmp_path: Path) -> None:
    d = make(qtbot, app)
    d.show()
    d.choose_files = lambda: []  # cancelled picker: nothing happens, the page stays
    with qtbot.assertNotEmitted(app.intents.import_files):
        d.import_button.click()
    assert d.isVisible()
    wf = str(tmp_path / "flux.json")
    d.choose_files = lambda: [wf]
    with qtbot.waitSignal(app.intents.import_files) as blocker:
        d.import_button.click()
    assert blocker.args == [[wf]]


def test_later_only_marks_the_welcome_as_seen(qtbot: QtBot, app: AppContext) -> None:
    d = make(qtbot, app)
    d.show()
    with qtbot.assertNotEmitted(app.intents.new_project):
        d.later_button.click()
    assert d.result() == d.DialogCode.Rejected
    assert app.core.settings.first_run_done


def test_windows_long_paths_off_is_explained(
    qtbot: QtBot, app: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    from comfymanager.core import paths
    from comfymanager.ui.dialogs import first_run

    monkeypatch.setattr(
        first_run, "long_paths_problem", lambda: paths.long_paths_problem("win32", lambda: 0)
    )
    d = make(qtbot, app)
    assert d.long_paths_label is not None
    assert "LongPathsEnabled" in d.long_paths_label.text()
    qtbot.waitUntil(lambda: d.hardware_label.text() != "Detecting...", timeout=20000)
    monkeypatch.setattr(first_run, "long_paths_problem", lambda: "")
    other = make(qtbot, app)  # Linux, macOS, or Windows with long paths on: no row
    assert other.long_paths_label is None
    qtbot.waitUntil(lambda: other.hardware_label.text() != "Detecting...", timeout=20000)


def test_the_welcome_picker_opens_at_home_not_in_the_apps_folder(
    qtbot: QtBot, app: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    starts: list[str] = []

    def fake(parent: object, title: str, start: str, filt: str) -> tuple[list[str], str]:
        starts.append(start)  # the native dialog cannot be driven offscreen
        return [], filt

    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(fake))
    d = make(qtbot, app)
    assert d._pick_files() == []
    assert starts == [str(Path.home())]
