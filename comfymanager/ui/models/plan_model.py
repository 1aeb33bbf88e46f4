"""The import plan as two Qt table models: node packs and model files.

Both hold the user's choices (a candidate pack, a pasted git URL, a download URL, the folder of a
model whose folder is unknown, a skipped row), so the dialog stays a thin view:
``PackTableModel.choices()/urls()/skipped()`` and ``ModelTableModel.urls()/folders()/skipped()``
feed the ``ImportDecision``. The Status column says what will happen under the current choices,
and "what is still open" is core's one rule (``core.importer.decision.open_packs/open_models``).
Model sizes still being asked show "…" (``set_sizes_pending``/``set_size``). Tested without a
window.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt

from comfymanager.core.errors import InvalidInput
from comfymanager.core.importer.decision import ImportDecision, open_models, open_packs
from comfymanager.core.importer.plan import MODEL_LABELS, PACK_LABELS, PlanModel, PlanPack
from comfymanager.core.models.folders import canonical_folder
from comfymanager.core.progress import format_bytes
from comfymanager.core.text import visible
from comfymanager.ui.theme import state_color

log = logging.getLogger(__name__)

Index = QModelIndex | QPersistentModelIndex
KEY_ROLE = Qt.ItemDataRole.UserRole + 1
STATUS_ROLE = Qt.ItemDataRole.UserRole + 2

PACK_COLUMNS = ("Node pack", "Needed for", "Source", "Pin", "Status", "Your choice", "Skip")
MODEL_COLUMNS = ("Folder", "File", "Size", "Status", "Source / your choice", "Skip")
CHOICE_COLUMN = 5
PACK_SKIP_COLUMN = 6
FOLDER_COLUMN = 0
MODEL_CHOICE_COLUMN = 4
MODEL_SKIP_COLUMN = 5
_CHECK = Qt.ItemDataRole.CheckStateRole

# status -> theme badge colour
PACK_BADGES = {"built-in": "idle", "install": "running", "candidates": "busy", "unknown": "failed"}
MODEL_BADGES = {
    "present": "running",
    "download": "busy",
    "mirrors": "busy",
    "inactive": "idle",
    "unknown": "failed",
}


class PackTableModel(QAbstractTableModel):
    """One row per ``PlanPack``; no signals beyond QAbstractTableModel's."""

    def __init__(self, packs: tuple[PlanPack, ...] = (), parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._packs = list(packs)
        self._choices: dict[str, str] = {}
        self._urls: dict[str, str] = {}
        self._skipped: set[str] = set()
        self._preselect()

    def set_packs(self, packs: tuple[PlanPack, ...]) -> None:
        self.beginResetModel()
        self._packs = list(packs)
        keys = {p.key for p in packs}
        self._choices = {k: v for k, v in self._choices.items() if k in keys}
        self._urls = {k: v for k, v in self._urls.items() if k in keys}
        self._skipped &= keys
        self._preselect()
        self.endResetModel()

    def _preselect(self) -> None:
        """The recommended candidate is chosen until the user picks another (or clears it)."""
        for p in self._packs:
            if p.status == "candidates" and p.recommended and p.key not in self._choices:
                self._choices[p.key] = p.recommended

    def pack(self, row: int) -> PlanPack:
        return self._packs[row]

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._packs)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(PACK_COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return PACK_COLUMNS[section]
        return None

    def set_choice(self, key: str, identity: str) -> None:
        """The candidate chosen for a "several candidates" row ("" clears it)."""
        if identity:
            self._choices[key] = identity
        else:
            self._choices.pop(key, None)
        self._row_changed(key)

    def set_url(self, key: str, url: str) -> None:
        """A git URL pasted for a row ("" clears it)."""
        if url.strip():
            self._urls[key] = url.strip()
        else:
            self._urls.pop(key, None)
        self._row_changed(key)

    def set_skipped(self, key: str, skipped: bool) -> None:
        """Leave this pack out (its node types stay missing), or take it back."""
        if skipped:
            self._skipped.add(key)
        else:
            self._skipped.discard(key)
        self._row_changed(key)

    def choices(self) -> dict[str, str]:
        return dict(self._choices)

    def urls(self) -> dict[str, str]:
        return dict(self._urls)

    def skipped(self) -> frozenset[str]:
        return frozenset(self._skipped)

    def packs(self) -> list[PlanPack]:
        return list(self._packs)

    def decision(self) -> ImportDecision:
        """The pack part of a decision (the target is filled in by the dialog)."""
        return ImportDecision(
            target="", pack_choices=self.choices(), pack_urls=self.urls(), skip_packs=self.skipped()
        )

    def unresolved(self) -> list[PlanPack]:
        """Rows that still need the user (core's rule: ``decision.open_packs``)."""
        return list(open_packs(self._packs, self.decision()))

    def status_text(self, p: PlanPack) -> str:
        """What will happen to this row under the current choices."""
        if p.status == "built-in":
            return PACK_LABELS[p.status]
        if p.key in self._urls:
            return "Will install from your URL"
        if p.key in self._skipped:
            return "Skipped: its node types stay missing"
        if p.status == "candidates":
            return "Will install your choice" if p.key in self._choices else "Choose a pack"
        if p.status == "unknown":
            return "Unknown: paste its git URL or skip"
        return PACK_LABELS[p.status]

    def is_open(self, p: PlanPack) -> bool:
        return bool(open_packs([p], self.decision()))

    def flags(self, index: Index) -> Qt.ItemFlag:
        base = super().flags(index)
        if (
            index.isValid()
            and index.column() == PACK_SKIP_COLUMN
            and self._packs[index.row()].status != "built-in"
        ):
            return base | Qt.ItemFlag.ItemIsUserCheckable
        return base

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != _CHECK or not index.isValid() or index.column() != PACK_SKIP_COLUMN:
            return False
        p = self._packs[index.row()]
        if p.status == "built-in":
            return False
        self.set_skipped(p.key, Qt.CheckState(value) == Qt.CheckState.Checked)
        return True

    def _row_changed(self, key: str) -> None:
        for row, p in enumerate(self._packs):
            if p.key == key:
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(PACK_COLUMNS) - 1))

    def _choice_text(self, p: PlanPack) -> str:
        if p.key in self._urls:
            return self._urls[p.key]
        chosen = self._choices.get(p.key)
        if chosen:
            return next((c.title for c in p.candidates if c.identity == chosen), chosen)
        return ""

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._packs):
            return None
        p = self._packs[index.row()]
        col = index.column()
        if role == KEY_ROLE:
            return p.key
        if role == STATUS_ROLE:
            return p.status
        if col == PACK_SKIP_COLUMN:
            if role == _CHECK and p.status != "built-in":
                skipped = p.key in self._skipped
                return Qt.CheckState.Checked if skipped else Qt.CheckState.Unchecked
            if role == Qt.ItemDataRole.ToolTipRole and p.status != "built-in":
                return "Do not install this pack: its node types stay missing"
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            if col == 0:
                return visible(p.title, "window")
            if col == 1:
                shown = visible(", ".join(p.classes[:3]), "window")
                more = len(p.classes) - 3
                if role == Qt.ItemDataRole.ToolTipRole:
                    return "\n".join(visible(c, "window") for c in p.classes)
                return shown + (f" and {more} more" if more > 0 else "")
            if col == 2:
                return p.source
            if col == 3:
                return p.pin or ("latest" if p.status == "install" else "")
            if col == 4:
                return self.status_text(p)
            if col == CHOICE_COLUMN:
                return self._choice_text(p)
        if role == Qt.ItemDataRole.ForegroundRole and col == 4:
            if p.key in self._skipped and p.key not in self._urls:
                return state_color("idle")
            if self.is_open(p):
                return state_color("failed")
            if p.key in self._urls or p.key in self._choices:
                return state_color("running")
            return state_color(PACK_BADGES[p.status])
        return None


