"""Settings shows a token that comes from the environment read-only, says which variable it is,
and never saves over it (the keyring keeps what it had)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from comfymanager.core.context import build_core_context
from comfymanager.core.secrets import ENV_TOKENS, Secrets
from comfymanager.ui.app_context import AppContext, build_app_context, shutdown
from comfymanager.ui.dialogs.settings_dialog import SettingsDialog
from tests.fixtures.hf_server import MemoryKeyring

ENV_HF = "hf_FromTheEnvironment0123456789ab"


@pytest.fixture
def app(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppContext]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for names in ENV_TOKENS.values():
        for var in names:
            monkeypatch.delenv(var, raising=False)
    ctx = build_app_context(build_core_context(data_dir), secrets=Secrets())
    yield ctx
    shutdown(ctx)


def test_env_token_is_shown_read_only_with_its_variable(
    qtbot: QtBot, app: AppContext, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.secrets.set("huggingface", "hf_StoredInTheKeyring000000000")
    monkeypatch.setenv("HF_TOKEN", ENV_HF)
    d = SettingsDialog(app)
    qtbot.addWidget(d)
    hf = d._edits["token:huggingface"]
    assert hf.isReadOnly() and hf.text() == ""
    assert "from the environment (HF_TOKEN)" in hf.placeholderText()
    notes = " ".join(label.text() for label in d.findChildren(type(d.keyring_note)))
    assert "In use: from the environment (HF_TOKEN)" in notes
    assert not d._edits["token:civitai"].isReadOnly()  # the other token is still editable
    d._edits["token:civitai"].setText("civitai-key-7")
    d.accept()
    assert memory_keyring.values[("comfymanager", "huggingface")] == (
        "hf_StoredInTheKeyring000000000"
    )
    assert memory_keyring.values[("comfymanager", "civitai")] == "civitai-key-7"
    assert ENV_HF not in app.core.paths.settings_file.read_text()
