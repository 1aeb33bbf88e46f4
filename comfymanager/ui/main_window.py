"""The main window: project list on the left; details, activity and log on the right.

Every user request arrives as an intent (``app.intents``), whether it came from a button, a menu,
the tray, a drop or a second launch; the ``_on_intents_*`` slots below are the one place that
handles them. They call the ``ProjectActions`` controller (``ui/actions.py``), which submits core
operations as jobs on the project's queue (``app.jobs``), never on the UI thread; what follows a
job's end is ``Outcomes`` (``ui/outcomes.py``). State comes from the run monitor and the job
queue only (``core.operations`` predicates).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QByteArray, QItemSelectionModel, QSize, Qt
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QMainWindow,
    QScrollArea,
    QSplitter,
    QStyle,
    QWidget,
)

from comfymanager.core.errors import ComfyManagerError, ErrorInfo
from comfymanager.core.health import Health
from comfymanager.core.jobs import Job
from comfymanager.core.notifier import Notice
from comfymanager.core.operations import Kind, can_browse
from comfymanager.core.projects import ProjectStore
from comfymanager.core.run.runs import Status
from comfymanager.ui.actions import ProjectActions
from comfymanager.ui.app_context import AppContext, shutdown
from comfymanager.ui.background import wait_background
from comfymanager.ui.models.project_list import ProjectListModel, ProjectRow
from comfymanager.ui.outcomes import Outcomes
from comfymanager.ui.panes.log import LogPane
from comfymanager.ui.panes.progress import ProgressPane
from comfymanager.ui.panes.projects import DetailsPane, ProjectListView
from comfymanager.ui.resources import app_icon

log = logging.getLogger(__name__)

#: the first window size (bounded by the screen's available area)
FIRST_SIZE = QSize(1200, 800)
#: toolbar action -> the QStyle standard icon it shows beside its text
TOOL_ICONS = {
    "new": QStyle.StandardPixmap.SP_FileIcon,
    "import": QStyle.StandardPixmap.SP_DialogOpenButton,
    "launch": QStyle.StandardPixmap.SP_MediaPlay,
    "stop": QStyle.StandardPixmap.SP_MediaStop,
    "browser": QStyle.StandardPixmap.SP_DriveNetIcon,
    "settings": QStyle.StandardPixmap.SP_FileDialogDetailedView,
}

IMPORT_FILTER = "Workflows (*.json *.png *.webp *.flac *.mp4 *.webm *.mp3 *.opus);;All files (*)"


def lazy(module: str) -> Any:
    """A dialog or flow module, imported when first used (keeps the window's start fast)."""
    return importlib.import_module(module)


class MainWindow(QMainWindow):
    """No signals of its own; it consumes ``app.intents``, the monitor and the job manager."""

    def __init__(self, app: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.tray: Any = None
        self.notifications: Any = None  # NotificationRouter, kept alive by the window
        self._restoring = True  # selection changes while building do not overwrite the saved one
        self.quit_done = False
        self.quit_app: Callable[[], None] = QApplication.quit  # tests replace it
        self.setWindowTitle("comfymanager")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.store = ProjectStore(app.core.paths)

        self.model = ProjectListModel(self)
        self.lifecycle = ProjectActions(app, self, self)
        self.outcomes = Outcomes(app, self)
        self.list = ProjectListView(self.model)
        self.details = DetailsPane(app)
        self.progress = ProgressPane(app)
        self.log_pane = LogPane(app)
        from comfymanager.ui.panes.life_tabs import LifeTabs  # a project's life (issue 14)

        self.right = QSplitter(Qt.Orientation.Vertical)
        # the details scroll rather than clip when a wrapped error or a long checklist needs room
        self.details_scroll = DetailsScroll()
        self.details_scroll.setWidget(self.details)
        self.details_scroll.setWidgetResizable(True)
        self.details_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.details_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.life = LifeTabs(app, self.lifecycle, self.details_scroll)  # details in its first tab
        if app.updates is not None:  # "Update available" per project, in the list too
            self.list.show_updates(app.updates)
        for w in (self.life, self.progress, self.log_pane):
            self.right.addWidget(w)
        for i in range(3):  # every pane grows with the window (activity is not stuck at 90 px)
            self.right.setStretchFactor(i, 1)
        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.addWidget(self.list)
        self.split.addWidget(self.right)
        self.split.setStretchFactor(1, 1)
        self.setCentralWidget(self.split)
        self.actions_: dict[str, QAction] = {}
        self._build_menus()
        self.statusBar()

        self.list.selectionModel().currentChanged.connect(self._on_selection_current_changed)
        self.model.dataChanged.connect(self._on_model_data_changed)
        self.details.repair_requested.connect(lambda p: self.repair(p, force=False))
        self.details.reinstall_requested.connect(lambda p: self.repair(p, force=True))
        self.details.delete_requested.connect(self.delete)
        self.details.verify_requested.connect(self.verify)
        self.details.settings_requested.connect(self.configure)
        self.details.fix_requested.connect(self._on_details_fix_requested)
        self.details.new_requested.connect(app.intents.new_project.emit)
        self.details.import_requested.connect(self.ask_import)
        it = app.intents
        it.new_project.connect(self._on_intents_new_project)
        it.import_files.connect(self._on_intents_import_files)
        it.start.connect(self._on_intents_start)
        it.stop.connect(self._on_intents_stop)
        it.open_browser.connect(self._on_intents_open_browser)
        it.open_folder.connect(self._on_intents_open_folder)
        it.show_window.connect(self._on_intents_show_window)
        it.show_settings.connect(self._on_intents_show_settings)
        it.quit.connect(self.request_quit)
        app.monitor.status_changed.connect(self._on_monitor_status_changed)
        app.monitor.log_lines.connect(self._on_monitor_log_lines)
        app.monitor.health_changed.connect(self._on_monitor_health_changed)
        app.jobs.job_added.connect(self._on_jobs_job_added)
        app.jobs.job_started.connect(self._on_jobs_job_started)
        app.jobs.job_log.connect(self._on_jobs_job_log)
        app.jobs.job_finished.connect(self._on_jobs_job_finished)
        self.outcomes.deleted.connect(self.log_pane.forget)
        app.notifier.notice.connect(self._on_notifier_notice)

        self.reload()
        for st in app.monitor.snapshot().values():
            self.model.update_status(st)
        for health in app.monitor.healths().values():
            self.model.update_health(health)
        self.restore_ui_state()
        self._restoring = False
        self._refresh_details()

    # --- menus ---------------------------------------------------------------------------------
    def _action(self, key: str, text: str, slot: Any, shortcut: Any = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda _=False: slot())
        self.actions_[key] = action
        return action

    def _build_menus(self) -> None:
        it = self.app.intents
        sc = QKeySequence.StandardKey
        file = self.menuBar().addMenu("&File")
        file.addAction(self._action("new", "&New project...", it.new_project.emit, sc.New))
        file.addAction(self._action("import", "&Import workflow...", self.ask_import, sc.Open))
        file.addAction(
            self._action("adopt", "&Add existing ComfyUI...", self.lifecycle.add_existing)
        )
        file.addAction(self._action("models", "&Models...", self.show_models, "Ctrl+M"))
        file.addSeparator()
        file.addAction(
            self._action(
                "settings",
                "&Settings...",
                it.show_settings.emit,
                sc.Preferences if QKeySequence(sc.Preferences).toString() else "Ctrl+,",
            )
        )
        file.addSeparator()
        file.addAction(self._action("quit", "&Quit", it.quit.emit, sc.Quit))
        proj = self.menuBar().addMenu("&Project")
        sel = self.selected
        for key, text, slot, shortcut in (
            ("launch", "&Launch", lambda: sel() and it.start.emit(sel()), "Ctrl+R"),
            ("stop", "S&top", lambda: sel() and it.stop.emit(sel()), "Ctrl+Shift+R"),
            (
                "browser",
                "Open in &browser",
                lambda: sel() and it.open_browser.emit(sel()),
                "Ctrl+B",
            ),
            (
                "folder",
                "Open &folder",
                lambda: sel() and it.open_folder.emit(sel()),
                "Ctrl+Shift+O",
            ),
            ("repair", "&Repair", lambda: sel() and self.repair(sel(), force=False), None),
            ("reinstall", "Re&install", lambda: sel() and self.repair(sel(), force=True), None),
            ("verify", "&Verify nodes", lambda: sel() and self.verify(sel()), None),
            ("project-settings", "Setti&ngs...", lambda: sel() and self.configure(sel()), None),
            ("delete", "&Delete...", lambda: sel() and self.delete(sel()), sc.Delete),
        ):
            proj.addAction(self._action(key, text, slot, shortcut))
        # the everyday actions, visible without opening a menu
        bar = self.addToolBar("Main")
        bar.setObjectName("main-toolbar")
        bar.setMovable(False)
        bar.setAccessibleName("Main actions")
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for key, icon in TOOL_ICONS.items():
            self.actions_[key].setIcon(self.style().standardIcon(icon))
        for key in ("new", "import", None, "launch", "stop", "browser", None, "settings"):
            if key is None:
                bar.addSeparator()
            else:
                bar.addAction(self.actions_[key])
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(
            self._action(
                "logs", "Open &logs folder", lambda: self.app.open_path(self.app.core.paths.logs)
            )
        )
        help_menu.addAction(self._action("about", "&About comfymanager", self.show_about))

    # --- selection and state -------------------------------------------------------------------
    def selected(self) -> str:
        idx = self.list.currentIndex()
        return self.model.row(idx.row()).id if idx.isValid() else ""

    def select(self, project_id: str) -> None:
        i = self.model.find(project_id)
        if i >= 0:
            self.list.selectionModel().setCurrentIndex(
                self.model.index(i), QItemSelectionModel.SelectionFlag.ClearAndSelect
            )

    def row(self, project_id: str) -> ProjectRow | None:
        return self.model.get(project_id)

    @property
    def launch_errors(self) -> dict[str, ErrorInfo]:
        return self.outcomes.launch_errors

    @property
    def quitting(self) -> bool:
        return self.lifecycle.quitting

    def show_status(self, text: str) -> None:
        self.statusBar().showMessage(text)

    def reload(self) -> None:
        current = self.selected()
        projects, broken = self.store.list()
        self.model.set_projects(projects, broken)
        for pid in self.model.ids():
            self.model.set_installing(pid, self.app.jobs.installing(pid))
        if current and self.model.find(current) >= 0:
            self.select(current)
        elif not self.list.currentIndex().isValid() and self.model.rowCount():
            self.select(self.model.row(0).id)
        self._refresh_details()

    def refresh_details(self) -> None:
        self._refresh_details()

    def _refresh_details(self) -> None:
        pid = self.selected()
        row = self.model.get(pid) if pid else None
        busy = bool(pid) and self.app.jobs.busy(pid)
        chosen = self.lifecycle.chosen.get(pid) if row is not None and row.project is None else None
        self.details.set_row(
            row, busy=busy, launch_error=self.launch_errors.get(pid), chosen=chosen
        )
        self.details.checklist.set_pending(self.lifecycle.pending_fixes(pid) if pid else {})
        self.life.set_project(row.project if row is not None else None)
        self.details_scroll.updateGeometry()  # its height follows the details (a checklist)
        for key, button in self.details.buttons.items():
            if key in self.actions_:
                self.actions_[key].setEnabled(row is not None and button.isEnabled())
        if self.log_pane.project != pid:
            self.log_pane.set_project(pid, row.name if row else "")

    def _on_selection_current_changed(self, *_: object) -> None:
        if not self._restoring:
            self.app.qsettings.setValue("main/selected", self.selected())
        self._refresh_details()

    def _on_model_data_changed(self, top: Any, bottom: Any, *_: object) -> None:
        current = self.list.currentIndex()
        if current.isValid() and top.row() <= current.row() <= bottom.row():
            self._refresh_details()

    def _on_monitor_status_changed(self, st: Status) -> None:
        old = self.model.get(st.project)
        if old is None or old.project is None:
            with contextlib.suppress(ComfyManagerError):
                self.model.update_project(self.store.load(st.project))
        elif st.state != old.state:
            with contextlib.suppress(ComfyManagerError):  # install details may have changed
                self.model.update_project(self.store.load(st.project))
        self.model.update_status(st)
        if st.project == self.selected():
            self._refresh_details()

    def _on_monitor_health_changed(self, health: Health) -> None:
        self.model.update_health(health)
        self.lifecycle.health_seen(health.project)

    def _on_details_fix_requested(self, project: str, problem: object, action: str) -> None:
        self.lifecycle.fix(project, problem, action)  # type: ignore[arg-type]

    def show_log(self, project_id: str) -> None:
        """Select the project and bring its log to view, scrolled to the end."""
        self.select(project_id)
        sizes = self.right.sizes()
        if sizes and sizes[-1] < self.fontMetrics().lineSpacing() * 8:
            sizes[-1] = self.fontMetrics().lineSpacing() * 16
            self.right.setSizes(sizes)
        self.log_pane.scroll_to_end()
        self.log_pane.view.setFocus()

    def _on_monitor_log_lines(self, project: str, lines: list[str]) -> None:
        self.log_pane.append(project, lines)

    def _on_jobs_job_added(self, job: Job) -> None:
        self.model.set_installing(job.queue, self.app.jobs.installing(job.queue))
        if job.kind in (Kind.IMPORT, Kind.CREATE) and job.queue and self.model.get(job.queue):
            self.select(job.queue)  # the project being made is the one the user looks at
        if job.queue == self.selected():
            self._refresh_details()

    def _on_jobs_job_started(self, job: Job) -> None:
        if job.queue == self.selected():
            self._refresh_details()

    def _on_jobs_job_log(self, job: Job, line: str) -> None:
        if job.queue:
            self.log_pane.append(job.queue, (line,))

    def _on_jobs_job_finished(self, job: Job) -> None:
        if self.lifecycle.quit_job_done(job):
            return
        self.lifecycle.fix_job_done(job)
        self.model.set_installing(job.queue, self.app.jobs.installing(job.queue))
        self.reload()

    def _on_notifier_notice(self, notice: Notice) -> None:
        self.statusBar().showMessage(
            f"{notice.title}: {notice.text}" if notice.text else notice.title, 15000
        )

    # --- intents -------------------------------------------------------------------------------
    def _on_intents_new_project(self) -> None:
        self.lifecycle.new_project()

    def _on_intents_import_files(self, files: list[str]) -> None:
        flow = lazy("comfymanager.ui.import_flow")
        self._on_intents_show_window()
        flow.start_import(self.app, self, list(files))

    def _on_intents_start(self, project_id: str) -> None:
        self.lifecycle.launch(project_id)

    def _on_intents_stop(self, project_id: str) -> None:
        self.lifecycle.stop(project_id)

    def _on_intents_open_browser(self, project_id: str) -> None:
        row = self.model.get(project_id)
        if row and row.status and row.status.url and can_browse(row.state):
            self.app.open_url(row.status.url)

    def _on_intents_open_folder(self, project_id: str) -> None:
        try:
            self.app.open_path(self.store.dirs(project_id).root)
        except ComfyManagerError as exc:
            self.show_error("Cannot open the folder", ErrorInfo.from_exception(exc))

    def _on_intents_show_window(self) -> None:
        if self.isMinimized():
            self.showNormal()
        self.show()
        self.raise_()
        self.activateWindow()

    def _on_intents_show_settings(self) -> None:
        lazy("comfymanager.ui.dialogs.settings_dialog").SettingsDialog(self.app, self).exec()

    def show_models(self) -> None:
        lazy("comfymanager.ui.dialogs.models_dialog").ModelsDialog(self.app, self).exec()

    def show_about(self) -> None:
        lazy("comfymanager.ui.dialogs.about").AboutDialog(self, app=self.app).exec()

    def ask_import(self) -> None:
        from comfymanager.ui.import_flow import pick_files  # home or the last folder used

        files = pick_files(self.app, self, IMPORT_FILTER)
        if files:
            self.app.intents.import_files.emit(files)

    def repair(self, project_id: str, *, force: bool) -> None:
        self.lifecycle.repair(project_id, force=force)

    def delete(self, project_id: str) -> None:
        self.lifecycle.delete(project_id)

    def configure(self, project_id: str) -> None:
        self.lifecycle.configure(project_id)

    def verify(self, project_id: str) -> None:
        self.lifecycle.verify(project_id)

    def show_error(self, title: str, info: ErrorInfo) -> None:
        from comfymanager.ui.panes.error_view import show_error_box

        show_error_box(title, info, parent=self)

    # --- drops ---------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        if urls and all(u.isLocalFile() for u in urls):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        files = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if files:
            event.acceptProposedAction()
            self.app.intents.import_files.emit(files)

    # --- persistence ---------------------------------------------------------------------------
    def restore_ui_state(self) -> None:
        qs = self.app.qsettings
        geometry = qs.value("main/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(first_size(self))
        line = self.fontMetrics().lineSpacing()
        defaults = {
            "main/split": [line * 14, line * 50],
            # the details (a checklist of problems) first; activity and log below
            "main/right": [line * 26, line * 13, line * 9],
        }
        for key, splitter in (("main/split", self.split), ("main/right", self.right)):
            value = qs.value(key)
            if isinstance(value, QByteArray) and not value.isEmpty():
                splitter.restoreState(value)
            else:
                splitter.setSizes(defaults[key])
        selected = qs.value("main/selected")
        if isinstance(selected, str) and selected:
            self.select(selected)

    def save_ui_state(self) -> None:
        qs = self.app.qsettings
        qs.setValue("main/geometry", self.saveGeometry())
        qs.setValue("main/split", self.split.saveState())
        qs.setValue("main/right", self.right.saveState())
        qs.setValue("main/selected", self.selected())
        qs.sync()

    # --- closing and quitting ------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_ui_state()
        if self.quit_done:
            event.accept()
            return
        policy = lazy("comfymanager.ui.close_policy")
        if not policy.handle_close(self, self.app, self.tray):
            event.ignore()
            return
        event.ignore()
        self.request_quit()

    def request_quit(self) -> None:
        self.lifecycle.request_quit()

    def finish_quit(self) -> None:
        """Cancel jobs, stop background threads, close the window and leave the event loop."""
        if self.quit_done:
            return
        self.quit_done = True
        self.save_ui_state()
        shutdown(self.app)
        wait_background()
        if self.tray is not None and hasattr(self.tray, "hide"):
            self.tray.hide()
        self.close()
        self.quit_app()


class DetailsScroll(QScrollArea):
    """The details' scroll area: it asks for the height its details need at its width (a
    checklist of problems, a wrapped error), so the Details tab gives them that room and
    scrolls only what does not fit. No signals."""

    def sizeHint(self) -> QSize:
        hint = super().sizeHint()
        inner = self.widget()
        if inner is None:
            return hint
        width = max(self.viewport().width(), inner.minimumSizeHint().width(), 1)
        height = (
            inner.heightForWidth(width) if inner.hasHeightForWidth() else inner.sizeHint().height()
        )
        return QSize(hint.width(), max(height, 0) + 2 * self.frameWidth())

    def minimumSizeHint(self) -> QSize:
        return QSize(super().minimumSizeHint().width(), self.fontMetrics().lineSpacing() * 6)


def first_size(window: QWidget) -> QSize:
    """``FIRST_SIZE`` scaled with the font (a large font or 200% gets more), within 90% of the
    screen's available area."""
    fm = window.fontMetrics()
    scale = max(1.0, fm.height() / 17)
    size = QSize(
        int(FIRST_SIZE.width() * min(scale, 1.3)), int(FIRST_SIZE.height() * min(scale, 1.3))
    )
    screen = window.screen() or QGuiApplication.primaryScreen()
    if screen is not None:
        avail = screen.availableGeometry()
        size = size.boundedTo(QSize(int(avail.width() * 0.9), int(avail.height() * 0.9)))
    return size
