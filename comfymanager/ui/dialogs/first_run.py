"""The first-run welcome: this machine's graphics hardware, where data lives, free space, and a
first step (create a project, import a workflow, or later).

Hardware detection (``core.hardware.detect``, no torch) runs on a worker thread: the page shows
"Detecting..." and then the summary. The chosen step is emitted as an intent after the dialog
has closed, so the next dialog opens on its own. Closing it in any way sets
``settings.first_run_done``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from comfymanager.core.errors import ComfyManagerError, ErrorInfo
from comfymanager.core.install import hardware
from comfymanager.core.install.hardware import Hardware
from comfymanager.core.models.part import free_space
from comfymanager.core.paths import long_paths_problem
from comfymanager.core.progress import format_bytes
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.background import run_background
from comfymanager.ui.resources import app_icon

log = logging.getLogger(__name__)

WORKFLOW_FILTER = "Workflows and images (*.json *.png *.webp *.flac *.mp4 *.webm);;All files (*)"
LOW_SPACE = 20 * 1024**3  # a project with torch is ~5-10 GB; one model 2-20 GB
VENDOR_NAMES = {
    "nvidia": "NVIDIA",
    "amd": "AMD",
    "intel": "Intel",
    "apple": "Apple",
    "cpu": "CPU only",
}


def describe_hardware(hw: Hardware) -> str:
    """One sentence a ComfyUI user understands: the card, its driver, the PyTorch build."""
    if hw.vendor == "cpu":
        text = (
            f"No supported graphics card found ({hw.name}): ComfyUI will run on the processor, "
            f"which is slow. PyTorch build: {hw.suggested_backend}."
        )
    else:
        vendor = VENDOR_NAMES.get(hw.vendor, hw.vendor)
        name = hw.name if hw.name.lower().startswith(vendor.lower()) else f"{vendor} {hw.name}"
        driver = f", driver {hw.driver}" if hw.driver else ""
        text = f"{name}{driver}. PyTorch build: {hw.suggested_backend}."
    return f"{text} {hw.note}" if hw.note else text


class FirstRunDialog(QDialog):
    """No signals; the choice is emitted through ``app.intents`` (new_project, import_files).

    ``choose_files`` (the file picker) can be replaced, e.g. by tests.
    """

    def __init__(self, app: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.choice: Callable[[], None] | None = None
        self.choose_files: Callable[[], list[str]] = self._pick_files
        self.setWindowTitle("Welcome to comfymanager")
        self.setWindowIcon(app_icon())
        self.setMinimumWidth(self.fontMetrics().averageCharWidth() * 72)
        heading = QLabel("<h2>Welcome to comfymanager</h2>")
        intro = QLabel(
            "Each project is its own ComfyUI with its own Python, PyTorch and custom nodes, so "
            "one project can never break another. Models are shared between projects."
        )
        intro.setWordWrap(True)
        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.hardware_label = self._value("Detecting...", "Graphics hardware")
        form.addRow("Graphics hardware:", self.hardware_label)
        paths = app.core.paths
        self.data_label = self._value(str(paths.root), "Data folder")
        form.addRow("Projects and settings:", self.data_label)
        store = app.core.store
        self.store_label = self._value(str(store), "Model store")
        form.addRow("Models:", self.store_label)
        self.space_label = self._value(self._space_text(paths.root, store), "Free space")
        form.addRow("Free space:", self.space_label)
        self.long_paths_label: QLabel | None = None
        long_paths = long_paths_problem()
        if long_paths:  # Windows with the 260-character limit still on
            self.long_paths_label = self._value(long_paths, "Long paths")
            self.long_paths_label.setTextInteractionFlags(
                Qt.TextInteractionFlag.TextSelectableByMouse
            )
            form.addRow("Long paths:", self.long_paths_label)

        self.create_button = QPushButton("&Create a project")
        self.create_button.setDefault(True)
        self.import_button = QPushButton("&Import a workflow...")
        self.later_button = QPushButton("&Later")
        buttons = QHBoxLayout()
        for button, name in (
            (self.create_button, "Create a project"),
            (self.import_button, "Import a workflow"),
            (self.later_button, "Later"),
        ):
            button.setAccessibleName(name)
            buttons.addWidget(button)
        buttons.insertStretch(2, 1)
        self.create_button.clicked.connect(self._on_create_button_clicked)
        self.import_button.clicked.connect(self._on_import_button_clicked)
        self.later_button.clicked.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addWidget(intro)
        layout.addLayout(form)
        hint = QLabel(
            "Importing a workflow (a .json file, or an image made by ComfyUI) creates a project "
            "with the custom nodes and models it needs."
        )
        hint.setWordWrap(True)
        layout.addWidget(hint)
        layout.addStretch(1)
        layout.addLayout(buttons)
        run_background(
            self,
            lambda _report, _cancel: hardware.detect(),
            self._on_detect_result,
            self._on_detect_error,
            name="detect",
        )

    def _value(self, text: str, name: str) -> QLabel:
        label = QLabel(text)
        label.setWordWrap(True)
        label.setAccessibleName(name)
        return label

    def _space_text(self, root: Path, store: Path) -> str:
        where = (
            [("", root)]
            if _same_volume(root, store)
            else [(" on the data folder's drive", root), (" on the model store's drive", store)]
        )
        parts = []
        for suffix, path in where:
            free = free_space(path)
            text = f"{format_bytes(free) if free is not None else 'unknown'} free{suffix}"
            if free is not None and free < LOW_SPACE:
                text += " (low: a project needs 5-10 GB, each model 2-20 GB)"
            parts.append(text)
        return "; ".join(parts)

    def done(self, result: int) -> None:
        settings = self.app.core.settings
        if not settings.first_run_done:
            settings.first_run_done = True
            try:
                self.app.core.save_settings()
            except (ComfyManagerError, OSError) as exc:
                log.warning("could not save that the welcome was shown: %s", exc)
        super().done(result)
        choice, self.choice = self.choice, None
        if choice is not None:
            choice()

    def _pick_files(self) -> list[str]:
        from comfymanager.ui.import_flow import pick_files  # the one picker: last folder or home

        return pick_files(self.app, self, WORKFLOW_FILTER)

    # ---- slots -------------------------------------------------------------------------------

    def _on_create_button_clicked(self) -> None:
        self.choice = self.app.intents.new_project.emit
        self.accept()

    def _on_import_button_clicked(self) -> None:
        files = self.choose_files()
        if not files:
            return
        self.choice = lambda: self.app.intents.import_files.emit(files)
        self.accept()

    def _on_detect_result(self, hw: object) -> None:
        assert isinstance(hw, Hardware)
        self.hardware = hw
        self.hardware_label.setText(describe_hardware(hw))
        self.adjustSize()

    def _on_detect_error(self, error: ErrorInfo) -> None:
        self.hardware_label.setText(f"Could not detect ({error.message}); CPU is assumed.")


def _same_volume(a: Path, b: Path) -> bool:
    def dev(p: Path) -> int | None:
        while not p.exists() and p.parent != p:
            p = p.parent
        try:
            return p.stat().st_dev
        except OSError:
            return None

    da = dev(a)
    return da is not None and da == dev(b)
