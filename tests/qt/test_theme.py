"""Forcing light or dark changes what widgets paint with; state colours read on both."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QLabel
from pytestqt.qtbot import QtBot

from comfymanager.core.errors import InvalidInput
from comfymanager.ui.theme import apply_color_scheme, is_dark, state_color


@pytest.fixture
def app(qapp: QApplication) -> Iterator[QApplication]:
    yield qapp
    apply_color_scheme(qapp, "system")


def test_dark_then_light_then_system(qtbot: QtBot, app: QApplication) -> None:
    label = QLabel("Running")
    qtbot.addWidget(label)
    system_dark = is_dark()
    apply_color_scheme(app, "dark")
    assert is_dark()
    qtbot.waitUntil(lambda: is_dark(label.palette()), timeout=2000)
    apply_color_scheme(app, "light")
    assert not is_dark()
    apply_color_scheme(app, "system")
    assert is_dark() == system_dark


def test_state_colours_contrast_with_the_background(app: QApplication) -> None:
    apply_color_scheme(app, "dark")
    window = QApplication.palette().color(QPalette.ColorRole.Window)
    assert state_color("running").lightness() > window.lightness()
    apply_color_scheme(app, "light")
    window = QApplication.palette().color(QPalette.ColorRole.Window)
    assert state_color("running").lightness() < window.lightness()
    assert state_color("busy", dark=True).name() == "#f5a623"  # the tray's amber


def test_unknown_names_are_clear_errors(app: QApplication) -> None:
    with pytest.raises(InvalidInput, match="system, light, dark"):
        apply_color_scheme(app, "sepia")
    with pytest.raises(InvalidInput, match="running"):
        state_color("exploded")
