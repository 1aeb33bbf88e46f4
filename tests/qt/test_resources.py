"""Every icon and installer file the app references exists and loads."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QSize
from PySide6.QtGui import QImage
from pytestqt.qtbot import QtBot

from comfymanager.core.errors import InvalidInput, NotFound
from comfymanager.ui import resources
from comfymanager.ui.resources import (
    TRAY_STATES,
    all_resource_names,
    app_icon,
    resource_path,
    tray_icon,
)


@pytest.mark.parametrize("name", all_resource_names())
def test_every_referenced_file_exists(name: str) -> None:
    path = resource_path(name)
    assert path.is_file()
    assert path.stat().st_size > 0
    if path.suffix == ".png":
        image = QImage(str(path))
        assert not image.isNull()
        size = int(path.stem.rsplit("-", 1)[1])
        assert (image.width(), image.height()) == (size, size)
        assert image.hasAlphaChannel()


def test_app_icon_has_every_size(qtbot: QtBot) -> None:
    icon = app_icon()
    assert not icon.isNull()
    sizes = {s.width() for s in icon.availableSizes()}
    assert sizes == set(resources.APP_ICON_SIZES)
    assert not icon.pixmap(QSize(32, 32)).isNull()


@pytest.mark.parametrize("state", TRAY_STATES)
def test_tray_icons_load_and_differ(qtbot: QtBot, state: str) -> None:
    icon = tray_icon(state)
    assert not icon.isNull()
    assert {s.width() for s in icon.availableSizes()} == set(resources.TRAY_ICON_SIZES)
    others = [tray_icon(s).pixmap(22, 22).toImage() for s in TRAY_STATES if s != state]
    assert all(icon.pixmap(22, 22).toImage() != other for other in others)


def test_unknown_tray_state_is_a_clear_error(qtbot: QtBot) -> None:
    with pytest.raises(InvalidInput, match="idle, busy, running"):
        tray_icon("sleeping")


def test_missing_resource_names_where_it_looked() -> None:
    with pytest.raises(NotFound, match=r"nope\.png"):
        resource_path("icons/nope.png")
    with pytest.raises(InvalidInput):
        resource_path("../pyproject.toml")


def test_frozen_bundle_folder_comes_first(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "resources" / "icons").mkdir(parents=True)
    (tmp_path / "resources" / "icons" / "comfymanager.svg").write_text("<svg/>")
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resource_path("icons/comfymanager.svg") == tmp_path / "resources/icons/comfymanager.svg"
    # files the bundle lacks still come from the next layout
    assert resource_path("icons/comfymanager.ico").is_file()
