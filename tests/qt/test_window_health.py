"""The window tells the user what is wrong and lets them fix it there (issue 13, window side).

Driven through the real window on a real data root: a model download that gets a 404 from the
local HTTP server (health: "Needs attention", a checklist with Fix buttons, the activity card),
another address given in place, "launch anyway?", a crashed stand-in ComfyUI (the cause first,
"Copy details", a tray notice that selects its project), the log restored after a restart, the
empty window and a project being created.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QPushButton
from pytestqt.qtbot import QtBot

from comfymanager.core.context import build_core_context
from comfymanager.core.install.install import ProjectSpec
from comfymanager.core.models import queue as q
from comfymanager.core.models.request import DownloadRequest
from comfymanager.core.notifier import Notice
from comfymanager.core.operations import Kind
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import InstallState, Project, ProjectStore
from comfymanager.core.verify.verify import last_result
from comfymanager.ui import actions
from comfymanager.ui.app_context import shutdown
from comfymanager.ui.main_window import FIRST_SIZE, first_size
from comfymanager.ui.notifications import NotificationRouter
from comfymanager.ui.panes.projects import EMPTY_TEXT, crash_cause
from comfymanager.ui.tray import Tray
from tests.fixtures.comfyui import FakeComfyUI, create_installed
from tests.fixtures.http_server import FileServer, make_safetensors
from tests.fixtures.node_packs import NodePacks
from tests.fixtures.verify_project import make_scan_project
from tests.fixtures.window import Harness, make_window, state


@pytest.fixture
def win(qtbot: QtBot, data_dir: Path) -> Iterator[Harness]:
    h = make_window(qtbot, data_dir)
    yield h
    h.win.quit_done = True
    shutdown(h.app)


def ready(data_dir: Path, name: str) -> None:
    store = ProjectStore(build_core_context(data_dir).paths)
    store.create(Project(id=name, install=InstallState(status="ready")))


def fix_buttons(h: Harness) -> dict[str, QPushButton]:
    return {b.objectName(): b for b in h.win.details.checklist.buttons}


def test_a_404_download_needs_attention_and_is_fixed_in_place(
    qtbot: QtBot, data_dir: Path, http_files: FileServer
) -> None:
    ready(data_dir, "dl")
    h = make_window(qtbot, data_dir)
    try:
        qtbot.waitUntil(lambda: state(h, "dl") == "stopped", timeout=10000)
        h.win.select("dl")
        assert h.win.model.get("dl").attention == 0  # type: ignore[union-attr]
        # a real download of a file the server does not have (404)
        gone = http_files.url("/gone/lora.safetensors")
        request = DownloadRequest(urls=(gone,), folder="loras", name="l.safetensors")
        item_id = h.app.downloads.add(request, "dl")
        qtbot.waitUntil(lambda: h.app.downloads.item(item_id).state == q.FAILED, timeout=15000)
        h.app.monitor.poke()
        qtbot.waitUntil(lambda: h.win.model.get("dl").attention == 1, timeout=10000)  # type: ignore[union-attr]
        row = h.win.model.get("dl")
        assert row is not None and row.state_text == "Needs attention (1)"
        assert "404" in h.win.model.data(h.win.model.index(0), Qt.ItemDataRole.ToolTipRole)
        # the checklist: cause and Fix buttons
        checklist = h.win.details.checklist
        assert checklist.isVisible()
        assert checklist.title.text() == "1 problem to fix"
        assert "404" in checklist.findChildren(QLabel)[1].text()
        assert set(fix_buttons(h)) == {"fix-retry_download", "fix-other_url", "fix-skip"}
        # the activity card looks failed: red, no bar, no Cancel; the header counts it
        card = h.win.progress.downloads[item_id]
        assert card.failed and not card.bar.isVisible() and not card.cancel.isVisible()
        assert card.dismiss.isVisible() and card.other.isVisible()
        assert "404" in card.error.text()
        assert h.win.progress.total.text() == "Downloads: 1 failed"
        # "Clear finished" keeps the failure
        h.win.progress.clear_finished()
        assert item_id in h.win.progress.downloads
        # a bad address is refused on the card, the failure kept
        assert not h.win.progress.other_url(item_id, "http://example.com/x.safetensors")
        assert card.url_error.isVisible() and "unencrypted" in card.url_error.text()
        assert h.app.downloads.item(item_id).state == q.FAILED
        # another address, typed on the failed card: queued in place and downloaded
        http_files.add("/good/lora.safetensors", make_safetensors(4096))
        card.url.setText(http_files.url("/good/lora.safetensors"))
        card.use_url.click()
        target = h.app.core.store / "loras" / "l.safetensors"
        qtbot.waitUntil(target.is_file, timeout=15000)
        h.app.monitor.poke()
        qtbot.waitUntil(lambda: h.win.model.get("dl").attention == 0, timeout=10000)  # type: ignore[union-attr]
        assert not h.win.details.checklist.isVisible()
        assert h.win.model.get("dl").state_text == "Stopped"  # type: ignore[union-attr]
    finally:
        h.win.quit_done = True
        shutdown(h.app)


def test_fix_buttons_go_through_the_controller(
    qtbot: QtBot, data_dir: Path, http_files: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready(data_dir, "m")
    h = make_window(qtbot, data_dir)
    try:
        qtbot.waitUntil(lambda: state(h, "m") == "stopped", timeout=10000)
        h.win.select("m")
        gone = http_files.url("/gone/ckpt.safetensors")
        item_id = h.app.downloads.add(
            DownloadRequest(urls=(gone,), folder="checkpoints", name="c.safetensors"), "m"
        )
        qtbot.waitUntil(lambda: h.app.downloads.item(item_id).state == q.FAILED, timeout=15000)
        h.app.monitor.poke()
        qtbot.waitUntil(lambda: bool(fix_buttons(h)), timeout=10000)
        # Retry: the same queue item runs again (and fails again: still 404)
        fix_buttons(h)["fix-retry_download"].click()
        assert h.app.downloads.item(item_id).state in (q.QUEUED, q.DOWNLOADING, q.FAILED)
        qtbot.waitUntil(lambda: h.app.downloads.item(item_id).state == q.FAILED, timeout=15000)
        assert len(http_files.gets("/gone/ckpt.safetensors")) >= 2
        h.app.monitor.poke()
        qtbot.waitUntil(lambda: h.win.model.get("m").attention == 1, timeout=10000)  # type: ignore[union-attr]
        # launch with an open problem asks first, naming it; "no" launches nothing
        asked: list[list[str]] = []

        def no(parent: object, project: str, warnings: list[str]) -> bool:
            asked.append(warnings)
            return False

        monkeypatch.setattr(actions, "ask_launch_anyway", no)
        added: list[object] = []
        h.app.jobs.job_added.connect(added.append)
        assert h.win.lifecycle.launch("m") is None
        assert asked and any("checkpoints/c.safetensors" in w for w in asked[0])
        assert not added
        # Other URL from the checklist (the question answered by the test)
        http_files.add("/good/ckpt.safetensors", make_safetensors(2048, seed=2))
        good = http_files.url("/good/ckpt.safetensors")
        monkeypatch.setattr(actions, "ask_text", lambda parent, title, label: good)
        problem = h.win.model.get("m").health.problems[0]  # type: ignore[union-attr]
        assert h.win.lifecycle.fix("m", problem, "other_url") is None
        qtbot.waitUntil((h.app.core.store / "checkpoints" / "c.safetensors").is_file, timeout=15000)
        h.app.monitor.poke()
        qtbot.waitUntil(lambda: h.win.model.get("m").attention == 0, timeout=10000)  # type: ignore[union-attr]
    finally:
        h.win.quit_done = True
        shutdown(h.app)


def test_damaged_project_says_so_and_can_be_repaired(win: Harness, data_dir: Path) -> None:
    store = ProjectStore(build_core_context(data_dir).paths)
    store.create(Project(id="torn"))
    store.dirs("torn").file.write_text("{ torn")
    win.win.reload()
    win.win.select("torn")
    assert win.win.details.state.text().startswith("Damaged: ")
    assert win.win.details.buttons["repair"].isEnabled()
    assert win.win.actions_["repair"].isEnabled()


def test_empty_window_teaches_and_a_new_project_shows_its_choices(
    qtbot: QtBot, win: Harness
) -> None:
    h = win
    assert h.win.model.rowCount() == 0
    assert h.win.details.placeholder.isVisible()
    assert h.win.details.empty_new.isVisible() and h.win.details.empty_import.isVisible()
    assert EMPTY_TEXT in h.win.details.placeholder.findChildren(type(h.win.details.name))[0].text()
    assert not h.win.details.info_box.isVisible()  # no blank "ComfyUI:" labels
    # toolbar: icons with text
    for key in ("new", "import", "launch", "stop", "browser", "settings"):
        assert not h.win.actions_[key].icon().isNull()
    # first size: the panes show, within the screen
    assert h.win.size() == first_size(h.win)
    avail = h.win.screen().availableGeometry()
    assert h.win.width() <= avail.width() and h.win.height() <= avail.height()
    assert first_size(h.win).width() >= min(FIRST_SIZE.width(), int(avail.width() * 0.9))
    # a project being created: selected at once, its chosen values shown (not blank)
    release = threading.Event()

    def hold(report: Reporter, cancel: CancelToken) -> None:
        release.wait(20)

    h.app.jobs.submit(Kind.VERIFY, "fresh", hold)  # the create job waits behind it
    spec = ProjectSpec(name="fresh", torch_backend="cpu", port=4321, comfyui_ref="v0.3.2")
    try:
        h.win.lifecycle.create(spec)
        assert h.win.selected() == "fresh"
        info = h.win.details.info
        assert info["version"].text() == "v0.3.2 (installing)"
        assert info["torch"].text() == "cpu (installing)"
        assert info["port"].text() == "fixed 4321"
    finally:
        h.app.jobs.cancel_all()
        release.set()


def test_import_job_selects_its_project(qtbot: QtBot, win: Harness, data_dir: Path) -> None:
    ready(data_dir, "a-first")
    ready(data_dir, "b-second")
    win.win.reload()
    win.win.select("a-first")
    done = threading.Event()
    win.app.jobs.submit(Kind.IMPORT, "b-second", lambda report, cancel: done.set())
    assert win.win.selected() == "b-second"
    qtbot.waitUntil(done.is_set, timeout=5000)


@pytest.mark.slow
def test_crash_view_shows_the_cause_and_a_notice_click_selects_it(
    qtbot: QtBot, harness: Harness, project_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    create_installed(project_data_dir, "crashy")
    create_installed(project_data_dir, "other")
    qtbot.waitUntil(lambda: state(h, "crashy") == "stopped", timeout=10000)
    h.win.select("crashy")
    monkeypatch.setenv("FAKE_COMFYUI_MODE", "crash")
    h.app.intents.start.emit("crashy")
    qtbot.waitUntil(lambda: state(h, "crashy") == "crashed", timeout=60000)
    details = h.win.details
    # the cause first: the error line, not the start command
    text = details.state.text()
    assert text.startswith("Crashed (exit code 3): <b>")
    assert "fake crash" in text
    # the output, scrolled to its end
    lines: QPlainTextEdit = details.last_lines
    assert lines.isVisible()
    bar = lines.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.value() == bar.maximum(), timeout=2000)
    assert lines.textCursor().atEnd()
    # Copy details
    assert details.copy_details.isVisible()
    details.copy_details.click()
    copied = QGuiApplication.clipboard().text()
    assert copied.startswith("crashy: ComfyUI crashed (exit code 3).")
    assert "Cause: " in copied and "fake crash" in copied
    # the checklist's "View log" for the crash: the log pane at its end
    h.app.monitor.poke()
    qtbot.waitUntil(lambda: "fix-view_log" in fix_buttons(h), timeout=10000)
    fix_buttons(h)["fix-view_log"].click()
    log_bar = h.win.log_pane.view.verticalScrollBar()
    qtbot.waitUntil(lambda: log_bar.value() == log_bar.maximum(), timeout=2000)
    assert "fake crash" in h.win.log_pane.view.toPlainText()
    # the tray notice of a crash, clicked, selects that project (the balloon click is the tray
    # host's: simulated by its signal)
    h.win.select("other")
    tray = Tray(h.app)
    router = NotificationRouter(h.app, tray, parent=h.win)
    tray.show_message(Notice("crashed", "'crashy' crashed", "fake crash", "crashy"))
    tray.icon.messageClicked.emit()
    assert h.win.selected() == "crashy"
    router.deleteLater()
    tray.dispose()


def test_crash_cause_is_a_tracebacks_last_line() -> None:
    out = [
        "[comfymanager] started: python main.py --port 4001",
        "Traceback (most recent call last):",
        '  File "main.py", line 3, in <module>',
        "ModuleNotFoundError: No module named 'torchsde'",
    ]
    assert crash_cause(out) == "ModuleNotFoundError: No module named 'torchsde'"
    assert crash_cause(["just a line"]) == "just a line"
    assert crash_cause([]) == ""


def test_log_is_restored_after_a_restart_wraps_and_filters(qtbot: QtBot, data_dir: Path) -> None:
    ready(data_dir, "old")
    dirs = ProjectStore(build_core_context(data_dir).paths).dirs("old")
    dirs.comfyui_log.parent.mkdir(parents=True, exist_ok=True)
    long = "x" * 400
    dirs.comfyui_log.write_text(
        "Starting server\nWARNING: no GPU found, using CPU\n"
        f"{long}\nTraceback (most recent call last):\nValueError: bad\nPrompt executed\n"
    )
    h = make_window(qtbot, data_dir)
    try:
        h.win.select("old")
        pane = h.win.log_pane
        qtbot.waitUntil(lambda: "Prompt executed" in pane.view.toPlainText(), timeout=5000)
        text = pane.view.toPlainText()
        assert "Starting server" in text and long in text
        assert pane.view.lineWrapMode() == QPlainTextEdit.LineWrapMode.WidgetWidth
        # the monitor's own first read of the same file does not double the lines
        with dirs.comfyui_log.open("a") as fh:
            fh.write("a new line\n")
        qtbot.waitUntil(lambda: "a new line" in pane.view.toPlainText(), timeout=5000)
        assert pane.view.toPlainText().count("Prompt executed") == 1
        pane.problems.setChecked(True)
        shown = pane.view.toPlainText().splitlines()
        assert shown == [
            "WARNING: no GPU found, using CPU",
            "Traceback (most recent call last):",
            "ValueError: bad",
        ]
        pane.problems.setChecked(False)
        assert "Prompt executed" in pane.view.toPlainText()
    finally:
        h.win.quit_done = True
        shutdown(h.app)


def test_new_project_name_error_sits_under_its_field(
    qtbot: QtBot, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from comfymanager.ui.app_context import build_app_context
    from comfymanager.ui.dialogs.new_project import NewProjectDialog

    monkeypatch.setenv("COMFYMANAGER_COMFYUI_SOURCE", str(tmp_path / "no-such-repo"))
    app = build_app_context(build_core_context(data_dir))
    try:
        dialog = NewProjectDialog(app)
        qtbot.addWidget(dialog)
        dialog.show()
        dialog.name.setText("bad\tname")  # a control character: names are free text otherwise
        qtbot.waitUntil(lambda: dialog.name_error.text() != "", timeout=2000)
        qtbot.waitUntil(
            lambda: dialog.name_error.geometry().top() >= dialog.name.geometry().bottom(),
            timeout=2000,
        )
        # the whole sentence is shown (not cut by the dialog's width)
        fm = dialog.name_error.fontMetrics()
        need = fm.horizontalAdvance(dialog.name_error.text())
        qtbot.waitUntil(lambda: dialog.name_error.width() >= need, timeout=2000)
        assert not dialog.create_button.isEnabled()
    finally:
        shutdown(app)


def test_activity_lists_running_work_first_and_the_tray_counts_attention(
    qtbot: QtBot, win: Harness, data_dir: Path, http_files: FileServer
) -> None:
    h = win
    ready(data_dir, "att")
    h.win.reload()
    gone = http_files.url("/gone/v.safetensors")
    failed = h.app.downloads.add(
        DownloadRequest(urls=(gone,), folder="vae", name="v.safetensors"), "att"
    )
    qtbot.waitUntil(lambda: h.app.downloads.item(failed).state == q.FAILED, timeout=15000)
    release = threading.Event()
    job = h.app.jobs.submit(Kind.VERIFY, "att", lambda report, cancel: release.wait(20))
    try:
        rows = h.win.progress.rows()
        assert rows[0] is h.win.progress.jobs[job.id]  # running work first, the failure after
        assert rows[1] is h.win.progress.downloads[failed]
    finally:
        release.set()
    qtbot.waitUntil(lambda: h.win.progress.jobs[job.id].finished, timeout=10000)
    assert h.win.progress.rows()[0] is h.win.progress.downloads[failed]  # failures before done
    # dismiss one failure explicitly: it leaves the pane and the queue
    h.win.progress.downloads[failed].dismiss.click()
    assert failed not in h.win.progress.downloads
    assert all(i.id != failed for i in h.app.downloads.items())
    # the tray: "Needs attention" from the monitor's health (no disk read of its own)
    tray = Tray(h.app)
    try:
        h.app.monitor.poke()
        qtbot.waitUntil(lambda: "att" in h.app.monitor.healths(), timeout=10000)
        ProjectStore(h.app.core.paths).dirs("att")  # exists
        # a model the project lists, missing from the store: one problem
        store = ProjectStore(h.app.core.paths)
        p = store.load("att")
        p.models = [{"directory": "vae", "name": "v.safetensors"}]
        store.save(p)
        h.app.monitor.poke()
        qtbot.waitUntil(
            lambda: "Needs attention (1): att" in tray.compute_state()[1], timeout=10000
        )
        tray.rebuild_menu()
        titles = [a.text() for a in tray.menu.actions()]
        assert "att - Stopped, needs attention (1)" in titles
    finally:
        tray.dispose()


@pytest.mark.slow
def test_verify_and_skip_fixes_run_the_real_verification(
    qtbot: QtBot, data_dir: Path, fake_comfyui: FakeComfyUI, node_packs: NodePacks
) -> None:
    make_scan_project(build_core_context(data_dir).paths, "vid", fake_comfyui, node_packs)
    h = make_window(qtbot, data_dir)
    try:
        h.win.select("vid")
        # never verified: one problem, fixed by "Verify"
        qtbot.waitUntil(lambda: "fix-verify" in fix_buttons(h), timeout=10000)
        with qtbot.waitSignal(h.app.jobs.job_finished, timeout=120000):
            fix_buttons(h)["fix-verify"].click()
        h.app.monitor.poke()

        def model_problem() -> object:
            row = h.win.model.get("vid")
            found = [
                p
                for p in (row.problems if row else ())
                if p.subject == "checkpoints/base.safetensors"
            ]
            return found[0] if found else None

        qtbot.waitUntil(lambda: model_problem() is not None, timeout=10000)
        row = h.win.model.get("vid")
        assert row is not None and "unverified" not in {p.kind for p in row.problems}
        assert {"node", "pack"} & {p.kind for p in row.problems}  # FixBroken never loads
        before = row.attention
        # "Skip" for the checkpoint: recorded by the verification, the problem gone
        with qtbot.waitSignal(h.app.jobs.job_finished, timeout=120000) as finished:
            h.win.lifecycle.fix("vid", model_problem(), "skip")  # type: ignore[arg-type]
        assert finished.args[0].outcome == "succeeded"
        h.app.monitor.poke()
        qtbot.waitUntil(lambda: model_problem() is None, timeout=10000)
        assert h.win.model.get("vid").attention == before - 1  # type: ignore[union-attr]

        # "Skip" for a missing node type, clicked in the checklist: no rescan, the row gone,
        # the verification line says it was left out on purpose
        def node_problems() -> list[str]:
            row = h.win.model.get("vid")
            return [p.subject for p in (row.problems if row else ()) if p.kind == "node"]

        qtbot.waitUntil(lambda: bool(node_problems()), timeout=10000)
        cls = node_problems()[0]
        skip = next(
            b for b in h.win.details.checklist.buttons if b.accessibleName() == f"Skip {cls}"
        )
        with qtbot.waitSignal(h.app.jobs.job_finished, timeout=120000) as finished:
            skip.click()
        assert finished.args[0].outcome == "succeeded"
        h.app.monitor.poke()
        qtbot.waitUntil(lambda: cls not in node_problems(), timeout=10000)
        result = last_result(build_core_context(data_dir), "vid")
        assert result is not None and cls in {n.class_type for n in result.skipped}
        assert f"left out on purpose ({cls}" in result.nodes_line()
    finally:
        h.win.quit_done = True
        shutdown(h.app)


def test_an_imported_project_in_the_making_shows_no_blank_fields(win: Harness) -> None:
    release = threading.Event()
    win.app.jobs.submit(Kind.IMPORT, "from-drop", lambda report, cancel: release.wait(20))
    try:
        assert win.win.selected() == "from-drop"
        assert win.win.details.info["version"].text() == "being installed"
        assert win.win.details.info_box.isVisible()
    finally:
        release.set()


def test_choose_pack_offers_the_packs_the_node_database_names(
    qtbot: QtBot, win: Harness, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from comfymanager.core.health import CHOOSE_PACK, NODE, Problem
    from comfymanager.core.workflow.nodedb import load_node_db, refresh_node_db
    from tests.fixtures.nodedb import snapshot_dir

    paths = win.app.core.paths
    refresh_node_db(str(snapshot_dir()), paths.node_db)
    db = load_node_db(paths.node_db)
    assert db is not None
    cls = next(c for c, owners in db.owners.items() if len(owners) >= 2)
    ready(data_dir, "np")
    win.win.reload()
    offered: list[tuple[str, ...]] = []

    def pick_first(parent: object, title: str, label: str, items: tuple[str, ...]) -> str:
        offered.append(items)
        return items[0]

    monkeypatch.setattr(actions, "ask_item", pick_first)
    problem = Problem(NODE, cls, "no installed pack provides it", "Choose a pack", CHOOSE_PACK)
    with qtbot.waitSignal(win.app.jobs.job_added, timeout=10000) as added:
        win.win.lifecycle.fix("np", problem)
    job = added.args[0]
    assert job.kind is Kind.PACK_ADD and job.queue == "np"
    assert len(offered[0]) >= 3 and offered[0][-1].startswith("Another source")
    assert any(db.packs[k].url in offered[0][0] for k in db.owners[cls] if k in db.packs)
    # the real add runs and fails with a cause (GitHub is unreachable here), not a traceback
    qtbot.waitUntil(lambda: job.outcome != "", timeout=120000)
    if job.outcome == "failed":
        assert job.error is not None and job.error.message
