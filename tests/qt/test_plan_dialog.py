"""The import flow in the window: plan models, the plan dialog, choices, and the submitted job."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QLineEdit, QWidget
from pytestqt.qtbot import QtBot

from comfymanager.core.context import build_core_context
from comfymanager.core.importer.plan import PlanPack, plan_import
from comfymanager.core.workflow.nodes import PackRef
from comfymanager.ui.app_context import AppContext, build_app_context, shutdown
from comfymanager.ui.dialogs import confirm
from comfymanager.ui.import_flow import ImportFlow, start_import
from comfymanager.ui.models.plan_model import (
    CHOICE_COLUMN,
    MODEL_CHOICE_COLUMN,
    STATUS_ROLE,
    ModelTableModel,
    PackTableModel,
)
from tests.fixtures.http_server import FileServer, make_safetensors
from tests.fixtures.node_packs import NodePacks, node, ui_workflow, write_workflow


@pytest.fixture(autouse=True)
def go_ahead_with_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Create with rows still open asks first; these tests answer "Import anyway"."""
    monkeypatch.setattr(confirm, "ask_missing", lambda parent, lines: True)


@pytest.fixture
def app(project_data_dir: Path, node_packs_env: NodePacks) -> Iterator[AppContext]:
    core = build_core_context(project_data_dir)
    core.settings.default_torch_backend = "none"  # the PyTorch index is unreachable in tests
    ctx = build_app_context(core)
    ctx.open_url = lambda url: None
    ctx.open_path = lambda path: None
    yield ctx
    shutdown(ctx)


def _workflow(tmp_path: Path, packs: NodePacks) -> Path:
    return write_workflow(
        tmp_path / "Twin flow.json",
        ui_workflow(
            node(1, "KSampler", cnr_id="comfy-core", ver="0.3.2"),
            node(2, "TwinNode"),
            node(3, "MysteryNode"),
            node(4, "UpscaleModelLoader", ["suggested_x4.safetensors"], cnr_id="comfy-core"),
        ),
    )


def test_pack_model_without_window() -> None:
    a = PackRef("a", None, "https://github.com/o/a", "A")
    b = PackRef("b", None, "https://github.com/o/b", "B")
    rows = (
        PlanPack("class:Twin", "Twin", ("Twin",), "candidates", candidates=(a, b)),
        PlanPack("class:X", "X", ("X",), "unknown"),
        PlanPack("p", "Good", ("G1", "G2", "G3", "G4"), "install", "https://x/p", commit="abc1234"),
    )
    model = PackTableModel(rows)
    assert model.rowCount() == 3 and model.columnCount() == 7
    assert [model.index(r, 4).data() for r in range(3)] == [
        "Choose a pack",
        "Unknown: paste its git URL or skip",
        "Will install",
    ]
    assert model.index(2, 1).data() == "G1, G2, G3 and 1 more"
    assert model.index(2, 3).data() == "abc1234"
    assert model.index(0, 0).data(STATUS_ROLE) == "candidates"
    assert len(model.unresolved()) == 2
    model.set_choice("class:Twin", "b")
    model.set_url("class:X", " https://github.com/o/x ")
    assert model.unresolved() == []
    assert model.choices() == {"class:Twin": "b"}
    assert model.urls() == {"class:X": "https://github.com/o/x"}
    assert model.index(0, CHOICE_COLUMN).data() == "B"
    assert ModelTableModel().rowCount() == 0


