"""Import workflow files from the window: analyse in a worker, show the plan, submit the job.

``start_import(app, parent, files)``: the node database is refreshed (when stale) and loaded and
the files analysed on a worker thread, never on the UI thread; then ``PlanDialog`` shows; on
Create, ``apply_import`` runs as a project job. The dialog's online look-up runs in a worker
too: the Comfy Registry for unknown classes, Hugging Face and CivitAI for models of unknown
source (``core.importer.search``), then sizes. The import job queues its model downloads itself
(``DownloadManager.add`` is safe from a worker), so a refused download is in the import's result;
the notice when it ends comes from ``ui/outcomes.py``. A file that cannot be read gets a message
box naming the file and the cause. Background work runs through ``ui/background.py``.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import requests
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from comfymanager.core.errors import ComfyManagerError, ErrorInfo
from comfymanager.core.importer.apply import ImportResult, apply_import
from comfymanager.core.importer.decision import (
    ImportDecision,
)
from comfymanager.core.importer.plan import (
    ImportPlan,
    default_name,
    node_database,
    plan_import,
)
from comfymanager.core.importer.search import look_up_online
from comfymanager.core.install.install import ProjectSpec
from comfymanager.core.jobs import Job
from comfymanager.core.operations import Kind
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import ProjectStore
from comfymanager.core.workflow.nodedb import NodeDatabase
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.background import run_background
from comfymanager.ui.dialogs.plan_dialog import PlanDialog

log = logging.getLogger(__name__)


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

    def start(self) -> None:
        ctx, files = self.app.core, self.files

        def analyse(
            report: Reporter, cancel: CancelToken
        ) -> tuple[NodeDatabase | None, ImportPlan]:
            report.stage("analyse", "Reading the node database")
            db, _note = node_database(ctx, cancel)
            report.stage("analyse", "Analysing the workflow")
            return db, plan_import(ctx, files, db=db)

        run_background(self, analyse, self._on_analyse_succeeded, self._on_analyse_failed,
                       name="import:analyse")  # fmt: skip

    # --- analysis -------------------------------------------------------------------------

    def _on_analyse_succeeded(self, result: object) -> None:
        assert isinstance(result, tuple)
        self.db, plan = result
        name = default_name(self.files[0])
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

        run_background(self, lookup, self._on_lookup_succeeded, self._on_lookup_failed,
                       name="import:lookup")  # fmt: skip

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
        plan, ctx, enqueue = self.dialog.plan, self.app.core, self.app.downloads.add
        target = decision.target
        # a new project's row and job are keyed by the folder its create will make (its id)
        project = target if isinstance(target, str) else target.name.strip()
        if isinstance(target, ProjectSpec):
            with contextlib.suppress(ComfyManagerError):  # the job itself reports a bad name
                project = ProjectStore(ctx.paths).new_id(target.name)

        def job(report: Reporter, cancel: CancelToken) -> ImportResult:
            return apply_import(
                ctx, plan, decision, report=report, cancel=cancel, enqueue_download=enqueue
            )

        self.job = self.app.jobs.submit(Kind.IMPORT, project, job)
        self.submitted.emit(self.job)


def start_import(app: AppContext, parent: QWidget, files: list[str]) -> ImportFlow:
    """Analyse ``files`` in the background, then show the plan dialog (see the module doc)."""
    flow = ImportFlow(app, parent, files)
    flow.start()
    return flow
