""" "Open folder" / "Open in browser" when nothing on the system opens them (issue 13, point 8).

CI has no desktop handler; the failure is injected where Qt reports it (``openUrl`` returning
False), and the real window's buttons and intents are used.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QApplication, QMessageBox, QPushButton
from pytestqt.qtbot import QtBot

from comfymanager.core.context import build_core_context
from comfymanager.core.projects import InstallState, Project, ProjectStore
from comfymanager.ui import app_context
from comfymanager.ui.app_context import shutdown
from tests.fixtures.window import Harness, make_window


@pytest.fixture
def win(qtbot: QtBot, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    asked: list[str] = []

    def no_handler(url: object) -> bool:
        asked.append(str(url.toString()))  # type: ignore[attr-defined]
        return False

    monkeypatch.setattr(QDesktopServices, "openUrl", no_handler)
    ProjectStore(build_core_context(data_dir).paths).create(
        Project(id="p", install=InstallState(status="ready"))
    )
    h = make_window(qtbot, data_dir)
    h.app.open_url = app_context.desktop_open_url  # the real ones, not the harness's
    h.app.open_path = app_context.desktop_open_path
    h.opened.urls = asked
    yield h
    h.win.quit_done = True
    shutdown(h.app)


def _box(qtbot: QtBot) -> QMessageBox:
    def find() -> QMessageBox | None:
        boxes = [
            w
            for w in QApplication.topLevelWidgets()
            if isinstance(w, QMessageBox) and w.objectName() == "error-box" and w.isVisible()
        ]
        return boxes[-1] if boxes else None

    qtbot.waitUntil(lambda: find() is not None, timeout=5000)
    box = find()
    assert box is not None
    return box


def test_open_folder_without_a_file_manager_says_why_and_offers_the_path(
    qtbot: QtBot, win: Harness
) -> None:
    win.win.select("p")
    win.win.details.buttons["folder"].click()
    folder = str(ProjectStore(win.app.core.paths).dirs("p").root)
    assert win.opened.urls and win.opened.urls[0].endswith(folder)  # it was really tried
    box = _box(qtbot)
    assert box.windowTitle() == "Cannot open the folder"
    assert folder in box.text() and "no program set to open folders" in box.text()
    assert "Copy the path" in box.informativeText()
    copy = box.findChild(QPushButton, "copy")
    assert copy is not None
    copy.click()
    assert QGuiApplication.clipboard().text() == folder
    box.close()


def test_open_in_browser_without_a_browser_says_why_and_offers_the_address(
    qtbot: QtBot, win: Harness
) -> None:
    url = "http://127.0.0.1:8188/"
    win.app.open_url(url)
    box = _box(qtbot)
    assert box.windowTitle() == "Cannot open the browser"
    assert url in box.text() and "no default browser" in box.text()
    box.findChild(QPushButton, "copy").click()  # type: ignore[union-attr]
    assert QGuiApplication.clipboard().text() == url
    box.close()
