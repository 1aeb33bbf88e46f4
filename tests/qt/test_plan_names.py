"""The plan dialog's tables show hostile names visibly: a bidi override or a newline from a
workflow appears as ``<U+202E>`` / ``<U+000A>`` in the row, never raw (a row can neither
reverse its text nor hide a second line), while the row's key stays the real name."""

from __future__ import annotations

from PySide6.QtCore import Qt

from comfymanager.core.importer.plan import PlanModel, PlanPack
from comfymanager.ui.models.plan_model import KEY_ROLE, ModelTableModel, PackTableModel

DISPLAY = Qt.ItemDataRole.DisplayRole
TOOLTIP = Qt.ItemDataRole.ToolTipRole


def test_model_names_show_control_characters_visibly() -> None:
    names = ["evil\u202egnp.safetensors", "two\nlines.ckpt", "nul\x00.pt", "ok.safetensors"]
    model = ModelTableModel(tuple(PlanModel("loras", n, (), None, None, "unknown") for n in names))
    shown = [model.data(model.index(row, 1), DISPLAY) for row in range(4)]
    assert shown == [
        "evil<U+202E>gnp.safetensors",
        "two<U+000A>lines.ckpt",
        "nul<U+0000>.pt",
        "ok.safetensors",
    ]
    assert model.data(model.index(0, 1), TOOLTIP) == "evil<U+202E>gnp.safetensors"
    assert model.data(model.index(0, 0), KEY_ROLE) == "loras/evil\u202egnp.safetensors"


def test_pack_titles_and_classes_show_control_characters_visibly() -> None:
    row = PlanPack("k", "Pack\u2066Title", ("A\u202eB", "C"), "unknown")
    model = PackTableModel((row,))
    assert model.data(model.index(0, 0), DISPLAY) == "Pack<U+2066>Title"
    assert model.data(model.index(0, 1), DISPLAY) == "A<U+202E>B, C"
    assert model.data(model.index(0, 1), TOOLTIP) == "A<U+202E>B\nC"  # one line per class
