"""A failure shown the same way everywhere: the message, the fix, and expandable details."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QToolButton, QVBoxLayout, QWidget

from comfymanager.core.errors import ErrorInfo


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
