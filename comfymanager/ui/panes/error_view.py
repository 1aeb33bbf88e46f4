"""A failure shown the same way everywhere: the message, the fix, and expandable details.

``ErrorView`` sits inside a pane or dialog; ``show_error_box`` is the same message + fix + details
as a window of its own (for failures with no pane to show them, e.g. ``show_open_failed``: no
program opened a folder or an address).
"""

from __future__ import annotations

import logging
import sys

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QApplication,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from comfymanager.core.errors import ErrorInfo

log = logging.getLogger(__name__)


class ErrorView(QWidget):
    """Hidden until ``show_error``. No signals."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.setAccessibleName("Error message")
        self.toggle = QToolButton()
        self.toggle.setText("Show details")
        self.toggle.setCheckable(True)
        self.toggle.setAccessibleName("Show error details")
        self.toggle.toggled.connect(self._on_toggle_toggled)
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.details.setAccessibleName("Error details")
        self.details.setVisible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.message)
        layout.addWidget(self.toggle, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.details)
        self.setVisible(False)

    def show_error(self, message: str, fix: str | None = None, details: str = "") -> None:
        text = message if not fix else f"{message} {fix}"
        self.message.setText(text)
        self.details.setPlainText(details)
        self.toggle.setVisible(bool(details))
        self.toggle.setChecked(False)
        self.setVisible(True)

    def show_info(self, info: ErrorInfo) -> None:
        self.show_error(info.message, info.fix, info.details)

    def clear(self) -> None:
        self.message.clear()
        self.details.clear()
        self.setVisible(False)

    def text(self) -> str:
        return self.message.text()

    def _on_toggle_toggled(self, on: bool) -> None:
        self.details.setVisible(on)
        self.toggle.setText("Hide details" if on else "Show details")


def show_error_box(
    title: str, info: ErrorInfo, *, copy: str = "", parent: QWidget | None = None
) -> QMessageBox:
    """``info`` in a message box over ``parent`` (the active window by default), not modal;
    ``copy``: text a "Copy" button puts on the clipboard (an address, a path)."""
    box = QMessageBox(
        QMessageBox.Icon.Warning, title, info.message, parent=parent or QApplication.activeWindow()
    )
    box.setObjectName("error-box")
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if info.fix:
        box.setInformativeText(info.fix)
    if info.details:
        box.setDetailedText(info.details)
    if copy:
        button = box.addButton("Copy", QMessageBox.ButtonRole.ActionRole)
        button.setObjectName("copy")
        button.setToolTip(copy)
        button.clicked.connect(lambda: QGuiApplication.clipboard().setText(copy))
    box.addButton(QMessageBox.StandardButton.Close)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


def show_open_failed(kind: str, target: str) -> QMessageBox:
    """No program opened ``target`` ("url": a web address, "path": a folder or file)."""
    if kind == "url":
        title = "Cannot open the browser"
        message = (
            f"No web browser opened {target}: this system has no default browser set, or it "
            "could not be started."
        )
        fix = "Copy the address and open it in a browser yourself; setting a default web "
        fix += "browser in the system settings makes this button work."
    else:
        title = "Cannot open the folder"
        message = (
            f"No file manager opened {target}: this system has no program set to open "
            "folders, or it could not be started."
        )
        fix = "Copy the path and open it yourself; "
        fix += (
            "'xdg-mime default <file manager>.desktop inode/directory' sets one."
            if sys.platform.startswith("linux")
            else "setting a default file manager makes this button work."
        )
    log.warning("%s", message)
    return show_error_box(title, ErrorInfo("NoHandler", message, fix, ""), copy=target)
