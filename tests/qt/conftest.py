"""Shared by the window tests: the window's asyncio loop (``qt_event_loop``, every test),
``app``, an application context on a fresh data root, and ``harness``, a real main window on a
real data root."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import qasync
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from comfymanager.core.context import build_core_context
from comfymanager.ui.app_context import AppContext, build_app_context, shutdown
from comfymanager.ui.dialogs import confirm
from tests.fixtures.window import Harness, make_window


@pytest.fixture(autouse=True)
def qt_event_loop(qapp: QApplication) -> Iterator[asyncio.AbstractEventLoop]:
    """A qasync loop on the Qt event loop, as ``app.py`` runs the window: marked running (what
    ``loop.run_forever`` does around ``QApplication.exec``), so the window's coroutines
    (``ui/background.run_coroutine``) progress whenever a test spins Qt (``qtbot.waitUntil``,
    ``waitSignal``). Tasks left at the end are cancelled and given the events to finish."""
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    asyncio.events._set_running_loop(loop)
    try:
        yield loop
    finally:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        for _ in range(100):
            if all(t.done() for t in pending):
                break
            qapp.processEvents()
        asyncio.events._set_running_loop(None)
        asyncio.set_event_loop(None)
        loop.close()


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
