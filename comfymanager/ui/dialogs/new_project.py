"""The "New project" dialog: name, ComfyUI version, and advanced options.

The version list (``git ls-remote``) and the GPU detection run in workers; the dialog stays usable
meanwhile (an empty version means "latest release", decided by the install). ``accept`` runs
``validate_spec`` on the UI thread so mistakes show in the dialog; the caller submits the job with
``dialog.spec``.
"""

from __future__ import annotations

import contextlib
import logging
import shlex

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from comfymanager.core.errors import ComfyManagerError, ErrorInfo
from comfymanager.core.install import hardware, sources
from comfymanager.core.install.install import ProjectSpec, validate_spec
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import ProjectStore, validate_name
from comfymanager.core.run import ports
from comfymanager.core.settings import backends_for
from comfymanager.core.workers import Worker
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.background import run_background
from comfymanager.ui.panes.error_view import ErrorView

log = logging.getLogger(__name__)

LATEST = ""
BACKEND_HELP = {
    "cpu": "CPU only (slow, works everywhere)",
    "cu126": "NVIDIA CUDA 12.6",
    "cu128": "NVIDIA CUDA 12.8",
    "cu130": "NVIDIA CUDA 13.0",
    "rocm": "AMD ROCm",
    "xpu": "Intel Arc (XPU)",
    "pypi": "PyPI default wheels (macOS)",
    "none": "Do not install torch",
}