class ModelTableModel(QAbstractTableModel):
    """One row per ``PlanModel``; no signals beyond QAbstractTableModel's.

    A row whose folder is unknown takes a folder (``set_folder``); picking a suggested URL that
    carries a folder (``set_url``) fills it in as a default until the user sets one."""

    def __init__(self, models: tuple[PlanModel, ...] = (), parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._models = list(models)
        self._urls: dict[str, str] = {}
        self._folders: dict[str, str] = {}
        self._auto_folders: set[str] = set()  # folders that came with a suggestion
        self._skipped: set[str] = set()
        self._pending: set[str] = set()  # sizes being asked in the background

    def set_models(self, models: tuple[PlanModel, ...]) -> None:
        self.beginResetModel()
        self._models = list(models)
        keys = {m.key for m in models}
        self._urls = {k: v for k, v in self._urls.items() if k in keys}
        self._folders = {k: v for k, v in self._folders.items() if k in keys}
        self._auto_folders &= keys
        self._skipped &= keys
        self._pending &= {m.key for m in models if m.size is None}
        self.endResetModel()

    def set_sizes_pending(self, keys: set[str]) -> None:
        """These rows' sizes are being asked: shown as "…" until ``set_size``."""
        self._pending = set(keys)
        for key in keys:
            self._changed(key)

    def pending(self) -> frozenset[str]:
        return frozenset(self._pending)

    def set_size(self, key: str, size: int | None) -> None:
        """A size found in the background (None: the host did not say)."""
        self._pending.discard(key)
        found = self._find(key)
        if found is None:
            return
        row, m = found
        if size is not None and not m.size:
            self._models[row] = dataclasses.replace(m, size=size)
        self._changed(key)

    def models(self) -> tuple[PlanModel, ...]:
        return tuple(self._models)

    def set_skipped(self, key: str, skipped: bool) -> None:
        """Do not download this model (it stays missing), or take it back."""
        if skipped:
            self._skipped.add(key)
        else:
            self._skipped.discard(key)
        self._changed(key)

    def skipped(self) -> frozenset[str]:
        return frozenset(self._skipped)

    def model_at(self, row: int) -> PlanModel:
        return self._models[row]

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._models)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(MODEL_COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return MODEL_COLUMNS[section]
        return None

    def _find(self, key: str) -> tuple[int, PlanModel] | None:
        return next(((r, m) for r, m in enumerate(self._models) if m.key == key), None)

    def _changed(self, key: str) -> None:
        found = self._find(key)
        if found is not None:
            row = found[0]
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(MODEL_COLUMNS) - 1))

    def set_url(self, key: str, url: str) -> None:
        """The URL pasted or picked for a row ("" clears it)."""
        url = url.strip()
        if url:
            self._urls[key] = url
        else:
            self._urls.pop(key, None)
        found = self._find(key)
        if found is not None and found[1].directory is None:
            self._default_folder(found[1], url)
        self._changed(key)

    def _default_folder(self, m: PlanModel, url: str) -> None:
        if m.key in self._folders and m.key not in self._auto_folders:
            return  # the user's own choice stays
        self._folders.pop(m.key, None)
        self._auto_folders.discard(m.key)
        for s in m.suggestions:
            if s.url == url and s.directory:
                try:
                    self._folders[m.key] = canonical_folder(s.directory)
                except InvalidInput:
                    continue
                self._auto_folders.add(m.key)
                return

    def set_folder(self, key: str, folder: str) -> None:
        """The folder key chosen for a row whose folder is unknown ("" clears it)."""
        self._auto_folders.discard(key)
        if folder:
            self._folders[key] = folder
        else:
            self._folders.pop(key, None)
        self._changed(key)

    def urls(self) -> dict[str, str]:
        return dict(self._urls)

    def folders(self) -> dict[str, str]:
        return dict(self._folders)

    def _skippable(self, m: PlanModel) -> bool:
        return m.status not in ("present", "inactive")

    def flags(self, index: Index) -> Qt.ItemFlag:
        base = super().flags(index)
        if (
            index.isValid()
            and index.column() == MODEL_SKIP_COLUMN
            and self._skippable(self._models[index.row()])
        ):
            return base | Qt.ItemFlag.ItemIsUserCheckable
        return base

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != _CHECK or not index.isValid() or index.column() != MODEL_SKIP_COLUMN:
            return False
        m = self._models[index.row()]
        if not self._skippable(m):
            return False
        self.set_skipped(m.key, Qt.CheckState(value) == Qt.CheckState.Checked)
        return True

    def download_bytes(self) -> tuple[int, int]:
        """(bytes to download, files whose size is not known) under the current choices."""
        total = unknown = 0
        for m in self._models:
            if m.key in self._skipped or m.status == "present":
                continue
            if m.status in ("download", "mirrors") or (
                m.status == "unknown" and m.key in self._urls
            ):
                if m.size:
                    total += m.size
                else:
                    unknown += 1
        return total, unknown

    def decision(self) -> ImportDecision:
        """The model part of a decision (the target is filled in by the dialog)."""
        return ImportDecision(
            target="",
            model_urls=self.urls(),
            model_folders=self.folders(),
            skip_models=self.skipped(),
        )

    def unresolved(self) -> list[PlanModel]:
        """Unknown rows still lacking a download address or a folder (core's rule:
        ``decision.open_models``)."""
        return [m for m, _u, _f in open_models(self._models, self.decision())]

    def status_text(self, m: PlanModel) -> str:
        """What will happen to this row under the current choices."""
        if m.key in self._skipped and m.status not in ("present", "inactive"):
            return "Skipped: stays missing"
        if m.status != "unknown":
            label = MODEL_LABELS[m.status]
            return label + (" (matched by name and hash)" if m.auto_picked else "")
        needs = open_models([m], self.decision())
        if not needs:
            return "Will download from your URL"
        _m, needs_url, needs_folder = needs[0]
        if needs_url and needs_folder:
            return "Needs a URL and a folder"
        return "Needs a URL" if needs_url else "Needs a folder"

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._models):
            return None
        m = self._models[index.row()]
        col = index.column()
        if role == KEY_ROLE:
            return m.key
        if role == STATUS_ROLE:
            return m.status
        if col == MODEL_SKIP_COLUMN:
            if role == _CHECK and self._skippable(m):
                skipped = m.key in self._skipped
                return Qt.CheckState.Checked if skipped else Qt.CheckState.Unchecked
            if role == Qt.ItemDataRole.ToolTipRole and self._skippable(m):
                return "Do not download this model: it stays missing"
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            if col == FOLDER_COLUMN:
                return m.directory or self._folders.get(m.key) or "unknown folder"
            if col == 1:
                return visible(m.name, "window")  # a bidi override or newline shown as <U+...>
            if col == 2:
                if m.size:
                    return format_bytes(m.size)
                if m.key in self._pending:
                    return "…"
                return "" if m.status in ("present", "inactive") else "unknown"
            if col == 3:
                return self.status_text(m)
            if col == MODEL_CHOICE_COLUMN:
                if m.key in self._urls:
                    return self._urls[m.key]
                if role == Qt.ItemDataRole.ToolTipRole:
                    return "\n".join(m.urls)
                return m.urls[0] if m.urls else ""
        if role == Qt.ItemDataRole.ForegroundRole and col == 3:
            if m.key in self._skipped and m.status not in ("present", "inactive"):
                return state_color("idle")
            if m.status == "unknown":
                return state_color("failed" if open_models([m], self.decision()) else "busy")
            return state_color(MODEL_BADGES[m.status])
        return None
