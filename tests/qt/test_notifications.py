"""Notices: jobs (through ``Outcomes``, by kind), crashes and downloads become the right Notice,
exactly one per outcome; the route is tray or fallback; notices sent before the UI connected are
delivered once it does. The last tests drive the real window actions and count the notices."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QSystemTrayIcon
from pytestqt.qtbot import QtBot

from comfymanager.core.context import build_core_context
from comfymanager.core.errors import Cancelled, ComfyManagerError
from comfymanager.core.models import transfer
from comfymanager.core.models.download import DownloadRequest
from comfymanager.core.notifier import Notice
from comfymanager.core.operations import Kind
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.run import runs
from comfymanager.core.run.runs import Status
from comfymanager.ui.app_context import AppContext, build_app_context, shutdown
from comfymanager.ui.notifications import NotificationRouter
from comfymanager.ui.outcomes import Outcomes
from comfymanager.ui.tray import Tray
from tests.fixtures.comfyui import create_installed
from tests.fixtures.http_server import FileServer, Served, make_safetensors
from tests.fixtures.window import Harness, state


@pytest.fixture
def app(data_dir: Path) -> Iterator[AppContext]:
    ctx = build_app_context(build_core_context(data_dir))
    ctx.monitor.interval = 0.2
    yield ctx
    shutdown(ctx)


def router_with_log(
    app: AppContext, outcomes: Outcomes | None = None
) -> tuple[NotificationRouter, list[Notice]]:
    seen: list[Notice] = []
    return NotificationRouter(app, None, fallback=seen.append, outcomes=outcomes), seen


def run_job(qtbot: QtBot, app: AppContext, kind: Kind, project: str, fn: object) -> None:
    with qtbot.waitSignal(app.jobs.job_finished, timeout=10000):
        app.jobs.submit(kind, project, fn)  # type: ignore[arg-type]


def test_notices_sent_before_the_ui_are_delivered_on_connect(app: AppContext) -> None:
    app.notifier.notify(Notice("info", "Early", "said during start-up"))
    _router, seen = router_with_log(app)
    assert [(n.kind, n.title) for n in seen] == [("info", "Early")]
    app.notifier.notify(Notice("info", "Later", "after connect"))
    assert [n.title for n in seen] == ["Early", "Later"]


def test_install_jobs_give_done_and_failed_notices(qtbot: QtBot, app: AppContext) -> None:
    outcomes = Outcomes(app)
    _router, seen = router_with_log(app, outcomes)

    def ok(report: Reporter, cancel: CancelToken) -> str:
        return "done"

    def broken(report: Reporter, cancel: CancelToken) -> None:
        raise ComfyManagerError("uv could not resolve torch==9.9.", "Pick another torch backend.")

    def stopped(report: Reporter, cancel: CancelToken) -> None:
        raise Cancelled()

    run_job(qtbot, app, Kind.CREATE, "alpha", ok)
    run_job(qtbot, app, Kind.REPAIR, "alpha", broken)
    run_job(qtbot, app, Kind.REINSTALL, "alpha", stopped)
    run_job(qtbot, app, Kind.DELETE, "alpha", ok)  # a delete that worked says nothing
    assert [(n.kind, n.title, n.project) for n in seen] == [
        ("install-done", "'alpha' is installed", "alpha"),
        ("install-failed", "Installing 'alpha' failed", "alpha"),
    ]
    assert seen[1].text == "uv could not resolve torch==9.9. Pick another torch backend."


def test_launch_job_ready_and_failed(qtbot: QtBot, app: AppContext) -> None:
    outcomes = Outcomes(app)
    _router, seen = router_with_log(app, outcomes)
    opened: list[str] = []
    app.open_url = opened.append

    def ready(report: Reporter, cancel: CancelToken) -> Status:
        return Status("beta", "running", 4005, 1, "http://127.0.0.1:4005")

    def no_start(report: Reporter, cancel: CancelToken) -> None:
        raise ComfyManagerError("ComfyUI exited with code 1 before it was ready.")

    run_job(qtbot, app, Kind.LAUNCH, "beta", ready)
    run_job(qtbot, app, Kind.LAUNCH, "beta", no_start)
    assert [(n.kind, n.title) for n in seen] == [
        ("ready", "'beta' is ready"),
        ("crashed", "'beta' did not start"),
    ]
    assert "http://127.0.0.1:4005" in seen[0].text
    assert "exited with code 1" in seen[1].text
    assert opened == ["http://127.0.0.1:4005"]  # the browser opens once, for the ready launch
    assert outcomes.launch_errors["beta"].message.startswith("ComfyUI exited with code 1")
    assert outcomes.launch_failed_since("beta", 60)


def test_every_kind_has_a_title_and_no_title_is_parsed(qtbot: QtBot, app: AppContext) -> None:
    """Titles come from the kind; a project named like a verb changes nothing."""
    outcomes = Outcomes(app)
    _router, seen = router_with_log(app, outcomes)
    for kind in Kind:
        assert kind.title("x", "y").strip(), kind
    run_job(qtbot, app, Kind.CREATE, "Start 'x'", lambda r, c: None)
    assert [(n.kind, n.project) for n in seen] == [("install-done", "Start 'x'")]


def test_tray_route_when_a_tray_is_shown(
    qtbot: QtBot, app: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(QSystemTrayIcon, "isSystemTrayAvailable", staticmethod(lambda: True))
    tray = Tray(app)
    tray.show()
    fallback: list[Notice] = []
    router = NotificationRouter(app, tray, fallback=fallback.append)
    with qtbot.waitSignal(tray.message_shown) as blocker:
        app.notifier.notify(Notice("download-failed", "Download of x failed", "404"))
    assert blocker.args[0].title == "Download of x failed" and fallback == []
    assert router.tray is tray
    tray.dispose()


def test_without_tray_or_fallback_notices_are_logged(
    app: AppContext, caplog: pytest.LogCaptureFixture
) -> None:
    router = NotificationRouter(app)
    app.notifier.notify(Notice("info", "Hello", "world"))
    assert router.fallback is None
    assert "notice: Hello - world" in caplog.text


def test_downloads_finished_failed_and_paused(
    qtbot: QtBot, app: AppContext, http_files: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    router, seen = router_with_log(app)
    for i in range(2):
        http_files.add(f"/m{i}.safetensors", Served(make_safetensors(4096, seed=i)))
    with qtbot.waitSignal(app.downloads.all_done, timeout=20000):
        for i in range(2):
            app.downloads.add(
                DownloadRequest(
                    urls=(http_files.url(f"/m{i}.safetensors"),),
                    folder="loras",
                    name=f"m{i}.safetensors",
                )
            )
    qtbot.waitUntil(lambda: any(n.kind == "download-done" for n in seen), timeout=5000)
    done = [n for n in seen if n.kind == "download-done"]
    assert len(done) == 1 and done[0].title == "2 downloads finished"
    assert "m0.safetensors" in done[0].text and "m1.safetensors" in done[0].text

    with qtbot.waitSignal(
        router.shown, timeout=20000, check_params_cb=lambda n: n.kind == "download-failed"
    ):
        app.downloads.add(
            DownloadRequest(
                urls=(http_files.url("/missing.safetensors"),),
                folder="loras",
                name="missing.safetensors",
            )
        )
    failed = [n for n in seen if n.kind == "download-failed"]
    assert failed[0].title == "Download of missing.safetensors failed"

    # a connection that keeps breaking: paused, not failed, and the notice says so
    monkeypatch.setattr(transfer, "BACKOFF", 0.01)
    http_files.add(
        "/flaky.safetensors", Served(make_safetensors(8192), fail_after=10, fail_times=99)
    )
    with qtbot.waitSignal(
        router.shown, timeout=20000, check_params_cb=lambda n: n.kind == "download-paused"
    ):
        app.downloads.add(
            DownloadRequest(
                urls=(http_files.url("/flaky.safetensors"),),
                folder="loras",
                name="flaky.safetensors",
            )
        )
    paused = [n for n in seen if n.kind == "download-paused"]
    assert paused[0].title == "Download of flaky.safetensors paused"
    assert "connection was lost" in paused[0].text


@pytest.mark.slow
@pytest.mark.usefixtures("stop_all")
def test_crash_of_a_running_project_is_announced_once(
    qtbot: QtBot, project_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_installed(project_data_dir, "crashy")
    core = build_core_context(project_data_dir)
    app = build_app_context(core)
    app.monitor.interval = 0.2
    try:
        router, seen = router_with_log(app)
        monkeypatch.setenv("FAKE_COMFYUI_MODE", "crash")
        monkeypatch.setenv("FAKE_COMFYUI_DELAY", "1.5")
        runs.start(core, "crashy")
        with qtbot.waitSignal(router.shown, timeout=30000):
            pass
        assert [(n.kind, n.title) for n in seen] == [("crashed", "'crashy' crashed")]
        assert "exited with code 3" in seen[0].text
    finally:
        shutdown(app)


# --- the real window actions, counting notices (exactly one per outcome) ----------------------


@pytest.mark.slow
def test_window_actions_give_exactly_one_notice_per_outcome(
    qtbot: QtBot, harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Launch (ready), stop (silent), then a launch that fails: one notice each, and the failed
    launch is not announced a second time as a crash by the monitor (the bug of issue 12)."""
    h = harness
    h.app.monitor.interval = 0.2
    create_installed(h.app.core.paths.root, "one")
    h.win.reload()
    _router, seen = router_with_log(h.app, h.win.outcomes)
    with qtbot.waitSignal(h.win.outcomes.handled, timeout=60000):
        h.app.intents.start.emit("one")
    assert [(n.kind, n.title) for n in seen] == [("ready", "'one' is ready")]
    assert len(h.opened.urls) == 1
    with qtbot.waitSignal(h.win.outcomes.handled, timeout=60000):
        h.app.intents.stop.emit("one")
    qtbot.waitUntil(lambda: state(h, "one") == "stopped", timeout=30000)
    assert len(seen) == 1  # a stop that worked says nothing

    monkeypatch.setenv("FAKE_COMFYUI_MODE", "crash-early")
    with qtbot.waitSignal(h.win.outcomes.handled, timeout=60000) as blocker:
        h.app.intents.start.emit("one")
    assert blocker.args[0].outcome == "failed"
    qtbot.waitUntil(lambda: state(h, "one") == "crashed", timeout=30000)
    h.app.monitor.poke()
    qtbot.waitUntil(lambda: h.app.monitor.snapshot()["one"].state == "crashed", timeout=10000)
    assert [(n.kind, n.title) for n in seen] == [
        ("ready", "'one' is ready"),
        ("crashed", "'one' did not start"),
    ]
    assert "one" in h.win.launch_errors
    h.win.select("one")
    assert h.win.details.error.isVisibleTo(h.win)
