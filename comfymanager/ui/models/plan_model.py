"""The import plan as two Qt table models: node packs and model files.

Both hold the user's choices (a candidate pack, a pasted git URL, a download URL, the folder of a
model whose folder is unknown), so the dialog stays a thin view: ``PackTableModel.choices()/urls()``
and ``ModelTableModel.urls()/folders()`` feed the ``ImportDecision``. Tested without a window.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt

from comfymanager.core.errors import InvalidInput
from comfymanager.core.importer.plan import MODEL_LABELS, PACK_LABELS, PlanModel, PlanPack
from comfymanager.core.models.folders import canonical_folder
from comfymanager.core.progress import format_bytes
from comfymanager.core.text import visible
from comfymanager.ui.theme import state_color

log = logging.getLogger(__name__)

Index = QModelIndex | QPersistentModelIndex
KEY_ROLE = Qt.ItemDataRole.UserRole + 1
STATUS_ROLE = Qt.ItemDataRole.UserRole + 2

PACK_COLUMNS = ("Node pack", "Needed for", "Source", "Pin", "Status", "Your choice")
MODEL_COLUMNS = ("Folder", "File", "Size", "Status", "Source / your choice")
CHOICE_COLUMN = 5
FOLDER_COLUMN = 0
MODEL_CHOICE_COLUMN = 4

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
        self._preselect()

    def set_packs(self, packs: tuple[PlanPack, ...]) -> None:
        self.beginResetModel()
        self._packs = list(packs)
        keys = {p.key for p in packs}
        self._choices = {k: v for k, v in self._choices.items() if k in keys}
        self._urls = {k: v for k, v in self._urls.items() if k in keys}
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

    def choices(self) -> dict[str, str]:
        return dict(self._choices)

    def urls(self) -> dict[str, str]:
        return dict(self._urls)

    def unresolved(self) -> list[PlanPack]:
        """Rows that still need the user: candidates not chosen, unknown without a URL."""
        return [
            p
            for p in self._packs
            if (p.status == "candidates" and p.key not in self._choices and p.key not in self._urls)
            or (p.status == "unknown" and p.key not in self._urls)
        ]

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
                return PACK_LABELS[p.status]
            if col == CHOICE_COLUMN:
                return self._choice_text(p)
        if role == Qt.ItemDataRole.ForegroundRole and col == 4:
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

    def set_models(self, models: tuple[PlanModel, ...]) -> None:
        self.beginResetModel()
        self._models = list(models)
        keys = {m.key for m in models}
        self._urls = {k: v for k, v in self._urls.items() if k in keys}
        self._folders = {k: v for k, v in self._folders.items() if k in keys}
        self._auto_folders &= keys
        self.endResetModel()

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

    def unresolved(self) -> list[PlanModel]:
        """Unknown rows still lacking a download address or a folder."""
        return [
            m
            for m in self._models
            if m.status == "unknown"
            and (
                (not m.urls and m.key not in self._urls)
                or (m.directory is None and m.key not in self._folders)
            )
        ]

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._models):
            return None
        m = self._models[index.row()]
        col = index.column()
        if role == KEY_ROLE:
            return m.key
        if role == STATUS_ROLE:
            return m.status
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            if col == FOLDER_COLUMN:
                return m.directory or self._folders.get(m.key) or "unknown folder"
            if col == 1:
                return visible(m.name, "window")  # a bidi override or newline shown as <U+...>
            if col == 2:
                if m.size:
                    return format_bytes(m.size)
                return "" if m.status in ("present", "inactive") else "unknown"
            if col == 3:
                label = MODEL_LABELS[m.status]
                return label + (" (matched by name and hash)" if m.auto_picked else "")
            if col == MODEL_CHOICE_COLUMN:
                if m.key in self._urls:
                    return self._urls[m.key]
                if role == Qt.ItemDataRole.ToolTipRole:
                    return "\n".join(m.urls)
                return m.urls[0] if m.urls else ""
        if role == Qt.ItemDataRole.ForegroundRole and col == 3:
            return state_color(MODEL_BADGES[m.status])
        return None
