"""The import plan dialog: what the workflow needs, before anything is installed.

Packs table (with a candidate combo or a git URL field where the user must decide), models
table (with a URL field / suggestions for unknown sources, and a folder combo where the folder is
unknown; a picked suggestion that names a folder fills it in), totals (download size against free
space, red when it does not fit), warnings, the target ("Create project" or "Add to project"),
an optional online look-up, and Create / Cancel. After ``accepted``, ``decision`` holds the
validated ``ImportDecision``.

Signals: ``lookup_requested()`` - the user asked for sizes and unknown nodes online (the import
flow runs it in a worker and calls ``set_plan`` with the result).
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from comfymanager.core.errors import ComfyManagerError, ErrorInfo
from comfymanager.core.importer.decision import (
    ImportDecision,
    validate_decision,
)
from comfymanager.core.importer.plan import (
    ImportPlan,
    PlanModel,
)
from comfymanager.core.install.install import ProjectSpec, validate_spec
from comfymanager.core.models.folders import FOLDER_KEYS
from comfymanager.core.progress import format_bytes
from comfymanager.core.projects import ProjectStore
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.models.plan_model import (
    CHOICE_COLUMN,
    FOLDER_COLUMN,
    MODEL_CHOICE_COLUMN,
    ModelTableModel,
    PackTableModel,
)
from comfymanager.ui.panes.error_view import ErrorView
from comfymanager.ui.theme import state_color

log = logging.getLogger(__name__)


def _table(model: PackTableModel | ModelTableModel, name: str) -> QTableView:
    view = QTableView()
    view.setModel(model)
    view.setAccessibleName(name)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.verticalHeader().hide()
    view.setWordWrap(False)
    header = view.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(True)
    return view


class PlanDialog(QDialog):
    """See the module docstring (signal: ``lookup_requested``)."""

    lookup_requested = Signal()

    def __init__(
        self, app: AppContext, plan: ImportPlan, parent: QWidget | None = None, name: str = ""
    ) -> None:
        super().__init__(parent)
        self.app = app
        self.plan = plan
        self.decision: ImportDecision | None = None
        self._folder_combos: dict[str, QComboBox] = {}
        self.setWindowTitle("Import workflow")
        self.packs = PackTableModel(plan.packs, self)
        self.models = ModelTableModel(plan.models, self)

        self.pack_view = _table(self.packs, "Node packs")
        self.model_view = _table(self.models, "Model files")
        self.totals = QLabel()
        self.totals.setAccessibleName("Download size and free space")
        self.totals.setWordWrap(True)
        self.warnings = QLabel()
        self.warnings.setAccessibleName("Warnings")
        self.warnings.setWordWrap(True)
        self.warnings.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.create_radio = QRadioButton("&Create project")
        self.create_radio.setAccessibleName("Create a new project")
        self.name = QLineEdit(name)
        self.name.setAccessibleName("New project name")
        self.add_radio = QRadioButton("&Add to project")
        self.add_radio.setAccessibleName("Add to an existing project")
        self.project_combo = QComboBox()
        self.project_combo.setAccessibleName("Existing project")
        projects, _ = ProjectStore(app.core.paths).list()
        for p in projects:
            self.project_combo.addItem(p.id, p.id)
        self.add_radio.setEnabled(bool(projects))
        group = QButtonGroup(self)
        group.addButton(self.create_radio)
        group.addButton(self.add_radio)
        self.create_radio.setChecked(True)
        target = QGridLayout()
        target.addWidget(self.create_radio, 0, 0)
        target.addWidget(self.name, 0, 1)
        target.addWidget(self.add_radio, 1, 0)
        target.addWidget(self.project_combo, 1, 1)
        target.setColumnStretch(1, 1)

        self.error = ErrorView()
        self.lookup_button = QPushButton("&Look up unknown nodes, models and sizes online")
        self.lookup_button.setAccessibleName("Look up unknown nodes, models and sizes online")
        self.lookup_button.clicked.connect(self._on_lookup_button_clicked)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.create_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.create_button.setText("Create")
        self.create_button.setAccessibleName("Create")
        self.create_button.setShortcut(QKeySequence("Ctrl+Return"))
        self.buttons.addButton(self.lookup_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.create_radio.toggled.connect(self._on_create_radio_toggled)

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<b>Node packs</b>"))
        layout.addWidget(self.pack_view, 2)
        layout.addWidget(QLabel("<b>Models</b>"))
        layout.addWidget(self.model_view, 2)
        layout.addWidget(self.totals)
        layout.addWidget(self.warnings)
        layout.addLayout(target)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self._on_create_radio_toggled(True)
        self._refresh()

    # --- plan -----------------------------------------------------------------------------

    def set_plan(self, plan: ImportPlan) -> None:
        """Show a new plan (after an online look-up), keeping the user's choices."""
        self.plan = plan
        self.packs.set_packs(plan.packs)
        self.models.set_models(plan.models)
        self.lookup_button.setEnabled(True)
        self._refresh()

    def set_lookup_failed(self, info: ErrorInfo) -> None:
        self.lookup_button.setEnabled(True)
        self.error.show_info(info)

    def _refresh(self) -> None:
        plan = self.plan
        unknown = f" + {plan.unknown_sizes} file(s) of unknown size" if plan.unknown_sizes else ""
        free = format_bytes(plan.free_bytes) if plan.free_bytes is not None else "unknown"
        text = f"Download: {format_bytes(plan.download_bytes)}{unknown} - free in the store: {free}"
        if plan.comfyui_version:
            text += f" - saved with ComfyUI {plan.comfyui_version}"
        self.totals.setText(text)
        color = state_color("failed").name() if not plan.fits else ""
        self.totals.setStyleSheet(f"color: {color};" if color else "")
        if not plan.fits:
            self.totals.setText(text + " - does not fit")
        lines = list(plan.warnings)
        self.warnings.setText("\n".join(f"- {w}" for w in lines[:12]))
        self.warnings.setVisible(bool(lines))
        self._add_editors()

    def _add_editors(self) -> None:
        for row in range(self.packs.rowCount()):
            p = self.packs.pack(row)
            index = self.packs.index(row, CHOICE_COLUMN)
            if p.status == "candidates":
                combo = QComboBox()
                combo.setAccessibleName(f"Pack for {p.title}")
                combo.addItem("Choose a pack...", "")
                for c in p.candidates:
                    rec = " - recommended" if c.identity == p.recommended else ""
                    combo.addItem(c.title + (f" ({c.url})" if c.url else "") + rec, c.identity)
                chosen = self.packs.choices().get(p.key, "")
                combo.setCurrentIndex(max(0, combo.findData(chosen)))
                combo.currentIndexChanged.connect(
                    lambda _i, k=p.key, cb=combo: self.packs.set_choice(k, str(cb.currentData()))
                )
                self.pack_view.setIndexWidget(index, combo)
            elif p.status == "unknown":
                edit = QLineEdit(self.packs.urls().get(p.key, ""))
                edit.setPlaceholderText("Paste the pack's git URL")
                edit.setAccessibleName(f"Git URL for {p.title}")
                edit.textChanged.connect(lambda t, k=p.key: self.packs.set_url(k, t))
                self.pack_view.setIndexWidget(index, edit)
        self._folder_combos = {}
        for row in range(self.models.rowCount()):
            m = self.models.model_at(row)
            if m.status != "unknown":
                continue
            if m.directory is None:
                folder = self._folder_combo(m.key, m.name)
                self.model_view.setIndexWidget(self.models.index(row, FOLDER_COLUMN), folder)
            if not m.urls:
                urls = self._url_combo(m)
                self.model_view.setIndexWidget(self.models.index(row, MODEL_CHOICE_COLUMN), urls)

    def _folder_combo(self, key: str, name: str) -> QComboBox:
        combo = QComboBox()
        combo.setAccessibleName(f"Folder for {name}")
        combo.addItem("Choose a folder...", "")
        for folder in FOLDER_KEYS:
            combo.addItem(folder, folder)
        combo.setCurrentIndex(max(0, combo.findData(self.models.folders().get(key, ""))))
        combo.currentIndexChanged.connect(
            lambda _i, k=key, cb=combo: self.models.set_folder(k, str(cb.currentData()))
        )
        self._folder_combos[key] = combo
        return combo

    def _url_combo(self, m: PlanModel) -> QComboBox:
        combo = QComboBox()
        combo.setEditable(True)
        combo.setAccessibleName(f"Download URL for {m.name}")
        line = combo.lineEdit()
        assert line is not None
        n = len(m.suggestions)
        line.setPlaceholderText(
            f"Paste a download URL or pick one of {n} suggestion{'s' if n > 1 else ''}"
            if n
            else "Paste a download URL (no suggestions yet: try Look up online)"
        )
        for s in m.suggestions:
            combo.addItem(f"{s.url}", s.url)
            combo.setItemData(
                combo.count() - 1, f"{s.origin}: {s.filename}", Qt.ItemDataRole.ToolTipRole
            )
        combo.setCurrentIndex(-1)
        combo.setEditText(self.models.urls().get(m.key, ""))
        combo.currentTextChanged.connect(lambda t, k=m.key: self._on_url_changed(k, t))
        return combo

    # --- slots ----------------------------------------------------------------------------

    def _on_create_radio_toggled(self, on: bool) -> None:
        self.name.setEnabled(on)
        self.project_combo.setEnabled(not on)
        self.create_button.setText("Create" if on else "Add")

    def _on_url_changed(self, key: str, url: str) -> None:
        self.models.set_url(key, url)
        combo = self._folder_combos.get(key)
        if combo is not None:  # a picked suggestion may have brought its folder
            combo.blockSignals(True)
            combo.setCurrentIndex(max(0, combo.findData(self.models.folders().get(key, ""))))
            combo.blockSignals(False)

    def _on_lookup_button_clicked(self) -> None:
        self.lookup_button.setEnabled(False)
        self.error.clear()
        self.lookup_requested.emit()

    # --- result ---------------------------------------------------------------------------

    def build_decision(self) -> ImportDecision:
        target: ProjectSpec | str
        if self.create_radio.isChecked():
            target = ProjectSpec(name=self.name.text().strip())
        else:
            target = str(self.project_combo.currentData() or "")
        return ImportDecision(
            target=target,
            pack_choices=self.packs.choices(),
            pack_urls=self.packs.urls(),
            model_urls=self.models.urls(),
            model_folders=self.models.folders(),
        )

    def accept(self) -> None:
        try:
            decision = self.build_decision()
            validate_decision(self.plan, decision)
            if isinstance(decision.target, ProjectSpec):
                validate_spec(self.app.core, decision.target)
            elif not decision.target:
                raise ComfyManagerError("Choose the project to add to.")
        except ComfyManagerError as exc:
            self.error.show_info(ErrorInfo.from_exception(exc))
            return
        self.decision = decision
        super().accept()
