"""The node verification in the window: its lines in the project details pane. The job that runs
it is ``ProjectActions.verify`` (``core.operations.verify`` on the project's queue); its notice
comes from ``ui/outcomes.py``.
"""

from __future__ import annotations

import html
import logging
import time

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QLabel, QWidget

from comfymanager.core.errors import ComfyManagerError
from comfymanager.core.verify.result import STATUS_LABELS
from comfymanager.core.verify.verify import VerifyResult, last_result
from comfymanager.ui.app_context import AppContext

log = logging.getLogger(__name__)

MAX_LISTED = 4
MAX_NAMES = 3


def nodes_html(result: VerifyResult | None, *, running: bool) -> str:
    """ "all 23 present" or "2 missing: FixBroken (Pack failed to load: error)"."""
    if running:
        return "<i>checking in the project's own Python...</i>"
    if result is None:
        return "not checked yet"
    bad = result.missing
    if not result.nodes:
        return "nothing to check: the project has no workflows"
    if not bad:
        return f"all {len(result.nodes)} present"
    items = "".join(f"<br>\u2022 {html.escape(n.sentence)}" for n in bad[:MAX_LISTED])
    more = f"<br>\u2022 and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else ""
    head = f'<span style="color:#c0392b"><b>{len(bad)} missing</b></span> of {len(result.nodes)}:'
    return head + items + more


def models_html(result: VerifyResult | None, *, running: bool) -> str:
    """The summary line, then one short line per kind of problem (names, not paths)."""
    if result is None or running:
        return ""
    text = html.escape(result.models_line())
    groups: dict[str, list[str]] = {}
    for m in result.models:
        if not m.ok:
            groups.setdefault(m.status, []).append(m.key)
    items = ""
    for status, keys in groups.items():
        shown = ", ".join(html.escape(k) for k in keys[:MAX_NAMES])
        more = f" and {len(keys) - MAX_NAMES} more" if len(keys) > MAX_NAMES else ""
        label = STATUS_LABELS.get(status, status)
        items += f"<br>\u2022 {html.escape(label)}: {shown}{more}"
    return text + items


def models_tooltip(result: VerifyResult | None) -> str:
    """Every model with its status, folder origin and the full reason."""
    if result is None:
        return ""
    lines = []
    for m in result.models:
        origin = " (folder from the node definition)" if m.folder_from == "definition" else ""
        why = f": {m.detail}" if m.detail else ""
        lines.append(f"{m.key}: {STATUS_LABELS.get(m.status, m.status)}{origin}{why}")
    return "\n".join(lines)


def block_html(result: VerifyResult | None, *, running: bool) -> str:
    """The details pane's block: "Nodes: ..." and, once checked, "Models: ..."."""
    text = f"<b>Nodes:</b> {nodes_html(result, running=running)}"
    models = models_html(result, running=running)
    return text + (f"<br><b>Models:</b> {models}" if models else "")


def tooltip(result: VerifyResult | None) -> str:
    checked = checked_text(result)
    models = models_tooltip(result)
    return "\n".join(t for t in (checked, models) if t)


def checked_text(result: VerifyResult | None) -> str:
    if result is None or not result.checked_at:
        return ""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(result.checked_at))
    return f"checked {when} with ComfyUI {result.comfyui or '?'}"


class VerificationLabel(QLabel):
    """The details pane's verification block: a wrapped rich-text label whose minimum height is
    the height its text needs at its width, so the splitter above the activity pane never
    cuts its last lines off. No signals."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setAccessibleName("Node verification")

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        width = self.width() if self.width() > 100 else 500
        return QSize(hint.width(), max(hint.height(), self.heightForWidth(width)))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self.updateGeometry()


def load_last(app: AppContext, project: str) -> VerifyResult | None:
    try:
        return last_result(app.core, project)
    except ComfyManagerError as exc:
        log.info("no verification shown for %s: %s", project, exc)
        return None
