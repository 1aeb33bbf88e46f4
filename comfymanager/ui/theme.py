"""Light/dark helpers: follow the system, or force a scheme; state colours that read on both.

``apply_color_scheme(app, "system" | "light" | "dark")`` uses Qt's own colour-scheme switch
(``QStyleHints.setColorScheme``, Qt 6.8+), so native styles and Fusion both repaint.
``is_dark(palette)`` tells which one is in effect; ``state_color(state, dark)`` gives the
colours of the idle/busy/running/failed badges (the same hues as the tray icons).
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette

from comfymanager.core.errors import InvalidInput

log = logging.getLogger(__name__)

SCHEMES = {
    "system": None,
    "light": Qt.ColorScheme.Light,
    "dark": Qt.ColorScheme.Dark,
}

# (on a light background, on a dark background); idle/busy/running match the tray badges.
STATE_COLORS: dict[str, tuple[str, str]] = {
    "idle": ("#6b7075", "#9aa0a6"),
    "busy": ("#b36b00", "#f5a623"),
    "running": ("#1e8e4e", "#2ecc71"),
    "failed": ("#c62828", "#ff6b6b"),
}


def apply_color_scheme(app: QGuiApplication, scheme: str) -> None:
    """Follow the system ("system") or force "light"/"dark" for the whole app."""
    if scheme not in SCHEMES:
        raise InvalidInput(
            f"Unknown colour scheme {scheme!r}.", f"Use one of: {', '.join(SCHEMES)}."
        )
    hints = app.styleHints()
    wanted = SCHEMES[scheme]
    if wanted is None:
        hints.unsetColorScheme()
        app.setPalette(QPalette())  # back to the platform's palette
    else:
        hints.setColorScheme(wanted)
        if hints.colorScheme() != wanted:
            # the platform cannot switch (offscreen, some Linux desktops): set the palette
            log.debug("Platform ignored the %s colour scheme; using our own palette", scheme)
            app.setPalette(dark_palette() if wanted == Qt.ColorScheme.Dark else light_palette())
        else:
            app.setPalette(QPalette())
    log.debug("Colour scheme set to %s", scheme)


def _palette(colors: dict[QPalette.ColorRole, str], disabled_text: str) -> QPalette:
    palette = QPalette()
    for role, value in colors.items():
        palette.setColor(role, QColor(value))
    for role in (
        QPalette.ColorRole.WindowText,
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
    ):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(disabled_text))
    return palette


def dark_palette() -> QPalette:
    """A neutral dark palette for platforms that cannot switch scheme themselves."""
    role = QPalette.ColorRole
    return _palette(
        {
            role.Window: "#202124",
            role.WindowText: "#e8eaed",
            role.Base: "#17181a",
            role.AlternateBase: "#26282b",
            role.Text: "#e8eaed",
            role.Button: "#2b2d31",
            role.ButtonText: "#e8eaed",
            role.BrightText: "#ffffff",
            role.Highlight: "#5b6cf0",
            role.HighlightedText: "#ffffff",
            role.ToolTipBase: "#2b2d31",
            role.ToolTipText: "#e8eaed",
            role.PlaceholderText: "#9aa0a6",
            role.Link: "#8ab4f8",
            role.Mid: "#3c4043",
            role.Dark: "#111214",
            role.Light: "#3c4043",
        },
        disabled_text="#6b7075",
    )


def light_palette() -> QPalette:
    role = QPalette.ColorRole
    return _palette(
        {
            role.Window: "#f3f3f4",
            role.WindowText: "#1f1f1f",
            role.Base: "#ffffff",
            role.AlternateBase: "#f1f3f4",
            role.Text: "#1f1f1f",
            role.Button: "#f3f3f4",
            role.ButtonText: "#1f1f1f",
            role.BrightText: "#000000",
            role.Highlight: "#3a2fa8",
            role.HighlightedText: "#ffffff",
            role.ToolTipBase: "#ffffdc",
            role.ToolTipText: "#1f1f1f",
            role.PlaceholderText: "#6b7075",
            role.Link: "#1a56db",
            role.Mid: "#c4c7c5",
            role.Dark: "#a0a4a8",
            role.Light: "#ffffff",
        },
        disabled_text="#a0a4a8",
    )


def is_dark(palette: QPalette | None = None) -> bool:
    """True when window text is lighter than the window (works whatever set the scheme)."""
    if palette is None:
        palette = QGuiApplication.palette()
    text = palette.color(QPalette.ColorRole.WindowText)
    window = palette.color(QPalette.ColorRole.Window)
    return text.lightness() > window.lightness()


def state_color(state: str, dark: bool | None = None) -> QColor:
    """The badge colour for a project/job state, readable on the current background."""
    try:
        light_hex, dark_hex = STATE_COLORS[state]
    except KeyError:
        raise InvalidInput(
            f"Unknown state {state!r}.", f"Use one of: {', '.join(STATE_COLORS)}."
        ) from None
    return QColor(dark_hex if (is_dark() if dark is None else dark) else light_hex)
