"""Unexpected exceptions become a copyable dialog; the app keeps running.

``install_excepthook(log_setup, log_path)`` replaces ``sys.excepthook`` (which PySide6 also
calls for exceptions raised in slots and virtual methods) and ``threading.excepthook``. Each
unexpected exception is logged at CRITICAL with its traceback, then shown in a ``CrashDialog``
on the GUI thread: the error, the traceback and recent log lines in a read-only text box with a
"Copy details" button, and the log file with "Open logs folder". Everything shown or copied
went through the log redaction first, so tokens never end up in a bug report.

Further errors while the dialog is open are appended to it instead of stacking new windows.
"""

from __future__ import annotations

import logging
import platform
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import QCoreApplication, QObject, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from comfymanager import __version__
from comfymanager.core.log import LogSetup, current_setup, redact

log = logging.getLogger(__name__)

RECENT_LINES = 200
FolderOpener = Callable[[Path], bool]


def open_folder(folder: Path) -> bool:
    """Show ``folder`` in the system file manager."""
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))


def environment_line() -> str:
    return (
        f"comfymanager {__version__}, Python {platform.python_version()}, "
        f"PySide6 {pyside_version}, {platform.platform()}"
    )


def format_exception(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> tuple[str, str]:
    """(one-line summary, full traceback), both redacted."""
    summary = "".join(traceback.format_exception_only(exc_type, exc)).strip()
    details = "".join(traceback.format_exception(exc_type, exc, tb))
    return redact(summary), redact(details)


class CrashDialog(QDialog):
    """Shows one or more unexpected errors with copyable details.

    Signals:
        copied(str): the report text was put on the clipboard.
    """

    copied = Signal(str)

    def __init__(
        self,
        summary: str,
        details: str,
        recent_log: Sequence[str],
        log_path: Path,
        parent: QWidget | None = None,
        opener: FolderOpener = open_folder,
    ) -> None:
        super().__init__(parent)
        self._errors: list[tuple[str, str]] = []
        self._recent_log = list(recent_log)
        self._log_path = Path(log_path)
        self._opener = opener
        self.setWindowTitle("comfymanager: unexpected error")
        self.setMinimumSize(640, 420)

        icon = QLabel()
        icon.setPixmap(
            self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxCritical).pixmap(40, 40)
        )
        self.headline = QLabel()
        self.headline.setWordWrap(True)
        self.headline.setTextFormat(Qt.TextFormat.PlainText)
        self.headline.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        hint = QLabel(
            "comfymanager is still running, but the last action may not have finished. "
            "If this keeps happening, copy the details below into a bug report."
        )
        hint.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
        text = QVBoxLayout()
        text.addWidget(self.headline)
        text.addWidget(hint)
        top.addLayout(text, 1)

        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.log_label = QLabel(f"Log file: {self._log_path}")
        self.log_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.log_label.setWordWrap(True)

        self.copy_button = QPushButton("Copy details")
        self.open_logs_button = QPushButton("Open logs folder")
        self.close_button = QPushButton("Close")
        self.close_button.setDefault(True)
        self.copy_button.clicked.connect(self._on_copy_button_clicked)
        self.open_logs_button.clicked.connect(self._on_open_logs_button_clicked)
        self.close_button.clicked.connect(self.accept)
        buttons = QHBoxLayout()
        buttons.addWidget(self.copy_button)
        buttons.addWidget(self.open_logs_button)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.details, 1)
        layout.addWidget(self.log_label)
        layout.addLayout(buttons)
        self.add_error(summary, details)

    @property
    def error_count(self) -> int:
        return len(self._errors)

    def add_error(self, summary: str, details: str, recent_log: Sequence[str] = ()) -> None:
        """Append another error (the dialog was still open when it happened)."""
        self._errors.append((redact(summary), redact(details)))
        if recent_log:
            self._recent_log = list(recent_log)
        first = self._errors[0][0]
        more = len(self._errors) - 1
        self.headline.setText(first if not more else f"{first}\n(and {more} more error(s))")
        self.details.setPlainText(self.report_text())

    def report_text(self) -> str:
        """What "Copy details" copies: environment, every traceback, recent log, log path."""
        parts = [environment_line(), ""]
        for index, (_, details) in enumerate(self._errors, start=1):
            if len(self._errors) > 1:
                parts.append(f"--- error {index} ---")
            parts.append(details.rstrip())
            parts.append("")
        if self._recent_log:
            parts.append(f"--- recent log ({len(self._recent_log)} lines) ---")
            parts.extend(line.rstrip() for line in self._recent_log)
            parts.append("")
        parts.append(f"Log file: {self._log_path}")
        return redact("\n".join(parts))

    def _on_copy_button_clicked(self) -> None:
        text = self.report_text()
        QGuiApplication.clipboard().setText(text)
        self.copy_button.setText("Copied")
        self.copied.emit(text)

    def _on_open_logs_button_clicked(self) -> None:
        folder = self._log_path.parent
        if not self._opener(folder):
            log.warning("Could not open the logs folder %s", folder)


