"""macOS-only behaviour expressed on Linux: the Dock icon brings a hidden window back, and the
App Nap opt-out is held exactly while downloads run (a no-op on other systems)."""

from __future__ import annotations

from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from comfymanager.app import _dock_filter, dock_reopens_window
from comfymanager.core import power
from comfymanager.ui.app_context import AppContext


def test_dock_click_reopens_only_a_hidden_window_on_macos(qtbot: QtBot, app: AppContext) -> None:
    assert dock_reopens_window("darwin", True, window_visible=False)
    assert not dock_reopens_window("darwin", True, window_visible=True)
    assert not dock_reopens_window("win32", True, window_visible=False)
    assert not dock_reopens_window("darwin", False, window_visible=False)

    window = QWidget()
    qtbot.addWidget(window)
    window.app = app  # type: ignore[attr-defined]
    mac = _dock_filter(window, os_name="darwin")
    activate = QEvent(QEvent.Type.ApplicationActivate)
    with qtbot.waitSignal(app.intents.show_window):
        assert mac.eventFilter(window, activate) is False  # never swallows the event
    linux = _dock_filter(window, os_name="linux")
    with qtbot.assertNotEmitted(app.intents.show_window):
        linux.eventFilter(window, activate)


def test_app_nap_is_held_while_busy_and_released_once() -> None:
    calls: list[str] = []
    guard = power.BusyActivity(
        "Downloading models",
        begin=lambda reason: calls.append(f"begin {reason}") or "token",
        end=lambda token: calls.append(f"end {token}"),
    )
    guard.set_busy(True)
    guard.set_busy(True)  # a second download: still one activity
    guard.set_busy(False)
    guard.set_busy(False)
    assert calls == ["begin Downloading models", "end token"]
    assert power.begin_activity("x", os_name="linux") is None  # a no-op off macOS
    power.end_activity(None)
