"""What the user can ask for, from anywhere (menu, toolbar, tray, drop, second instance).

The tray and the window only *emit* intents; the main window handles them in one place, so both
share exactly the same behaviour (confirmations, job queues, errors).

Signals: ``new_project()``, ``import_files(list[str])``, ``start(str project)``,
``stop(str project)``, ``open_browser(str project)``, ``open_folder(str project)``,
``show_window()``, ``show_settings()``, ``quit()``.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal


class Intents(QObject):
    new_project = Signal()
    import_files = Signal(list)
    start = Signal(str)
    stop = Signal(str)
    open_browser = Signal(str)
    open_folder = Signal(str)
    show_window = Signal()
    show_settings = Signal()
    quit = Signal()
