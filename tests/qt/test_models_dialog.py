"""Models dialog: the store scanned on a worker into the table (folder, size, users, pickle
warning), the total line, filter, Reveal, Verify (rehash on a worker) and Delete (asks, naming
the projects that use the file, then removes it from disk, the index and the table)."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from comfymanager.core.context import build_core_context
from comfymanager.core.models.index import ModelIndex
from comfymanager.core.progress import format_bytes
from comfymanager.core.secrets import Secrets
from comfymanager.ui.app_context import AppContext, build_app_context, shutdown
from comfymanager.ui.dialogs.models_dialog import ModelsDialog
from comfymanager.ui.models.store_model import COLUMNS, StoreTableModel


def safetensors_bytes() -> bytes:
    header = b"{}".ljust(8, b" ")
    return struct.pack("<Q", len(header)) + header


@pytest.fixture
def app(data_dir: Path) -> Iterator[AppContext]:
    ctx = build_app_context(build_core_context(data_dir), secrets=Secrets())
    yield ctx
    shutdown(ctx)


@pytest.fixture
def store(app: AppContext) -> Path:
    store = app.core.store
    a = store / "checkpoints" / "a.safetensors"
    b = store / "loras" / "b.ckpt"
    a.parent.mkdir(parents=True, exist_ok=True)
    b.parent.mkdir(parents=True, exist_ok=True)
    a.write_bytes(safetensors_bytes())
    b.write_bytes(b"\x80\x02}q\x00." * 250)
    index = ModelIndex.load(store)
    index.scan()
    index.record("checkpoints", "a.safetensors", source="https://huggingface.co/x/y/a.safetensors")
    index.set_used_by("checkpoints", "a.safetensors", ["alpha", "beta"])
    index.save()
    return store


def rows(model: StoreTableModel) -> dict[str, list[str]]:
    out = {}
    for r in range(model.rowCount()):
        cells = [model.data(model.index(r, c)) for c in range(len(COLUMNS))]
        out[cells[1]] = cells
    return out


def open_dialog(qtbot: QtBot, app: AppContext) -> ModelsDialog:
    d = ModelsDialog(app, None)
    qtbot.addWidget(d)
    qtbot.waitUntil(lambda: d.model.rowCount() == 2 and d.refresh_button.isEnabled())
    return d


def test_table_lists_store_files(qtbot: QtBot, app: AppContext, store: Path) -> None:
    d = open_dialog(qtbot, app)
    table = rows(d.model)
    a = table["a.safetensors"]
    b = table["b.ckpt"]
    assert a[0] == "checkpoints"
    assert a[2] == format_bytes(len(safetensors_bytes()))
    assert a[3] == "alpha, beta"
    assert a[4] == "huggingface.co"
    assert a[5] == ""
    assert b[0] == "loras"
    assert b[2] == "1.5 KB"
    assert b[3] == ""
    assert b[5] == "can run code"
    total = len(safetensors_bytes()) + 1500
    assert d.total.text() == f"2 files, {format_bytes(total)} in {store}"
    # buttons need a selection; all have accessible names
    assert not d.delete_button.isEnabled()
    for button in (d.refresh_button, d.reveal_button, d.verify_button, d.delete_button):
        assert button.accessibleName()
    d.filter.setText("LORAS")
    assert d.proxy.rowCount() == 1
    d.filter.setText("")
    assert d.proxy.rowCount() == 2


def test_reveal_and_verify(qtbot: QtBot, app: AppContext, store: Path) -> None:
    opened: list[Path] = []
    app.open_path = opened.append
    d = open_dialog(qtbot, app)
    assert d.select_file("loras/b.ckpt")
    d.reveal_button.click()
    assert opened == [store / "loras"]
    d.verify_button.click()
    qtbot.waitUntil(lambda: "OK: sha256 matches" in d.status.text())
    assert d.status.text() == "loras/b.ckpt: OK: sha256 matches"
    # the hash is now recorded; a change on disk is reported
    (store / "loras" / "b.ckpt").write_bytes(b"changed")
    d.refresh()
    qtbot.waitUntil(lambda: d.refresh_button.isEnabled())
    assert d.select_file("loras/b.ckpt")
    d.verify_button.click()
    qtbot.waitUntil(lambda: "Changed on disk" in d.status.text())


def test_delete_asks_and_removes(
    qtbot: QtBot, app: AppContext, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    def question(_parent: Any, _title: str, text: str, *args: Any) -> QMessageBox.StandardButton:
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", question)
    d = open_dialog(qtbot, app)
    assert d.select_file("checkpoints/a.safetensors")
    d.delete_button.click()
    assert len(asked) == 1
    assert "used by projects alpha, beta: their workflows will miss it" in asked[0]
    qtbot.waitUntil(lambda: d.status.text().startswith("Deleted"))  # deleted on a worker
    assert not (store / "checkpoints" / "a.safetensors").exists()
    assert list(rows(d.model)) == ["b.ckpt"]
    assert d.total.text().startswith("1 file, ")
    assert ModelIndex.load(store).find("checkpoints", "a.safetensors") is None


def test_model_in_use_on_windows_is_refused_with_a_way_out(
    qtbot: QtBot, app: AppContext, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model a running ComfyUI memory-maps cannot be deleted on Windows (WinError 32)."""
    import errno
    import os

    from comfymanager.core import fileops

    monkeypatch.setattr(QMessageBox, "question", lambda *a: QMessageBox.StandardButton.Yes)
    monkeypatch.setattr(fileops, "IS_WINDOWS", True)
    monkeypatch.setattr(fileops, "RETRY_SECONDS", 0.3)
    real_unlink = os.unlink

    def mapped(path: Any, *args: Any, **kwargs: Any) -> None:
        if str(path).endswith("a.safetensors"):
            exc = PermissionError(errno.EACCES, "The process cannot access the file")
            exc.winerror = 32  # type: ignore[attr-defined]
            raise exc
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", mapped)
    d = open_dialog(qtbot, app)
    assert d.select_file("checkpoints/a.safetensors")
    d.delete_button.click()
    qtbot.waitUntil(lambda: d.status.text().startswith("Could not delete"))
    text = d.status.text()
    assert "in use by a running ComfyUI" in text and "Stop it and try again" in text
    assert "WinError" not in text and "Errno" not in text
    assert (store / "checkpoints" / "a.safetensors").exists()
    assert "a.safetensors" in rows(d.model)


def test_leftovers_of_interrupted_operations_are_shown(
    qtbot: QtBot, app: AppContext, store: Path
) -> None:
    trash = app.core.paths.projects / ".deleting-old-1" / "venv"
    trash.mkdir(parents=True)
    (trash / "torch.so").write_bytes(b"x" * 3_000_000)
    d = open_dialog(qtbot, app)
    assert d.leftovers.isVisibleTo(d)
    assert d.leftovers.text().startswith("Left over from interrupted operations: 3.0 MB")


def test_the_app_removes_leftovers_on_a_worker_at_start(qtbot: QtBot, app: AppContext) -> None:
    from comfymanager.app import _start_cleanup

    trash = app.core.paths.projects / ".deleting-old-1" / "venv"
    trash.mkdir(parents=True)
    (trash / "torch.so").write_bytes(b"x" * 1000)
    finished: list[Any] = []
    app.jobs.job_finished.connect(finished.append)
    _start_cleanup(app)
    qtbot.waitUntil(lambda: bool(finished), timeout=20_000)
    assert finished[0].outcome == "succeeded" and finished[0].result.removed == 1
    assert not trash.parent.exists()
    _start_cleanup(app)  # nothing left: no job at all
    assert not app.jobs.busy("cleanup")
