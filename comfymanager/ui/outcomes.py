"""The one place in the window that reacts to a job's end (style point 15).

``Outcomes`` subscribes to ``JobManager.job_finished`` and looks the finished job's ``Kind`` and
outcome up: the notice it deserves (exactly one, sent through ``app.notifier``, which the tray
and the status bar show), the browser to open after a launch, the launch error the details pane
shows, the project whose traces go after a delete. Cancelled jobs say nothing. A kind without an
entry gives no notice; a new kind adds its entry in ``notice_for`` (and, when it has one, its
follow-up in ``_on_jobs_job_finished``).

Signals:

- ``deleted(str)``: a project was deleted (the window forgets its log);
- ``handled(object)``: a finished ``Job`` was dealt with (after its notice and follow-ups).
"""

from __future__ import annotations

import logging
import time

from PySide6.QtCore import QObject, Signal, Slot

from comfymanager.core.errors import ErrorInfo
from comfymanager.core.jobs import Job
from comfymanager.core.notifier import Notice
from comfymanager.core.operations import Kind
from comfymanager.ui.app_context import AppContext

log = logging.getLogger(__name__)

INSTALL_VERBS = {
    Kind.CREATE: "installed",
    Kind.INSTALL: "installed",
    Kind.REPAIR: "repaired",
    Kind.REINSTALL: "reinstalled",
}


def sentence(error: ErrorInfo | None) -> str:
    if error is None:
        return "See the project's log for details."
    return f"{error.message} {error.fix}" if error.fix else error.message


def _verify_notice(project: str, result: object) -> Notice:
    missing = len(getattr(result, "missing", ()))
    total = len(getattr(result, "nodes", ()))
    nodes = f"{missing} node types missing" if missing else f"all {total} node types present"
    models = result.models_line() if hasattr(result, "models_line") else ""
    return Notice("info", f"{project}: {nodes}", models, project)


def _import_notice(project: str, result: object) -> Notice:
    # each problem with its cause ("pack X: <error>"), then the node types left out
    failed = [f"{i.kind} {i.name}: {i.detail}" for i in getattr(result, "failures", ())]
    install_error = getattr(result, "install_error", None)
    if install_error is not None:
        failed.append(f"the install: {getattr(install_error, 'message', install_error)}")
    left_out = [
        f"pack {i.name} ({i.detail})"
        for i in getattr(result, "items", ())
        if i.kind == "pack" and i.status == "skipped"
    ]
    name = getattr(result, "project", project)
    if failed or left_out:
        parts = ["Problems: " + "; ".join(failed) + "."] if failed else []
        parts += ["Left out: " + "; ".join(left_out) + "."] if left_out else []
        text = " ".join([*parts, "The project was kept."])
        return Notice("install-failed", f"Imported into '{name}'", text, name)
    text = "Packs installed, workflows saved, downloads queued."
    return Notice("install-done", f"Imported into '{name}'", text, name)


PACK_KINDS = frozenset(
    {Kind.PACK_ADD, Kind.PACK_REMOVE, Kind.PACK_UPDATE, Kind.PACK_ENABLE, Kind.PACK_DISABLE}
)
#: a project's life (issue 14): every success and failure gets one notice
LIFE_FAILED = {
    Kind.UPDATE: "Updating '{p}' failed",
    Kind.ROLLBACK: "Rolling back '{p}' failed",
    Kind.SNAPSHOT: "Taking a snapshot of '{p}' failed",
    Kind.ADOPT: "Adding the existing ComfyUI as '{p}' failed",
    Kind.CACHE_PRUNE: "Cleaning uv's cache failed",
}


def _pack_words(change: object) -> str:
    """One pack change (``lifecycle.packs.PackChange``) in a few words."""
    action, pack = getattr(change, "action", ""), getattr(change, "pack", "")
    before, after = getattr(change, "before", ""), getattr(change, "after", "")
    if action == "add":
        return f"{pack} added" + (f" ({after})" if after else "")
    if action == "update":
        return f"{pack} {before} -> {after}"
    if action in ("remove", "enable", "disable"):
        return f"{pack} {action}d"
    return ""