class CrashHandler(QObject):
    """Receives unexpected exceptions from any thread and shows them on the GUI thread.

    Signals:
        crashed(str, str): summary and redacted traceback of an unexpected exception, emitted
            on the GUI thread after it was logged and just before the dialog shows it.
    """

    crashed = Signal(str, str)
    _reported = Signal(str, str)

    def __init__(
        self,
        log_setup: LogSetup | None,
        log_path: Path,
        parent: QObject | None = None,
        opener: FolderOpener = open_folder,
        show_dialog: bool = True,
    ) -> None:
        super().__init__(parent)
        self._log_setup = log_setup
        self._log_path = Path(log_path)
        self._opener = opener
        self._show_dialog = show_dialog
        self.dialog: CrashDialog | None = None
        self._previous_sys: Callable[..., object] | None = None
        self._previous_threading: Callable[..., object] | None = None
        self._reported.connect(self._on_self_reported, Qt.ConnectionType.QueuedConnection)

    def install(self) -> None:
        self._previous_sys = sys.excepthook
        self._previous_threading = threading.excepthook
        sys.excepthook = self.handle_exception
        threading.excepthook = self._handle_thread_exception

    def uninstall(self) -> None:
        if sys.excepthook == self.handle_exception and self._previous_sys is not None:
            sys.excepthook = self._previous_sys
        if threading.excepthook == self._handle_thread_exception and self._previous_threading:
            threading.excepthook = self._previous_threading

    def handle_exception(
        self,
        exc_type: type[BaseException],
        exc: BaseException,
        tb: TracebackType | None,
        where: str = "",
    ) -> None:
        """Log the exception and queue the dialog; safe to call from any thread."""
        if issubclass(exc_type, KeyboardInterrupt):
            log.info("Interrupted; quitting")
            app = QCoreApplication.instance()
            if app is not None:
                app.quit()
            return
        try:
            summary, details = format_exception(exc_type, exc, tb)
            if where:
                details = f"In {where}:\n{details}"
            log.critical(
                "Unexpected error%s", f" in {where}" if where else "", exc_info=(exc_type, exc, tb)
            )
            if sys.stderr is not None:  # windowed Windows builds have no stderr
                print(details, file=sys.stderr, end="")
            self._reported.emit(summary, details)
        except Exception:  # the crash handler itself must never raise
            sys.__excepthook__(exc_type, exc, tb)

    def _handle_thread_exception(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit or args.exc_value is None:
            return
        name = args.thread.name if args.thread is not None else "a worker thread"
        self.handle_exception(args.exc_type, args.exc_value, args.exc_traceback, where=name)

    def _recent_log(self) -> list[str]:
        setup = self._log_setup or current_setup()
        return setup.ring.lines(last=RECENT_LINES) if setup is not None else []

    def _on_self_reported(self, summary: str, details: str) -> None:
        self.crashed.emit(summary, details)
        if not self._show_dialog:
            return
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.add_error(summary, details, self._recent_log())
        else:
            if self.dialog is not None:
                self.dialog.deleteLater()
            self.dialog = CrashDialog(
                summary, details, self._recent_log(), self._log_path, opener=self._opener
            )
            self.dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)
        self.dialog.show()
        self.dialog.raise_()
        self.dialog.activateWindow()


def install_excepthook(
    log_setup: LogSetup | None,
    log_path: Path | None = None,
    *,
    parent: QObject | None = None,
    opener: FolderOpener = open_folder,
) -> CrashHandler:
    """Route unexpected exceptions (main thread, slots, other threads) to the crash dialog.

    Keep the returned handler alive (give it a ``parent`` or store it) for as long as the app
    runs; ``uninstall()`` puts the previous hooks back.
    """
    if log_path is None:
        log_path = log_setup.log_file if log_setup is not None else Path("comfymanager.log")
    handler = CrashHandler(log_setup, log_path, parent=parent, opener=opener)
    handler.install()
    return handler
