"""The window shows a project's display name, keyed by its short folder (issue 15 item 4)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from comfymanager.core.paths import DataPaths
from comfymanager.core.projects import Project, ProjectStore
from comfymanager.ui.models.project_list import ID_ROLE, ProjectListModel

NAME = "Große Bilder ✨ für den Wettbewerb – Entwurf 3"


def test_the_list_shows_the_display_name_and_keys_rows_by_folder(
    qtbot: QtBot, tmp_path: Path
) -> None:
    store = ProjectStore(DataPaths(tmp_path / "data").ensure())
    made = store.create(Project(id=NAME))
    store.create(Project(id="plain"))
    m = ProjectListModel()
    m.set_projects(*store.list())
    assert sorted(m.ids()) == sorted([made.id, "plain"])
    row = m.find(made.id)
    idx = m.index(row)
    assert m.data(idx, ID_ROLE) == made.id != NAME
    assert m.data(idx, Qt.ItemDataRole.DisplayRole).split("\n")[0] == NAME
    assert m.data(idx, Qt.ItemDataRole.ToolTipRole).startswith(f"{NAME} (folder {made.id})")
    plain = m.index(m.find("plain"))
    assert m.data(plain, Qt.ItemDataRole.ToolTipRole).startswith("plain: ")
