"""Files shipped with the app (icons, desktop entries), found the same way in every layout.

Three layouts exist:

- frozen (PyInstaller): ``<sys._MEIPASS>/resources``,
- installed wheel: ``comfymanager/_resources`` (pyproject force-includes ``resources`` there),
- source checkout: ``<repo>/resources``.

``resource_path(name)`` returns the first that holds ``name``; ``app_icon()`` and
``tray_icon(state)`` build multi-size ``QIcon`` objects from the rendered PNGs.
"""

from __future__ import annotations

import logging
import sys
from functools import cache
from pathlib import Path

from PySide6.QtGui import QIcon

from comfymanager.core.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)

APP_ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
TRAY_ICON_SIZES = (16, 22, 24, 32, 48, 64)
TRAY_STATES = ("idle", "busy", "running", "attention")
APP_ICON_FILES = tuple(f"icons/app/comfymanager-{size}.png" for size in APP_ICON_SIZES)
OTHER_FILES = (
    "icons/comfymanager.svg",
    "icons/comfymanager.ico",
    "icons/comfymanager.icns",
    "linux/io.github.comfymanager.ComfyManager.desktop",
    "linux/comfymanager-mime.xml",
)


def tray_icon_files(state: str) -> tuple[str, ...]:
    return tuple(f"icons/tray/tray-{state}-{size}.png" for size in TRAY_ICON_SIZES)


def all_resource_names() -> tuple[str, ...]:
    """Every file the app or the installers reference (the packaging test checks them all)."""
    names = list(APP_ICON_FILES) + list(OTHER_FILES)
    for state in TRAY_STATES:
        names += tray_icon_files(state)
    return tuple(names)


def resource_roots() -> tuple[Path, ...]:
    """Folders searched, in order: frozen bundle, installed package, source checkout."""
    roots: list[Path] = []
    meipass = getattr(sys, "_MEIPASS", None)
    if meipass:
        roots.append(Path(meipass) / "resources")
    package = Path(__file__).resolve().parents[1]
    roots.append(package / "_resources")
    roots.append(package.parent / "resources")
    return tuple(roots)


def resource_path(name: str) -> Path:
    """The absolute path of resource ``name`` (e.g. ``icons/comfymanager.ico``)."""
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise InvalidInput(f"Resource name {name!r} must be a relative path inside resources/.")
    for root in resource_roots():
        candidate = root / relative
        if candidate.exists():
            return candidate
    searched = ", ".join(str(r) for r in resource_roots())
    raise NotFound(
        f"The resource file {name} is missing (looked in {searched}).",
        "Reinstall comfymanager; from a source checkout run resources/make_icons.py.",
    )


def _icon(files: tuple[str, ...]) -> QIcon:
    icon = QIcon()
    for name in files:
        icon.addFile(str(resource_path(name)))
    return icon


@cache
def app_icon() -> QIcon:
    """The application icon with every rendered size (window, taskbar, dialogs)."""
    return _icon(APP_ICON_FILES)


@cache
def tray_icon(state: str = "idle") -> QIcon:
    """The tray icon for ``state``: "idle" (grey ring), "busy" (amber diamond), "running" (green
    triangle) or "attention" (red exclamation mark)."""
    if state not in TRAY_STATES:
        raise InvalidInput(
            f"Unknown tray state {state!r}.", f"Use one of: {', '.join(TRAY_STATES)}."
        )
    return _icon(tray_icon_files(state))
