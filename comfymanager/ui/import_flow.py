"""Import workflow files from the window: analyse in a worker, show the plan, submit the job.

``start_import(app, parent, files)``: the node database is refreshed (when stale) and loaded and
the files analysed on a worker thread, never on the UI thread; then ``PlanDialog`` shows; on
Create, ``apply_import`` runs as a project job. The dialog's online look-up runs in a worker
too: the Comfy Registry for unknown classes, Hugging Face and CivitAI for models of unknown
source (``core.importer.search``), then sizes. Model downloads go to ``app.downloads`` through a
queued signal (the manager lives on the UI thread). A file that cannot be read gets a message box
naming the file and the cause.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import requests
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from comfymanager.core.context import CoreContext
from comfymanager.core.errors import ComfyManagerError, ErrorInfo
from comfymanager.core.importer.apply import ImportResult, apply_import
from comfymanager.core.importer.decision import (
    ImportDecision,
)
from comfymanager.core.importer.plan import (
    ImportPlan,
    plan_import,
)
from comfymanager.core.importer.search import look_up_online
from comfymanager.core.install.install import ProjectSpec
from comfymanager.core.jobs import Job
from comfymanager.core.models.request import DownloadRequest
from comfymanager.core.notifier import Notice
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.workers import JobFn, Worker, start_worker
from comfymanager.core.workflow.nodedb import NodeDatabase, load_node_db, refresh_node_db
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.dialogs.plan_dialog import PlanDialog

log = logging.getLogger(__name__)


def load_db(ctx: CoreContext, cancel: CancelToken) -> NodeDatabase | None:
    """Refresh the cached node database when it is older than a day, then load it."""
    try:
        refresh_node_db(ctx.settings.node_db_source, ctx.paths.node_db, cancel=cancel, timeout=10)
    except ComfyManagerError as exc:
        log.info("node database not refreshed: %s", exc)
    return load_node_db(ctx.paths.node_db)


class _DownloadBridge(QObject):
    """Hands download requests from the job thread to the UI-thread DownloadManager.

    Signals: ``requested(DownloadRequest, str requester)`` (queued to the UI thread)."""

    requested = Signal(object, str)

    def enqueue(self, request: DownloadRequest, requester: str = "") -> object:
        self.requested.emit(request, requester)
        return None


class ImportFlow(QObject):
    """One import, from analysis to the submitted job (kept alive by its parent).

    Signals: ``planned(ImportPlan)`` once the dialog opens; ``submitted(Job)`` on Create;
    ``failed(ErrorInfo)`` when the files cannot be analysed (a message box is shown too)."""

    planned = Signal(object)
    submitted = Signal(object)
    failed = Signal(object)

    def __init__(self, app: AppContext, parent: QWidget, files: list[str]) -> None:
        super().__init__(parent)
        self.app = app
        self.parent_widget = parent
        self.files = [Path(f) for f in files]
        self.db: NodeDatabase | None = None
        self.dialog: PlanDialog | None = None
        self.message: QMessageBox | None = None
        self.job: Job | None = None
        self._workers: list[Worker] = []
        self.bridge = _DownloadBridge(self)
        self.bridge.requested.connect(self._on_bridge_requested, Qt.ConnectionType.QueuedConnection)

    def start(self) -> None:
        ctx, files = self.app.core, self.files

        def analyse(
            report: Reporter, cancel: CancelToken
        ) -> tuple[NodeDatabase | None, ImportPlan]:
            report.stage("analyse", "Reading the node database")
            db = load_db(ctx, cancel)
            report.stage("analyse", "Analysing the workflow")
            return db, plan_import(ctx, files, db=db)

        self._run(analyse, self._on_analyse_succeeded, self._on_analyse_failed, "analyse")

    def _run(
        self, fn: JobFn, ok: Callable[[object], None], fail: Callable[[object], None], name: str
    ) -> None:
        worker = Worker(fn, name=f"import:{name}")
        worker.succeeded.connect(ok)
        worker.failed.connect(fail)
        self._workers.append(worker)  # Python must keep the worker alive while it runs
        worker.finished.connect(lambda w=worker: self._workers.remove(w))
        start_worker(worker, parent=self)

    # --- analysis -------------------------------------------------------------------------

    def _on_analyse_succeeded(self, result: object) -> None:
        assert isinstance(result, tuple)
        self.db, plan = result
        name = _default_name(self.files[0])
        self.dialog = PlanDialog(self.app, plan, self.parent_widget, name=name)
        self.dialog.lookup_requested.connect(self._on_dialog_lookup_requested)
        self.dialog.accepted.connect(self._on_dialog_accepted)
        self.dialog.open()
        self.planned.emit(plan)

    def _on_analyse_failed(self, info: object) -> None:
        assert isinstance(info, ErrorInfo)
        box = QMessageBox(self.parent_widget)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Cannot import")
        box.setText(info.message)
        if info.fix:
            box.setInformativeText(info.fix)
        box.open()
        self.message = box
        self.failed.emit(info)

    # --- online look-up -------------------------------------------------------------------

    def _on_dialog_lookup_requested(self) -> None:
        ctx, files, db, secrets = self.app.core, self.files, self.db, self.app.secrets

        def lookup(report: Reporter, cancel: CancelToken) -> ImportPlan:
            with requests.Session() as session:
                report.stage("lookup", "Looking up unknown nodes")
                plan = plan_import(ctx, files, db=db, lookup=True, session=session)
                cancel.check()
                return look_up_online(plan, ctx, session, secrets, report, cancel)

        self._run(lookup, self._on_lookup_succeeded, self._on_lookup_failed, "lookup")

    def _on_lookup_succeeded(self, plan: object) -> None:
        if self.dialog is not None and isinstance(plan, ImportPlan):
            self.dialog.set_plan(plan)

    def _on_lookup_failed(self, info: object) -> None:
        if self.dialog is not None and isinstance(info, ErrorInfo):
            self.dialog.set_lookup_failed(info)

    # --- the job --------------------------------------------------------------------------

    def _on_dialog_accepted(self) -> None:
        assert self.dialog is not None and self.dialog.decision is not None
        decision: ImportDecision = self.dialog.decision
        plan, ctx, enqueue = self.dialog.plan, self.app.core, self.bridge.enqueue
        target = decision.target
        project = target.name.strip() if isinstance(target, ProjectSpec) else target

        def job(report: Reporter, cancel: CancelToken) -> ImportResult:
            return apply_import(
                ctx, plan, decision, report=report, cancel=cancel, enqueue_download=enqueue
            )

        self.app.jobs.job_finished.connect(self._on_jobs_job_finished)
        self.job = self.app.jobs.submit(project, f"Import into '{project}'", job)
        self.submitted.emit(self.job)

    def _on_bridge_requested(self, request: object, requester: str) -> None:
        assert isinstance(request, DownloadRequest)
        try:
            self.app.downloads.add(request, requester)
        except ComfyManagerError as exc:
            self.app.notifier.notify(
                Notice("download-failed", f"Cannot download {request.name}", str(exc), requester)
            )

    def _on_jobs_job_finished(self, job: object) -> None:
        if job is not self.job:
            return
        self.app.jobs.job_finished.disconnect(self._on_jobs_job_finished)
        assert isinstance(job, Job)
        result = job.result
        if isinstance(result, ImportResult):
            failed = [f"{i.kind} {i.name}" for i in result.failures]
            if result.install_error is not None:
                failed.append("the install")
            if failed:
                text = "Problems: " + ", ".join(failed) + ". The project was kept."
                kind = "install-failed"
            else:
                text = "Packs installed, workflows saved, downloads queued."
                kind = "install-done"
            self.app.notifier.notify(
                Notice(kind, f"Imported into '{result.project}'", text, result.project)
            )


def _default_name(path: Path) -> str:
    stem = "".join(c if c.isalnum() or c in " ._-" else "-" for c in path.stem)
    return stem.strip(" .-_")[:64] or "imported"


def start_import(app: AppContext, parent: QWidget, files: list[str]) -> ImportFlow:
    """Analyse ``files`` in the background, then show the plan dialog (see the module doc)."""
    flow = ImportFlow(app, parent, files)
    flow.start()
    return flow
