"""One vocabulary: Settings shows torch backends with New project's descriptions (only those this
system can use), the data folder reads as read-only with an "Open" button, the ROCm-on-Windows
index has its field, and the import picker opens in home or the folder used last."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog, QLabel, QLineEdit, QWidget
from pytestqt.qtbot import QtBot

from comfymanager.core.settings import backends_for
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.dialogs.new_project import BACKEND_HELP
from comfymanager.ui.dialogs.settings_dialog import SettingsDialog
from comfymanager.ui.import_flow import pick_files


@pytest.mark.usefixtures("memory_keyring")
def test_settings_speaks_like_new_project(qtbot: QtBot, app: AppContext) -> None:
    opened: list[Path] = []
    app.open_path = opened.append
    d = SettingsDialog(app)
    qtbot.addWidget(d)
    items = [d.backend.itemText(i) for i in range(d.backend.count())]
    codes = [d.backend.itemData(i) for i in range(d.backend.count())]
    assert set(codes) <= set(backends_for()) | {app.core.settings.default_torch_backend}
    assert "cpu: " + BACKEND_HELP["cpu"] in items
    assert "none" not in items and "cpu" not in items  # never a bare code
    # the data folder is text to read (and open), not a box to edit
    shown = d.findChild(QLabel, "dataFolder")
    assert shown is not None and shown.text() == str(app.core.paths.root)
    assert str(app.core.paths.root) not in [e.text() for e in d.findChildren(QLineEdit)]
    open_button = next(
        b for b in d.findChildren(QWidget) if b.accessibleName() == "Open the data folder"
    )
    open_button.click()  # type: ignore[attr-defined]
    assert opened == [app.core.paths.root]
    # the ROCm-on-Windows index is a field, saved like the others
    d._edits["rocm_windows_index_url"].setText("ftp://nope")
    d.accept()
    assert d.result() != d.DialogCode.Accepted
    d._edits["rocm_windows_index_url"].setText("https://mirror.example/rocm")
    d.accept()
    assert d.result() == d.DialogCode.Accepted
    assert app.core.settings.rocm_windows_index_url == "https://mirror.example/rocm"


def test_import_picker_starts_at_home_then_the_last_folder(
    qtbot: QtBot, app: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    starts: list[str] = []
    picked = tmp_path / "flows" / "a.json"
    picked.parent.mkdir()
    picked.write_text("{}")

    def fake(parent: object, title: str, start: str, filt: str) -> tuple[list[str], str]:
        starts.append(start)  # the native dialog cannot be driven offscreen
        return [str(picked)], filt

    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(fake))
    parent = QWidget()
    qtbot.addWidget(parent)
    assert pick_files(app, parent, "*.json") == [str(picked)]
    assert pick_files(app, parent, "*.json") == [str(picked)]
    assert starts == [str(Path.home()), str(picked.parent)]


@pytest.mark.usefixtures("memory_keyring")
def test_a_new_model_store_applies_without_a_restart(
    qtbot: QtBot, app: AppContext, tmp_path: Path
) -> None:
    from comfymanager.core.projects import Project, ProjectStore

    store = ProjectStore(app.core.paths)
    store.create(Project(id="p"))
    new_store = tmp_path / "my models"
    d = SettingsDialog(app)
    qtbot.addWidget(d)
    d._edits["store_dir"].setText(str(new_store))
    d.accept()
    assert d.result() == d.DialogCode.Accepted
    assert app.core.store == new_store and app.downloads.store == new_store
    yaml = store.dirs("p").extra_model_paths.read_text()
    assert str(new_store) in yaml
