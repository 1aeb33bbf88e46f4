"""The New project dialog: live name validation, versions listed from the source, the spec."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from comfymanager.core.context import build_core_context
from comfymanager.core.projects import Project, ProjectStore
from comfymanager.ui.app_context import AppContext, build_app_context, shutdown
from comfymanager.ui.background import wait_background
from comfymanager.ui.dialogs.new_project import NewProjectDialog


@pytest.fixture
def app(project_data_dir: Path) -> Iterator[AppContext]:
    ctx = build_app_context(build_core_context(project_data_dir))
    yield ctx
    wait_background()
    shutdown(ctx)


def test_versions_come_from_the_source_latest_first(qtbot: QtBot, app: AppContext) -> None:
    d = NewProjectDialog(app)
    qtbot.addWidget(d)
    qtbot.waitUntil(lambda: d.refs is not None, timeout=30000)
    items = [d.version.itemText(i) for i in range(d.version.count())]
    assert items[0] == "Latest release (v0.3.2)"
    assert items[1:3] == ["v0.3.2", "v0.3.1"]
    assert "master (branch)" in items
    assert d.selected_ref() == ""
    d.version.setCurrentIndex(2)
    assert d.selected_ref() == "v0.3.1"
    d.version.setCurrentIndex(items.index("master (branch)"))
    assert d.selected_ref() == "master"
    d.version.setEditText("abc1234")
    assert d.selected_ref() == "abc1234"
    qtbot.waitUntil(lambda: d.hardware is not None, timeout=30000)
    assert d.torch.itemText(0).startswith("Auto \u2014 detected: ")


def test_name_is_validated_while_typing(qtbot: QtBot, app: AppContext) -> None:
    ProjectStore(app.core.paths).create(Project(id="taken"))
    d = NewProjectDialog(app)
    qtbot.addWidget(d)
    assert not d.create_button.isEnabled()
    assert d.name_error.text() == "Give the project a name."
    d.name.setText("bad\tname")  # display names are free text (issue 15), on one line
    assert "control or invisible" in d.name_error.text()
    assert not d.create_button.isEnabled()
    d.name.setText("taken")
    assert "already exists" in d.name_error.text()
    d.name.setText("fine name")
    assert d.name_error.text() == ""
    assert d.create_button.isEnabled()


def test_accept_builds_a_validated_spec(qtbot: QtBot, app: AppContext) -> None:
    d = NewProjectDialog(app)
    qtbot.addWidget(d)
    d.name.setText("demo")
    d.torch.setCurrentIndex(d.torch.findData("none"))
    d.fixed_port.setChecked(True)
    d.port.setValue(4555)
    d.listen.setChecked(True)
    d.args.setText('--lowvram --preview-method "auto"')
    assert not d.listen_warning.isHidden()
    d.accept()
    assert d.result() == NewProjectDialog.DialogCode.Accepted
    assert d.spec is not None
    assert d.spec.name == "demo"
    assert d.spec.torch_backend == "none"
    assert d.spec.port == 4555
    assert d.spec.listen_network
    assert d.spec.launch_args == ("--lowvram", "--preview-method", "auto")


def test_errors_stay_in_the_dialog_with_their_fix(qtbot: QtBot, app: AppContext) -> None:
    d = NewProjectDialog(app)
    qtbot.addWidget(d)
    d.show()
    d.name.setText("demo")
    d.toggle.setChecked(True)
    d.source.setText(str(app.core.paths.root / "no-such-repo"))
    d.accept()
    assert d.spec is None and d.isVisible()
    assert "does not exist" in d.error.text()
    assert "Give a git URL" in d.error.text()
    d.source.setText(app.core.settings.comfyui_source)
    d.args.setText('--unclosed "quote')
    d.accept()
    assert "quotes" in d.error.text()


def test_a_long_version_note_wraps_without_covering_the_row_below(
    qtbot: QtBot, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a source that cannot be listed: the note is a long sentence with the folder in it
    monkeypatch.setenv("COMFYMANAGER_COMFYUI_SOURCE", str(tmp_path / ("long-" * 12) / "repo"))
    app = build_app_context(build_core_context(data_dir))
    try:
        d = NewProjectDialog(app)
        qtbot.addWidget(d)
        d.show()
        note = d.version_note
        qtbot.waitUntil(lambda: "Could not list versions" in note.text(), timeout=30000)

        def laid_out() -> None:
            assert note.height() >= note.heightForWidth(note.width()), "the note is cut"
            assert note.geometry().bottom() < d.toggle.geometry().top(), "it covers the row"
            assert d.toggle.geometry().bottom() < d.buttons.geometry().top()

        qtbot.waitUntil(laid_out, timeout=3000)
        assert note.heightForWidth(note.width()) > note.fontMetrics().lineSpacing()  # wrapped
        d.resize(d.minimumWidth(), d.height())  # narrower: more lines, the dialog grows
        qtbot.waitUntil(laid_out, timeout=3000)
        d.toggle.setChecked(True)  # the advanced rows line up under the same labels
        qtbot.waitUntil(lambda: d.source.isVisible(), timeout=3000)
        qtbot.waitUntil(laid_out, timeout=3000)
        assert d.source.geometry().left() == d.version.geometry().left()
        assert d.manager.geometry().bottom() < d.buttons.geometry().top()
    finally:
        wait_background()
        shutdown(app)
