"""The window's import with "Look up online": models of unknown source get Hugging Face and
CivitAI suggestions in the plan dialog, an exact name + sha256 match is taken, and the file the
user picks is the one the created project downloads (with the CivitAI key, to CivitAI only)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox
from pytestqt.qtbot import QtBot

from comfymanager.ui.dialogs import confirm
from comfymanager.ui.dialogs.plan_dialog import PlanDialog
from comfymanager.ui.import_flow import ImportFlow
from comfymanager.ui.models.plan_model import MODEL_CHOICE_COLUMN
from tests.fixtures.civitai_server import API_KEY, CivitaiServer, header
from tests.fixtures.hf_server import HfServer, MemoryKeyring
from tests.fixtures.http_server import make_safetensors
from tests.fixtures.node_packs import NodePacks, node, ui_workflow, write_workflow
from tests.fixtures.window import Harness

STATUS_COLUMN = 3


@pytest.fixture(autouse=True)
def go_ahead_with_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Create with rows still open asks first; these tests answer "Import anyway"."""
    monkeypatch.setattr(confirm, "ask_missing", lambda parent, lines: True)


@pytest.fixture
def hosts(
    hf_server: HfServer,
    civitai_server: CivitaiServer,
    node_packs_env: NodePacks,
    memory_keyring: MemoryKeyring,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[HfServer, CivitaiServer]:
    """The endpoints the app reads at start: requested before ``harness`` builds the app."""
    monkeypatch.setenv("HF_ENDPOINT", hf_server.endpoint)
    monkeypatch.setenv("COMFYMANAGER_CIVITAI", civitai_server.base)
    return hf_server, civitai_server


def _row(dialog: PlanDialog, name: str) -> int:
    for r in range(dialog.models.rowCount()):
        if dialog.models.model_at(r).name == name:
            return r
    raise AssertionError(f"no row for {name}")


def _status(dialog: PlanDialog, name: str) -> Any:
    return dialog.models.index(_row(dialog, name), STATUS_COLUMN).data()


def _url_box(dialog: PlanDialog, name: str) -> QComboBox:
    index = dialog.models.index(_row(dialog, name), MODEL_CHOICE_COLUMN)
    box = dialog.model_view.indexWidget(index)
    assert isinstance(box, QComboBox)
    return box


@pytest.mark.slow
def test_lookup_suggests_and_the_picked_file_is_downloaded(
    qtbot: QtBot,
    hosts: tuple[HfServer, CivitaiServer],
    harness: Harness,
    tmp_path: Path,
) -> None:
    hf, civitai = hosts
    h = harness
    h.app.core.settings.default_torch_backend = "none"  # the PyTorch index is unreachable
    h.app.secrets.set("civitai", API_KEY)
    on_hub = make_safetensors(3000, seed=31)
    hf.add("someone/detail-tweaker", "detail_tweaker.safetensors", on_hub)
    on_civitai = make_safetensors(2500, seed=32)
    civitai.add("Detail Tweaker", "detail_tweaker.safetensors", on_civitai, login=True)
    upscaler = make_safetensors(1500, seed=33)
    hf.add("someone/auto_x2", "auto_x2.safetensors", upscaler)
    declared = {
        "name": "auto_x2.safetensors",
        "directory": "upscale_models",
        "hash": hashlib.sha256(upscaler).hexdigest(),
        "hash_type": "sha256",
    }
    wf = write_workflow(
        tmp_path / "Lookup flow.json",
        ui_workflow(
            node(1, "KSampler", cnr_id="comfy-core", ver="0.3.2"),
            node(2, "LoraLoader", ["detail_tweaker.safetensors", 1.0, 1.0], cnr_id="comfy-core"),
            node(
                3,
                "UpscaleModelLoader",
                ["auto_x2.safetensors"],
                cnr_id="comfy-core",
                models=[declared],
            ),
        ),
    )

    h.app.intents.import_files.emit([str(wf)])
    qtbot.waitUntil(
        lambda: (f := h.win.findChild(ImportFlow)) is not None and f.dialog is not None,
        timeout=20000,
    )
    flow = h.win.findChild(ImportFlow)
    assert flow is not None and flow.dialog is not None
    dialog = flow.dialog
    assert dialog.isVisible()
    assert _status(dialog, "detail_tweaker.safetensors") == "Needs a URL"
    assert _status(dialog, "auto_x2.safetensors") == "Needs a URL"
    assert _url_box(dialog, "detail_tweaker.safetensors").count() == 0  # nothing known offline
    assert hf.api_calls() == [] and civitai.hits() == []  # no network before the user asks

    qtbot.mouseClick(dialog.lookup_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.lookup_button.isEnabled(), timeout=30000)
    assert dialog.error.text() == ""
    assert not any("search failed" in w for w in dialog.plan.warnings)

    # the hash the workflow declares matches the Hub file of that name: taken
    assert _status(dialog, "auto_x2.safetensors") == "Will download (matched by name and hash)"
    # a name alone is never enough: both hosts' files are offered, none is chosen
    assert _status(dialog, "detail_tweaker.safetensors") == "Needs a URL"
    box = _url_box(dialog, "detail_tweaker.safetensors")
    tips = [box.itemData(i, Qt.ItemDataRole.ToolTipRole) for i in range(box.count())]
    assert tips == [
        "Hugging Face: detail_tweaker.safetensors",
        "CivitAI: detail_tweaker.safetensors",
    ]
    assert box.currentText() == ""
    civitai_url = box.itemData(1)
    assert civitai_url.startswith(civitai.base + "/api/download/models/")
    box.setCurrentIndex(1)

    with qtbot.waitSignal(flow.submitted, timeout=5000) as submitted:
        qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    job = submitted.args[0]
    with qtbot.waitSignal(
        h.app.jobs.job_finished, timeout=180000, check_params_cb=lambda j: j is job
    ):
        pass
    assert job.outcome == "succeeded", job.error
    qtbot.waitUntil(
        lambda: (
            len(h.app.downloads.items()) == 2
            and all(i.state == "done" for i in h.app.downloads.items())
        ),
        timeout=30000,
    )
    store = h.app.core.store
    assert (store / "loras" / "detail_tweaker.safetensors").read_bytes() == on_civitai
    assert (store / "upscale_models" / "auto_x2.safetensors").read_bytes() == upscaler

    # the CivitAI key went to CivitAI (search and the login-only download), never to the Hub
    download_path = civitai_url.removeprefix(civitai.base)
    assert {auth for _, auth in civitai.hits(download_path)} == {f"Bearer {API_KEY}"}
    hub_auth = {header(x.headers, "Authorization") for x in hf.hub.gets() + hf.cdn.gets()}
    assert not any(API_KEY in a for a in hub_auth)
