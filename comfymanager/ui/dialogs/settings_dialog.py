"""Settings: folders, ports, downloads, defaults for new projects, mirrors and tokens.

Three tabs. General: data folder (read-only: chosen at start), model store, port range, parallel
downloads, default ComfyUI source/version/torch backend/launch arguments, close to tray, start
with the system, open the browser on start. Mirrors: every remote endpoint; one that an
environment variable overrides for this run is shown read-only with a note, and is never written
to ``settings.json``. Tokens: Hugging Face and CivitAI, kept in the OS keyring (the backend is
named; without a usable keyring they are kept for this session only, never in a file).

OK checks everything first: each problem is shown under its field and the dialog stays open.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shlex

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from comfymanager.core import autostart
from comfymanager.core.errors import ComfyManagerError
from comfymanager.core.install import sources
from comfymanager.core.models.hosts import Endpoints
from comfymanager.core.settings import ENV_OVERRIDES, Settings, backends_for
from comfymanager.core.settings_check import URL_FIELDS, field_errors
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.dialogs.new_project import BACKEND_HELP
from comfymanager.ui.theme import state_color

log = logging.getLogger(__name__)

TOKENS = {"huggingface": "Hugging Face token", "civitai": "CivitAI API key"}
DATA_ROOT_NOTE = (
    "The data folder is chosen when comfymanager starts: --data-dir, the "
    "COMFYMANAGER_DATA_DIR variable, or portable.txt next to the program."
)
STORE_NOTE = (
    "Models are shared by every project. An existing ComfyUI models folder is used in place: "
    "nothing is moved or copied. Applies at once (not while downloads are unfinished); a running "
    "ComfyUI sees it after it restarts."
)


def _note(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    font = label.font()
    font.setPointSizeF(font.pointSizeF() * 0.9)
    label.setFont(font)
    return label


def _scrolled(page: QWidget) -> QScrollArea:
    """Pages scroll instead of squashing their rows when messages appear."""
    area = QScrollArea()
    area.setWidget(page)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setMinimumWidth(page.sizeHint().width() + area.verticalScrollBar().sizeHint().width())
    area.setMinimumHeight(min(page.sizeHint().height(), page.fontMetrics().height() * 40))
    return area


class SettingsDialog(QDialog):
    """The settings window. No signals; ``accept`` saves (see the module docstring)."""

    def __init__(self, app: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.setWindowTitle("Settings")
        self.settings = app.core.settings
        self._edits: dict[str, QLineEdit] = {}
        self._errors: dict[str, QLabel] = {}
        self._tab_of: dict[str, int] = {}
        self.tabs = QTabWidget()
        self.tabs.addTab(_scrolled(self._general_tab()), "&General")
        self.tabs.addTab(_scrolled(self._mirrors_tab()), "&Mirrors")
        self.tabs.addTab(_scrolled(self._tokens_tab()), "&Tokens")
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.buttons = buttons
        self.error = QLabel()
        self.error.setWordWrap(True)
        self._style_error(self.error)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.error)
        layout.addWidget(buttons)

    # ---- building ---------------------------------------------------------------------------

    def _row(
        self, form: QFormLayout, label: str, name: str, widget: QWidget, note: str = ""
    ) -> None:
        box = QWidget()
        col = QVBoxLayout(box)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(widget)
        if note:
            col.addWidget(_note(note))
        error = QLabel()
        error.setWordWrap(True)
        self._style_error(error)
        col.addWidget(error)
        self._errors[name] = error
        self._tab_of[name] = self.tabs.count()
        widget.setAccessibleName(label.replace("&", ""))
        form.addRow(label, box)

    def _style_error(self, label: QLabel) -> None:
        label.setStyleSheet(f"color: {state_color('failed').name()};")
        label.setAccessibleName("Error")
        label.hide()

    def _line(self, form: QFormLayout, label: str, name: str, value: str, note: str = "") -> None:
        edit = QLineEdit(value)
        self._edits[name] = edit
        var = ENV_OVERRIDES.get(name)
        if var and os.environ.get(var):
            edit.setReadOnly(True)
            extra = f"Set by the environment variable {var} for this run; it is not saved."
            note = f"{note} {extra}".strip()
        self._row(form, label, name, edit, note)

    def _general_tab(self) -> QWidget:
        s = self.settings
        page = QWidget()
        form = QFormLayout(page)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        # read-only, and it looks it: a label (selectable) with a button that opens it
        data = QWidget()
        data_row = QHBoxLayout(data)
        data_row.setContentsMargins(0, 0, 0, 0)
        self.data_label = QLabel(str(self.app.core.paths.root))
        self.data_label.setObjectName("dataFolder")
        self.data_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.data_label.setWordWrap(True)
        open_data = QPushButton("&Open")
        open_data.setAccessibleName("Open the data folder")
        open_data.clicked.connect(lambda: self.app.open_path(self.app.core.paths.root))
        data_row.addWidget(self.data_label, 1)
        data_row.addWidget(open_data)
        self._row(form, "Data folder", "data_root", data, DATA_ROOT_NOTE)

        self._line(form, "Model &store", "store_dir", s.store_dir, STORE_NOTE)
        store = self._edits["store_dir"]
        store.setPlaceholderText(str(self.app.core.paths.default_store))
        browse = QPushButton("&Browse...")
        browse.setAccessibleName("Browse for the model store folder")
        browse.setEnabled(not store.isReadOnly())
        browse.clicked.connect(self._on_browse_clicked)
        form.addRow("", browse)

        ports = QWidget()
        row = QHBoxLayout(ports)
        row.setContentsMargins(0, 0, 0, 0)
        self.port_min = self._spin(1024, 65535, s.port_min, "Lowest port")
        self.port_max = self._spin(1024, 65535, s.port_max, "Highest port")
        row.addWidget(self.port_min)
        row.addWidget(QLabel("to"))
        row.addWidget(self.port_max)
        row.addStretch(1)
        self._row(
            form,
            "&Ports for ComfyUI",
            "ports",
            ports,
            "Each running project gets a free port from this range.",
        )
        self.parallel = self._spin(1, 16, s.parallel_downloads, "Parallel downloads")
        self._row(form, "Parallel &downloads", "parallel_downloads", self.parallel)
        self.snapshots_keep = self._spin(1, 1000, s.snapshots_keep, "Snapshots kept per project")
        self._row(
            form,
            "Snapshots &kept",
            "snapshots_keep",
            self.snapshots_keep,
            "Per project; one is taken before every change, the oldest are removed.",
        )
        self.update_hours = self._spin(0, 720, s.update_check_hours, "Check for updates every")
        self.update_hours.setSuffix(" h")
        self.update_hours.setSpecialValueText("only when asked")
        self._row(
            form,
            "Check for &updates every",
            "update_check_hours",
            self.update_hours,
            "ComfyUI's releases and each pack's, read in the background (nothing is installed).",
        )

        self._line(form, "Default ComfyUI &source", "comfyui_source", s.comfyui_source)
        self._line(form, "Default ComfyUI &version", "default_comfyui_ref", s.default_comfyui_ref)
        self._edits["default_comfyui_ref"].setPlaceholderText("latest release")
        # the same descriptions as New project, only the backends this system can use
        self.backend = QComboBox()
        self.backend.addItem("Auto: the build for the graphics card found", "auto")
        for b in backends_for():
            if b != "auto":
                self.backend.addItem(f"{b}: {BACKEND_HELP.get(b, b)}", b)
        if self.backend.findData(s.default_torch_backend) < 0 and s.default_torch_backend:
            self.backend.addItem(s.default_torch_backend, s.default_torch_backend)
        self.backend.setCurrentIndex(max(0, self.backend.findData(s.default_torch_backend)))
        self._row(
            form,
            "Default torch &backend",
            "default_torch_backend",
            self.backend,
            "Used for new projects; Auto looks at the graphics card when a project is made.",
        )
        self._line(
            form,
            "Default launch &arguments",
            "default_launch_args",
            shlex.join(s.default_launch_args),
            "Added every time a project starts, e.g. --lowvram",
        )

        self.close_to_tray = QCheckBox("&Closing the window keeps comfymanager in the tray")
        self.close_to_tray.setChecked(s.close_to_tray)
        self.start_with_system = QCheckBox("S&tart comfymanager when I log in")
        self.start_with_system.setChecked(s.start_with_system)
        self.open_browser = QCheckBox("&Open ComfyUI in the browser when a project starts")
        self.open_browser.setChecked(s.open_browser_on_start)
        for name, box in (
            ("close_to_tray", self.close_to_tray),
            ("start_with_system", self.start_with_system),
            ("open_browser_on_start", self.open_browser),
        ):
            self._row(form, "", name, box)
            box.setAccessibleName(box.text().replace("&", ""))
        from comfymanager.ui.panes.disk_view import CacheLine  # uv's cache (issue 14)

        self.uv_cache = CacheLine(self.app)
        form.addRow("uv cache:", self.uv_cache)
        return page

    def _spin(self, low: int, high: int, value: int, name: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(low, high)
        spin.setValue(value)
        spin.setAccessibleName(name)
        return spin

    def _mirrors_tab(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        s = self.settings
        for name, (label, _required, _downloads) in URL_FIELDS.items():
            note = "Empty means PyPI." if name == "package_index_url" else ""
            if name == "node_db_source":
                note = "ComfyUI-Manager's data: a URL or a local folder."
            self._line(form, label, name, str(getattr(s, name)), note)
            if name == "torch_index_url":
                self._line(
                    form,
                    "PyTorch index for AMD on Windows",
                    "rocm_windows_index_url",
                    s.rocm_windows_index_url,
                    "AMD's own ROCm wheels, used for the rocm backend on Windows.",
                )
            if name == "package_index_url":
                self._line(
                    form,
                    "Extra package indexes",
                    "extra_index_urls",
                    " ".join(s.extra_index_urls),
                    "Separate several with spaces.",
                )
        return page

    def _tokens_tab(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        secrets = self.app.secrets
        self.keyring_note = QLabel(secrets.describe())
        self.keyring_note.setWordWrap(True)
        if not secrets.usable():
            # said once: where tokens go instead, and that nothing is written in plain text
            self.keyring_note.setText(
                "Warning: No system keyring is available. Tokens entered here are kept for this "
                "session only and never written to a plain-text file; to keep one, set "
                "HF_TOKEN or CIVITAI_API_TOKEN in your environment."
            )
            self.keyring_note.setStyleSheet(f"color: {state_color('failed').name()};")
        form.addRow(self.keyring_note)
        self._tokens: dict[str, str] = {}
        for name, label in TOKENS.items():
            value = secrets.get(name) or ""
            self._tokens[name] = value
            edit = QLineEdit(value)
            edit.setEchoMode(QLineEdit.EchoMode.Password)
            edit.setPlaceholderText("not set")
            source = secrets.source(name)
            env_note = ""
            if source is not None and source.kind == "environment":  # read-only, never saved
                edit.setReadOnly(True)
                edit.clear()  # its value stays in the environment, not on screen
                edit.setPlaceholderText(f"set {source.label}")
                env_note = f"In use: {source.label}. Unset it to use a token saved here."
            self._edits[f"token:{name}"] = edit
            self._row(form, label, f"token:{name}", edit, env_note)
        self.show_tokens = QCheckBox("S&how tokens")
        self.show_tokens.setAccessibleName("Show tokens")
        self.show_tokens.toggled.connect(self._on_show_tokens_toggled)
        form.addRow("", self.show_tokens)
        form.addRow(
            _note(
                "A Hugging Face token is needed for gated models (accept the licence on the model "
                "page first); CivitAI needs an API key for some downloads."
            )
        )
        return page

    # ---- reading and checking ----------------------------------------------------------------

    def _text(self, name: str) -> str:
        return self._edits[name].text().strip()

    def candidate(self) -> tuple[Settings, dict[str, str]]:
        """The settings as entered, and an error sentence per field name."""
        errors: dict[str, str] = {}
        values: dict[str, object] = {
            "store_dir": self._text("store_dir"),
            "port_min": self.port_min.value(),
            "port_max": self.port_max.value(),
            "parallel_downloads": self.parallel.value(),
            "snapshots_keep": self.snapshots_keep.value(),
            "update_check_hours": self.update_hours.value(),
            "comfyui_source": self._text("comfyui_source"),
            "default_comfyui_ref": self._text("default_comfyui_ref"),
            "default_torch_backend": str(self.backend.currentData() or "auto"),
            "close_to_tray": self.close_to_tray.isChecked(),
            "start_with_system": self.start_with_system.isChecked(),
            "open_browser_on_start": self.open_browser.isChecked(),
            "extra_index_urls": self._text("extra_index_urls").split(),
        }
        try:
            values["default_launch_args"] = shlex.split(self._text("default_launch_args"))
        except ValueError as exc:
            errors["default_launch_args"] = f"These arguments cannot be read: {exc}."
        for name in URL_FIELDS:
            values[name] = self._text(name)
        values["rocm_windows_index_url"] = self._text("rocm_windows_index_url")
        if not str(values["rocm_windows_index_url"]).startswith(("http://", "https://")):
            errors["rocm_windows_index_url"] = (
                "The PyTorch index for AMD on Windows must start with http:// or https://."
            )
        if not self._edits["comfyui_source"].isReadOnly():
            try:
                sources.validate_source(str(values["comfyui_source"]))
            except ComfyManagerError as exc:
                errors["comfyui_source"] = str(exc)
        candidate = dataclasses.replace(self.settings, **values)  # type: ignore[arg-type]
        return candidate, {**field_errors(candidate), **errors}

    def show_errors(self, errors: dict[str, str]) -> None:
        for name, label in self._errors.items():
            label.setText(errors.get(name, ""))
            label.setVisible(name in errors)
        if errors:
            first = next(n for n in self._errors if n in errors)
            self.tabs.setCurrentIndex(self._tab_of[first])
            self.error.setText("Some settings need fixing (see the messages under the fields).")
            self.adjustSize()
        self.error.setVisible(bool(errors))

    # ---- saving ------------------------------------------------------------------------------

    def accept(self) -> None:
        new, errors = self.candidate()
        old_store = self.app.core.store
        store_moves = new.store_path(self.app.core.paths) != old_store
        if not errors and store_moves:
            errors = self._store_blockers()
        if not errors:
            errors = self._apply_autostart(new.start_with_system)
        self.show_errors(errors)
        if errors:
            return
        for f in dataclasses.fields(Settings):
            setattr(self.settings, f.name, getattr(new, f.name))
        try:
            self.app.core.save_settings()
        except ComfyManagerError as exc:
            self.show_errors({"data_root": str(exc)})
            return
        self.settings = self.app.core.settings
        self.app.downloads.set_parallel(self.settings.parallel_downloads)
        self.app.downloads.endpoints = Endpoints.from_settings(self.settings)
        if store_moves:
            self._switch_store()
        self._save_tokens()
        log.info("settings saved")
        super().accept()

    def _store_blockers(self) -> dict[str, str]:
        """Why the store cannot change now: downloads still writing into (or waiting for) it."""
        from comfymanager.core.models.queue import DONE, FAILED

        unfinished = [
            i for i in self.app.downloads.items() if i.state not in (DONE, FAILED, "cancelled")
        ]
        if not unfinished:
            return {}
        n = len(unfinished)
        return {
            "store_dir": f"{n} download{'s are' if n != 1 else ' is'} not finished and "
            f"write{'s' if n == 1 else ''} into the current store, so it cannot change now. "
            "Let them finish, or cancel them in the activity pane, then change it."
        }

    def _switch_store(self) -> None:
        """Apply a new model store at once: the download manager's target and index, and every
        project's extra_model_paths.yaml (a running ComfyUI reads it when it starts)."""
        from comfymanager.core.install.install import write_model_paths
        from comfymanager.core.models.index import ModelIndex
        from comfymanager.core.projects import ProjectStore

        ctx = self.app.core
        self.app.downloads.store = ctx.store
        self.app.downloads.index = ModelIndex.load(ctx.store)
        store = ProjectStore(ctx.paths)
        projects, _broken = store.list()
        for p in projects:
            try:
                write_model_paths(ctx, store.dirs(p.id))
            except (OSError, ComfyManagerError) as exc:  # the next install/repair writes it
                log.warning("%s: extra_model_paths.yaml not rewritten (%s)", p.id, exc)
        log.info("model store is now %s", ctx.store)

    def _apply_autostart(self, wanted: bool) -> dict[str, str]:
        try:
            if wanted != autostart.is_enabled():
                (autostart.enable if wanted else autostart.disable)()
        except ComfyManagerError as exc:
            return {"start_with_system": str(exc)}
        return {}

    def _save_tokens(self) -> None:
        for name in TOKENS:
            value = self._text(f"token:{name}")
            if self._edits[f"token:{name}"].isReadOnly() or value == self._tokens.get(name, ""):
                continue
            if value:
                self.app.secrets.set(name, value)
            else:
                self.app.secrets.delete(name)

    # ---- slots -------------------------------------------------------------------------------

    def _on_browse_clicked(self) -> None:
        start = self._text("store_dir") or str(self.app.core.paths.default_store)
        folder = QFileDialog.getExistingDirectory(self, "Choose the model store folder", start)
        if folder:
            self._edits["store_dir"].setText(folder)

    def _on_show_tokens_toggled(self, shown: bool) -> None:
        mode = QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password
        for name in TOKENS:
            self._edits[f"token:{name}"].setEchoMode(mode)
