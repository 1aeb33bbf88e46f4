"""Project > Settings in the window: values checked beside their field (nothing saved on error),
the save runs as a "config" operation, the CLI reads what the window saved, the sticky automatic
port is shown; deleting a project keeps its outputs unless asked not to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from comfymanager.cli import main as cli_main
from comfymanager.core.operations import Kind
from comfymanager.core.projects import InstallState, Project, ProjectStore
from comfymanager.ui.dialogs import confirm
from comfymanager.ui.dialogs.project_settings import ProjectSettingsDialog
from tests.fixtures.window import Harness


def _project(root: Path, name: str, **fields: object) -> None:
    from comfymanager.core.context import build_core_context

    store = ProjectStore(build_core_context(root).paths)
    store.create(Project(id=name, install=InstallState(status="ready"), **fields))  # type: ignore[arg-type]


def test_settings_round_trip_through_the_window_and_the_cli(
    qtbot: QtBot,
    harness: Harness,
    project_data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _project(project_data_dir, "other", port=4500)
    _project(project_data_dir, "demo", last_port=4007, env={"OLD_VAR": "1"})
    h = harness
    h.win.reload()
    qtbot.waitUntil(lambda: h.win.model.get("demo") is not None)
    shown: list[ProjectSettingsDialog] = []

    def fill(dialog: ProjectSettingsDialog) -> int:
        shown.append(dialog)
        # the sticky automatic port is shown, and automatic is what is chosen
        assert dialog.port_auto.isChecked() and "4007" in dialog.port_auto.text()
        assert dialog.env.toPlainText() == "OLD_VAR=1"
        # refused values: each says why beside its field, and the dialog stays open
        dialog.port_fixed.setChecked(True)
        dialog.port.setValue(4500)  # the fixed port of "other"
        dialog.args.setText("--port 9000")
        dialog.gpu.setText("first")
        dialog.env.setPlainText("PYTHONPATH=/x")
        dialog.accept()
        assert dialog.result() != ProjectSettingsDialog.DialogCode.Accepted
        assert "other" in dialog.port_error.text()
        assert "--port" in dialog.args_error.text()
        assert "GPU" in dialog.gpu_error.text()
        assert "PYTHONPATH" in dialog.env_error.text()
        assert ProjectStore(h.app.core.paths).load("demo").launch_args == []  # nothing saved
        # good values
        dialog.port.setValue(4321)
        dialog.listen.setChecked(True)
        dialog.args.setText("--lowvram --preview-method auto")
        dialog.gpu.setText("1, 0")
        dialog.env.setPlainText("PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True\n")
        dialog.accept()
        assert dialog.port_error.isHidden() and dialog.env_error.isHidden()
        return int(dialog.result())

    monkeypatch.setattr(ProjectSettingsDialog, "exec", fill)
    h.win.select("demo")
    assert h.win.actions_["project-settings"].text() == "Setti&ngs..."
    job = h.win.lifecycle.configure("demo")
    assert shown and "next time" in shown[0].note.text()
    assert job is not None and job.kind is Kind.CONFIG
    assert job.title == "Change settings of 'demo'"
    qtbot.waitUntil(lambda: job.outcome == "succeeded", timeout=10000)

    assert cli_main(["--data-dir", str(project_data_dir), "config", "demo", "--json"]) == 0
    saved = json.loads(capsys.readouterr().out)
    assert saved["port"] == 4321 and saved["listen"] is True and saved["gpu"] == "1,0"
    assert saved["launch_args"] == ["--lowvram", "--preview-method", "auto"]
    assert saved["env"] == {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}  # OLD_VAR gone


def test_delete_keeps_outputs_by_default(
    qtbot: QtBot, harness: Harness, project_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(project_data_dir, "keepme")
    _project(project_data_dir, "dropme")
    for name in ("keepme", "dropme"):
        out = project_data_dir / "projects" / name / "output"
        out.mkdir(parents=True, exist_ok=True)
        (out / "ComfyUI_00001_.png").write_bytes(b"\x89PNG picture")
    h = harness
    h.win.reload()
    qtbot.waitUntil(lambda: h.win.model.get("dropme") is not None)
    answers = iter([confirm.KEEP_OUTPUTS, confirm.DELETE_ALL])
    monkeypatch.setattr(confirm, "ask_delete", lambda *a: next(answers))
    for name in ("keepme", "dropme"):
        job = h.win.lifecycle.delete(name)
        assert job is not None
        qtbot.waitUntil(lambda j=job: j.outcome == "succeeded", timeout=20000)  # type: ignore[misc]
    assert not (project_data_dir / "projects" / "keepme").exists()
    kept = list((project_data_dir / "kept-outputs").iterdir())
    assert [k.name.startswith("keepme-") for k in kept] == [True]
    assert (kept[0] / "ComfyUI_00001_.png").read_bytes() == b"\x89PNG picture"
    assert not (project_data_dir / "projects" / "dropme").exists()


def test_cli_delete_keep_outputs(
    project_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _project(project_data_dir, "cli")
    out = project_data_dir / "projects" / "cli" / "output"
    out.mkdir(parents=True, exist_ok=True)
    (out / "a.png").write_bytes(b"x")
    root = str(project_data_dir)
    assert cli_main(["--data-dir", root, "delete", "cli", "--yes", "--keep-outputs"]) == 0
    err = capsys.readouterr().err
    assert "kept in" in err
    (kept,) = (project_data_dir / "kept-outputs").iterdir()
    assert (kept / "a.png").read_bytes() == b"x"
