"""The shared model store as a Qt table model: one row per ``ModelFile`` of the ``ModelIndex``.

Columns: Folder, File, Size, Used by, Source, Notes. ``FILE_ROLE`` gives the row's
``ModelFile``; ``SORT_ROLE`` gives a sortable value (bytes for Size). Tested without a window.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)

from comfymanager.core.models.index import ModelFile
from comfymanager.core.progress import format_bytes

Index = QModelIndex | QPersistentModelIndex
FILE_ROLE = Qt.ItemDataRole.UserRole + 1
SORT_ROLE = Qt.ItemDataRole.UserRole + 2

COLUMNS = ("Folder", "File", "Size", "Used by", "Source", "Notes")
FOLDER, FILE, SIZE, USED_BY, SOURCE, NOTES = range(len(COLUMNS))


def source_host(url: str) -> str:
    """The host of a source URL ("huggingface.co"), or the text itself when it is not a URL."""
    host = urlsplit(url).hostname
    return host or url


class StoreTableModel(QAbstractTableModel):
    """One row per store file; no signals beyond QAbstractTableModel's."""

    def __init__(self, files: list[ModelFile] | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._files = list(files or [])

    def set_files(self, files: list[ModelFile]) -> None:
        self.beginResetModel()
        self._files = list(files)
        self.endResetModel()

    def files(self) -> list[ModelFile]:
        return list(self._files)

    def file(self, row: int) -> ModelFile:
        return self._files[row]

    def remove_file(self, key: str) -> None:
        for row, f in enumerate(self._files):
            if f.key == key:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._files[row]
                self.endRemoveRows()
                return

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._files)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._files):
            return None
        f = self._files[index.row()]
        col = index.column()
        if role == FILE_ROLE:
            return f
        if role == SORT_ROLE:
            if col == SIZE:
                return f.size
            return str(self.data(index) or "").lower()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(f, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == SOURCE:
                return "\n".join(f.sources) or "No recorded source"
            if col == FILE:
                return str(f.path)
            if col == SIZE:
                return f"{f.size:,} bytes"
            if col == NOTES and f.can_run_code:
                return "Pickle format: loading it can run code. Prefer .safetensors."
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole and col == SIZE:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    @staticmethod
    def _display(f: ModelFile, col: int) -> str:
        if col == FOLDER:
            return f.folder
        if col == FILE:
            return f.name
        if col == SIZE:
            return format_bytes(f.size)
        if col == USED_BY:
            return ", ".join(f.used_by)
        if col == SOURCE:
            return source_host(f.sources[0]) if f.sources else ""
        if col == NOTES:
            return "can run code" if f.can_run_code else ""
        return ""


class StoreProxyModel(QSortFilterProxyModel):
    """Sorts by ``SORT_ROLE`` and filters case-insensitively on every column."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setFilterKeyColumn(-1)
