"""Shared by the window tests: ``app``, an application context on a fresh data root, and
``harness``, a real main window on a real data root."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from comfymanager.core.context import build_core_context
from comfymanager.ui.app_context import AppContext, build_app_context, shutdown
from comfymanager.ui.dialogs import confirm
from tests.fixtures.window import Harness, make_window


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


@pytest.fixture
def app(data_dir: Path) -> Iterator[AppContext]:
    ctx = build_app_context(build_core_context(data_dir))
    yield ctx
    shutdown(ctx)
