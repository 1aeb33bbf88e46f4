"""The import plan dialog: what the workflow needs, before anything is installed.

Packs table (with a candidate combo or a git URL field where the user must decide), models
table (with a URL field / suggestions for unknown sources, and a folder combo where the folder is
unknown; a picked suggestion that names a folder fills it in), totals (download size against free
space, red when it does not fit), warnings, the target ("Create project" or "Add to project"),
an optional online look-up, and Create / Cancel. After ``accepted``, ``decision`` holds the
validated ``ImportDecision``.

Every row can be skipped (the "Skip" column); each choice updates its row's Status, the totals
("about X to download, Y free") and the list of what is still open at once. Create with open
rows asks first, listing exactly what will be missing (``confirm.ask_missing``). Sizes still being
asked in the background show "…" (the import flow fills them, ``set_size``). The dialog opens at
a size that shows its columns and rows (up to the screen) and remembers the size it had.

Signals: ``lookup_requested()`` - the user asked for sizes and unknown nodes online (the import
flow runs it in a worker, shows its steps with ``set_lookup_progress`` and calls ``set_plan``);
``target_changed(str)`` - an existing project was chosen as the target ("" for a new project):
the flow plans again with ``project=`` so that project's packs settle their classes.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QKeySequence, QShowEvent
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
    unresolved,
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
from comfymanager.ui.dialogs import confirm
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
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setStretchLastSection(False)
    return view


SIZE_COLUMN = 2
CHOICE_MIN_WIDTH = 280  # room for a pasted URL or a pack's name in the choice column


def _content_size(view: QTableView, choice_column: int) -> QSize:
    """Size the columns to their contents (the choice column at least ``CHOICE_MIN_WIDTH``,
    then stretching) and return what the table needs to show them and its rows unscrolled."""
    header = view.horizontalHeader()
    header.setSectionResizeMode(choice_column, QHeaderView.ResizeMode.Interactive)
    view.resizeColumnsToContents()
    view.resizeRowsToContents()
    want = max(header.sectionSize(choice_column), CHOICE_MIN_WIDTH)
    header.resizeSection(choice_column, want)
    width = sum(header.sectionSize(c) for c in range(header.count()))
    width += view.frameWidth() * 2 + view.verticalScrollBar().sizeHint().width()
    header.setSectionResizeMode(choice_column, QHeaderView.ResizeMode.Stretch)
    rows = view.model().rowCount()
    height = header.sizeHint().height() + view.frameWidth() * 2 + 4
    for r in range(rows):  # a row with an editor is as tall as the editor wants
        editor = view.indexWidget(view.model().index(r, choice_column))
        tall = editor.sizeHint().height() + 2 if editor is not None else 0
        if tall > view.rowHeight(r):
            view.setRowHeight(r, tall)
        height += view.rowHeight(r)
    if not rows:
        height += view.sizeHintForRow(0)
    return QSize(width, height)


class PlanDialog(QDialog):
    """See the module docstring (signal: ``lookup_requested``)."""

    lookup_requested = Signal()
    target_changed = Signal(str)
    SIZE_KEY = "plan/size"

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
        self.open_rows = QLabel()
        self.open_rows.setObjectName("openRows")
        self.open_rows.setAccessibleName("What is still open")
        self.open_rows.setWordWrap(True)
        self.lookup_status = QLabel()
        self.lookup_status.setObjectName("lookupStatus")
        self.lookup_status.setAccessibleName("Online look-up")
        self.lookup_status.setWordWrap(True)
        self.lookup_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.lookup_status.hide()
        self.packs.dataChanged.connect(self._on_choices_changed)
        self.models.dataChanged.connect(self._on_choices_changed)

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
        self.project_combo.currentIndexChanged.connect(self._on_project_combo_changed)
        self.name.textChanged.connect(lambda _t: self.error.clear())

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<b>Node packs</b>"))
        layout.addWidget(self.pack_view, max(1, self.packs.rowCount()))
        layout.addWidget(QLabel("<b>Models</b>"))
        layout.addWidget(self.model_view, max(1, self.models.rowCount()))
        layout.addWidget(self.totals)
        layout.addWidget(self.open_rows)
        layout.addWidget(self.warnings)
        layout.addWidget(self.lookup_status)
        layout.addLayout(target)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self._on_create_radio_toggled(True)
        self._refresh()
        self._sized = False

    # --- size -----------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        if not self._sized:  # once the widgets are polished: their sizes are the real ones
            self._sized = True
            self._first_size()
        super().showEvent(event)

    def _first_size(self) -> None:
        """The remembered size, else one that shows every column and row, up to the screen."""
        packs = _content_size(self.pack_view, CHOICE_COLUMN)
        models = _content_size(self.model_view, MODEL_CHOICE_COLUMN)
        screen = self.screen().availableGeometry() if self.screen() else None
        tall = screen.height() if screen is not None else 900
        # the pack table is as tall as its rows (not half empty), up to a third of the screen
        self.pack_view.setFixedHeight(max(min(packs.height(), tall // 3), 60))
        self.model_view.setMinimumHeight(max(min(models.height(), tall // 2), 80))
        saved = self.app.qsettings.value(self.SIZE_KEY)
        if isinstance(saved, QSize) and saved.isValid():
            want = saved
        else:
            layout = self.layout()
            assert layout is not None
            layout.activate()
            hint = self.sizeHint()
            margins = layout.contentsMargins()
            width = max(packs.width(), models.width()) + margins.left() + margins.right()
            want = QSize(max(width, hint.width()), hint.height())
        if screen is not None:
            want = want.boundedTo(QSize(int(screen.width() * 0.95), int(screen.height() * 0.9)))
        self.resize(want)

    def done(self, result: int) -> None:
        self.app.qsettings.setValue(self.SIZE_KEY, self.size())
        super().done(result)

    # --- plan -----------------------------------------------------------------------------

    def set_plan(self, plan: ImportPlan, *, looked_up: bool = False) -> None:
        """Show a new plan (after an online look-up or a new target), keeping the user's
        choices and the sizes found meanwhile."""
        known = {m.key: m.size for m in self.models.models() if m.size}
        pending = self.models.pending()
        before = set(self.plan.warnings)
        self.plan = plan
        self.packs.set_packs(plan.packs)
        self.models.set_models(plan.models)
        for key, size in known.items():
            self.models.set_size(key, size)
        self.models.set_sizes_pending(
            {m.key for m in self.models.models() if m.key in pending and not m.size}
        )
        self.lookup_button.setEnabled(True)
        if looked_up:
            new = [w for w in plan.warnings if w not in before]
            text = "Look-up finished." if not new else "Look-up finished with problems:"
            self.set_lookup_progress("\n".join([text, *(f"- {w}" for w in new)]))
        self._refresh()

    def set_lookup_progress(self, text: str) -> None:
        """A step of the online look-up, or its end, shown under the warnings."""
        self.lookup_status.setText(text)
        self.lookup_status.setVisible(bool(text))

    def set_lookup_failed(self, info: ErrorInfo) -> None:
        self.lookup_button.setEnabled(True)
        self.set_lookup_progress(f"Look-up failed: {info.message}")
        self.error.show_info(info)

    def set_sizes_pending(self, keys: set[str]) -> None:
        """These rows' sizes are being asked in the background: "…" until ``set_size``."""
        self.models.set_sizes_pending(keys)
        self._refresh_totals()

    def set_size(self, key: str, size: int | None) -> None:
        """A size found in the background (None: unknown); the totals follow."""
        self.models.set_size(key, size)
        if not self.models.pending():
            self.model_view.resizeColumnToContents(SIZE_COLUMN)
        self._refresh_totals()

    def _refresh(self) -> None:
        lines = list(self.plan.warnings)
        self.warnings.setText("\n".join(f"- {w}" for w in lines[:12]))
        self.warnings.setVisible(bool(lines))
        self._refresh_totals()
        self._add_editors()

    def _refresh_totals(self) -> None:
        plan = self.plan
        total, unknown = self.models.download_bytes()
        pending = len(self.models.pending())
        free = plan.free_bytes
        text = f"About {format_bytes(total)} to download"
        if pending:
            text += f" (asking the size of {pending} file{'s' if pending != 1 else ''}…)"
        elif unknown:
            text += f" + {unknown} file{'s' if unknown != 1 else ''} of unknown size"
        text += f", {format_bytes(free)} free in the store" if free is not None else ""
        if plan.comfyui_version:
            text += f" - saved with ComfyUI {plan.comfyui_version}"
        fits = free is None or total <= free
        if free is not None and not fits:
            text += f". It does not fit: free {format_bytes(total - free)} or skip some models."
        self.totals.setText(text)
        color = state_color("failed").name() if not fits else ""
        self.totals.setStyleSheet(f"color: {color};" if color else "")
        self._refresh_open()

    def _refresh_open(self) -> None:
        left = unresolved(self.plan, self._decision(""))
        parts = []
        if left.packs:
            n = len(left.packs)
            parts.append(f"{n} node pack{'s' if n != 1 else ''} to choose or skip")
        if left.models:
            n = len(left.models)
            parts.append(f"{n} model{'s' if n != 1 else ''} without a URL or folder")
        self.open_rows.setText(("Still open: " + ", ".join(parts) + ".") if parts else "")
        self.open_rows.setVisible(bool(parts))
        color = state_color("busy").name()
        self.open_rows.setStyleSheet(f"color: {color};")

    def _on_choices_changed(self, *_: object) -> None:
        self.error.clear()
        self._refresh_totals()

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
        self.error.clear()  # a "name already exists" is about the other target
        if self.isVisible() or not on:
            self.target_changed.emit("" if on else str(self.project_combo.currentData() or ""))

    def _on_project_combo_changed(self, _index: int) -> None:
        self.error.clear()
        if self.add_radio.isChecked():
            self.target_changed.emit(str(self.project_combo.currentData() or ""))

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
        self.set_lookup_progress("Looking up online…")
        self.lookup_requested.emit()

    # --- result ---------------------------------------------------------------------------

    def _decision(self, target: ProjectSpec | str) -> ImportDecision:
        return ImportDecision(
            target=target,
            pack_choices=self.packs.choices(),
            pack_urls=self.packs.urls(),
            model_urls=self.models.urls(),
            model_folders=self.models.folders(),
            skip_models=self.models.skipped(),
            skip_packs=self.packs.skipped(),
        )

    def build_decision(self) -> ImportDecision:
        target: ProjectSpec | str
        if self.create_radio.isChecked():
            target = ProjectSpec(name=self.name.text().strip())
        else:
            target = str(self.project_combo.currentData() or "")
        return self._decision(target)

    def missing_lines(self, decision: ImportDecision) -> list[str]:
        """What will be missing after the import under ``decision``: open or skipped packs with
        their node types, open or skipped models."""
        left = unresolved(self.plan, decision)
        lines: list[str] = []
        packs = list(left.packs) + [
            p for p in self.plan.packs if p.key in decision.skip_packs and p not in left.packs
        ]
        for p in packs:
            why = "skipped" if p.key in decision.skip_packs else "no pack chosen"
            lines.append(f"Node pack {p.title} ({why}): node types {', '.join(p.classes)}")
        for m, needs_url, needs_folder in left.models:
            why = "no URL" if needs_url else "no folder"
            if needs_url and needs_folder:
                why = "no URL and no folder"
            lines.append(f"Model {m.name} ({why})")
        lines += [
            f"Model {m.name} (skipped)"
            for m in self.plan.models
            if m.key in decision.skip_models and m.status not in ("present", "inactive")
        ]
        return lines

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
        missing = self.missing_lines(decision)
        if missing and not confirm.ask_missing(self, missing):
            return
        self.decision = decision
        super().accept()
