"""What closing the main window does: hide to the tray, or let the quit flow run.

With a tray and the "close to tray" setting on, closing hides the window; the first time, a
balloon says where comfymanager went ("keeps running in the tray; Quit from its menu") and the
setting ``tray_hint_shown`` remembers it. Without a tray (or with the setting off) closing means
quitting, and the main window's quit flow asks about running projects.
"""

from __future__ import annotations

import logging

from PySide6.QtWidgets import QWidget

from comfymanager.core.errors import ComfyManagerError
from comfymanager.core.notifier import Notice
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.tray import Tray

log = logging.getLogger(__name__)

HINT = Notice(
    "info",
    "comfymanager is still running",
    "comfymanager keeps running in the tray; Quit from its menu.",
)


def closes_to_tray(app: AppContext, tray: Tray | None) -> bool:
    return tray is not None and Tray.available() and app.core.settings.close_to_tray


def handle_close(window: QWidget, app: AppContext, tray: Tray | None) -> bool:
    """Call from ``closeEvent``: False means "ignore the close" (the window was hidden to the
    tray), True means "go on and quit" (the caller asks about running projects)."""
    if not closes_to_tray(app, tray):
        return True
    assert tray is not None
    if not tray.visible():
        tray.show()
    window.hide()
    settings = app.core.settings
    if not settings.tray_hint_shown:
        tray.show_message(HINT)
        settings.tray_hint_shown = True
        try:
            app.core.save_settings()
        except (ComfyManagerError, OSError) as exc:  # the hint may show again; no harm
            log.warning("could not remember that the tray hint was shown: %s", exc)
    return False
