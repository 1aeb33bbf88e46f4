"""The plan dialog as a user sees it: its first size shows the columns and rows (and is
remembered), sizes arrive by themselves from a real local HTTP server (HEAD with
Content-Length) with "…" meanwhile, a host that does not answer leaves "unknown", every choice
updates its row's Status and what is still open at once, every row can be skipped, Create with
open rows asks with the exact list, switching the target clears a stale error, and an online
look-up with unreachable hosts says so in the dialog."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from comfymanager.core.context import build_core_context
from comfymanager.core.importer.plan import ImportPlan, plan_import
from comfymanager.core.projects import Project, ProjectStore
from comfymanager.ui.app_context import AppContext, build_app_context, shutdown
from comfymanager.ui.dialogs import confirm
from comfymanager.ui.dialogs.plan_dialog import PlanDialog
from comfymanager.ui.import_flow import ImportFlow
from comfymanager.ui.models.plan_model import MODEL_SKIP_COLUMN, PACK_SKIP_COLUMN
from tests.fixtures.http_server import FileServer
from tests.fixtures.node_packs import node, ui_workflow, write_workflow


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def app(data_dir: Path) -> Iterator[AppContext]:
    core = build_core_context(data_dir)
    dead = f"http://127.0.0.1:{_closed_port()}"
    core.settings.registry_url = dead  # every online host refuses at once
    core.settings.hf_endpoint = dead
    core.settings.civitai_url = dead
    ctx = build_app_context(core)
    yield ctx
    shutdown(ctx)


LOADERS = ("checkpoints", "loras", "vae", "upscale_models", "controlnet")


def ten_model_workflow(folder: Path, http: FileServer, dead_url: str) -> Path:
    nodes = []
    for i in range(10):
        name = f"model_{i:02d}.safetensors"
        body = bytes(1_000_000 * (i + 1))
        # the last one is on a host that does not answer
        url = f"{dead_url}/{name}" if i == 9 else http.add(f"/{name}", body)
        nodes.append(
            node(
                i + 1,
                "CheckpointLoaderSimple",
                [name],
                models=[{"name": name, "directory": LOADERS[i % 5], "url": url}],
            )
        )
    return write_workflow(folder / "Ten models.json", ui_workflow(*nodes))


def _open_flow(qtbot: QtBot, app: AppContext, plan: ImportPlan) -> ImportFlow:
    parent = QWidget()
    qtbot.addWidget(parent)
    flow = ImportFlow(app, parent, [str(f) for f in plan.files])
    flow._on_analyse_succeeded((None, plan))  # what the analysis worker hands over
    assert flow.dialog is not None
    qtbot.addWidget(flow.dialog)
    return flow


def test_sizes_arrive_by_themselves_and_the_first_size_shows_everything(
    qtbot: QtBot, app: AppContext, http_files: FileServer, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{_closed_port()}"
    wf = ten_model_workflow(tmp_path, http_files, dead)
    plan = plan_import(app.core, [wf], db=None)
    assert len(plan.models) == 10 and all(m.size is None for m in plan.models)
    flow = _open_flow(qtbot, app, plan)
    dialog = flow.dialog
    assert dialog is not None
    size_of = {dialog.models.model_at(r).name: dialog.models.index(r, 2) for r in range(10)}
    # asked in the background: "…" first, then the real sizes; the dead host stays unknown
    assert size_of["model_00.safetensors"].data() in ("…", "1.0 MB")
    qtbot.waitUntil(lambda: not dialog.models.pending(), timeout=20000)
    assert size_of["model_00.safetensors"].data() == "1.0 MB"
    assert size_of["model_08.safetensors"].data() == "9.0 MB"
    assert size_of["model_09.safetensors"].data() == "unknown"
    with http_files.lock:
        heads = [h for h in http_files.hits if h.method == "HEAD"]
    assert len(heads) == 9 and http_files.gets() == []  # asked, nothing downloaded
    text = dialog.totals.text()
    assert text.startswith("About 45.0 MB to download + 1 file of unknown size"), text
    assert "free in the store" in text

    # first size: every column of both tables shown (up to the screen), no empty pack table
    dialog.show()
    qtbot.waitExposed(dialog)
    screen = dialog.screen().availableGeometry()
    header = dialog.model_view.horizontalHeader()
    columns = sum(header.sectionSize(c) for c in range(header.count()))
    assert dialog.width() >= min(columns, int(screen.width() * 0.95) - 40)
    assert dialog.pack_view.height() <= dialog.pack_view.maximumHeight()
    assert dialog.model_view.horizontalScrollBar().maximum() == 0  # no column cut off
    # remembered
    dialog.resize(QSize(900, 640))
    dialog.reject()
    again = PlanDialog(app, plan)
    qtbot.addWidget(again)
    again.show()
    assert again.size() == QSize(900, 640).boundedTo(
        QSize(int(screen.width() * 0.95), int(screen.height() * 0.9))
    )


def _open_plan(app: AppContext, tmp_path: Path) -> ImportPlan:
    wf = write_workflow(
        tmp_path / "open.json",
        ui_workflow(
            node(1, "KSampler", cnr_id="comfy-core", ver="0.3.2"),
            node(2, "MysteryNode"),
            node(3, "VAELoader", ["mystery_vae.safetensors"]),
        ),
    )
    return plan_import(app.core, [wf], db=None)


def test_choices_update_rows_at_once_and_create_asks_with_the_list(
    qtbot: QtBot, app: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = _open_plan(app, tmp_path)
    dialog = PlanDialog(app, plan, name="open flow")
    qtbot.addWidget(dialog)
    packs, models = dialog.packs, dialog.models
    prow = next(r for r in range(packs.rowCount()) if packs.pack(r).title == "MysteryNode")
    mrow = next(r for r in range(models.rowCount()) if models.model_at(r).status == "unknown")
    pstatus, mstatus = packs.index(prow, 4), models.index(mrow, 3)
    assert pstatus.data() == "Unknown: paste its git URL or skip"
    assert mstatus.data() == "Needs a URL"
    assert "1 node pack" in dialog.open_rows.text() and "1 model" in dialog.open_rows.text()

    # a pasted URL: the row and the open list change at once
    models.set_url(models.model_at(mrow).key, "https://example.invalid/vae.safetensors")
    assert mstatus.data() == "Will download from your URL"
    assert "model" not in dialog.open_rows.text()
    # skipping the pack: its row says so, nothing is open any more
    assert packs.setData(packs.index(prow, PACK_SKIP_COLUMN), Qt.CheckState.Checked.value,
                         Qt.ItemDataRole.CheckStateRole)  # fmt: skip
    assert pstatus.data() == "Skipped: its node types stay missing"
    assert dialog.open_rows.isHidden()
    # a present/built-in row cannot be skipped; an unknown model can
    builtin = next(r for r in range(packs.rowCount()) if packs.pack(r).status == "built-in")
    assert not packs.flags(packs.index(builtin, PACK_SKIP_COLUMN)) & Qt.ItemFlag.ItemIsUserCheckable
    assert models.flags(models.index(mrow, MODEL_SKIP_COLUMN)) & Qt.ItemFlag.ItemIsUserCheckable

    asked: list[list[str]] = []
    answers = iter([False, True])

    def ask(parent: object, lines: list[str]) -> bool:
        asked.append(lines)
        return next(answers)

    monkeypatch.setattr(confirm, "ask_missing", ask)
    dialog.accept()
    assert asked == [["Node pack MysteryNode (skipped): node types MysteryNode"]]
    assert dialog.decision is None  # "Go back": still open
    models.set_url(models.model_at(mrow).key, "")  # the model open again
    dialog.accept()
    assert asked[1] == [
        "Node pack MysteryNode (skipped): node types MysteryNode",
        "Model mystery_vae.safetensors (no URL)",
    ]
    assert dialog.decision is not None
    assert dialog.decision.skip_packs == frozenset({packs.pack(prow).key})


def test_switching_target_clears_a_stale_error(
    qtbot: QtBot, app: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ProjectStore(app.core.paths).create(Project(id="taken"))
    plan = _open_plan(app, tmp_path)
    dialog = PlanDialog(app, plan, name="taken")
    qtbot.addWidget(dialog)
    monkeypatch.setattr(confirm, "ask_missing", lambda parent, lines: True)
    dialog.accept()
    assert "already" in dialog.error.text()
    dialog.add_radio.setChecked(True)
    assert dialog.error.text() == ""
    assert dialog.create_button.text() == "Add"


def test_lookup_with_unreachable_hosts_says_so_in_the_dialog(
    qtbot: QtBot, app: AppContext, tmp_path: Path
) -> None:
    plan = _open_plan(app, tmp_path)
    flow = _open_flow(qtbot, app, plan)
    dialog = flow.dialog
    assert dialog is not None
    dialog.lookup_button.click()
    assert dialog.lookup_status.isVisibleTo(dialog) and "Looking up" in dialog.lookup_status.text()
    qtbot.waitUntil(lambda: dialog.lookup_button.isEnabled(), timeout=30000)
    text = dialog.lookup_status.text()
    assert "Look-up" in text and ("problems" in text or "failed" in text), text


def test_import_notice_names_causes_and_left_out_node_types() -> None:
    from comfymanager.core.importer.apply import ImportResult, ItemOutcome
    from comfymanager.ui.outcomes import _import_notice

    items = (
        ItemOutcome("pack", "ComfyUI_IPAdapter_plus", "failed", "git clone failed: 404"),
        ItemOutcome(
            "pack", "MysteryNode", "skipped", "skipped by you: node types MysteryNode left out"
        ),
        ItemOutcome("model", "checkpoints/x.safetensors", "failed", "HTTP 404 from the host"),
    )
    result = ImportResult("p", True, items, None, "abc", "none", None, None)
    notice = _import_notice("p", result)
    assert "pack ComfyUI_IPAdapter_plus: git clone failed: 404" in notice.text
    assert "model checkpoints/x.safetensors: HTTP 404 from the host" in notice.text
    assert "Left out: pack MysteryNode (skipped by you: node types MysteryNode left out)" in (
        notice.text
    )


def test_choosing_an_existing_project_plans_again_for_it(
    qtbot: QtBot, app: AppContext, tmp_path: Path
) -> None:
    ProjectStore(app.core.paths).create(Project(id="target"))
    plan = _open_plan(app, tmp_path)
    flow = _open_flow(qtbot, app, plan)
    dialog = flow.dialog
    assert dialog is not None
    dialog.packs.set_skipped(dialog.packs.pack(0).key, True)
    dialog.add_radio.setChecked(True)
    assert flow.target == "target"
    qtbot.waitUntil(lambda: dialog.plan is not plan, timeout=20000)
    assert dialog.create_button.text() == "Add"
    assert dialog.packs.skipped() == {dialog.packs.pack(0).key}  # the user's choices stay
