"""What the window's project actions do: each submits a core function as a job on the project's
queue (never blocking the UI thread) and reacts when the job ends.

Functions take the ``MainWindow`` (typed loosely to avoid an import cycle) so they stay small
and the window keeps one place that handles intents.
"""

from __future__ import annotations

import logging
from typing import Any

from comfymanager.core.errors import Cancelled, ComfyManagerError, ErrorInfo
from comfymanager.core.install import install
from comfymanager.core.jobs import Job
from comfymanager.core.notifier import Notice
from comfymanager.core.progress import CancelToken, Progress, Reporter
from comfymanager.core.run import runs
from comfymanager.ui.dialogs import confirm

log = logging.getLogger(__name__)

Window = Any  # comfymanager.ui.main_window.MainWindow


def _submit(win: Window, project: str, kind: str, title: str, fn: Any) -> Job:
    job: Job = win.app.jobs.submit(project, title, fn)
    win.job_kinds[job.id] = kind
    return job


def new_project(win: Window) -> None:
    from comfymanager.ui.dialogs.new_project import NewProjectDialog

    dialog = NewProjectDialog(win.app, win)
    if dialog.exec() != NewProjectDialog.DialogCode.Accepted or dialog.spec is None:
        return
    create(win, dialog.spec)


def create(win: Window, spec: install.ProjectSpec) -> Job:
    """Submit "create project" for an already validated spec."""
    ctx = win.app.core
    name = spec.name.strip()
    win.app.monitor.set_installing(name, True)

    def job(report: Reporter, cancel: CancelToken) -> install.InstallResult:
        return install.create_project(ctx, spec, report=report, cancel=cancel)

    submitted = _submit(win, name, "create", f"Create project '{name}'", job)
    win.model.update_status(runs.Status(name, "installing"))  # shown at once, not at the next poll
    win.select(name)
    win.launch_errors.pop(name, None)
    return submitted


def repair(win: Window, project: str, *, force: bool) -> Job:
    ctx = win.app.core
    win.app.monitor.set_installing(project, True)
    verb = "Reinstall" if force else "Repair"

    def job(report: Reporter, cancel: CancelToken) -> install.InstallResult:
        return install.install_project(ctx, project, report=report, cancel=cancel, force=force)

    submitted = _submit(win, project, "repair", f"{verb} '{project}'", job)
    win.model.update_status(runs.Status(project, "installing"))
    return submitted


def verify(win: Window, project: str) -> Job:
    """Check the project's node set in its own Python, in the background."""
    from comfymanager.ui.panes import verify_view

    bridge = getattr(win, "verify_bridge", None)
    if bridge is None:
        bridge = win.verify_bridge = verify_view.DownloadBridge(win.app, win)
    job = verify_view.submit_verify(win.app, bridge, project)
    win.job_kinds[job.id] = "verify"
    if project == win.selected():
        win.details.set_row(win.model.get(project), busy=True)  # shows "checking..."
    return job


def launch(win: Window, project: str) -> Job:
    app = win.app
    ctx = app.core
    win.launch_errors.pop(project, None)

    def job(report: Reporter, cancel: CancelToken) -> runs.Status:
        report.progress(Progress(stage="start", message="Starting ComfyUI"))
        st = runs.start(ctx, project)
        app.monitor.poke()
        report.log(f"ComfyUI is starting on port {st.port}")
        report.progress(Progress(stage="wait", message=f"Waiting for ComfyUI on port {st.port}"))
        try:
            return runs.wait_ready(ctx, project, cancel=cancel)
        except Cancelled:
            report.log("Launch cancelled: stopping ComfyUI")
            runs.stop(ctx, project)
            raise
        finally:
            app.monitor.poke()

    return _submit(win, project, "launch", f"Launch '{project}'", job)


def stop(win: Window, project: str) -> Job:
    app = win.app
    ctx = app.core

    def job(report: Reporter, cancel: CancelToken) -> runs.Status:
        report.progress(Progress(stage="stop", message="Stopping ComfyUI"))
        try:
            return runs.stop(ctx, project)
        finally:
            app.monitor.poke()

    return _submit(win, project, "stop", f"Stop '{project}'", job)


def delete(win: Window, project: str) -> Job | None:
    app = win.app
    row = win.model.get(project)
    running = bool(row and row.state in ("running", "starting"))
    folder = str(app.core.paths.projects / project)
    if not confirm.ask_delete(win, project, folder, running):
        return None
    ctx = app.core

    def job(report: Reporter, cancel: CancelToken) -> None:
        install.delete_project(ctx, project, report=report, cancel=cancel)
        app.monitor.poke()

    return _submit(win, project, "delete", f"Delete '{project}'", job)


def on_job_finished(win: Window, job: Job) -> None:
    """Notices, the browser, remembered launch errors: what follows a job's end."""
    app = win.app
    kind = win.job_kinds.pop(job.id, "")
    project = job.queue
    if kind in ("create", "repair"):
        app.monitor.set_installing(project, False)
        if job.outcome == "succeeded":
            app.notifier.notify(
                Notice(
                    "install-done",
                    f"{project} is installed",
                    "Launch it from the project list.",
                    project,
                )
            )
        elif job.outcome == "failed" and job.error is not None:
            app.notifier.notify(
                Notice("install-failed", f"Installing {project} failed", job.error.message, project)
            )
    elif kind == "launch":
        if job.outcome == "succeeded" and isinstance(job.result, runs.Status):
            url = job.result.url or ""
            app.notifier.notify(Notice("ready", f"{project} is running", url, project))
            if app.core.settings.open_browser_on_start and url:
                app.open_url(url)
        elif job.outcome == "failed" and job.error is not None:
            win.launch_errors[project] = job.error
    elif kind == "verify" and job.outcome == "succeeded":
        result = job.result
        bad, total = len(result.missing), len(result.nodes)
        nodes = f"{bad} node types missing" if bad else f"all {total} node types present"
        app.notifier.notify(Notice("info", f"{project}: {nodes}", result.models_line(), project))
    elif kind == "verify" and job.outcome == "failed" and job.error is not None:
        app.notifier.notify(
            Notice("info", f"Checking the nodes of {project} failed", job.error.message, project)
        )
    elif kind == "delete" and job.outcome == "succeeded":
        win.launch_errors.pop(project, None)
        win.log_pane.forget(project)
        win.model.remove(project)
    if job.outcome == "failed" and job.error is not None and kind not in ("launch",):
        log.info("%s failed: %s", job.title, job.error.message)


def running_projects(win: Window) -> list[str]:
    return [
        win.model.row(i).id
        for i in range(win.model.rowCount())
        if win.model.row(i).state in ("running", "starting")
    ]


def request_quit(win: Window) -> None:
    """Ask about running projects, stop them if wanted, then finish (waits for the stops)."""
    if win.quitting:
        return
    running = running_projects(win)
    if running:
        answer = confirm.ask_quit(win, running)
        if answer == confirm.CANCEL:
            return
        if answer == confirm.STOP:
            win.quitting = True
            win.app.jobs.cancel_all()
            for pid in running:
                win._quit_jobs.add(stop(win, pid).id)
            win.statusBar().showMessage("Stopping ComfyUI before quitting...")
            return
    win.quitting = True
    win.finish_quit()


def error_info(exc: ComfyManagerError) -> ErrorInfo:
    return ErrorInfo.from_exception(exc)
