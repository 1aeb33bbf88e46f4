"""A model whose folder is unknown gets one: in the models table model (no window) and through the
plan dialog's folder combo, into the decision the import job receives."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox
from pytestqt.qtbot import QtBot

from comfymanager.core.importer.plan import PlanModel, Suggestion, plan_import
from comfymanager.core.models.folders import FOLDER_KEYS
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.dialogs import confirm
from comfymanager.ui.dialogs.plan_dialog import PlanDialog
from comfymanager.ui.models.plan_model import FOLDER_COLUMN, MODEL_CHOICE_COLUMN, ModelTableModel
from tests.fixtures.node_packs import node, ui_workflow, write_workflow

SUGG = Suggestion("https://example.com/up/x4.pth", "upscale_models", "x4.pth", "model list")


@pytest.fixture(autouse=True)
def go_ahead_with_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Create with rows still open asks first; these tests answer "Import anyway"."""
    monkeypatch.setattr(confirm, "ask_missing", lambda parent, lines: True)


def test_folder_choice_without_window(qtbot: QtBot) -> None:
    rows = (
        PlanModel(None, "mystery.safetensors", (), None, None, "unknown"),
        PlanModel(None, "x4.pth", (), None, None, "unknown", (SUGG,)),
        PlanModel(None, "has-url.pt", ("https://example.com/h.pt",), None, None, "unknown"),
        PlanModel("loras", "known.safetensors", (), None, None, "unknown"),
    )
    model = ModelTableModel(rows)
    assert [model.index(r, FOLDER_COLUMN).data() for r in range(4)] == [
        "unknown folder",
        "unknown folder",
        "unknown folder",
        "loras",
    ]
    assert len(model.unresolved()) == 4

    with qtbot.waitSignal(model.dataChanged):
        model.set_folder("?/mystery.safetensors", "loras")
    assert model.index(0, FOLDER_COLUMN).data() == "loras"
    model.set_url("?/mystery.safetensors", "https://example.com/m.safetensors")

    model.set_url("?/x4.pth", SUGG.url)  # a picked suggestion brings its folder...
    assert model.folders()["?/x4.pth"] == "upscale_models"
    assert model.index(1, FOLDER_COLUMN).data() == "upscale_models"
    model.set_url("?/x4.pth", "https://elsewhere.example/x4.pth")  # ...and takes it away
    assert "?/x4.pth" not in model.folders()
    model.set_folder("?/x4.pth", "checkpoints")
    model.set_url("?/x4.pth", SUGG.url)  # the user's own folder is never replaced
    assert model.folders()["?/x4.pth"] == "checkpoints"

    model.set_folder("?/has-url.pt", "vae")  # a URL is there already: the folder suffices
    assert [m.key for m in model.unresolved()] == ["loras/known.safetensors"]
    model.set_folder("?/has-url.pt", "")
    assert "?/has-url.pt" not in model.folders()

    model.set_models(rows[1:])  # a new plan keeps the choices of rows it still has
    assert model.folders() == {"?/x4.pth": "checkpoints"}
    assert model.urls() == {"?/x4.pth": SUGG.url}


def _widget(dialog: PlanDialog, name: str, column: int) -> QComboBox:
    rows = [r for r in range(dialog.models.rowCount()) if dialog.models.model_at(r).name == name]
    combo = dialog.model_view.indexWidget(dialog.models.index(rows[0], column))
    assert isinstance(combo, QComboBox)
    return combo


def test_dialog_folder_combo_goes_into_the_decision(
    qtbot: QtBot, app: AppContext, tmp_path: Path
) -> None:
    wf = write_workflow(
        tmp_path / "w.json",
        ui_workflow(
            node(
                1, "MysteryNode", ["mystery.safetensors"], models=[{"name": "mystery.safetensors"}]
            ),
            node(2, "OtherNode", ["x4.pth"], models=[{"name": "x4.pth"}]),
        ),
    )
    plan = plan_import(app.core, [wf], db=None)
    models = tuple(
        dataclasses.replace(m, suggestions=(SUGG,)) if m.name == "x4.pth" else m
        for m in plan.models
    )
    dialog = PlanDialog(app, dataclasses.replace(plan, models=models), name="w")
    qtbot.addWidget(dialog)
    dialog.show()

    folder = _widget(dialog, "mystery.safetensors", FOLDER_COLUMN)
    assert folder.accessibleName() == "Folder for mystery.safetensors"
    assert [folder.itemText(i) for i in range(folder.count())] == [
        "Choose a folder...",
        *FOLDER_KEYS,
    ]
    assert folder.currentIndex() == 0
    url = _widget(dialog, "mystery.safetensors", MODEL_CHOICE_COLUMN)
    assert url.accessibleName() == "Download URL for mystery.safetensors"
    url.setEditText("https://example.com/files/mystery.safetensors")

    qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    assert dialog.isVisible()  # no folder yet: refused, saying why
    assert "folder of mystery.safetensors is unknown" in dialog.error.text()

    folder.setCurrentIndex(folder.findText("loras"))
    other_folder = _widget(dialog, "x4.pth", FOLDER_COLUMN)
    other_url = _widget(dialog, "x4.pth", MODEL_CHOICE_COLUMN)
    other_url.setCurrentIndex(0)  # pick the suggestion: its folder becomes the default
    assert other_folder.currentText() == "upscale_models"

    qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible(), dialog.error.text()
    decision = dialog.decision
    assert decision is not None
    assert decision.model_folders == {
        "?/mystery.safetensors": "loras",
        "?/x4.pth": "upscale_models",
    }
    assert decision.model_urls == {
        "?/mystery.safetensors": "https://example.com/files/mystery.safetensors",
        "?/x4.pth": SUGG.url,
    }
