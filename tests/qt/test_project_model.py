"""The project list model without a window: rows, roles, state text, updates, broken projects."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from comfymanager.core.context import build_core_context
from comfymanager.core.projects import BrokenProject, Project, ProjectStore
from comfymanager.core.run.runs import Status
from comfymanager.ui.models.project_list import (
    BROKEN_ROLE,
    ID_ROLE,
    PORT_ROLE,
    STATE_ROLE,
    STATE_TEXT_ROLE,
    ProjectListModel,
)


def _ready(pid: str) -> Project:
    p = Project(id=pid)
    p.install.status = "ready"
    return p


def test_rows_sorted_by_name_with_state_and_roles(qtbot: QtBot) -> None:
    m = ProjectListModel()
    m.set_projects([_ready("zeta"), _ready("Alpha"), Project(id="mid")], [])
    assert m.ids() == ["Alpha", "mid", "zeta"]
    idx = m.index(0)
    assert m.data(idx, ID_ROLE) == "Alpha"
    assert m.data(idx, STATE_ROLE) == "stopped"
    assert m.data(idx, Qt.ItemDataRole.DisplayRole) == "Alpha\nStopped"
    assert m.data(m.index(1), STATE_TEXT_ROLE) == "Not installed"
    assert not m.data(m.index(1), Qt.ItemDataRole.DecorationRole).isNull()


def test_status_updates_change_only_their_row(qtbot: QtBot) -> None:
    m = ProjectListModel()
    m.set_projects([_ready("a"), _ready("b")], [])
    with qtbot.waitSignal(m.dataChanged) as blocker:
        m.update_status(Status("b", "running", 4001, 123, "http://127.0.0.1:4001"))
    assert blocker.args[0].row() == 1
    assert m.data(m.index(1), STATE_TEXT_ROLE) == "Running on port 4001"
    assert m.data(m.index(1), PORT_ROLE) == 4001
    m.update_status(Status("b", "crashed", exit_code=3, message="ComfyUI exited with code 3."))
    assert m.data(m.index(1), STATE_TEXT_ROLE) == "Crashed (exit code 3)"
    m.update_status(Status("b", "starting", 4002))
    assert m.data(m.index(1), STATE_TEXT_ROLE) == "Starting..."
    assert m.data(m.index(0), STATE_TEXT_ROLE) == "Stopped"


def test_unknown_project_from_the_monitor_is_inserted_in_order(qtbot: QtBot) -> None:
    m = ProjectListModel()
    m.set_projects([_ready("a"), _ready("c")], [])
    with qtbot.waitSignal(m.rowsInserted):
        m.update_status(Status("b", "installing"))
    assert m.ids() == ["a", "b", "c"]
    assert m.data(m.index(1), STATE_TEXT_ROLE) == "Installing..."


def test_reload_removes_deleted_projects_and_keeps_statuses(qtbot: QtBot) -> None:
    m = ProjectListModel()
    m.set_projects([_ready("a"), _ready("b")], [])
    m.update_status(Status("a", "running", 4001, 1, "http://127.0.0.1:4001"))
    with qtbot.waitSignal(m.rowsRemoved):
        m.set_projects([_ready("a")], [])
    assert m.ids() == ["a"]
    assert m.data(m.index(0), STATE_ROLE) == "running"


def test_broken_projects_are_listed_greyed_with_the_reason(qtbot: QtBot, data_dir: Path) -> None:
    ctx = build_core_context(data_dir)
    store = ProjectStore(ctx.paths)
    store.create(_ready("good"))
    bad = ctx.paths.projects / "bad"
    bad.mkdir()
    (bad / "project.json").write_text("{ not json")
    projects, broken = store.list()
    assert [b.id for b in broken] == ["bad"]
    m = ProjectListModel()
    m.set_projects(projects, broken)
    i = m.find("bad")
    idx = m.index(i)
    assert m.data(idx, BROKEN_ROLE) is True
    assert m.data(idx, STATE_TEXT_ROLE) == "Damaged"  # project.json unparsable: repairable
    tip = m.data(idx, Qt.ItemDataRole.ToolTipRole)
    assert "bad is damaged: project.json could not be parsed" in tip and "Repair" in tip
    assert m.data(idx, Qt.ItemDataRole.ForegroundRole) is not None
    # the monitor never turns a broken row into a normal one
    m.update_status(Status("bad", "stopped"))
    assert m.data(idx, BROKEN_ROLE) is True


def test_broken_row_from_a_bare_reason(qtbot: QtBot) -> None:
    m = ProjectListModel()
    m.set_projects([], [BrokenProject("x", "The file is not JSON.")])
    assert m.rowCount() == 1
    assert "not JSON" in m.data(m.index(0), Qt.ItemDataRole.ToolTipRole)


def test_a_damaged_project_row_says_so_is_repairable_and_goes_when_deleted(
    qtbot: QtBot, data_dir: Path
) -> None:
    ctx = build_core_context(data_dir)
    store = ProjectStore(ctx.paths)
    (ctx.paths.projects / "half" / "logs").mkdir(parents=True)  # killed before the first save
    m = ProjectListModel()
    m.set_projects(*store.list())
    idx = m.index(m.find("half"))
    assert m.data(idx, STATE_TEXT_ROLE) == "Damaged"
    assert "project.json is missing" in m.data(idx, Qt.ItemDataRole.ToolTipRole)
    m.update_status(Status("half", "installing"))  # a repair started from the window shows
    assert m.data(m.index(m.find("half")), STATE_ROLE) == "installing"
    m.set_projects(*store.list())
    store.delete_files("half")
    m.set_projects(*store.list())
    assert m.ids() == []  # a deleted damaged row does not linger
