"""The activity pane's download rows as a user sees them: a download paused by a lost connection
says why and offers Resume; resuming finishes it from where it stopped."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from comfymanager.core.models import transfer
from comfymanager.core.models.download import DownloadRequest
from comfymanager.core.progress import format_bytes
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.panes.progress import ProgressPane
from tests.fixtures.http_server import FileServer, Served, make_safetensors


def test_lost_connection_row_says_why_and_resumes(
    qtbot: QtBot,
    app: AppContext,
    http_files: FileServer,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(transfer, "BACKOFF", 0.01)
    data = make_safetensors(300_000, seed=3)
    url = http_files.add("/f.safetensors", Served(data, fail_after=20_000, fail_times=99))
    pane = ProgressPane(app)
    qtbot.addWidget(pane)
    pane.show()
    item_id = app.downloads.add(DownloadRequest(urls=(url,), folder="loras", name="f.safetensors"))
    qtbot.waitUntil(lambda: app.downloads.item(item_id).state == "paused", timeout=20000)
    row = pane.downloads[item_id]
    qtbot.waitUntil(lambda: "paused" in row.stage.text(), timeout=5000)
    assert row.stage.text() == "loras/f.safetensors: paused"
    assert "connection was lost" in row.error.text()
    assert row.resume.isVisible() and not row.retry.isVisible()
    kept = app.downloads.item(item_id).done
    assert row.detail.text() == f"paused at {format_bytes(kept)} of {format_bytes(len(data))}"

    http_files.files["/f.safetensors"].fail_times = 0
    qtbot.mouseClick(row.resume, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: app.downloads.item(item_id).state == "done", timeout=20000)
    qtbot.waitUntil(lambda: row.stage.text() == "loras/f.safetensors: done", timeout=5000)
    assert row.error.text() == "" and not row.resume.isVisible()
    assert (data_dir / "models" / "loras" / "f.safetensors").read_bytes() == data
