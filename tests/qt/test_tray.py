"""The tray: menu contents and actions for every project state, intents, and the state icon.

Projects are real: project.json records written through ProjectStore for the states that need
no process, and a real installed project (fake ComfyUI repo) for starting/running/crashed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QSystemTrayIcon
from pytestqt.qtbot import QtBot

from comfymanager.core.context import build_core_context
from comfymanager.core.operations import Kind
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import InstallState, Project, ProjectStore
from comfymanager.core.run import runs
from comfymanager.ui.app_context import AppContext, build_app_context, shutdown
from comfymanager.ui.tray import Tray
from tests.fixtures.comfyui import create_installed


@pytest.fixture
def app(data_dir: Path) -> Iterator[AppContext]:
    ctx = build_app_context(build_core_context(data_dir))
    ctx.monitor.interval = 0.2
    yield ctx
    shutdown(ctx)


def record(app: AppContext, name: str, status: str) -> None:
    ProjectStore(app.core.paths).create(Project(id=name, install=InstallState(status=status)))


def project_menu(tray: Tray, name: str) -> QMenu:
    tray.rebuild_menu()
    for action in tray.menu.actions():
        menu = action.menu()
        if isinstance(menu, QMenu) and menu.title().startswith(f"{name} - "):
            return menu
    raise AssertionError(f"no submenu for {name}: {[a.text() for a in tray.menu.actions()]}")


def actions(menu: QMenu) -> dict[str, QAction]:
    return {a.text(): a for a in menu.actions() if a.text()}


def enabled(menu: QMenu) -> dict[str, bool]:
    return {text: a.isEnabled() for text, a in actions(menu).items()}


def wait_state(qtbot: QtBot, app: AppContext, name: str, state: str, timeout: int = 30000) -> None:
    def check() -> None:
        app.monitor.poke()
        st = app.monitor.snapshot().get(name)
        assert st is not None and st.state == state, st

    qtbot.waitUntil(check, timeout=timeout)


def test_empty_menu_offers_new_project(qtbot: QtBot, app: AppContext) -> None:
    tray = Tray(app)
    texts = [a.text() for a in tray.menu.actions() if a.text()]
    assert texts == ["No projects yet", "New project...", "Show window", "Quit"]
    with qtbot.waitSignal(app.intents.new_project):
        actions(tray.menu)["New project..."].trigger()


def test_menu_for_states_without_a_process(qtbot: QtBot, app: AppContext) -> None:
    record(app, "fresh", "new")
    record(app, "broken-install", "failed")
    record(app, "ready", "ready")
    record(app, "busy", "ready")
    release = threading.Event()

    def repairing(report: Reporter, cancel: CancelToken) -> None:
        release.wait(30)  # a repair in progress: "installing" comes from the job queue

    with qtbot.waitSignal(app.jobs.job_started):
        app.jobs.submit(Kind.REPAIR, "busy", repairing)
    wait_state(qtbot, app, "ready", "stopped")
    tray = Tray(app)
    none = {"Start": False, "Stop": False, "Open in browser": False}
    assert project_menu(tray, "fresh").title() == "fresh - Not installed"
    assert enabled(project_menu(tray, "fresh")) == none
    assert project_menu(tray, "broken-install").title() == "broken-install - Install failed"
    assert enabled(project_menu(tray, "broken-install")) == none
    assert project_menu(tray, "busy").title() == "busy - Installing..."
    assert enabled(project_menu(tray, "busy")) == none
    assert project_menu(tray, "ready").title() == "ready - Stopped"
    assert enabled(project_menu(tray, "ready")) == {
        "Start": True,
        "Stop": False,
        "Open in browser": False,
    }
    # projects are listed by name, then the window and quit entries
    titles = [a.text() for a in tray.menu.actions() if a.text()]
    assert titles == [
        "broken-install - Install failed",
        "busy - Installing...",
        "fresh - Not installed",
        "ready - Stopped",
        "Show window",
        "Quit",
    ]
    assert tray.state == "busy"  # an install in progress

    with qtbot.waitSignal(app.intents.start) as blocker:
        actions(project_menu(tray, "ready"))["Start"].trigger()
    assert blocker.args == ["ready"]
    with qtbot.waitSignal(app.intents.show_window):
        actions(tray.menu)["Show window"].trigger()
    with qtbot.waitSignal(app.intents.quit):
        actions(tray.menu)["Quit"].trigger()

    with qtbot.waitSignal(app.jobs.job_finished):
        release.set()
    qtbot.waitUntil(lambda: tray.state == "idle", timeout=10000)
    assert project_menu(tray, "busy").title() == "busy - Stopped"


def test_menu_rebuilt_when_it_opens(qtbot: QtBot, app: AppContext) -> None:
    tray = Tray(app)
    record(app, "later", "ready")
    tray.menu.aboutToShow.emit()
    assert any(a.text().startswith("later - ") for a in tray.menu.actions())


def test_left_click_shows_window(qtbot: QtBot, app: AppContext) -> None:
    tray = Tray(app, os_name="linux")  # Windows too
    with qtbot.waitSignal(app.intents.show_window):
        tray.icon.activated.emit(QSystemTrayIcon.ActivationReason.Trigger)
    with qtbot.assertNotEmitted(app.intents.show_window):
        tray.icon.activated.emit(QSystemTrayIcon.ActivationReason.Context)


def test_macos_click_opens_the_menu_only_and_icons_are_templates(
    qtbot: QtBot, app: AppContext
) -> None:
    mac = Tray(app, os_name="darwin")
    with qtbot.assertNotEmitted(app.intents.show_window):  # the click opens the menu there
        mac.icon.activated.emit(QSystemTrayIcon.ActivationReason.Trigger)
    with qtbot.waitSignal(app.intents.show_window):
        mac.icon.activated.emit(QSystemTrayIcon.ActivationReason.DoubleClick)
    assert mac.icon.icon().isMask()  # drawn in the menu bar's colour (dark mode, highlight)
    mac.set_state("running")
    assert mac.icon.icon().isMask()
    other = Tray(app, os_name="win32")
    assert not other.icon.icon().isMask()  # coloured state badges elsewhere
    mac.dispose()
    other.dispose()


def test_unknown_state_rejected(app: AppContext) -> None:
    with pytest.raises(ValueError):
        Tray(app).set_state("purple")


@pytest.mark.slow
@pytest.mark.usefixtures("stop_all")
def test_real_project_starting_running_stopped_crashed(
    qtbot: QtBot, project_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_installed(project_data_dir, "real")
    core = build_core_context(project_data_dir)
    app = build_app_context(core)
    app.monitor.interval = 0.2
    try:
        tray = Tray(app)
        states: list[str] = []
        tray.state_changed.connect(states.append)
        wait_state(qtbot, app, "real", "stopped")
        assert tray.state == "idle"

        monkeypatch.setenv("FAKE_COMFYUI_MODE", "slow")
        monkeypatch.setenv("FAKE_COMFYUI_DELAY", "2")
        runs.start(core, "real")
        wait_state(qtbot, app, "real", "starting")
        menu = project_menu(tray, "real")
        assert menu.title() == "real - Starting..."
        assert enabled(menu) == {"Start": False, "Stop": True, "Open in browser": False}
        # the monitor's snapshot changes on its thread; its signal reaches the tray a moment later
        qtbot.waitUntil(lambda: tray.state == "running")

        wait_state(qtbot, app, "real", "running")
        menu = project_menu(tray, "real")
        assert enabled(menu) == {"Start": False, "Stop": True, "Open in browser": True}
        with qtbot.waitSignal(app.intents.open_browser) as blocker:
            actions(menu)["Open in browser"].trigger()
        assert blocker.args == ["real"]
        with qtbot.waitSignal(app.intents.stop) as blocker:
            actions(menu)["Stop"].trigger()
        assert blocker.args == ["real"]
        assert "running: real" in tray.icon.toolTip()

        runs.stop(core, "real", timeout=5)
        wait_state(qtbot, app, "real", "stopped")
        qtbot.waitUntil(lambda: tray.state == "idle")
        assert states == ["running", "idle"]

        monkeypatch.setenv("FAKE_COMFYUI_MODE", "crash")
        monkeypatch.setenv("FAKE_COMFYUI_DELAY", "0.5")
        runs.start(core, "real")
        wait_state(qtbot, app, "real", "crashed")
        menu = project_menu(tray, "real")
        assert menu.title() == "real - Crashed"
        assert enabled(menu) == {"Start": True, "Stop": False, "Open in browser": False}
        qtbot.waitUntil(lambda: tray.state == "idle")
    finally:
        shutdown(app)


def _needy(app: AppContext, name: str) -> None:
    """A ready project whose model is missing from the store: one open problem."""
    ProjectStore(app.core.paths).create(
        Project(
            id=name,
            install=InstallState(status="ready"),
            models=[{"directory": "vae", "name": "v.safetensors"}],
        )
    )


def test_needs_attention_has_its_own_icon_below_busy(qtbot: QtBot, app: AppContext) -> None:
    from comfymanager.ui.resources import tray_icon

    tray = Tray(app)
    try:
        assert tray.state == "idle"
        _needy(app, "needy")
        app.monitor.poke()
        qtbot.waitUntil(lambda: tray.state == "attention", timeout=10000)
        state, tooltip = tray.compute_state()
        assert state == "attention" and "Needs attention (1): needy" in tooltip
        assert tray.icon.icon().cacheKey() == tray_icon("attention").cacheKey()
        assert tray_icon("attention").availableSizes()  # the rendered PNGs exist
        # work under way outranks it
        release = threading.Event()
        app.jobs.submit(Kind.VERIFY, "needy", lambda report, cancel: release.wait(20))
        qtbot.waitUntil(lambda: tray.state == "busy", timeout=5000)
        release.set()
        qtbot.waitUntil(lambda: tray.state == "attention", timeout=10000)
        # fixed (the file put in the store): idle again
        (app.core.store / "vae").mkdir(parents=True, exist_ok=True)
        (app.core.store / "vae" / "v.safetensors").write_bytes(b"x" * 16)
        app.monitor.poke()
        qtbot.waitUntil(lambda: tray.state == "idle", timeout=10000)
    finally:
        tray.dispose()


@pytest.mark.slow
@pytest.mark.usefixtures("stop_all")
def test_attention_outranks_a_running_project(
    qtbot: QtBot, project_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_installed(project_data_dir, "up")
    core = build_core_context(project_data_dir)
    app = build_app_context(core)
    app.monitor.interval = 0.2
    tray = Tray(app)
    try:
        runs.start(core, "up")
        wait_state(qtbot, app, "up", "running")
        qtbot.waitUntil(lambda: tray.state == "running", timeout=10000)
        _needy(app, "other")
        qtbot.waitUntil(lambda: tray.state == "attention", timeout=10000)
        assert "running: up" in tray.icon.toolTip()
        runs.stop(core, "up", timeout=5)
        wait_state(qtbot, app, "up", "stopped")
        assert tray.state == "attention"
    finally:
        tray.dispose()
        shutdown(app)