class NewProjectDialog(QDialog):
    """Signals: ``versions_loaded`` / ``hardware_detected`` are internal. After ``exec()``
    returns Accepted, ``spec`` holds the validated ``ProjectSpec``."""

    def __init__(self, app: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.spec: ProjectSpec | None = None
        self.refs: sources.RemoteRefs | None = None
        self.hardware: hardware.Hardware | None = None
        self._workers: list[Worker] = []
        self.setWindowTitle("New project")
        settings = app.core.settings

        self.name = QLineEdit()
        self.name.setPlaceholderText("for example: flux-tests")
        self.name.setAccessibleName("Project name")
        self.name.textChanged.connect(self._on_name_text_changed)
        self.name_error = QLabel()
        # one line under the field: a wrapped label in a form row got too little height and
        # its text ran over the field (name problems are short sentences)
        self.name_error.setWordWrap(False)
        self.name_error.setAccessibleName("Name problem")

        self.version = QComboBox()
        self.version.setEditable(True)
        self.version.setAccessibleName("ComfyUI version")
        self.version.setToolTip("A release tag, a branch or a commit; type one to use it.")
        self.version.addItem("Latest release (looking up...)", LATEST)
        self.version_note = QLabel("Listing versions...")
        self.version_note.setWordWrap(True)
        self.version_note.setAccessibleName("ComfyUI versions")
        self.version_note.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)

        self.source = QLineEdit(settings.comfyui_source)
        self.source.setAccessibleName("ComfyUI source")
        self.source.setToolTip("A git URL or a local ComfyUI repository.")
        self.source.editingFinished.connect(self._load_versions)
        self.torch = QComboBox()
        self.torch.setAccessibleName("Torch backend")
        self.torch.addItem("Auto (detecting the GPU...)", "auto")
        for b in backends_for():  # only what has wheels for this OS
            if b != "auto":
                self.torch.addItem(f"{b}: {BACKEND_HELP.get(b, b)}", b)
        default = settings.default_torch_backend
        self.torch.setCurrentIndex(max(0, self.torch.findData(default)))
        self.fixed_port = QCheckBox("Fixed port")
        self.fixed_port.setAccessibleName("Use a fixed port")
        self.port = QSpinBox()
        self.port.setRange(ports.PORT_MIN, ports.PORT_MAX)  # the one port rule
        self.port.setValue(settings.port_min)
        self.port.setEnabled(False)
        self.port.setAccessibleName("Port number")
        self.fixed_port.toggled.connect(self.port.setEnabled)
        self.listen = QCheckBox("Listen on the network")
        self.listen.setAccessibleName("Listen on the network")
        self.listen_warning = QLabel(
            "Other computers on your network can then use this ComfyUI without a password."
        )
        self.listen_warning.setWordWrap(True)
        self.listen_warning.setVisible(False)
        self.listen.toggled.connect(self.listen_warning.setVisible)
        self.manager = QCheckBox("ComfyUI-Manager inside the project")
        self.manager.setToolTip(
            "Installed the way this ComfyUI version expects, under the torch pin; packs it adds "
            "show in the Node packs tab and the next snapshot."
        )
        self.args = QLineEdit()
        self.args.setPlaceholderText("for example: --lowvram --preview-method auto")
        self.args.setAccessibleName("Extra launch arguments")

        self.toggle = QToolButton()
        self.toggle.setText("Advanced options")
        self.toggle.setCheckable(True)
        self.toggle.setAccessibleName("Show advanced options")
        self.toggle.toggled.connect(self._on_toggle_toggled)

        self.error = ErrorView()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.create_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.create_button.setText("Create")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        # one form, so every label lines up; the advanced rows are shown or hidden in place
        form = QFormLayout()
        form.addRow("Name:", self.name)
        form.addRow("", self.name_error)
        form.addRow("ComfyUI version:", self.version)
        form.addRow("", self.version_note)
        form.addRow("", self.toggle)
        first_advanced = form.rowCount()
        form.addRow("ComfyUI source:", self.source)
        form.addRow("Torch backend:", self.torch)
        port_row = QHBoxLayout()
        port_row.addWidget(self.fixed_port)
        port_row.addWidget(self.port, 1)
        form.addRow("Port:", port_row)
        form.addRow("", self.listen)
        form.addRow("", self.listen_warning)
        form.addRow("Extra launch arguments:", self.args)
        form.addRow("", self.manager)
        self.form = form
        self.advanced_rows = range(first_advanced, form.rowCount())
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        # the dialog grows with a note that wraps (``_fit``: never squeezed over the row below)
        self.setMinimumWidth(self.fontMetrics().horizontalAdvance("M") * 44)
        self._on_toggle_toggled(False)
        self._on_name_text_changed("")
        self._load_versions()
        self._detect_hardware()

    def _on_toggle_toggled(self, on: bool) -> None:
        for row in self.advanced_rows:
            self.form.setRowVisible(row, on)
        self.listen_warning.setVisible(on and self.listen.isChecked())
        self._fit()

    def _fit(self) -> None:
        """Height for the wrapped texts at the current width (a top-level window does not
        follow its labels' height-for-width by itself)."""
        layout = self.layout()
        if layout is None:
            return
        layout.activate()
        # a form row takes a wrapped label's size hint, not its height at the row's width
        note = self.version_note
        note.setFixedHeight(note.heightForWidth(max(note.width(), 1)))
        layout.activate()
        width = self.width()
        if self.isVisible() and self.screen() is not None:  # wide enough for its fields
            avail = self.screen().availableGeometry().width()
            width = max(width, min(layout.sizeHint().width(), int(avail * 0.9)))
        need = layout.totalHeightForWidth(width)
        if need > 0 and (need, width) != (self.height(), self.width()):
            self.resize(width, need)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._fit()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        note = self.version_note
        if event.oldSize().width() != event.size().width() and note.isVisible():
            QTimer.singleShot(0, self, self._fit)  # narrower: more lines; wider: fewer

    def _set_note(self, text: str) -> None:
        self.version_note.setText(text)
        self._fit()

    # --- background look-ups -------------------------------------------------------------------
    def _load_versions(self) -> None:
        source = self.source.text().strip()
        self._set_note("Listing versions...")

        def job(report: Reporter, cancel: CancelToken) -> sources.RemoteRefs:
            return sources.list_remote(source, cancel)

        self._workers.append(
            run_background(
                self,
                job,
                self._on_versions_succeeded,
                self._on_versions_failed,
                name="lookup:list versions",
            )
        )

    def _detect_hardware(self) -> None:
        def job(report: Reporter, cancel: CancelToken) -> hardware.Hardware:
            return hardware.detect()

        self._workers.append(
            run_background(self, job, self._on_hardware_succeeded, name="lookup:detect hardware")
        )

    def _on_versions_succeeded(self, refs: object) -> None:
        assert isinstance(refs, sources.RemoteRefs)
        self.refs = refs
        typed = self.version.currentText() if self.version.currentIndex() != 0 else ""
        self.version.clear()
        latest = refs.latest_release()
        head = refs.head_branch or "default branch"
        self.version.addItem(f"Latest release ({latest or head})", LATEST)
        for tag in refs.releases():
            self.version.addItem(tag, tag)
        for branch in sorted(refs.branches, key=lambda b: (b != refs.head_branch, b)):
            self.version.addItem(f"{branch} (branch)", branch)
        if typed:
            self.version.setEditText(typed)
        n, b = len(refs.releases()), len(refs.branches)
        self._set_note(
            f"{n} release{'' if n == 1 else 's'}, {b} branch{'' if b == 1 else 'es'}. "
            "You can also type a commit."
        )

    def _on_versions_failed(self, info: object) -> None:
        assert isinstance(info, ErrorInfo)
        self.version.setItemText(0, "Latest release")
        self._set_note(
            f"Could not list versions: {info.message} You can still type a tag, branch or commit."
        )

    def _on_hardware_succeeded(self, hw: object) -> None:
        assert isinstance(hw, hardware.Hardware)
        self.hardware = hw
        self.torch.setItemText(0, f"Auto \u2014 detected: {hw.summary}")

    # --- validation ----------------------------------------------------------------------------
    def _on_name_text_changed(self, text: str) -> None:
        problem = ""
        try:
            name = validate_name(text)
            ProjectStore(self.app.core.paths).check_free(name)  # also a folder or case twin
        except ComfyManagerError as exc:
            problem = exc.message if text.strip() else ""
            if not text.strip():
                problem = "Give the project a name."
        self.name_error.setText(problem)
        self.create_button.setEnabled(not problem)

    def selected_ref(self) -> str:
        text = self.version.currentText().strip()
        i = self.version.findText(text)
        if i >= 0:
            return str(self.version.itemData(i) or "")
        return text.split(" ")[0] if text else LATEST

    def build_spec(self) -> ProjectSpec:
        try:
            args = tuple(shlex.split(self.args.text()))
        except ValueError as exc:
            raise ComfyManagerError(
                f"The extra launch arguments cannot be read: {exc}.",
                "Check the quotes in the extra launch arguments.",
            ) from None
        return ProjectSpec(
            name=self.name.text().strip(),
            comfyui_source=self.source.text().strip(),
            comfyui_ref=self.selected_ref(),
            torch_backend=str(self.torch.currentData() or ""),
            port=self.port.value() if self.fixed_port.isChecked() else None,
            listen_network=self.listen.isChecked(),
            launch_args=args,
        )

    def accept(self) -> None:
        try:
            spec = self.build_spec()
            validate_spec(self.app.core, spec)
        except ComfyManagerError as exc:
            self.error.show_info(ErrorInfo.from_exception(exc))
            return
        self.spec = spec
        self._cancel_workers()
        super().accept()

    def reject(self) -> None:
        self._cancel_workers()
        super().reject()

    def _cancel_workers(self) -> None:
        for w in self._workers:
            with contextlib.suppress(RuntimeError):  # already deleted with its thread
                w.cancel()
        self._workers.clear()
