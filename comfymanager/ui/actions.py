"""The window's project actions: one small controller that submits core operations as jobs.

``ProjectActions`` turns a user request (new, repair, launch, stop, delete, verify, quit) into
one call of ``core.operations`` submitted on the project's queue (``JobManager.submit(kind,
project, fn)``), so the UI thread never waits. What follows a job's end (the notice, the browser,
the error shown) is not here: ``ui/outcomes.py`` is the one place that reacts to outcomes.

The controller reaches the window only through ``WindowSide``, a typed protocol of the few things
it needs (the list model, the selection, the status bar, finishing the quit).
"""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING, Protocol

from PySide6.QtWidgets import QWidget

from comfymanager.core import operations as ops
from comfymanager.core.jobs import Job
from comfymanager.core.operations import Kind
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import ProjectStore
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.dialogs import confirm

if TYPE_CHECKING:
    from comfymanager.core.install.install import InstallResult, ProjectSpec
    from comfymanager.core.run.runs import Status
    from comfymanager.core.verify.verify import VerifyResult
    from comfymanager.ui.models.project_list import ProjectListModel

log = logging.getLogger(__name__)


class WindowSide(Protocol):
    """What the controller needs from the main window."""

    model: ProjectListModel

    def select(self, project_id: str) -> None: ...

    def selected(self) -> str: ...

    def show_status(self, text: str) -> None: ...

    def finish_quit(self) -> None: ...


class ProjectActions:
    """Submits the project operations; see the module docstring. No signals."""

    def __init__(self, app: AppContext, window: WindowSide, parent: QWidget) -> None:
        self.app = app
        # weak: the window owns this controller; a cycle back to it would leave the window to
        # the garbage collector, which may run on any thread (a widget deleted off the UI thread)
        self._window = weakref.ref(window)
        self._parent = weakref.ref(parent)
        self.quitting = False
        self.quit_jobs: set[int] = set()

    @property
    def window(self) -> WindowSide:
        window = self._window()
        assert window is not None, "the window is gone"
        return window

    @property
    def parent(self) -> QWidget:
        """The widget dialogs open over."""
        parent = self._parent()
        assert parent is not None, "the window is gone"
        return parent

    # --- create and repair ---------------------------------------------------------------------
    def new_project(self) -> Job | None:
        from comfymanager.ui.dialogs.new_project import NewProjectDialog

        dialog = NewProjectDialog(self.app, self.parent)
        if dialog.exec() != NewProjectDialog.DialogCode.Accepted or dialog.spec is None:
            return None
        return self.create(dialog.spec)

    def create(self, spec: ProjectSpec) -> Job:
        """Submit "create project" for an already validated spec; the new row shows at once."""
        ctx = self.app.core
        name = ProjectStore(ctx.paths).new_id(spec.name)  # the folder (id) create will make

        def job(report: Reporter, cancel: CancelToken) -> InstallResult:
            return ops.create(ctx, spec, report, cancel)

        submitted = self.app.jobs.submit(Kind.CREATE, name, job)
        self.window.model.set_installing(name, True)
        self.window.select(name)
        return submitted

    def repair(self, project: str, *, force: bool) -> Job:
        ctx = self.app.core

        def job(report: Reporter, cancel: CancelToken) -> InstallResult:
            return ops.repair(ctx, project, report, cancel, force=force)

        return self.app.jobs.submit(Kind.REINSTALL if force else Kind.REPAIR, project, job)

    def verify(self, project: str) -> Job:
        """Check the project's node set in its own Python; found models are queued at once."""
        ctx, downloads = self.app.core, self.app.downloads

        def job(report: Reporter, cancel: CancelToken) -> VerifyResult:
            return ops.verify(ctx, project, report, cancel, enqueue_download=downloads.add)

        return self.app.jobs.submit(Kind.VERIFY, project, job)

    # --- run -----------------------------------------------------------------------------------
    def launch(self, project: str) -> Job:
        ctx, monitor = self.app.core, self.app.monitor

        def job(report: Reporter, cancel: CancelToken) -> Status:
            try:
                return ops.launch(
                    ctx, project, report, cancel, on_spawned=lambda _st: monitor.poke()
                )
            finally:
                monitor.poke()

        return self.app.jobs.submit(Kind.LAUNCH, project, job)

    def stop(self, project: str) -> Job:
        ctx, monitor = self.app.core, self.app.monitor

        def job(report: Reporter, cancel: CancelToken) -> Status:
            try:
                return ops.stop(ctx, project, report, cancel)
            finally:
                monitor.poke()

        return self.app.jobs.submit(Kind.STOP, project, job)

    def delete(self, project: str) -> Job | None:
        row = self.window.model.get(project)
        running = bool(row and ops.live(row.state))
        folder = str(self.app.core.paths.projects / project)
        if not confirm.ask_delete(self.parent, project, folder, running):
            return None
        ctx, monitor = self.app.core, self.app.monitor

        def job(report: Reporter, cancel: CancelToken) -> None:
            try:
                ops.delete(ctx, project, report, cancel)
            finally:
                monitor.poke()

        return self.app.jobs.submit(Kind.DELETE, project, job)

    # --- quitting ------------------------------------------------------------------------------
    def running_projects(self) -> list[str]:
        model = self.window.model
        return [model.row(i).id for i in range(model.rowCount()) if ops.live(model.row(i).state)]

    def request_quit(self) -> None:
        """Ask about running projects, stop them if wanted, then finish (waits for the stops)."""
        if self.quitting:
            return
        running = self.running_projects()
        if running:
            answer = confirm.ask_quit(self.parent, running)
            if answer == confirm.CANCEL:
                return
            if answer == confirm.STOP:
                self.quitting = True
                self.app.jobs.cancel_all()
                for pid in running:
                    self.quit_jobs.add(self.stop(pid).id)
                self.window.show_status("Stopping ComfyUI before quitting...")
                return
        self.quitting = True
        self.window.finish_quit()

    def quit_job_done(self, job: Job) -> bool:
        """True when ``job`` was a stop asked for by quitting (the last one finishes the quit)."""
        if job.id not in self.quit_jobs:
            return False
        self.quit_jobs.discard(job.id)
        if not self.quit_jobs:
            self.window.finish_quit()
        return True
