"""About comfymanager: versions (app, Python, Qt/PySide6, uv), folders and the licence.

The uv version comes from running ``uv --version`` as a coroutine on the window's event loop
(``ui/background.run_coroutine``: a small subprocess wait is I/O, no thread needed); the label
says "checking..." until it answers, and the process is killed if the dialog closes first. "Copy
details" puts the whole text on the clipboard for bug reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform
import subprocess

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt, Slot, qVersion
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from comfymanager import __version__
from comfymanager.core import process
from comfymanager.core.errors import ErrorInfo, ExternalToolError
from comfymanager.core.install.envs import find_uv
from comfymanager.core.paths import DataPaths, resolve_data_root
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.background import run_coroutine
from comfymanager.ui.resources import app_icon

log = logging.getLogger(__name__)

LICENCE = "GPL-3.0-or-later. comfymanager is free software; it comes with no warranty."


UV_TIMEOUT_S = 20.0


async def uv_version(uv: str | None = None, timeout: float = UV_TIMEOUT_S) -> str:
    """The first line ``uv --version`` prints. Killed when it outlasts ``timeout`` (an
    ``ExternalToolError``) or when the task is cancelled (the dialog closed)."""
    argv = [uv or find_uv(), "--version"]
    flags = subprocess.CREATE_NO_WINDOW if hasattr(subprocess, "CREATE_NO_WINDOW") else 0
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=process.clean_env(),
        creationflags=flags,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        raise ExternalToolError(
            f"'{argv[0]} --version' did not answer within {timeout:.0f} s.",
            "Check that uv runs from a terminal.",
        ) from None
    finally:
        if proc.returncode is None:  # timed out or cancelled: do not leave it running
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
    lines = out.decode("utf-8", errors="replace").splitlines()
    return lines[0].strip() if proc.returncode == 0 and lines else "uv (no version answer)"


class AboutDialog(QDialog):
    """No signals."""

    def __init__(self, parent: QWidget | None = None, app: AppContext | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About comfymanager")
        self.setWindowIcon(app_icon())
        paths = app.core.paths if app else DataPaths(resolve_data_root())
        title = QLabel(f"<h2>comfymanager {__version__}</h2>")
        title.setAccessibleName(f"comfymanager {__version__}")
        blurb = QLabel("Builds, runs and keeps apart your ComfyUI projects.")
        blurb.setWordWrap(True)
        form = QFormLayout()
        self.rows: dict[str, str] = {
            "Python": platform.python_version(),
            "Qt": f"{qVersion()} (PySide6 {pyside_version})",
            "System": platform.platform(),
            "Data folder": str(paths.root),
            "Log folder": str(paths.logs),
        }
        for label, value in self.rows.items():
            field = QLabel(value)
            field.setWordWrap(True)
            field.setAccessibleName(label)
            field.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(label, field)
        self.uv_label = QLabel("checking...")
        self.uv_label.setAccessibleName("uv version")
        form.addRow("uv", self.uv_label)
        self.licence = QLabel(LICENCE)
        self.licence.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        copy = QPushButton("&Copy details")
        copy.setAccessibleName("Copy details")
        buttons.addButton(copy, QDialogButtonBox.ButtonRole.ActionRole)
        copy.clicked.connect(self._on_copy_clicked)
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(blurb)
        layout.addLayout(form)
        layout.addWidget(self.licence)
        layout.addWidget(buttons)
        self.uv_task = run_coroutine(
            self, uv_version(), self._on_uv_result, self._on_uv_error, name="uv --version"
        )

    def details_text(self) -> str:
        lines = [f"comfymanager {__version__}"]
        lines += [f"Python {self.rows['Python']}", f"Qt {self.rows['Qt']}"]
        lines += [f"{k}: {v}" for k, v in self.rows.items() if k not in ("Python", "Qt")]
        lines.append(f"uv: {self.uv_label.text()}")
        return "\n".join(lines)

    @Slot()
    def _on_copy_clicked(self) -> None:
        QGuiApplication.clipboard().setText(self.details_text())

    def _on_uv_result(self, version: object) -> None:
        self.uv_label.setText(str(version))

    def _on_uv_error(self, error: ErrorInfo) -> None:
        self.uv_label.setText(f"not found ({error.message})")
