"""The project list as a Qt model: one row per project folder, sorted by name.

Rows combine what the store says (``Project`` or ``BrokenProject``) with the latest ``Status``
from the run monitor. Broken projects stay listed (greyed, the reason in the tooltip) so a bad
file never hides a folder from the user; a damaged one (``project.json`` missing or unparsable)
shows "Damaged" and says that Repair rebuilds it and Delete removes it. A stopped or crashed
project with open problems (``core.health``, derived by the run monitor) reads "Needs attention
(N)" with an amber badge marked "!".
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QApplication

from comfymanager.core.health import CRASHED, DAMAGED, INSTALL, Health, Problem
from comfymanager.core.operations import live
from comfymanager.core.projects import BrokenProject, Project
from comfymanager.core.run.runs import LABELS, Status
from comfymanager.ui.theme import state_color

log = logging.getLogger(__name__)

Index = QModelIndex | QPersistentModelIndex

ID_ROLE = Qt.ItemDataRole.UserRole + 1
STATE_ROLE = Qt.ItemDataRole.UserRole + 2
STATE_TEXT_ROLE = Qt.ItemDataRole.UserRole + 3
PORT_ROLE = Qt.ItemDataRole.UserRole + 4
BROKEN_ROLE = Qt.ItemDataRole.UserRole + 5
ROW_ROLE = Qt.ItemDataRole.UserRole + 6

# project state -> the theme's badge colour (same hues as the tray)
BADGE = {
    "installing": "busy",
    "starting": "busy",
    "running": "running",
    "crashed": "failed",
    "install-failed": "failed",
    "broken": "failed",
}


#: problems the state already says ("Crashed", "Install failed", "Damaged"): not counted again
STATE_KINDS = frozenset({CRASHED, INSTALL, DAMAGED})


@dataclass(frozen=True)
class ProjectRow:
    """Everything the list and the details pane show for one project."""

    id: str
    project: Project | None = None
    status: Status | None = None
    broken_reason: str = ""
    broken_fix: str = ""
    damaged: bool = False  # project.json missing or unparsable: repair rebuilds it
    installing: bool = False  # a create/repair/import job is queued or running (the job queue)
    health: Health | None = None  # the monitor's last derived health (None: not known yet)

    @property
    def broken(self) -> bool:
        return bool(self.broken_reason)

    @property
    def name(self) -> str:
        """The display name (the folder name of an older or unreadable project)."""
        return self.project.name if self.project is not None else self.id

    @property
    def state(self) -> str:
        if self.installing and not (self.status is not None and live(self.status.state)):
            return "installing"
        if self.broken:
            return "broken"
        if self.status is not None:
            return self.status.state
        if self.project is None:
            return "installing"
        if self.project.install.status == "ready":
            return "stopped"
        return "not-installed" if self.project.install.status == "new" else "install-failed"

    @property
    def problems(self) -> tuple[Problem, ...]:
        """The open problems to list: none while live, installing or unreadable."""
        h = self.health
        state = self.state
        if h is None or h.busy or state in ("installing", "broken") or live(state):
            return ()
        return h.problems

    @property
    def attention(self) -> int:
        """How many problems "Needs attention (N)" counts (not those the state already says)."""
        return sum(1 for p in self.problems if p.kind not in STATE_KINDS)

    @property
    def port(self) -> int | None:
        return self.status.port if self.status is not None else None

    @property
    def state_text(self) -> str:
        """A short label for the list: "Running on port 4001", "Crashed (exit code 3)",
        "Needs attention (3)"."""
        label = self.run_text
        if self.attention:
            if self.state == "stopped":
                return f"Needs attention ({self.attention})"
            return f"{label}, needs attention ({self.attention})"
        return label

    @property
    def run_text(self) -> str:
        """The state alone, without the problems: "Stopped", "Crashed (exit code 3)"."""
        state = self.state
        if state == "broken":
            return "Damaged" if self.damaged else "Unreadable project"
        label = LABELS.get(state, state)
        if live(state) and self.port:
            return f"{label} on port {self.port}" if state == "running" else label
        if state == "crashed" and self.status and self.status.exit_code is not None:
            label = f"{label} (exit code {self.status.exit_code})"
        return label


def _dot(color: QColor, mark: str = "") -> QIcon:
    pix = QPixmap(24, 24)
    pix.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pix)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(color)
    painter.drawEllipse(4, 4, 16, 16)
    if mark:
        font = painter.font()
        font.setPixelSize(14)
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(QColor("white"))
        painter.drawText(4, 4, 16, 16, Qt.AlignmentFlag.AlignCenter, mark)
    painter.end()
    return QIcon(pix)


class ProjectListModel(QAbstractListModel):
    """Rows of ``ProjectRow``; no signals of its own beyond the model's."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[ProjectRow] = []
        self._icons: dict[str, QIcon] = {}

    # --- reading -------------------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def row(self, index: int) -> ProjectRow:
        return self._rows[index]

    def ids(self) -> list[str]:
        return [r.id for r in self._rows]

    def find(self, project_id: str) -> int:
        for i, r in enumerate(self._rows):
            if r.id == project_id:
                return i
        return -1

    def get(self, project_id: str) -> ProjectRow | None:
        i = self.find(project_id)
        return self._rows[i] if i >= 0 else None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        r = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{r.name}\n{r.state_text}"
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return f"{r.name}: {r.state_text}"
        if role == Qt.ItemDataRole.ToolTipRole:
            if r.damaged:
                return (
                    f"{r.id} is damaged: {r.broken_reason}. Repair rebuilds it; Delete removes "
                    "its folder."
                )
            if r.broken:
                fix = f" {r.broken_fix}" if r.broken_fix else ""
                return f"{r.id} cannot be read: {r.broken_reason}{fix}"
            folder = f" (folder {r.id})" if r.name != r.id else ""
            if r.problems:
                lines = "\n".join(f"\u2022 {p.sentence}" for p in r.problems[:8])
                return f"{r.name}{folder}: {r.state_text}\n{lines}"
            return f"{r.name}{folder}: {r.state_text}"
        if role == Qt.ItemDataRole.DecorationRole:
            attention = r.attention and r.state != "crashed"
            return self._icon("attention" if attention else r.state)
        if role == Qt.ItemDataRole.ForegroundRole and r.broken:
            pal = QApplication.palette()
            return QBrush(pal.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text))
        if role == ID_ROLE:
            return r.id
        if role == STATE_ROLE:
            return r.state
        if role == STATE_TEXT_ROLE:
            return r.state_text
        if role == PORT_ROLE:
            return r.port
        if role == BROKEN_ROLE:
            return r.broken
        if role == ROW_ROLE:
            return r
        return None

    def _icon(self, state: str) -> QIcon:
        if state not in self._icons:
            if state == "attention":
                self._icons[state] = _dot(state_color("busy"), "!")
            else:
                self._icons[state] = _dot(state_color(BADGE.get(state, "idle")))
        return self._icons[state]

    def refresh_theme(self) -> None:
        self._icons.clear()
        if self._rows:
            self.dataChanged.emit(self.index(0), self.index(len(self._rows) - 1))

    # --- updating ------------------------------------------------------------------------------
    def set_projects(self, projects: list[Project], broken: list[BrokenProject]) -> None:
        """Replace the store view, keeping known statuses; rows are inserted/removed in place."""
        wanted: dict[str, ProjectRow] = {}
        for p in projects:
            old = self.get(p.id)
            wanted[p.id] = ProjectRow(
                p.id,
                p,
                old.status if old else None,
                installing=bool(old and old.installing),
                health=old.health if old else None,
            )
        for b in broken:
            old = self.get(b.id)
            wanted[b.id] = ProjectRow(
                b.id,
                broken_reason=b.reason,
                broken_fix=b.fix,
                damaged=b.damaged,
                installing=bool(old and old.installing),
                health=old.health if old else None,
            )
        for i in reversed(range(len(self._rows))):
            row = self._rows[i]
            gone = (row.project is not None or row.broken) and not row.installing
            if self._rows[i].id not in wanted and gone:
                self.beginRemoveRows(QModelIndex(), i, i)
                del self._rows[i]
                self.endRemoveRows()
        for row in wanted.values():
            self._put(row)

    def remove(self, project_id: str) -> None:
        i = self.find(project_id)
        if i >= 0:
            self.beginRemoveRows(QModelIndex(), i, i)
            del self._rows[i]
            self.endRemoveRows()

    def update_status(self, status: Status) -> None:
        old = self.get(status.project)
        if old is not None and old.broken and status.state != "installing":
            return  # a damaged row being repaired shows "Installing"; nothing else hides it
        project = old.project if old else None
        installing = bool(old and old.installing)
        health = old.health if old else None
        self._put(ProjectRow(status.project, project, status, installing=installing, health=health))

    def update_project(self, project: Project) -> None:
        old = self.get(project.id)
        self._put(
            ProjectRow(
                project.id,
                project,
                old.status if old else None,
                installing=bool(old and old.installing),
                health=old.health if old else None,
            )
        )

    def update_health(self, health: Health) -> None:
        """The monitor's new health of a listed project (an unlisted one is ignored)."""
        old = self.get(health.project)
        if old is not None and old.health != health:
            self._put(dataclasses.replace(old, health=health))

    def attention(self) -> list[ProjectRow]:
        """Rows that need attention, in list order."""
        return [r for r in self._rows if r.attention]

    def set_installing(self, project_id: str, installing: bool) -> None:
        """Whether a job that (re)builds the project is queued or running; a project the store
        does not list yet (being created) gets its row now and loses it when the job ends."""
        old = self.get(project_id)
        if old is None:
            if installing:
                self._put(ProjectRow(project_id, installing=True))
            return
        if not installing and old.project is None and not old.broken and old.status is None:
            self.remove(project_id)  # a create that never wrote its project
            return
        if old.installing != installing:
            self._put(dataclasses.replace(old, installing=installing))

    def _put(self, row: ProjectRow) -> None:
        i = self.find(row.id)
        if i >= 0:
            if self._rows[i] != row:
                self._rows[i] = row
                idx = self.index(i)
                self.dataChanged.emit(idx, idx)
            return
        key = row.id.lower()
        pos = 0
        while pos < len(self._rows) and self._rows[pos].id.lower() < key:
            pos += 1
        self.beginInsertRows(QModelIndex(), pos, pos)
        self._rows.insert(pos, row)
        self.endInsertRows()
