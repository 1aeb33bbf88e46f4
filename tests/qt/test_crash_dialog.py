"""An unexpected exception shows a copyable, redacted crash dialog and the app keeps running."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from comfymanager.core.log import (
    LogSetup,
    register_secret,
    setup_logging,
    shutdown_logging,
    unregister_secret,
)
from comfymanager.ui.crash import CrashDialog, CrashHandler, install_excepthook

pytestmark = [pytest.mark.qt_no_exception_capture, pytest.mark.allow_error_log]

SECRET = "civitai-key-0123456789abcdef"


class Emitter(QObject):
    fire = Signal(str)


def _broken_slot(text: str) -> None:
    raise ValueError(f"cannot parse workflow: {text}")


@pytest.fixture
def log_setup(data_dir: Path) -> Iterator[LogSetup]:
    setup = setup_logging(data_dir / "logs", qt_messages=False)
    register_secret(SECRET)
    yield setup
    unregister_secret(SECRET)
    shutdown_logging()


@pytest.fixture
def opened() -> list[Path]:
    return []


@pytest.fixture
def handler(qtbot: QtBot, log_setup: LogSetup, opened: list[Path]) -> Iterator[CrashHandler]:
    def record(folder: Path) -> bool:  # the desktop's file manager is an OS service
        opened.append(folder)
        return True

    crash = install_excepthook(log_setup, log_setup.log_file, opener=record)
    yield crash
    crash.uninstall()
    if crash.dialog is not None:
        crash.dialog.close()
        crash.dialog.deleteLater()


def _dialog(qtbot: QtBot, crash: CrashHandler) -> CrashDialog:
    qtbot.waitUntil(lambda: crash.dialog is not None and crash.dialog.isVisible(), timeout=5000)
    assert crash.dialog is not None
    return crash.dialog


def test_exception_in_a_slot_shows_the_traceback(
    qtbot: QtBot, handler: CrashHandler, log_setup: LogSetup
) -> None:
    logging.getLogger("comfymanager.projects").info("importing flux.json")
    emitter = Emitter()
    emitter.fire.connect(_broken_slot)
    emitter.fire.emit("flux.json")
    dialog = _dialog(qtbot, handler)
    text = dialog.details.toPlainText()
    assert dialog.details.isReadOnly()
    assert "ValueError: cannot parse workflow: flux.json" in dialog.headline.text()
    assert "Traceback (most recent call last)" in text
    assert "_broken_slot" in text
    assert "importing flux.json" in text  # recent log lines from the ring buffer
    assert str(log_setup.log_file) in dialog.log_label.text()
    assert "CRITICAL" in "\n".join(log_setup.ring.lines())
    assert "cannot parse workflow" in log_setup.log_file.read_text(encoding="utf-8")


def test_the_app_keeps_running_after_a_crash(qtbot: QtBot, handler: CrashHandler) -> None:
    emitter = Emitter()
    emitter.fire.connect(_broken_slot)
    emitter.fire.emit("x")
    _dialog(qtbot, handler)
    ran: list[bool] = []
    QTimer.singleShot(0, lambda: ran.append(True))
    qtbot.waitUntil(lambda: ran == [True], timeout=5000)


def test_copy_puts_the_details_on_the_clipboard(qtbot: QtBot, handler: CrashHandler) -> None:
    emitter = Emitter()
    emitter.fire.connect(_broken_slot)
    emitter.fire.emit("sdxl.png")
    dialog = _dialog(qtbot, handler)
    with qtbot.waitSignal(dialog.copied, timeout=5000):
        qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    copied = QGuiApplication.clipboard().text()
    assert "ValueError: cannot parse workflow: sdxl.png" in copied
    assert "comfymanager 0." in copied  # the version line a bug report needs
    assert copied == dialog.report_text()


def test_secrets_are_redacted_in_the_dialog_and_the_copy(
    qtbot: QtBot, handler: CrashHandler, log_setup: LogSetup
) -> None:
    emitter = Emitter()
    emitter.fire.connect(_broken_slot)
    emitter.fire.emit(f"https://civitai.com/api/download/models/1?token={SECRET}")
    dialog = _dialog(qtbot, handler)
    qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    for shown in (
        dialog.details.toPlainText(),
        dialog.headline.text(),
        QGuiApplication.clipboard().text(),
        log_setup.log_file.read_text(encoding="utf-8"),
    ):
        assert SECRET not in shown
        assert "token=***" in shown


def test_exception_in_a_thread_is_shown_on_the_gui_thread(
    qtbot: QtBot, handler: CrashHandler
) -> None:
    def work() -> None:
        raise RuntimeError("download worker died")

    worker = threading.Thread(target=work, name="download-3")
    with qtbot.waitSignal(handler.crashed, timeout=5000) as blocker:
        worker.start()
        worker.join()
    assert blocker.args[0] == "RuntimeError: download worker died"
    dialog = _dialog(qtbot, handler)
    assert "In download-3:" in dialog.details.toPlainText()


def test_more_errors_while_open_are_appended(qtbot: QtBot, handler: CrashHandler) -> None:
    emitter = Emitter()
    emitter.fire.connect(_broken_slot)
    emitter.fire.emit("one")
    dialog = _dialog(qtbot, handler)
    emitter.fire.emit("two")
    qtbot.waitUntil(lambda: dialog.error_count == 2, timeout=5000)
    assert handler.dialog is dialog
    assert "and 1 more" in dialog.headline.text()
    assert "--- error 2 ---" in dialog.details.toPlainText()


def test_open_logs_folder_opens_the_folder_of_the_log(
    qtbot: QtBot, handler: CrashHandler, log_setup: LogSetup, opened: list[Path]
) -> None:
    emitter = Emitter()
    emitter.fire.connect(_broken_slot)
    emitter.fire.emit("x")
    dialog = _dialog(qtbot, handler)
    qtbot.mouseClick(dialog.open_logs_button, Qt.MouseButton.LeftButton)
    assert opened == [log_setup.log_dir]
    qtbot.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
