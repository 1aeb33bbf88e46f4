"""Project > Settings: one project's port, listen, launch arguments, GPUs and extra environment.

The dialog shows the project's saved values (``core/configure.settings_of``), checks each field
with ``core/configure``'s own rules when Save is pressed (an error shows beside its field and
nothing is saved), and hands the caller a ``ConfigChange``; the window saves it as a "config"
operation on the project's queue (``ProjectActions.configure``). Changes apply at the next start.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from comfymanager.core import configure
from comfymanager.core.context import CoreContext
from comfymanager.core.errors import ComfyManagerError
from comfymanager.core.projects import ProjectStore
from comfymanager.core.run import ports


@dataclass(frozen=True)
class ConfigChange:
    """What ``configure.configure`` is called with; ``port`` None means automatic."""

    port: int | None
    listen: bool
    launch_args: str
    gpu: str
    env: dict[str, str] = field(default_factory=dict)
    unset_env: tuple[str, ...] = ()
    manager: bool | None = None  # ComfyUI-Manager switched on/off (None: left as it was)


def _error_label(name: str) -> QLabel:
    label = QLabel()
    label.setObjectName(name)
    label.setWordWrap(True)
    label.setStyleSheet("color: #b3261e;")
    label.setAccessibleName("Problem")
    label.hide()
    return label


class ProjectSettingsDialog(QDialog):
    """After ``exec()`` returns Accepted, ``change`` holds the checked values. No signals."""

    def __init__(
        self, ctx: CoreContext, project_id: str, running: bool, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.project_id = project_id
        self.change: ConfigChange | None = None
        store = ProjectStore(ctx.paths)
        project = store.load(project_id)
        self._comfyui = store.dirs(project_id).comfyui
        self._manager_was = bool(project.manager)
        self.current = configure.settings_of(project)
        self.setWindowTitle(f"Settings of '{project_id}'")

        # port: automatic (sticky) or a fixed number
        self.port_auto = QRadioButton(self._auto_text())
        self.port_auto.setObjectName("portAuto")
        self.port_fixed = QRadioButton("Fixed:")
        self.port_fixed.setObjectName("portFixed")
        group = QButtonGroup(self)
        group.addButton(self.port_auto)
        group.addButton(self.port_fixed)
        self.port = QSpinBox()
        self.port.setObjectName("port")
        self.port.setRange(ports.PORT_MIN, ports.PORT_MAX)
        self.port.setAccessibleName("Fixed port")
        fixed = self.current.port
        self.port.setValue(fixed or self.current.last_port or ctx.settings.port_min)
        (self.port_fixed if fixed is not None else self.port_auto).setChecked(True)
        self.port.setEnabled(fixed is not None)
        self.port_fixed.toggled.connect(self.port.setEnabled)
        port_row = QVBoxLayout()
        port_row.setContentsMargins(0, 0, 0, 0)
        port_row.addWidget(self.port_auto)
        fixed_row = QHBoxLayout()
        fixed_row.addWidget(self.port_fixed)
        fixed_row.addWidget(self.port)
        fixed_row.addStretch(1)
        port_row.addLayout(fixed_row)
        self.port_error = _error_label("portError")
        port_row.addWidget(self.port_error)

        self.listen = QCheckBox("Listen on the network (other computers can open ComfyUI)")
        self.listen.setObjectName("listen")
        self.listen.setChecked(self.current.listen)

        self.args = QLineEdit(shlex.join(self.current.launch_args))
        self.args.setObjectName("launchArgs")
        self.args.setPlaceholderText("for example: --lowvram --preview-method auto")
        self.args.setAccessibleName("Launch arguments")
        self.args_error = _error_label("argsError")

        self.gpu = QLineEdit(self.current.gpu)
        self.gpu.setObjectName("gpu")
        self.gpu.setPlaceholderText("all GPUs (or numbers such as 0 or 0,1)")
        self.gpu.setAccessibleName("GPUs")
        self.gpu_error = _error_label("gpuError")

        self.env = QPlainTextEdit("\n".join(f"{k}={v}" for k, v in self.current.env.items()))
        self.env.setObjectName("env")
        self.env.setPlaceholderText("one KEY=VALUE a line")
        self.env.setAccessibleName("Extra environment")
        self.env.setFixedHeight(self.fontMetrics().lineSpacing() * 5 + 12)
        self.env_error = _error_label("envError")

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        port_box = QWidget()
        port_box.setLayout(port_row)
        form.addRow("Port:", port_box)
        form.addRow("", self.listen)
        form.addRow("Launch arguments:", _stack(self.args, self.args_error))
        form.addRow("GPUs:", _stack(self.gpu, self.gpu_error))
        form.addRow("Extra environment:", _stack(self.env, self.env_error))
        # ComfyUI-Manager: its own job (lifecycle.manager.set_manager), a snapshot first
        self.manager = QCheckBox("ComfyUI-Manager inside this project (installs or removes it)")
        self.manager.setObjectName("manager")
        self.manager.setChecked(bool(project.manager))
        self.manager.setEnabled(not project.in_place)
        form.addRow("", self.manager)

        note = "Changes apply the next time ComfyUI starts."
        if running:
            note = "ComfyUI is running: changes apply after you stop and start it again."
        self.note = QLabel(note)
        self.note.setObjectName("applyNote")
        self.note.setWordWrap(True)

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.note)
        layout.addWidget(buttons)
        self.setMinimumWidth(self.fontMetrics().horizontalAdvance("M") * 48)

    def _auto_text(self) -> str:
        last = self.current.last_port
        if last is None:
            return "Automatic (a free port, kept for this project)"
        return f"Automatic: {last} (kept for this project while it is free)"

    # --- checking ------------------------------------------------------------------------------
    def _show(self, label: QLabel, exc: ComfyManagerError | None) -> bool:
        if exc is None:
            label.clear()
            label.hide()
            return True
        label.setText(f"{exc.message} {exc.fix}".strip())
        label.show()
        return False

    def _port_value(self) -> int | None:
        if self.port_auto.isChecked():
            return None
        port = configure.parse_port(self.port.value())
        others, _ = ProjectStore(self.ctx.paths).list()
        owner = next((p.id for p in others if p.id != self.project_id and p.port == port), None)
        if owner is not None:
            raise ComfyManagerError(
                f"Port {port} is already the fixed port of project '{owner}'.",
                "Give this project another port, or leave it automatic.",
            )
        return port

    def _env_value(self) -> dict[str, str]:
        lines = [ln.strip() for ln in self.env.toPlainText().splitlines() if ln.strip()]
        return configure.check_env(configure.parse_env_pairs(lines))

    def check(self) -> ConfigChange | None:
        """Every field checked; errors shown beside their field; None when any is refused."""
        ok = True
        port: int | None = None
        try:
            port = self._port_value()
            ok &= self._show(self.port_error, None)
        except ComfyManagerError as exc:
            ok &= self._show(self.port_error, exc)
        try:
            configure.parse_launch_args(self.args.text(), configure.known_flags(self._comfyui))
            ok &= self._show(self.args_error, None)
        except ComfyManagerError as exc:
            ok &= self._show(self.args_error, exc)
        gpu = ""
        try:
            gpu = configure.parse_gpu(self.gpu.text())
            ok &= self._show(self.gpu_error, None)
        except ComfyManagerError as exc:
            ok &= self._show(self.gpu_error, exc)
        env: dict[str, str] = {}
        try:
            env = self._env_value()
            ok &= self._show(self.env_error, None)
        except ComfyManagerError as exc:
            ok &= self._show(self.env_error, exc)
        if not ok:
            return None
        return ConfigChange(
            port=port,
            listen=self.listen.isChecked(),
            launch_args=self.args.text(),
            gpu=gpu,
            env=env,
            unset_env=tuple(k for k in self.current.env if k not in env),
            manager=self._manager_value(),
        )

    def _manager_value(self) -> bool | None:
        wanted = self.manager.isChecked()
        return wanted if wanted != self._manager_was else None

    def accept(self) -> None:
        change = self.check()
        if change is None:
            self.adjustSize()
            return
        self.change = change
        super().accept()


def _stack(field_widget: QWidget, error: QLabel) -> QWidget:
    box = QWidget()
    col = QVBoxLayout(box)
    col.setContentsMargins(0, 0, 0, 0)
    col.setSpacing(2)
    col.addWidget(field_widget)
    col.addWidget(error)
    return box