@pytest.mark.slow
@pytest.mark.usefixtures("stop_all")
def test_plan_dialog_choices_submit_a_job(
    qtbot: QtBot,
    app: AppContext,
    node_packs_env: NodePacks,
    http_files: FileServer,
    tmp_path: Path,
) -> None:
    data = make_safetensors(2048, seed=3)
    model_url = http_files.add("/suggested_x4.safetensors", data)
    parent = QWidget()
    qtbot.addWidget(parent)
    flow = start_import(app, parent, [str(_workflow(tmp_path, node_packs_env))])
    with qtbot.waitSignal(flow.planned, timeout=20000):
        pass
    dialog = flow.dialog
    assert dialog is not None and dialog.isVisible()
    statuses = {
        dialog.packs.index(r, 0).data(): dialog.packs.index(r, 4).data()
        for r in range(dialog.packs.rowCount())
    }
    assert statuses == {
        "MysteryNode": "Unknown: paste its git URL or skip",
        "TwinNode": "Choose a pack",
        "ComfyUI (built in)": "Built in",
    }
    assert dialog.name.text() == "Twin flow"
    assert dialog.totals.text().startswith("About 0 B to download")

    # nothing is chosen for the user: Create refuses until the candidate is picked
    rows = {dialog.packs.pack(r).title: r for r in range(dialog.packs.rowCount())}
    combo = dialog.pack_view.indexWidget(dialog.packs.index(rows["TwinNode"], CHOICE_COLUMN))
    assert isinstance(combo, QComboBox) and combo.currentData() == ""
    combo.setCurrentIndex(2)  # "Twin B"
    assert dialog.packs.choices() == {"class:TwinNode": node_packs_env.twin_urls[1]}
    paste = dialog.pack_view.indexWidget(dialog.packs.index(rows["MysteryNode"], CHOICE_COLUMN))
    assert isinstance(paste, QLineEdit)
    qtbot.keyClicks(paste, "not a url")
    qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    assert dialog.isVisible() and "not a git URL" in dialog.error.text()
    paste.setText(node_packs_env.good_url)

    [m_row] = [
        r for r in range(dialog.models.rowCount()) if dialog.models.model_at(r).status == "unknown"
    ]
    url_box = dialog.model_view.indexWidget(dialog.models.index(m_row, MODEL_CHOICE_COLUMN))
    assert isinstance(url_box, QComboBox)
    assert url_box.count() == 1 and "suggested_x4.safetensors" in url_box.itemText(
        0
    )  # a suggestion
    assert url_box.currentText() == ""  # ...shown, not taken
    url_box.setEditText(model_url)

    with qtbot.waitSignal(flow.submitted, timeout=5000) as submitted:
        qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    job = submitted.args[0]
    assert job.title == "Import into 'Twin flow'"
    with qtbot.waitSignal(
        app.jobs.job_finished, timeout=180000, check_params_cb=lambda j: j is job
    ):
        pass
    assert job.outcome == "succeeded", job.error
    result = job.result
    assert result.ok, result.items
    installed = {i.name for i in result.items if i.kind == "pack" and i.status == "installed"}
    assert installed == {"ComfyUI-TwinB", "ComfyUI-GoodPack"}
    qtbot.waitUntil(lambda: any(i.state == "done" for i in app.downloads.items()), timeout=30000)
    [item] = app.downloads.items()
    assert item.requesters == ("Twin flow",)
    stored = app.core.store / "upscale_models" / "suggested_x4.safetensors"
    assert hashlib.sha256(stored.read_bytes()).digest() == hashlib.sha256(data).digest()


def test_bad_file_shows_a_message_naming_it(qtbot: QtBot, app: AppContext, tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{"nodes": [')
    parent = QWidget()
    qtbot.addWidget(parent)
    flow = start_import(app, parent, [str(bad)])
    assert isinstance(flow, ImportFlow)
    with qtbot.waitSignal(flow.failed, timeout=20000):
        pass
    assert flow.dialog is None
    assert flow.message is not None and "broken.json" in flow.message.text()
    flow.message.close()


def test_totals_red_when_download_does_not_fit(
    qtbot: QtBot, app: AppContext, tmp_path: Path
) -> None:
    wf = write_workflow(
        tmp_path / "w.json",
        ui_workflow(
            node(
                1,
                "VAELoader",
                ["v.safetensors"],
                models=[
                    {
                        "name": "v.safetensors",
                        "directory": "vae",
                        "url": "https://huggingface.co/o/r/resolve/main/v.safetensors",
                    }
                ],
            )
        ),
    )
    import dataclasses

    from comfymanager.ui.dialogs.plan_dialog import PlanDialog

    plan = plan_import(app.core, [wf], db=None)
    big = dataclasses.replace(plan.models[0], size=10**15)
    plan = dataclasses.replace(plan, models=(big,), free_bytes=10**9)
    dialog = PlanDialog(app, plan)
    qtbot.addWidget(dialog)
    assert "does not fit" in dialog.totals.text()
    assert "color" in dialog.totals.styleSheet()
    assert any("node database unavailable" in w for w in plan.warnings)
    assert "node database unavailable" in dialog.warnings.text()
