"""The details pane's checklist of a project's problems (``core.health``), each with a Fix button.

One row per ``Problem``: its subject in bold, the cause (wrapped, never clipped), the fix in
words, and a button named after ``Problem.action``. The button only emits ``fix_requested``; the
window's controller (``ui/actions.py``, ``ProjectActions.fix``) does the work as an operation.
A row whose fix is under way (``set_pending``: a pack being added for it) says so instead of
offering its buttons again, until the project's health is read anew.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from comfymanager.core import health as h
from comfymanager.core.text import visible

#: Fix button text per action
BUTTON = {
    h.CHOOSE_PACK: "Choose pack...",
    h.OTHER_URL: "Other URL...",
    h.RETRY_DOWNLOAD: "Retry",
    h.PICK_FOLDER: "Pick folder...",
    h.SKIP: "Skip",
    h.REPAIR: "Repair",
    h.VERIFY: "Verify",
    h.VIEW_LOG: "View log",
}
#: buttons beside the main one: a model can be left missing on purpose ("Skip"); a failed
#: download can also take another address. A missing node type can be skipped too.
EXTRA = {
    h.OTHER_URL: (h.SKIP,),
    h.PICK_FOLDER: (h.SKIP,),
    h.RETRY_DOWNLOAD: (h.OTHER_URL, h.SKIP),
}


class HealthChecklist(QFrame):
    """Signals: ``fix_requested(str project, object problem, str action)``."""

    fix_requested = Signal(str, object, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("health-checklist")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName("Problems")
        self.project = ""
        self.health: h.Health | None = None
        self.pending: dict[str, str] = {}  # problem key ("kind:subject") -> what is being done
        self._shown: tuple[str, h.Health | None, dict[str, str]] = ("", None, {})
        self.buttons: list[QPushButton] = []
        self.title = QLabel()
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.title.setWordWrap(True)
        self.list = QVBoxLayout()
        self.list.setSpacing(8)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(self.list)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.setVisible(False)

    def minimumSizeHint(self) -> QSize:
        """As tall as its rows are at its width: the rows' labels would otherwise count at
        their narrowest (each word a line), and the details pane would scroll over blank
        space below the checklist."""
        hint = super().minimumSizeHint()
        if not self.hasHeightForWidth():
            return hint
        return QSize(hint.width(), self.heightForWidth(max(self.width(), hint.width())))

    def set_health(self, project: str, health: h.Health | None) -> None:
        self.project, self.health = project, health
        self._render()

    def set_pending(self, pending: dict[str, str]) -> None:
        """Rows being fixed: {"kind:subject": what is being done} (``ProjectActions``)."""
        self.pending = dict(pending)
        self._render()

    def _render(self) -> None:
        shown = (self.project, self.health, self.pending)
        if shown == self._shown:
            return
        self._shown = shown
        health = self.health
        while self.list.count():
            item = self.list.takeAt(0)
            w = item.widget() if item is not None else None
            if w is not None:  # hidden now: deleted later, never drawn under the new rows
                w.hide()
                w.deleteLater()
        self.buttons = []
        if health is None or health.ok or health.busy:
            self.setVisible(False)
            return
        n = len(health.problems)
        self.title.setText("1 problem to fix" if n == 1 else f"{n} problems to fix")
        for p in health.problems:
            line = QWidget()
            row = QHBoxLayout(line)
            row.setContentsMargins(0, 0, 0, 0)
            text = QLabel(
                f"<b>{html.escape(visible(p.subject))}</b>: {html.escape(visible(p.cause))}"
                f"<br><span style='color:palette(placeholder-text)'>"
                f"{html.escape(visible(p.fix))}</span>"
            )
            text.setTextFormat(Qt.TextFormat.RichText)
            text.setWordWrap(True)
            text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            text.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
            # wraps at the width it gets: not at its narrowest (a tall label with a gap)
            policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)
            policy.setHeightForWidth(True)
            text.setSizePolicy(policy)
            text.setMinimumWidth(self.fontMetrics().horizontalAdvance("M") * 20)
            row.addWidget(text, 1, Qt.AlignmentFlag.AlignTop)
            doing = self.pending.get(p.key)
            if doing:
                note = QLabel(f"Being fixed: {doing}")
                note.setObjectName("fix-pending")
                note.setWordWrap(True)
                row.addWidget(note, 0, Qt.AlignmentFlag.AlignTop)
            extra = (h.SKIP,) if p.kind == h.NODE else EXTRA.get(p.action, ())
            actions = [] if doing else [p.action, *extra]
            for action in actions:
                b = QPushButton(BUTTON.get(action, action))
                b.setAccessibleName(f"{BUTTON.get(action, action)} {p.subject}")
                b.setObjectName(f"fix-{action}")
                b.clicked.connect(
                    lambda _=False, prob=p, a=action: self.fix_requested.emit(self.project, prob, a)
                )
                row.addWidget(b, 0, Qt.AlignmentFlag.AlignTop)
                self.buttons.append(b)
            self.list.addWidget(line)
        self.setVisible(True)
