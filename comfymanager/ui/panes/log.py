"""The log pane: the selected project's install/launch output and ComfyUI's own log.

Lines arrive in batches (the run monitor batches ComfyUI's log, jobs send tool lines) and are kept
in a bounded buffer per project, so switching projects shows recent lines at once. The view is
flushed at most every ``FLUSH_MS`` with one ``appendPlainText`` of the joined batch and holds at
most ``MAX_BLOCKS`` lines: thousands of lines a second cost the UI thread a few appends.

A project selected with nothing in its buffer (after a restart) gets the last ``RESTORE_BYTES``
of its log files (install log, then ComfyUI's log) read back. Long lines wrap. "Warnings and
errors only" keeps the lines that look like one (``is_problem_line``).
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Iterable

from PySide6.QtCore import QSize, QTimer
from PySide6.QtGui import QFontDatabase, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from comfymanager.ui.app_context import AppContext

log = logging.getLogger(__name__)

MAX_BLOCKS = 5000
BUFFER_LINES = 5000
FLUSH_MS = 100
RESTORE_BYTES = 64 * 1024
RESTORE_LINES = 400
_PROBLEM = re.compile(
    r"\bwarn(ing)?\b|error|exception|traceback|failed|fatal|critical|^\s+File \"", re.I
)


def is_problem_line(line: str) -> bool:
    """A warning, an error or a traceback line."""
    return bool(_PROBLEM.search(line))


def read_tail(path: object, max_bytes: int = RESTORE_BYTES) -> list[str]:
    """The last whole lines of a text file (at most ``max_bytes`` read); [] when unreadable."""
    try:
        with open(str(path), "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read(max_bytes)
    except OSError:
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    if size > max_bytes and lines:
        lines = lines[1:]  # the first one is cut
    return lines[-RESTORE_LINES:]


class LogPane(QWidget):
    """Shows one project's lines. No signals."""

    def __init__(self, app: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.project = ""
        self._buffers: dict[str, deque[str]] = {}
        self._pending: list[str] = []
        self._filter = ""
        self._problems_only = False
        self._restored: set[str] = set()
        # lines read back from ComfyUI's log, which the monitor's first read may send again
        self._seen_once: dict[str, set[str]] = {}

        self.title = QLabel("Log")
        self.search = QLineEdit()
        self.search.setPlaceholderText("Filter lines")
        self.search.setClearButtonEnabled(True)
        self.search.setAccessibleName("Filter log lines")
        self.search.textChanged.connect(self._on_search_text_changed)
        self.problems = QCheckBox("Warnings and errors only")
        self.problems.setAccessibleName("Show only warnings and errors")
        self.problems.toggled.connect(self._on_problems_toggled)
        self.open_file = QPushButton("Open log file")
        self.open_file.setAccessibleName("Open the project's log file")
        self.open_file.clicked.connect(self._on_open_file_clicked)
        self.view = QPlainTextEdit()
        self.view.setReadOnly(True)
        self.view.setMaximumBlockCount(MAX_BLOCKS)
        self.view.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.view.setUndoRedoEnabled(False)
        self.view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.view.setAccessibleName("Log output")

        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.search, 1)
        top.addWidget(self.problems)
        top.addWidget(self.open_file)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.view)
        QShortcut(QKeySequence.StandardKey.Find, self, activated=self.search.setFocus)

        self._timer = QTimer(self)
        self._timer.setInterval(FLUSH_MS)
        self._timer.timeout.connect(self._flush)
        self._update_buttons()

    # --- feeding -------------------------------------------------------------------------------
    def append(self, project: str, lines: Iterable[str]) -> None:
        batch = list(lines)
        seen = self._seen_once.pop(project, None)
        if seen:
            batch = [ln for ln in batch if ln not in seen]
        if not batch:
            return
        self._buffers.setdefault(project, deque(maxlen=BUFFER_LINES)).extend(batch)
        if project != self.project:
            return
        batch = [ln for ln in batch if self._shows(ln)]
        self._pending.extend(batch)
        if len(self._pending) > MAX_BLOCKS:
            del self._pending[: len(self._pending) - MAX_BLOCKS]
        if not self._timer.isActive():
            self._timer.start()

    def lines(self, project: str) -> list[str]:
        return list(self._buffers.get(project, ()))

    def forget(self, project: str) -> None:
        self._buffers.pop(project, None)
        if project == self.project:
            self.set_project("")

    def _shows(self, line: str) -> bool:
        if self._filter and self._filter not in line.lower():
            return False
        return not self._problems_only or is_problem_line(line)

    def restore(self, project: str) -> None:
        """Read the last lines of the project's log files back (once, into an empty buffer)."""
        if not project or project in self._restored:
            return
        self._restored.add(project)
        if self._buffers.get(project):
            return
        from comfymanager.core.projects import ProjectStore

        try:
            dirs = ProjectStore(self.app.core.paths).dirs(project)
        except Exception as exc:  # an unreadable name: nothing to restore
            log.info("no log to restore for %s: %s", project, exc)
            return
        lines: list[str] = []
        for path in (dirs.install_log, dirs.comfyui_log):
            tail = read_tail(path)
            if tail:
                lines += [f"--- {path.name} (last lines) ---", *tail]
                if path == dirs.comfyui_log:
                    self._seen_once[project] = set(tail)
        if lines:
            self._buffers.setdefault(project, deque(maxlen=BUFFER_LINES)).extend(lines)

    def scroll_to_end(self) -> None:
        self._flush()
        bar = self.view.verticalScrollBar()
        bar.setValue(bar.maximum())

    def set_project(self, project: str, name: str = "") -> None:
        """Show ``project``'s log (an id), titled with its display ``name`` when given."""
        self.restore(project)
        self.project = project
        self.title.setText(f"Log: {name or project}" if project else "Log")
        self._pending.clear()
        self._render()
        self._update_buttons()

    # --- view ----------------------------------------------------------------------------------
    def _render(self) -> None:
        lines = self._buffers.get(self.project, ())
        shown = [ln for ln in lines if self._shows(ln)]
        self.view.setPlainText("\n".join(shown[-MAX_BLOCKS:]))
        bar = self.view.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _flush(self) -> None:
        if not self._pending:
            self._timer.stop()
            return
        text = "\n".join(self._pending)
        self._pending.clear()
        bar = self.view.verticalScrollBar()
        follow = bar.value() >= bar.maximum() - 2
        keep = bar.value()
        self.view.appendPlainText(text)
        if follow:
            bar.setValue(bar.maximum())
        else:
            bar.setValue(min(keep, bar.maximum()))

    def _update_buttons(self) -> None:
        self.open_file.setEnabled(bool(self.project))

    def _on_search_text_changed(self, text: str) -> None:
        self._filter = text.strip().lower()
        self._pending.clear()
        self._render()

    def _on_problems_toggled(self, on: bool) -> None:
        self._problems_only = on
        self._pending.clear()
        self._render()

    def _on_open_file_clicked(self) -> None:
        if not self.project:
            return
        from comfymanager.core.projects import ProjectStore

        try:
            dirs = ProjectStore(self.app.core.paths).dirs(self.project)
        except Exception as exc:  # an unreadable name: nothing to open
            log.info("no log file for %s: %s", self.project, exc)
            return
        target = dirs.comfyui_log if dirs.comfyui_log.exists() else dirs.install_log
        self.app.open_path(target if target.exists() else dirs.logs)

    def sizeHint(self) -> QSize:
        hint = super().sizeHint()
        hint.setHeight(max(hint.height(), self.fontMetrics().lineSpacing() * 12))
        return hint
