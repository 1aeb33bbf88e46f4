"""Closing the window: hide to the tray with a one-time hint, or go on to quit."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QSystemTrayIcon, QWidget
from pytestqt.qtbot import QtBot

from comfymanager.core import settings as settings_mod
from comfymanager.core.context import build_core_context
from comfymanager.core.notifier import Notice
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.close_policy import handle_close
from comfymanager.ui.tray import Tray


@pytest.fixture
def window(qtbot: QtBot) -> QWidget:
    w = QWidget()
    qtbot.addWidget(w)
    w.show()
    return w


def tray_available(monkeypatch: pytest.MonkeyPatch, value: bool) -> None:
    monkeypatch.setattr(QSystemTrayIcon, "isSystemTrayAvailable", staticmethod(lambda: value))


def test_close_hides_to_tray_and_hints_once(
    qtbot: QtBot, app: AppContext, window: QWidget, monkeypatch: pytest.MonkeyPatch
) -> None:
    tray_available(monkeypatch, True)
    tray = Tray(app)
    hints: list[Notice] = []
    tray.message_shown.connect(hints.append)
    assert handle_close(window, app, tray) is False
    assert not window.isVisible()
    assert [n.text for n in hints] == [
        "comfymanager keeps running in the tray; Quit from its menu."
    ]
    assert settings_mod.load(app.core.paths, apply_env=False).tray_hint_shown

    window.show()
    assert handle_close(window, app, tray) is False
    assert not window.isVisible() and len(hints) == 1  # the hint is shown only once

    # and not again after a restart: the flag is in settings.json
    again = build_core_context(app.core.paths.root)
    assert again.settings.tray_hint_shown
    tray.dispose()


def test_without_a_tray_close_quits(
    app: AppContext, window: QWidget, monkeypatch: pytest.MonkeyPatch
) -> None:
    tray_available(monkeypatch, False)
    assert handle_close(window, app, Tray(app)) is True
    assert handle_close(window, app, None) is True
    assert window.isVisible()


def test_close_to_tray_off_means_quit(
    app: AppContext, window: QWidget, monkeypatch: pytest.MonkeyPatch
) -> None:
    tray_available(monkeypatch, True)
    app.core.settings.close_to_tray = False
    assert handle_close(window, app, Tray(app)) is True
    assert window.isVisible()
    assert not app.core.settings.tray_hint_shown
