"""Settings dialog: round trip through settings.json, env overrides kept out of the file, field
errors keep the dialog open, tokens go to the keyring (never the file), start with the system,
and the About dialog's versions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QLineEdit
from pytestqt.qtbot import QtBot

from comfymanager import __version__
from comfymanager.core.context import build_core_context
from comfymanager.core.secrets import Secrets
from comfymanager.ui.app_context import AppContext, build_app_context, shutdown
from comfymanager.ui.dialogs.about import AboutDialog
from comfymanager.ui.dialogs.settings_dialog import SettingsDialog
from tests.fixtures.hf_server import MemoryKeyring

TEST_ENDPOINT = "http://127.0.0.1:9/unset-in-tests"  # conftest's HF_ENDPOINT etc.


@pytest.fixture
def autostart_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config" / "autostart" / "comfymanager.desktop"


@pytest.fixture
def app(data_dir: Path, autostart_home: Path) -> Iterator[AppContext]:
    ctx = build_app_context(build_core_context(data_dir), secrets=Secrets())
    yield ctx
    shutdown(ctx)


def dialog(qtbot: QtBot, app: AppContext) -> SettingsDialog:
    d = SettingsDialog(app)
    qtbot.addWidget(d)
    return d


def saved(app: AppContext) -> dict[str, object]:
    data = json.loads(app.core.paths.settings_file.read_text())
    payload = data.get("payload", data)
    assert isinstance(payload, dict)
    return payload


@pytest.mark.usefixtures("memory_keyring")
def test_round_trip(qtbot: QtBot, app: AppContext, autostart_home: Path) -> None:
    d = dialog(qtbot, app)
    d.port_min.setValue(5000)
    d.port_max.setValue(5050)
    d.parallel.setValue(5)
    d.snapshots_keep.setValue(7)
    d.update_hours.setValue(0)
    assert d.update_hours.text() == "only when asked"
    d.backend.setCurrentIndex(d.backend.findData("cpu"))
    d._edits["default_launch_args"].setText('--lowvram --preview-method "auto"')
    d._edits["default_comfyui_ref"].setText("v0.3.40")
    d._edits["torch_index_url"].setText("https://mirror.example/torch")
    d._edits["package_index_url"].setText("https://mirror.example/simple")
    d._edits["extra_index_urls"].setText("https://a.example/simple https://b.example/simple")
    d.close_to_tray.setChecked(False)
    d.start_with_system.setChecked(True)
    d.accept()
    assert d.result() == d.DialogCode.Accepted

    file = saved(app)
    assert file["port_min"] == 5000 and file["port_max"] == 5050
    assert file["parallel_downloads"] == 5 and file["default_torch_backend"] == "cpu"
    assert file["snapshots_keep"] == 7 and file["update_check_hours"] == 0
    assert file["default_launch_args"] == ["--lowvram", "--preview-method", "auto"]
    assert file["extra_index_urls"] == ["https://a.example/simple", "https://b.example/simple"]
    assert file["close_to_tray"] is False and file["start_with_system"] is True
    # environment overrides are shown but never written
    assert file["hf_endpoint"] == "https://huggingface.co"
    assert file["comfyui_source"] == "https://github.com/comfyanonymous/ComfyUI.git"
    assert app.core.settings.hf_endpoint == TEST_ENDPOINT
    assert app.downloads._parallel == 5
    assert autostart_home.is_file() and "-m comfymanager" in autostart_home.read_text()

    again = dialog(qtbot, app)
    assert (again.port_min.value(), again.port_max.value()) == (5000, 5050)
    assert again.parallel.value() == 5 and again.backend.currentData() == "cpu"
    assert (again.snapshots_keep.value(), again.update_hours.value()) == (7, 0)
    assert again._edits["default_launch_args"].text() == "--lowvram --preview-method auto"
    assert again._edits["torch_index_url"].text() == "https://mirror.example/torch"
    assert not again.close_to_tray.isChecked() and again.start_with_system.isChecked()
    assert build_core_context(app.core.paths.root).settings.port_min == 5000

    again.start_with_system.setChecked(False)
    again.accept()
    assert not autostart_home.exists()


def test_env_override_fields_are_read_only_with_a_note(qtbot: QtBot, app: AppContext) -> None:
    d = dialog(qtbot, app)
    for name, var in (("hf_endpoint", "HF_ENDPOINT"), ("registry_url", "COMFYMANAGER_REGISTRY")):
        edit = d._edits[name]
        assert edit.isReadOnly() and edit.text() == TEST_ENDPOINT
        notes = [lbl.text() for lbl in edit.parentWidget().findChildren(type(d.error))]
        assert any(var in t and "not saved" in t for t in notes), notes
    assert not d._edits["torch_index_url"].isReadOnly()


def test_invalid_values_keep_the_dialog_open(qtbot: QtBot, app: AppContext) -> None:
    d = dialog(qtbot, app)
    d.show()
    d.port_min.setValue(6000)
    d.port_max.setValue(5000)
    d._edits["torch_index_url"].setText("download.pytorch.org/whl")
    d._edits["default_launch_args"].setText('--name "unclosed')
    d.accept()
    assert d.isVisible() and d.result() != d.DialogCode.Accepted
    assert "Port range 6000-5000 is not valid" in d._errors["ports"].text()
    assert d._errors["ports"].isVisible()
    assert "must start with http://" in d._errors["torch_index_url"].text()
    assert "cannot be read" in d._errors["default_launch_args"].text()
    assert d.tabs.currentIndex() == 0  # the first problem's tab is shown
    assert not app.core.paths.settings_file.exists()

    d.port_max.setValue(6100)
    d._edits["torch_index_url"].setText("https://download.pytorch.org/whl")
    d._edits["default_launch_args"].setText("")
    d.accept()
    assert d.result() == d.DialogCode.Accepted and saved(app)["port_max"] == 6100


def test_tokens_go_to_the_keyring_not_the_file(
    qtbot: QtBot, app: AppContext, memory_keyring: MemoryKeyring
) -> None:
    d = dialog(qtbot, app)
    assert d.keyring_note.text().startswith("Tokens are stored in the system keyring (")
    hf = d._edits["token:huggingface"]
    assert hf.echoMode() == QLineEdit.EchoMode.Password
    d.show_tokens.setChecked(True)
    assert hf.echoMode() == QLineEdit.EchoMode.Normal
    hf.setText("hf_abcdefghijklmnopqrstuvwxyz0123")
    d._edits["token:civitai"].setText("civitai-key-42")
    d.accept()
    assert memory_keyring.values[("comfymanager", "huggingface")] == (
        "hf_abcdefghijklmnopqrstuvwxyz0123"
    )
    assert memory_keyring.values[("comfymanager", "civitai")] == "civitai-key-42"
    text = app.core.paths.settings_file.read_text()
    assert "hf_abcdef" not in text and "civitai-key-42" not in text

    again = dialog(qtbot, app)
    assert again._edits["token:civitai"].text() == "civitai-key-42"
    again._edits["token:civitai"].setText("")
    again.accept()
    assert ("comfymanager", "civitai") not in memory_keyring.values


@pytest.mark.usefixtures("no_keyring")
def test_no_keyring_warns_and_keeps_tokens_for_the_session(
    qtbot: QtBot, data_dir: Path, autostart_home: Path
) -> None:
    app = build_app_context(build_core_context(data_dir), secrets=Secrets())
    try:
        d = dialog(qtbot, app)
        note = d.keyring_note.text()
        assert note.startswith("Warning: No system keyring is available")
        assert "this session only" in note and "never written to a plain-text file" in note
        d._edits["token:huggingface"].setText("hf_sessiononlytokenvalue0000000")
        d.accept()
        assert app.secrets.get("huggingface") == "hf_sessiononlytokenvalue0000000"
        assert "hf_session" not in app.core.paths.settings_file.read_text()
        assert not list(data_dir.rglob("*token*"))
    finally:
        shutdown(app)


def test_about_shows_versions_and_folders(qtbot: QtBot, app: AppContext) -> None:
    about = AboutDialog(None, app=app)
    qtbot.addWidget(about)
    text = about.details_text()
    assert f"comfymanager {__version__}" in text
    assert "Python 3." in text and "PySide6 6." in text
    assert str(app.core.paths.root) in text and str(app.core.paths.logs) in text
    assert "GPL-3.0-or-later" in about.licence.text()
    qtbot.waitUntil(
        lambda: "uv " in about.uv_label.text() and "checking" not in about.uv_label.text(),
        timeout=15000,
    )
    assert about.uv_label.text().startswith("uv 0.") or "uv " in about.uv_label.text()
