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
from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QInputDialog, QLineEdit, QMessageBox, QWidget

from comfymanager.core import operations as ops
from comfymanager.core.errors import ComfyManagerError
from comfymanager.core.jobs import Job
from comfymanager.core.operations import Kind
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import ProjectStore
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.dialogs import confirm

if TYPE_CHECKING:
    from pathlib import Path

    from comfymanager.core.configure import ProjectSettings
    from comfymanager.core.context import CoreContext
    from comfymanager.core.health import Problem
    from comfymanager.core.install.install import InstallResult, ProjectSpec
    from comfymanager.core.lifecycle.packs import PackChange
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

    def show_log(self, project_id: str) -> None: ...

    def refresh_details(self) -> None: ...


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
        self.chosen: dict[str, dict[str, str]] = {}  # project being created -> its chosen values
        # checklist rows being fixed by a job: project -> {problem key: (job, what it does)}
        self.fixing: dict[str, dict[str, tuple[Job, str]]] = {}

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
        name = ProjectStore(ctx.paths).new_id(spec.name)  # the folder (id) create will make

        def job(report: Reporter, cancel: CancelToken) -> InstallResult:
            return ops.create(ctx, spec, report, cancel)

        self.chosen[name] = chosen_values(spec)  # shown while the project file does not exist
        submitted = self.app.jobs.submit(Kind.CREATE, name, job)
        self.window.model.set_installing(name, self.app.jobs.installing(name))  # the one source
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
    def launch(self, project: str) -> Job | None:
        """Launch; with open problems (``health.launch_warnings``) ask first."""
        from comfymanager.core.health import launch_warnings

        row = self.window.model.get(project)
        warnings = launch_warnings(row.health) if row is not None and row.health else []
        if warnings and not ask_launch_anyway(self.parent, project, warnings):
            return None
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
        answer = confirm.ask_delete(self.parent, project, folder, running)
        if not answer:
            return None
        keep = answer != confirm.DELETE_ALL  # keeping is the default (a bare True too)
        ctx, monitor = self.app.core, self.app.monitor

        def job(report: Reporter, cancel: CancelToken) -> Path | None:
            try:
                return ops.delete(ctx, project, report, cancel, keep_outputs=keep)
            finally:
                monitor.poke()

        return self.app.jobs.submit(Kind.DELETE, project, job)

    # --- health: the checklist's Fix buttons (window helper) ----------------------------------
    def fix(self, project: str, problem: Problem, action: str = "") -> Job | None:
        """Do what a checklist Fix button says (``action``, default ``problem.action``)."""
        from comfymanager.core import health as h

        action = action or problem.action
        if action == h.REPAIR:
            return self.repair(project, force=False)
        if action == h.VERIFY:
            return self._fixing(project, problem, self.verify(project), "checking the workflows")
        if action == h.VIEW_LOG:
            self.window.show_log(project)
            return None
        if action == h.RETRY_DOWNLOAD:
            self.app.downloads.retry(problem.ref)
            self.app.monitor.poke()
            self.window.show_status(f"Downloading {problem.subject} again")
            return None
        if action == h.OTHER_URL:
            self.other_url(project, problem)
            return None
        if action == h.PICK_FOLDER:
            self.pick_folder(project, problem)
            return None
        if action == h.SKIP:
            job = self.skip(project, problem)
            return self._fixing(project, problem, job, "leaving it missing on purpose")
        if action == h.CHOOSE_PACK:
            return self.choose_pack(project, problem)
        log.warning("unknown fix action %r for %s", action, project)
        return None

    def _model_key(self, problem: Problem) -> tuple[str, str]:
        """(folder, name) of a model problem: ``folder/name``; "?" is an unknown folder."""
        key = problem.subject if "/" in problem.subject else problem.ref
        folder, _, name = key.partition("/")
        return ("" if folder == "?" else folder), name

    def _queue(self, project: str, folder: str, name: str, url: str) -> bool:
        from comfymanager.core.errors import ComfyManagerError
        from comfymanager.core.models import queue as q
        from comfymanager.core.models.folders import check_url
        from comfymanager.core.models.request import DownloadRequest

        try:
            request = DownloadRequest(urls=(check_url(url.strip()),), folder=folder, name=name)
            for item in self.app.downloads.items():  # a failed try gives way to the new address
                if item.key == request.target_key and item.state in (q.FAILED, q.CANCELLED):
                    self.app.downloads.remove(item.id)
            self.app.downloads.add(request, project)
        except ComfyManagerError as exc:
            show_fix_error(self.parent, "Cannot queue that address", exc.message, exc.fix or "")
            return False
        self.app.monitor.poke()  # the checklist follows the download at once
        self.window.show_status(f"Queued {folder}/{name} from the new address")
        return True

    def other_url(self, project: str, problem: Problem, url: str = "") -> bool:
        folder, name = self._model_key(problem)
        if not folder:
            return self.pick_folder(project, problem)
        url = url or ask_text(
            self.parent, "Another address", f"Download {name} into {folder} from:"
        )
        return bool(url) and self._queue(project, folder, name, url)

    def pick_folder(self, project: str, problem: Problem) -> bool:
        from comfymanager.core.models.folders import FOLDER_KEYS

        _, name = self._model_key(problem)
        folder = ask_item(
            self.parent, "Models folder", f"Which models folder is {name} for?", FOLDER_KEYS
        )
        if not folder:
            return False
        url = ask_text(self.parent, "Download address", f"Download {name} into {folder} from:")
        return bool(url) and self._queue(project, folder, name, url)

    def skip(self, project: str, problem: Problem) -> Job:
        """Record that this model or node type stays missing on purpose (the verification's
        skip lists). A node type needs no rescan (the last result reads it as skipped); a
        model is checked again."""
        from comfymanager.core import health as h
        from comfymanager.core.verify.verify import verify_project

        ctx = self.app.core
        if problem.kind == h.NODE:
            kwargs: dict[str, Any] = {"skip_nodes": [problem.subject]}
        else:
            kwargs = {"skip_models": [self._model_key(problem)[1]], "force": True}

        def job(report: Reporter, cancel: CancelToken) -> VerifyResult:
            return verify_project(ctx, project, report, cancel, **kwargs)

        return self.app.jobs.submit(Kind.VERIFY, project, job)

    def choose_pack(self, project: str, problem: Problem, source: str = "") -> Job | None:
        """Add a pack for a missing or failed node: picked from the packs the cached node
        database names for the class (read in the background), or typed (registry id or git
        URL, ``@VERSION``)."""
        if source:
            return self.fix_with_pack(project, problem, source)
        from comfymanager.ui.background import run_background

        ctx, subject = self.app.core, problem.subject

        def lookup(report: Reporter, cancel: CancelToken) -> list[tuple[str, str]]:
            return pack_candidates(ctx, subject)

        run_background(
            self.parent,
            lookup,
            lambda found: self._pick_pack(project, problem, found),
            lambda _info: self._pick_pack(project, problem, []),
            name="pack-candidates",
        )
        return None

    def _pick_pack(self, project: str, problem: Problem, found: list[tuple[str, str]]) -> None:
        other = "Another source (type it)..."
        source = ""
        if found:
            labels = [label for label, _ in found]
            picked = ask_item(
                self.parent,
                "Choose a pack",
                f"Packs that provide {problem.subject}:",
                (*labels, other),
            )
            if not picked:
                return
            source = dict(found).get(picked, "")
        if not source:
            source = ask_text(
                self.parent,
                "Choose a pack",
                f"Pack for {problem.subject} (a registry id or git URL, optionally @VERSION):",
            )
        if source:
            self.fix_with_pack(project, problem, source)

    def fix_with_pack(self, project: str, problem: Problem, source: str) -> Job | None:
        """Add ``source`` for the problem's nodes as one "pack add" job: a pack that failed to
        install is replaced by it (its record and folder removed), and a verified project is
        verified again, so the checklist then shows the truth, not the old failure. Until then
        the row says it is being fixed."""
        from comfymanager.core import health as h
        from comfymanager.core.lifecycle.pack_fetch import parse_source
        from comfymanager.core.lifecycle.packs import add_pack, remove_pack
        from comfymanager.core.verify.verify import last_result

        ctx, downloads, src = self.app.core, self.app.downloads, source.strip()
        try:
            name = parse_source(src).folder
        except ComfyManagerError as exc:
            show_fix_error(self.parent, "Cannot add that pack", exc.message, exc.fix or "")
            return None
        old = problem.ref if problem.kind == h.PACK else ""
        reverify = last_result(ctx, project) is not None

        def job(report: Reporter, cancel: CancelToken) -> PackChange:
            packs = ProjectStore(ctx.paths).load(project).packs
            if old == name and any(p.folder == old and p.status == "installed" for p in packs):
                # another version of a pack that installed but fails to load: add refuses a
                # folder it has, so the failing one goes first (its snapshot keeps it)
                remove_pack(ctx, project, old, report=report, cancel=cancel)
            change = add_pack(ctx, project, src, report=report, cancel=cancel)
            if old and old != change.pack:
                report.log(f"{change.pack} replaces {old}")
                remove_pack(ctx, project, old, report=report, cancel=cancel)
            if reverify:
                try:
                    ops.verify(ctx, project, report, cancel, enqueue_download=downloads.add)
                except ComfyManagerError as exc:  # the pack is in; the check says why not
                    report.log(f"The pack was added; checking the workflows failed: {exc}")
            return change

        submitted = self.app.jobs.submit(Kind.PACK_ADD, project, job)
        what = f"replacing {old} with {name}" if old and old != name else f"adding {name}"
        self.window.show_status(f"'{project}': {what}")
        return self._fixing(project, problem, submitted, what)

    def _fixing(self, project: str, problem: Problem, job: Job, what: str) -> Job:
        """The problem's row says ``what`` is being done (no Fix buttons) while ``job`` runs;
        so do the rows of the same cause (a pack that fails to load and its node classes)."""
        row = self.window.model.get(project)
        same = [
            p.key
            for p in (row.problems if row is not None else ())
            if problem.ref and p.ref == problem.ref and p.action == problem.action
        ]
        for key in {problem.key, *same}:
            self.fixing.setdefault(project, {})[key] = (job, what)
        self.window.refresh_details()
        return job

    def pending_fixes(self, project: str) -> dict[str, str]:
        """{problem key: what is being done} for the project's checklist rows being fixed."""
        out = {}
        for key, (job, what) in self.fixing.get(project, {}).items():
            state = "running" if job.running else "waiting" if not job.outcome else "checking"
            out[key] = f"{what} ({state})"
        return out

    def fix_job_done(self, job: Job) -> None:
        """A job ended: its fix stays shown as pending until the monitor's next health of the
        project (``health_seen``), so the old problem never shows in between; if that health
        is no different (nothing changed), the row is given back after a few seconds."""
        if not any(j is job for j, _ in self.fixing.get(job.queue, {}).values()):
            return
        self.app.monitor.poke()
        QTimer.singleShot(3000, self.parent, lambda: self.health_seen(job.queue))

    def health_seen(self, project: str) -> None:
        """The monitor has a new health of ``project``: fixes whose job ended are done."""
        pending = self.fixing.get(project)
        if not pending:
            return
        for key, (job, _) in list(pending.items()):
            if job.outcome:
                del pending[key]
        if not pending:
            del self.fixing[project]
        window = self._window()
        if window is not None:
            window.refresh_details()

    def add_pack(self, project: str, source: str) -> Job:
        from comfymanager.core.lifecycle.packs import add_pack

        ctx, src = self.app.core, source.strip()

        def job(report: Reporter, cancel: CancelToken) -> PackChange:
            return add_pack(ctx, project, src, report=report, cancel=cancel)

        return self.app.jobs.submit(Kind.PACK_ADD, project, job)

    # --- project settings (kind "config") ------------------------------------------------------
    def configure(self, project: str) -> Job | None:
        """Project > Settings: the dialog checks the values, the save runs as a "config" job."""
        from comfymanager.ui.dialogs.project_settings import ProjectSettingsDialog

        row = self.window.model.get(project)
        running = bool(row and ops.live(row.state))
        try:
            dialog = ProjectSettingsDialog(self.app.core, project, running, self.parent)
        except ComfyManagerError as exc:  # a damaged project.json: say why, no traceback
            QMessageBox.warning(self.parent, "Project settings", str(exc))
            return None
        if dialog.exec() != ProjectSettingsDialog.DialogCode.Accepted or dialog.change is None:
            return None
        change, ctx = dialog.change, self.app.core

        def job(report: Reporter, cancel: CancelToken) -> ProjectSettings:
            return ops.config(
                ctx,
                project,
                report,
                cancel,
                port=change.port,
                listen=change.listen,
                launch_args=change.launch_args,
                gpu=change.gpu,
                env=change.env,
                unset_env=change.unset_env,
            )

        submitted = self.app.jobs.submit(Kind.CONFIG, project, job)
        self.window.show_status(f"Settings of '{project}' apply the next time it starts.")
        if change.manager is not None:  # queued after the save, on the project's queue
            self.set_manager(project, change.manager)
        return submitted

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
        self.window.model.set_installing(name, self.app.jobs.installing(name))  # the one source
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


