"""Window waits that are pure I/O run as coroutines on the qasync loop (``run_coroutine``): they
progress while Qt spins, no thread is started, a late result is dropped once the widget is gone
(and the wait cancelled, its process killed), and a failure reaches the error display."""

from __future__ import annotations

import asyncio
import stat
import sys
import threading
from pathlib import Path

import psutil
import pytest
import shiboken6
from PySide6.QtCore import QObject
from pytestqt.qtbot import QtBot

from comfymanager.core.errors import ErrorInfo
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.background import run_coroutine
from comfymanager.ui.dialogs.about import AboutDialog


async def _python_prints(text: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", f"print({text!r})", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    return out.decode().strip()


def test_a_subprocess_and_a_local_socket_wait_on_the_window_loop(qtbot: QtBot) -> None:
    receiver = QObject()
    results: list[object] = []
    threads_before = threading.active_count()

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write((await reader.readline()).upper())
        await writer.drain()
        writer.close()

    async def ask_socket() -> str:
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"ping\n")
            answer = await asyncio.wait_for(reader.readline(), 10)
            writer.close()
            return answer.decode().strip()
        finally:
            server.close()

    run_coroutine(receiver, _python_prints("from a child"), results.append)
    run_coroutine(receiver, ask_socket(), results.append)
    qtbot.waitUntil(lambda: len(results) == 2, timeout=20000)
    assert sorted(results) == ["PING", "from a child"]  # type: ignore[type-var]
    # the socket wait took no thread; the subprocess at most asyncio's child watcher
    assert threading.active_count() <= threads_before + 1


def test_a_late_result_after_the_widget_is_gone_is_dropped(qtbot: QtBot) -> None:
    receiver = QObject()
    results: list[object] = []
    release = asyncio.Event()
    reached: list[str] = []

    async def slow() -> str:
        reached.append("waiting")
        try:
            await release.wait()
        except asyncio.CancelledError:
            reached.append("cancelled")
            raise
        return "late"

    task = run_coroutine(receiver, slow(), results.append, results.append)
    qtbot.waitUntil(lambda: reached == ["waiting"], timeout=5000)
    shiboken6.delete(receiver)  # the dialog closed before the answer
    release.set()
    qtbot.waitUntil(task.done, timeout=5000)
    assert task.cancelled() and reached == ["waiting", "cancelled"]
    assert results == []


def test_a_failure_reaches_the_error_display(qtbot: QtBot) -> None:
    receiver = QObject()
    errors: list[ErrorInfo] = []

    async def fails() -> None:
        await asyncio.sleep(0)
        raise ConnectionRefusedError("nothing listens on 127.0.0.1:9")

    run_coroutine(receiver, fails(), lambda _r: None, errors.append)
    qtbot.waitUntil(lambda: bool(errors), timeout=5000)
    assert "nothing listens" in errors[0].message


def test_about_shows_why_uv_is_missing(
    qtbot: QtBot, app: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMFYMANAGER_UV", str(tmp_path / "no-uv-here"))
    about = AboutDialog(None, app=app)
    qtbot.addWidget(about)
    qtbot.waitUntil(lambda: about.uv_label.text().startswith("not found"), timeout=10000)
    assert "no-uv-here" in about.uv_label.text()


@pytest.mark.linux_only(reason="a shell script stands in for a hanging uv")
def test_closing_about_kills_a_uv_that_does_not_answer(
    qtbot: QtBot, app: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "uv.pid"
    fake = tmp_path / "uv"
    fake.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 60\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("COMFYMANAGER_UV", str(fake))
    about = AboutDialog(None, app=app)
    qtbot.waitUntil(lambda: pid_file.exists() and pid_file.read_text().strip() != "", timeout=10000)
    uv = psutil.Process(int(pid_file.read_text()))
    assert about.uv_label.text() == "checking..."
    task = about.uv_task
    shiboken6.delete(about)
    qtbot.waitUntil(task.done, timeout=5000)
    qtbot.waitUntil(
        lambda: not uv.is_running() or uv.status() == psutil.STATUS_ZOMBIE, timeout=5000
    )
