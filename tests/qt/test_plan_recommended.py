"""The plan dialog preselects the recommended pack of a "several candidates" row (issue 11)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtWidgets import QComboBox
from pytestqt.qtbot import QtBot

from comfymanager.core.importer.plan import PlanPack, plan_import
from comfymanager.core.workflow.nodedb import NodeDatabase
from comfymanager.core.workflow.nodes import PackRef
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.dialogs import confirm
from comfymanager.ui.dialogs.plan_dialog import PlanDialog
from comfymanager.ui.models.plan_model import CHOICE_COLUMN, PackTableModel

A = PackRef("a", None, "https://github.com/o/a", "A")
B = PackRef("b", None, "https://github.com/o/b", "B")


@pytest.fixture(autouse=True)
def go_ahead_with_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Create with rows still open asks first; these tests answer "Import anyway"."""
    monkeypatch.setattr(confirm, "ask_missing", lambda parent, lines: True)


def test_model_preselects_the_recommended_candidate() -> None:
    twin = PlanPack("class:T", "T", ("T",), "candidates", candidates=(A, B), recommended="a")
    plain = PlanPack("class:U", "U", ("U",), "candidates", candidates=(A, B))
    model = PackTableModel((twin, plain))
    assert model.choices() == {"class:T": "a"}  # only the row with a clear leader
    assert [p.key for p in model.unresolved()] == ["class:U"]
    model.set_choice("class:T", "b")  # changeable
    model.set_packs((twin, plain))  # a new plan (after a look-up) keeps the user's pick
    assert model.choices() == {"class:T": "b"}


def test_dialog_shows_videohelpersuite_preselected(
    qtbot: QtBot, app: AppContext, node_db: NodeDatabase, tmp_path: Path
) -> None:
    wf = tmp_path / "vhs.json"
    nodes = [{"id": 1, "type": "VHS_VideoCombine", "mode": 0, "properties": {}}]
    wf.write_text(json.dumps({"last_node_id": 1, "last_link_id": 0, "version": 0.4,
                              "links": [], "nodes": nodes}), encoding="utf-8")  # fmt: skip
    plan = plan_import(app.core, [wf], db=node_db)
    (row,) = plan.packs
    assert row.status == "candidates" and row.recommended is not None
    dialog = PlanDialog(app, plan, name="vhs")
    qtbot.addWidget(dialog)
    combo = dialog.pack_view.indexWidget(dialog.packs.index(0, CHOICE_COLUMN))
    assert isinstance(combo, QComboBox)
    assert combo.currentText().startswith("ComfyUI-VideoHelperSuite")
    assert combo.currentText().endswith(" - recommended")
    assert dialog.packs.choices() == {row.key: row.recommended}
    combo.setCurrentIndex(combo.findData(row.candidates[1].identity))
    assert dialog.packs.choices() == {row.key: row.candidates[1].identity}
