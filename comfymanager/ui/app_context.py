"""The application context: built once in ``app.py`` and passed to every window, pane and dialog.

No hidden singletons: whatever a widget needs comes from here. Tests build one with
``build_app_context`` on a temporary data root and may replace ``open_url``/``open_path`` (the
only things that would leave the test: the browser and the file manager). When nothing on the
system opens them (``QDesktopServices.openUrl`` returns False: no default browser or file manager)
the user gets an error that names the cause and offers the address or path to copy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QSettings, QUrl
from PySide6.QtGui import QDesktopServices

from comfymanager.core.context import CoreContext
from comfymanager.core.jobs import JobManager
from comfymanager.core.log import LogSetup
from comfymanager.core.models.manager import DownloadManager
from comfymanager.core.notifier import Notifier
from comfymanager.core.run.monitor import RunMonitor
from comfymanager.core.secrets import Secrets
from comfymanager.ui.intents import Intents
from comfymanager.ui.update_watch import UpdateWatch


def desktop_open_url(url: str) -> None:
    """Open ``url`` in the default browser; say so (with the address to copy) if none did."""
    if not QDesktopServices.openUrl(QUrl(url)):
        from comfymanager.ui.panes.error_view import show_open_failed

        show_open_failed("url", url)


def desktop_open_path(path: Path) -> None:
    """Open ``path`` in the file manager; say so (with the path to copy) if none did."""
    if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
        from comfymanager.ui.panes.error_view import show_open_failed

        show_open_failed("path", str(path))


@dataclass
class AppContext:
    core: CoreContext
    jobs: JobManager
    monitor: RunMonitor
    downloads: DownloadManager
    secrets: Secrets
    notifier: Notifier
    intents: Intents
    qsettings: QSettings
    log: LogSetup | None = None
    updates: UpdateWatch | None = None  # "Update available" per project (issue 14)
    open_url: Callable[[str], None] = field(default=desktop_open_url)
    open_path: Callable[[Path], None] = field(default=desktop_open_path)


def build_app_context(
    core: CoreContext, log: LogSetup | None = None, secrets: Secrets | None = None
) -> AppContext:
    """Everything the UI needs; the monitor thread is started here."""
    secrets = secrets or Secrets()
    monitor = RunMonitor(core)
    monitor.start()
    updates = UpdateWatch(core)
    updates.start()  # the first pass a few seconds later; the last answers are shown at once
    return AppContext(
        core=core,
        jobs=JobManager(),
        monitor=monitor,
        downloads=DownloadManager.from_context(core, secrets),
        secrets=secrets,
        notifier=Notifier(),
        intents=Intents(),
        qsettings=QSettings(str(core.paths.root / "ui.ini"), QSettings.Format.IniFormat),
        log=log,
        updates=updates,
    )


def shutdown(app: AppContext, timeout_ms: int = 30000) -> None:
    """Stop background work (not running ComfyUIs: those are asked about before)."""
    if app.updates is not None:
        app.updates.stop()
    app.jobs.cancel_all()
    app.jobs.wait_all(timeout_ms)
    # background look-ups too: none may end after the widgets that started them are gone
    from comfymanager.core.workers import wait_workers

    wait_workers(min(timeout_ms, 10000))
    app.downloads.shutdown()
    app.monitor.stop()
    app.qsettings.sync()
