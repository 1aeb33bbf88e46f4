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
        job = self.create(dialog.spec)
        if dialog.manager.isChecked():  # queued after the create on the project's queue
            self.set_manager(job.queue, True)
        return job

    def create(self, spec: ProjectSpec) -> Job:
        """Submit "create project" for an already validated spec; the new row shows at once."""
        ctx = self.app.core
        name = spec.name.strip()

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

    # --- a project's life: snapshots, rollback, packs (ui/panes/history.py, packs_tab.py) -----
    def snapshot(self, project: str, note: str) -> Job:
        """A snapshot by hand (a note given: written even when nothing changed since the last)."""
        ctx = self.app.core

        def job(report: Reporter, cancel: CancelToken) -> object:
            from comfymanager.core.lifecycle.snapshots import take_snapshot
            from comfymanager.core.run.runs import project_lock

            with project_lock(ctx, project):
                return take_snapshot(
                    ctx, project, "manual", note=note, report=report, force=bool(note)
                )

        return self.app.jobs.submit(Kind.SNAPSHOT, project, job)

    def rollback(self, project: str, snapshot_id: str) -> Job:
        """Bring the project back to a snapshot (the pane asked first)."""
        ctx, monitor = self.app.core, self.app.monitor

        def job(report: Reporter, cancel: CancelToken) -> object:
            from comfymanager.core.lifecycle.rollback import rollback

            try:
                return rollback(ctx, project, snapshot_id, report, cancel)
            finally:
                monitor.poke()

        return self.app.jobs.submit(Kind.ROLLBACK, project, job, subject=snapshot_id)

    def update(self, project: str, *, ref: str, latest: bool, packs: bool) -> Job:
        """Update (or downgrade, with an older ``ref``); a failure rolls back by itself."""
        ctx, monitor = self.app.core, self.app.monitor

        def job(report: Reporter, cancel: CancelToken) -> object:
            from comfymanager.core.lifecycle.update import update

            try:
                return update(
                    ctx, project, ref=ref, latest=latest, packs=packs, report=report, cancel=cancel
                )
            finally:
                monitor.poke()

        return self.app.jobs.submit(Kind.UPDATE, project, job, subject=ref)

    def add_existing(self) -> Job | None:
        """File > Add existing ComfyUI...: the adopt dialog, then the adoption as a job."""
        from comfymanager.ui.dialogs.adopt_dialog import AdoptDialog

        dialog = AdoptDialog(self.app, self.parent)
        if dialog.exec() != AdoptDialog.DialogCode.Accepted or dialog.choice is None:
            return None
        return self.adopt(*dialog.choice)

    def adopt(self, path: str, name: str, mode: str) -> Job:
        """Adopt the install at ``path`` as ``name`` (rebuild or in place); its row shows now."""
        ctx = self.app.core

        def job(report: Reporter, cancel: CancelToken) -> object:
            from comfymanager.core.adopt.adopt import adopt

            return adopt(ctx, path, name, mode, report=report, cancel=cancel)

        submitted = self.app.jobs.submit(Kind.ADOPT, name, job, subject=path)
        self.window.model.set_installing(name, True)
        self.window.select(name)
        return submitted

    def pack_add(self, project: str, source: str) -> Job:
        """``source``: a git URL, a local folder or a registry id, optionally ``@VERSION``."""
        ctx = self.app.core

        def job(report: Reporter, cancel: CancelToken) -> object:
            from comfymanager.core.lifecycle import packs

            return packs.add_pack(ctx, project, source, report=report, cancel=cancel)

        return self.app.jobs.submit(Kind.PACK_ADD, project, job, subject=source)

    def pack_remove(self, project: str, pack: str) -> Job:
        ctx = self.app.core

        def job(report: Reporter, cancel: CancelToken) -> object:
            from comfymanager.core.lifecycle import packs

            return packs.remove_pack(ctx, project, pack, report=report, cancel=cancel)

        return self.app.jobs.submit(Kind.PACK_REMOVE, project, job, subject=pack)

    def pack_update(self, project: str, pack: str = "") -> Job:
        """One pack, or every pack when ``pack`` is empty."""
        ctx = self.app.core

        def job(report: Reporter, cancel: CancelToken) -> object:
            from comfymanager.core.lifecycle import packs

            return packs.update_pack(ctx, project, pack or None, report=report, cancel=cancel)

        return self.app.jobs.submit(Kind.PACK_UPDATE, project, job, subject=pack)

    def pack_set_enabled(self, project: str, pack: str, enabled: bool) -> Job:
        ctx = self.app.core

        def job(report: Reporter, cancel: CancelToken) -> object:
            from comfymanager.core.lifecycle import packs

            return packs.set_enabled(ctx, project, pack, enabled, report=report, cancel=cancel)

        kind = Kind.PACK_ENABLE if enabled else Kind.PACK_DISABLE
        return self.app.jobs.submit(kind, project, job, subject=pack)

    def set_manager(self, project: str, enabled: bool) -> Job:
        """ComfyUI-Manager on or off in the project (a settings change: ``Kind.CONFIG``)."""
        ctx = self.app.core

        def job(report: Reporter, cancel: CancelToken) -> object:
            from comfymanager.core.lifecycle import manager

            return manager.set_manager(ctx, project, enabled, report=report, cancel=cancel)

        return self.app.jobs.submit(Kind.CONFIG, project, job)

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
