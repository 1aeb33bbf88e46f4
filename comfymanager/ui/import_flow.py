"""Import workflow files from the window: analyse in a worker, show the plan, submit the job.

``start_import(app, parent, files)``: the node database is refreshed (when stale) and loaded and
the files analysed on a worker thread, never on the UI thread; then ``PlanDialog`` shows; on
Create, ``apply_import`` runs as a project job. The dialog's online look-up runs in a worker
too: the Comfy Registry for unknown classes, Hugging Face and CivitAI for models of unknown
source (``core.importer.search``), then sizes; its steps and each host's failure show in the
dialog. Without being asked, the flow asks every model's size in the background as soon as the
dialog opens (a HEAD request, Hugging Face's linked size), row by row. Choosing an existing
project as the target plans again with ``project=`` (its packs settle their classes). The
import job queues its model downloads itself (``DownloadManager.add`` is safe from a worker),
so a refused download is in the import's result; the notice when it ends comes from
``ui/outcomes.py``. A file that cannot be read gets a message box naming the file and the cause.
Background work runs through ``ui/background.py``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from pathlib import Path

import requests
from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from comfymanager.core.errors import ComfyManagerError, ErrorInfo
from comfymanager.core.importer.apply import ImportResult, apply_import
from comfymanager.core.importer.decision import (
    ImportDecision,
)
from comfymanager.core.importer.plan import (
    ImportPlan,
    default_name,
    fill_sizes,
    node_database,
    plan_import,
)
from comfymanager.core.importer.search import look_up_online
from comfymanager.core.install.install import ProjectSpec
from comfymanager.core.jobs import Job
from comfymanager.core.models.hosts import Endpoints
from comfymanager.core.operations import Kind
from comfymanager.core.progress import CancelToken, Progress, Reporter
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
        self.target = ""  # an existing project chosen as the target, "" for a new one

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
        self.dialog.target_changed.connect(self._on_dialog_target_changed)
        self.dialog.accepted.connect(self._on_dialog_accepted)
        self.dialog.open()
        self.planned.emit(plan)
        self._ask_sizes(plan)

    # --- sizes in the background ----------------------------------------------------------

    def _ask_sizes(self, plan: ImportPlan) -> None:
        wanted = [
            m
            for m in plan.models
            if m.size is None and m.urls and m.status in ("download", "mirrors")
        ]
        if self.dialog is None or not wanted:
            return
        self.dialog.set_sizes_pending({m.key for m in wanted})
        endpoints = Endpoints.from_settings(self.app.core.settings)

        def sizes(report: Reporter, cancel: CancelToken) -> dict[str, int | None]:
            found: dict[str, int | None] = {}
            with requests.Session() as session:
                for m in wanted:
                    cancel.check()
                    one = fill_sizes(dataclasses.replace(plan, models=(m,)), session, endpoints)
                    found[m.key] = one.models[0].size
                    size = found[m.key] or 0
                    report.progress(Progress(stage="size", key=m.key, done=size, total=size))
            return found

        worker = run_background(self, sizes, self._on_sizes_succeeded, self._on_sizes_failed,
                                name="import:sizes")  # fmt: skip
        worker.progress.connect(self._on_sizes_progress)

    @Slot(object)
    def _on_sizes_progress(self, progress: object) -> None:
        if self.dialog is not None and isinstance(progress, Progress) and progress.key:
            self.dialog.set_size(progress.key, progress.total or None)

    def _on_sizes_succeeded(self, found: object) -> None:
        if self.dialog is None or not isinstance(found, dict):
            return
        for key, size in found.items():
            self.dialog.set_size(key, size)

    def _on_sizes_failed(self, info: object) -> None:
        if self.dialog is None:
            return
        for key in self.dialog.models.pending():
            self.dialog.set_size(key, None)
        if isinstance(info, ErrorInfo):
            log.info("model sizes: %s", info.message)

    # --- another target -------------------------------------------------------------------

    def _on_dialog_target_changed(self, project: str) -> None:
        if project == self.target:
            return
        self.target = project
        ctx, files, db = self.app.core, self.files, self.db

        def replan(report: Reporter, cancel: CancelToken) -> ImportPlan:
            report.stage("analyse", "Planning again for the chosen project")
            return plan_import(ctx, files, db=db, project=project or None)

        run_background(self, replan, self._on_replan_succeeded, self._on_replan_failed,
                       name="import:replan")  # fmt: skip

    def _on_replan_succeeded(self, plan: object) -> None:
        if self.dialog is not None and isinstance(plan, ImportPlan):
            self.dialog.set_plan(plan)

    def _on_replan_failed(self, info: object) -> None:
        if self.dialog is not None and isinstance(info, ErrorInfo):
            self.dialog.error.show_info(info)  # the plan shown stays the first one

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
        project = self.target or None

        def lookup(report: Reporter, cancel: CancelToken) -> ImportPlan:
            with requests.Session() as session:
                report.stage("lookup", "Looking up unknown nodes in the Comfy Registry")
                plan = plan_import(ctx, files, db=db, lookup=True, session=session, project=project)
                cancel.check()
                return look_up_online(plan, ctx, session, secrets, report, cancel)

        worker = run_background(self, lookup, self._on_lookup_succeeded, self._on_lookup_failed,
                                name="import:lookup")  # fmt: skip
        worker.progress.connect(self._on_lookup_progress)

    @Slot(object)
    def _on_lookup_progress(self, progress: object) -> None:
        if self.dialog is not None and isinstance(progress, Progress) and progress.message:
            self.dialog.set_lookup_progress(progress.message + "…")

    def _on_lookup_succeeded(self, plan: object) -> None:
        if self.dialog is not None and isinstance(plan, ImportPlan):
            self.dialog.set_plan(plan, looked_up=True)

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


LAST_DIR_KEY = "import/last_dir"


def pick_files(app: AppContext, parent: QWidget, file_filter: str) -> list[str]:
    """The import file picker: opens in the folder used last, else the user's home (never the
    app's own folder); the folder of the chosen files is remembered."""
    last = app.qsettings.value(LAST_DIR_KEY)
    start = last if isinstance(last, str) and last and Path(last).is_dir() else str(Path.home())
    files, _ = QFileDialog.getOpenFileNames(parent, "Import workflow", start, file_filter)
    if files:
        app.qsettings.setValue(LAST_DIR_KEY, str(Path(files[0]).parent))
    return list(files)


def start_import(app: AppContext, parent: QWidget, files: list[str]) -> ImportFlow:
    """Analyse ``files`` in the background, then show the plan dialog (see the module doc)."""
    flow = ImportFlow(app, parent, files)
    flow.start()
    return flow