def _life_done(job: Job) -> Notice | None:
    """The success notice of a lifecycle kind (None: not one)."""
    kind, project, result = job.kind, job.queue, job.result
    if kind is Kind.UPDATE:
        if not getattr(result, "applied", False):
            return Notice("info", f"'{project}' is up to date", "Nothing to update.", project)
        ref = getattr(getattr(result, "plan", None), "comfyui_ref", "") or "the new version"
        way_back = getattr(result, "snapshot_id", "")
        text = f"Now at {ref}; the way back is snapshot {way_back}."
        return Notice("install-done", f"'{project}' is updated", text, project)
    if kind is Kind.ROLLBACK:
        snap = getattr(result, "snapshot_id", "")
        return Notice("info", f"'{project}' is rolled back", f"To snapshot {snap}.", project)
    if kind is Kind.SNAPSHOT:
        snap = getattr(result, "id", "")
        return Notice("info", f"Snapshot of '{project}' taken", f"Snapshot {snap}.", project)
    if kind is Kind.ADOPT:
        name = getattr(result, "project", project)
        text = "Start it from the tray menu or the main window."
        return Notice("install-done", f"'{name}' is added", text, name)
    if kind in PACK_KINDS:
        changes = result if isinstance(result, list | tuple) else [result]
        said = [t for t in (_pack_words(c) for c in changes) if t]
        text = "; ".join(said) + "." if said else "Nothing needed changing."
        return Notice("info", f"Node packs of '{project}' changed", text, project)
    if kind is Kind.CONFIG and hasattr(result, "how"):  # ComfyUI-Manager switched
        state = "on" if getattr(result, "enabled", False) else "off"
        return Notice("info", f"ComfyUI-Manager is {state} in '{project}'", "", project)
    if kind is Kind.CACHE_PRUNE:
        freed = getattr(result, "freed", 0) / 1e6
        return Notice("info", "uv's cache cleaned", f"{freed:.1f} MB freed.")
    return None


def notice_for(job: Job) -> Notice | None:
    """The one notice a finished job deserves, from its kind and outcome (None: say nothing)."""
    kind, project = job.kind, job.queue
    if job.outcome == "succeeded":
        if kind in INSTALL_VERBS:
            return Notice(
                "install-done",
                f"'{project}' is {INSTALL_VERBS[kind]}",
                "Start it from the tray menu or the main window.",
                project,
            )
        if kind is Kind.LAUNCH:
            url = getattr(job.result, "url", "") or ""
            where = f"ComfyUI is running at {url}." if url else "ComfyUI is running."
            return Notice("ready", f"'{project}' is ready", where, project)
        if kind is Kind.VERIFY:
            return _verify_notice(project, job.result)
        if kind is Kind.IMPORT:
            return _import_notice(project, job.result)
        return _life_done(job)
    if job.outcome != "failed":
        return None  # cancelled: the user knows
    text = sentence(job.error)
    if kind in INSTALL_VERBS:
        return Notice("install-failed", f"Installing '{project}' failed", text, project)
    if kind is Kind.LAUNCH:
        return Notice("crashed", f"'{project}' did not start", text, project)
    if kind is Kind.VERIFY:
        return Notice("info", f"Checking the nodes of {project} failed", text, project)
    if kind is Kind.IMPORT:
        return Notice("install-failed", f"Importing into '{project}' failed", text, project)
    if kind in (Kind.STOP, Kind.DELETE, Kind.CONFIG):
        return Notice("info", f"{job.title} failed", text, project)
    if kind in LIFE_FAILED:
        where = "" if kind is Kind.CACHE_PRUNE else project
        return Notice("install-failed", LIFE_FAILED[kind].format(p=project), text, where)
    if kind in PACK_KINDS:
        return Notice("install-failed", f"{job.title} failed", text, project)
    return None


class Outcomes(QObject):
    """See the module docstring."""

    deleted = Signal(str)
    handled = Signal(object)

    def __init__(self, app: AppContext, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.launch_errors: dict[str, ErrorInfo] = {}  # shown by the details pane
        self._launch_failed_at: dict[str, float] = {}
        app.jobs.job_finished.connect(self._on_jobs_job_finished)

    def launch_failed_since(self, project: str, seconds: float) -> bool:
        """A launch of ``project`` failed within the last ``seconds`` (it said so already)."""
        at = self._launch_failed_at.get(project)
        return at is not None and time.monotonic() - at < seconds

    @Slot(object)
    def _on_jobs_job_finished(self, job: Job) -> None:
        project = job.queue
        if job.kind is Kind.LAUNCH:
            if job.outcome == "failed" and job.error is not None:
                self.launch_errors[project] = job.error
                self._launch_failed_at[project] = time.monotonic()
            else:
                self.launch_errors.pop(project, None)
        elif job.kind in (Kind.CREATE, Kind.DELETE):
            self.launch_errors.pop(project, None)
        notice = notice_for(job)
        if notice is not None:
            self.app.notifier.notify(notice)
        elif job.outcome == "failed" and job.error is not None:
            log.info("%s failed: %s", job.title, job.error.message)
        if job.kind is Kind.LAUNCH and job.outcome == "succeeded":
            url = getattr(job.result, "url", "") or ""
            if url and self.app.core.settings.open_browser_on_start:
                self.app.open_url(url)
        if job.kind is Kind.DELETE and job.outcome == "succeeded":
            self.deleted.emit(project)
        self.handled.emit(job)
