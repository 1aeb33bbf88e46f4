"""The main-window harness shared by the window tests: a real window on a real data root."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from comfymanager.ui.app_context import shutdown
from comfymanager.ui.dialogs import confirm
from tests.qt.test_main_window import Harness, make_window


@pytest.fixture
def harness(
    qtbot: QtBot, project_data_dir: Path, stop_all: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Harness]:
    # pytest-qt closes the window before fixtures end: with a project still running the quit
    # question would wait for an answer nobody gives offscreen, so tests answer "stop them"
    # unless they patch the question themselves
    monkeypatch.setattr(confirm, "ask_quit", lambda parent, running: confirm.STOP)
    h = make_window(qtbot, project_data_dir)
    yield h
    if not h.win.quit_done:
        h.win.quit_done = True
        shutdown(h.app)