def pack_candidates(ctx: CoreContext, class_type: str) -> list[tuple[str, str]]:
    """[(label, source)] of the packs the cached node database names for ``class_type``
    (most starred first); [] without a database or for a class it does not know."""
    from comfymanager.core.workflow.nodedb import load_node_db, normalize_repo_url

    db = load_node_db(ctx.paths.node_db)
    if db is None:
        return []
    out = []
    for key in db.owners.get(class_type, ()):
        info = db.packs.get(key)
        url = info.url if info is not None else key
        title = info.title if info is not None and info.title else url.rsplit("/", 1)[-1]
        stars = db.stars.get(normalize_repo_url(url), 0) if info is not None else 0
        label = f"{title} ({url})" + (f", {stars} stars" if stars else "")
        out.append((stars, label, url))
    out.sort(key=lambda t: -t[0])
    return [(label, url) for _, label, url in out]


# --- questions (plain functions: tests replace them) ------------------------------------------
def chosen_values(spec: ProjectSpec) -> dict[str, str]:
    """What the details show for a project being created: the values picked in New project."""
    values = {
        "version": getattr(spec, "comfyui_ref", "") or "latest release",
        "torch": getattr(spec, "torch_backend", "") or "the default backend",
        "python": getattr(spec, "python", "") or "the default Python",
    }
    port = getattr(spec, "port", None)
    values["port"] = f"fixed {port}" if port else "automatic"
    return {k: f"{v} (installing)" if v and k != "port" else v for k, v in values.items()}


def ask_launch_anyway(parent: QWidget | None, project: str, warnings: list[str]) -> bool:
    """True to launch although the project has open problems."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Launch anyway?")
    box.setText(f"'{project}' needs attention: its workflows may not run.")
    shown = warnings[:10] + ([f"... and {len(warnings) - 10} more"] if len(warnings) > 10 else [])
    box.setInformativeText("\n".join(f"\u2022 {w}" for w in shown))
    launch = box.addButton("Launch anyway", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    return box.clickedButton() is launch


def ask_text(parent: QWidget | None, title: str, label: str) -> str:
    text, ok = QInputDialog.getText(parent, title, label, QLineEdit.EchoMode.Normal)
    return text.strip() if ok else ""


def ask_item(parent: QWidget | None, title: str, label: str, items: tuple[str, ...]) -> str:
    item, ok = QInputDialog.getItem(parent, title, label, list(items), 0, False)
    return item if ok else ""


def show_fix_error(parent: QWidget | None, title: str, message: str, fix: str) -> None:
    box = QMessageBox(QMessageBox.Icon.Warning, title, message, parent=parent)
    if fix:
        box.setInformativeText(fix)
    box.open()
