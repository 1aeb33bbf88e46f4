"""The GUI start-up: context, logging, single instance, window, tray, first-run dialog.

``run_gui(args)`` is called by ``__main__`` when no command is given. ``--smoke-test`` builds
everything (window, each dialog once, the tray object) offscreen, runs the event loop for about
half a second and tears it all down: packaging uses it to prove the bundle starts.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SMOKE_MS = 500
_T0 = time.monotonic()


def _file_open_filter(window: Any) -> Any:
    """Routes macOS "open with" events (QEvent.FileOpen) to the import intent."""
    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtGui import QFileOpenEvent

    class FileOpenFilter(QObject):
        def eventFilter(self, obj: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.FileOpen and isinstance(event, QFileOpenEvent):
                path = event.file()
                if path:
                    window.app.intents.import_files.emit([path])
                    return True
            return False

    return FileOpenFilter(window)


def dock_reopens_window(os_name: str, activated: bool, window_visible: bool) -> bool:
    """macOS: a click on the Dock icon activates the app; with the window hidden (closed to the
    tray) that click should bring it back, as for any Mac app. Elsewhere activation is not a
    request to show anything."""
    return os_name == "darwin" and activated and not window_visible


def _dock_filter(window: Any, os_name: str | None = None) -> Any:
    """Shows the hidden window when the app is activated from the Dock (macOS only)."""
    from PySide6.QtCore import QEvent, QObject

    system = os_name or sys.platform

    class DockFilter(QObject):
        def eventFilter(self, obj: QObject, event: QEvent) -> bool:
            activated = event.type() == QEvent.Type.ApplicationActivate
            if dock_reopens_window(system, activated, window.isVisible()):
                window.app.intents.show_window.emit()
            return False

    return DockFilter(window)


def _app_nap_guard(app_ctx: Any) -> Any:
    """Opts out of macOS App Nap while downloads run (a no-op elsewhere)."""
    from comfymanager.core.power import BusyActivity

    guard = BusyActivity("Downloading models")

    def update(*_args: object) -> None:
        guard.set_busy(app_ctx.downloads.running() > 0)

    app_ctx.downloads.item_changed.connect(update)
    app_ctx.downloads.all_done.connect(update)
    return guard


def _smoke_dialogs(app_ctx: Any, window: Any) -> None:
    """Construct every dialog once (never exec) so a missing import shows up here."""
    from comfymanager.ui.dialogs.new_project import NewProjectDialog

    dialogs: list[Any] = [NewProjectDialog(app_ctx, window)]
    for module, name, needs_app in (
        ("comfymanager.ui.dialogs.settings_dialog", "SettingsDialog", True),
        ("comfymanager.ui.dialogs.first_run", "FirstRunDialog", True),
        ("comfymanager.ui.dialogs.about", "AboutDialog", False),
    ):
        cls = getattr(importlib.import_module(module), name)
        dialogs.append(cls(app_ctx, window) if needs_app else cls(window))
    for d in dialogs:
        d.reject()
        d.deleteLater()
    # the git fallback must load in the bundle (libgit2 is a native library PyInstaller copies)
    from comfymanager.core.install import git_lib

    log.info("smoke: pygit2 with libgit2 %s", git_lib.libgit2_version())


def _start_cleanup(app_ctx: Any) -> None:
    """Interrupted deletes and stale temp files are removed on a worker (``core/cleanup.py``)."""
    from comfymanager.core import cleanup

    core = app_ctx.core
    try:
        if not cleanup.find_leftovers(core.paths, core.store, sizes=False):  # a few listings
            return
    except OSError as exc:
        log.info("no clean-up at start: %s", exc)
        return
    from comfymanager.core.operations import Kind

    app_ctx.jobs.submit(
        Kind.CLEANUP,
        "cleanup",
        lambda report, cancel: cleanup.sweep(core.paths, core.store, report, cancel),
    )


def start_hidden(minimized: bool, tray_available: bool, files: list[str]) -> bool:
    """``--minimized`` (how "Start with the system" starts us) keeps the window hidden with the
    tray icon as the way in; without a tray, or with files to import, the window shows."""
    return minimized and tray_available and not files


def run_gui(args: argparse.Namespace) -> int:
    smoke = bool(getattr(args, "smoke_test", False))
    files = [str(Path(f).resolve()) for f in (getattr(args, "open", None) or [])]
    if smoke:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from comfymanager.platform_check import qt_platform_problem

    problem = qt_platform_problem()  # Qt would abort the process with no word on stderr
    if problem:
        print(problem, file=sys.stderr)
        return 1

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from comfymanager.core.context import build_core_context
    from comfymanager.core.log import setup_logging, shutdown_logging

    core = build_core_context(getattr(args, "data_dir", None))
    log_setup = setup_logging(core.paths.logs)
    qapp = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(qapp, QApplication)
    qapp.setApplicationName("comfymanager")
    qapp.setOrganizationName("comfymanager")
    qapp.setDesktopFileName("comfymanager")
    qapp.setQuitOnLastWindowClosed(False)

    from comfymanager.ui.resources import app_icon
    from comfymanager.ui.single_instance import SingleInstance, server_name

    qapp.setWindowIcon(app_icon())
    from comfymanager.ui.main_thread_gc import MainThreadGC

    collector = MainThreadGC(qapp)  # cycles are freed on this thread, never on a worker's
    single = SingleInstance()
    if not smoke and not single.listen(server_name(core.paths.root), files=files):
        log.info(
            "another comfymanager runs on %s; handed over %d file(s)", core.paths.root, len(files)
        )
        return 0

    import qasync

    from comfymanager.ui.app_context import build_app_context, shutdown
    from comfymanager.ui.crash import install_excepthook
    from comfymanager.ui.main_window import MainWindow
    from comfymanager.ui.theme import apply_color_scheme

    crash = install_excepthook(log_setup, parent=qapp)
    apply_color_scheme(qapp, "system")
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    app_ctx = build_app_context(core, log_setup)
    _start_cleanup(app_ctx)
    window = MainWindow(app_ctx)
    qapp.installEventFilter(_file_open_filter(window))
    dock = _dock_filter(window)
    nap_guard = _app_nap_guard(app_ctx)
    from comfymanager.ui.notifications import NotificationRouter
    from comfymanager.ui.tray import Tray

    tray = Tray(app_ctx, window)
    window.tray = tray
    if tray.available() and not smoke:
        tray.show()
    # notices: a tray balloon where there is a tray; the window's status bar shows them too
    window.notifications = NotificationRouter(
        app_ctx, tray if tray.available() else None, parent=window, outcomes=window.outcomes
    )

    def on_activated(more: list[str]) -> None:
        app_ctx.intents.show_window.emit()
        if more:
            app_ctx.intents.import_files.emit(list(more))

    single.activated.connect(on_activated)
    hidden = start_hidden(
        bool(getattr(args, "minimized", False)), tray.available() and not smoke, files
    )
    if hidden:
        log.info("started in the tray (--minimized); the tray icon opens the window")
        # the activation that comes with a login launch is not a Dock click: listen a bit later
        QTimer.singleShot(2000, lambda: qapp.installEventFilter(dock))
    else:
        qapp.installEventFilter(dock)
        window.show()
    if os.environ.get("COMFYMANAGER_STARTUP_PROBE"):
        shown = "window-hidden" if hidden else "window-shown"
        QTimer.singleShot(0, lambda: print(f"{shown} {time.monotonic() - _T0:.4f}", flush=True))
    if smoke:
        _smoke_dialogs(app_ctx, window)
        QTimer.singleShot(SMOKE_MS, window.finish_quit)
    else:
        if not hidden and not core.settings.first_run_done and not window.model.ids():
            from comfymanager.ui.dialogs.first_run import FirstRunDialog

            QTimer.singleShot(0, lambda: FirstRunDialog(app_ctx, window).open())
        if files:
            QTimer.singleShot(0, lambda: app_ctx.intents.import_files.emit(files))
    code = 0
    with loop:
        try:
            loop.run_forever()
        finally:
            if not window.quit_done:
                shutdown(app_ctx)
    nap_guard.set_busy(False)
    single.close()
    crash.uninstall()
    window.deleteLater()
    qapp.processEvents()
    collector.stop()
    shutdown_logging()
    return code
