"""The right-hand top of the window as tabs: the project's details, its node packs
(``packs_tab.py``) and its history (``history.py``); "Update available" in the corner
(``update_bar.py``). An in-place project (an adopted install run
where it is) has neither packs nor snapshots that comfymanager manages: those tabs say so."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QSize
from PySide6.QtWidgets import QTabWidget, QVBoxLayout, QWidget

from comfymanager.core.projects import Project
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.panes.disk_view import ProjectDiskLabel
from comfymanager.ui.panes.history import HistoryPane
from comfymanager.ui.panes.packs_tab import PacksTab
from comfymanager.ui.panes.update_bar import UpdateBar

if TYPE_CHECKING:
    from comfymanager.ui.actions import ProjectActions

MIN_HEIGHT = 160
IN_PLACE_TIP = "An install run in place: adopt it as a rebuild to manage its packs and history."


class LifeTabs(QTabWidget):
    """Details | Node packs | History of the selected project. No signals."""

    def __init__(
        self,
        app: AppContext,
        actions: ProjectActions,
        details: QWidget,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setDocumentMode(True)
        self.packs = PacksTab(app, actions)
        self.history = HistoryPane(app, actions)
        self.disk = ProjectDiskLabel(app)
        self.disk.setContentsMargins(9, 0, 9, 6)
        page = QWidget()  # the details, with the project's disk use under them
        column = QVBoxLayout(page)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(details, 1)  # the details (a scroll area) take the room, not a gap
        column.addWidget(self.disk)
        self.addTab(page, "Details")
        self.packs_index = self.addTab(self.packs, "Node packs")
        self.history_index = self.addTab(self.history, "History")
        self.updates = UpdateBar(app, actions)
        self.setCornerWidget(self.updates)

    def minimumSizeHint(self) -> QSize:
        """No taller than the details alone asked: the tab bar must not grow the window's
        minimum (the splitter lets the user give the tabs more room)."""
        hint = super().minimumSizeHint()
        return QSize(hint.width(), min(hint.height(), MIN_HEIGHT))

    def set_project(self, project: Project | None) -> None:
        """Show ``project``'s packs and history (None: nothing selected or a damaged one)."""
        managed = project is not None and not project.in_place
        for index in (self.packs_index, self.history_index):
            self.setTabEnabled(index, managed)
            self.setTabToolTip(index, "" if managed or project is None else IN_PLACE_TIP)
        if not managed and self.currentIndex() != 0:
            self.setCurrentIndex(0)
        self.disk.set_project(project.id if project is not None else "")
        pid = project.id if managed and project is not None else ""
        self.packs.set_project(pid)
        self.history.set_project(pid)
        self.updates.set_project(pid)
