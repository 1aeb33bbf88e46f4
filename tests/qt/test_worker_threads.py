"""Signals of the objects that work off the UI thread (``Worker``, ``RunMonitor``) arrive on the
UI thread whatever is connected to them, so nothing connected can delete a Qt object off its
thread: the cause of the window tests' intermittent SIGSEGV (a pytest-qt ``waitSignals`` blocker
called on the worker's thread deleted its timer there; the timer fired later into freed memory).
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject
from pytestqt.qtbot import QtBot

from comfymanager.core.context import build_core_context
from comfymanager.core.progress import CancelToken, Progress, Reporter
from comfymanager.core.projects import InstallState, Project, ProjectStore
from comfymanager.core.run.monitor import RunMonitor
from comfymanager.core.workers import Worker, _live, reap_finished, start_worker
from comfymanager.ui.background import run_background

THREAD_WARNING = "cannot be stopped from another thread"


def _chatty(report: Reporter, cancel: CancelToken) -> str:
    report.progress(Progress(stage="one", message="one"))
    report.log("a line")
    return "result"


def test_plain_callables_on_worker_signals_run_on_the_ui_thread(qtbot: QtBot) -> None:
    worker = Worker(_chatty, name="chatty")
    seen: list[tuple[str, str]] = []
    for name in ("progress", "log", "succeeded", "finished"):
        getattr(worker, name).connect(
            lambda *_a, n=name: seen.append((n, threading.current_thread().name))
        )
    thread = start_worker(worker)
    qtbot.waitUntil(lambda: len(seen) == 4, timeout=10000)
    assert thread.wait(10000)
    main = threading.main_thread().name
    assert seen == [("progress", main), ("log", main), ("succeeded", main), ("finished", main)]


def test_waiting_for_worker_signals_leaves_no_timer_on_another_thread(
    qtbot: QtBot, qtlog: object
) -> None:
    """The exact pattern that crashed: ``waitSignals`` on a worker's signals. Its blocker's timer
    was stopped (and sometimes deleted) on the worker's thread; Qt says so with a warning."""
    for _ in range(5):
        worker = Worker(_chatty, name="chatty")
        signals = [worker.progress, worker.log, worker.succeeded, worker.finished]
        with qtbot.waitSignals(signals, order="strict", timeout=10000):
            thread = start_worker(worker)
        assert thread.wait(10000)
    records = qtlog.records  # type: ignore[attr-defined]
    assert [r.message for r in records if THREAD_WARNING in r.message] == []


def test_plain_callables_on_monitor_signals_run_on_the_ui_thread(
    qtbot: QtBot, data_dir: Path
) -> None:
    ctx = build_core_context(data_dir)
    ProjectStore(ctx.paths).create(Project(id="watched", install=InstallState(status="new")))
    monitor = RunMonitor(ctx, interval=0.1, log_interval=0.05)
    threads: list[str] = []
    monitor.status_changed.connect(lambda _st: threads.append(threading.current_thread().name))
    monitor.health_changed.connect(lambda _h: threads.append(threading.current_thread().name))
    monitor.start()
    try:
        qtbot.waitUntil(lambda: len(threads) >= 2, timeout=10000)
    finally:
        monitor.stop()
    assert set(threads) == {threading.main_thread().name}


def test_a_finished_worker_is_kept_until_its_result_is_delivered(qtbot: QtBot) -> None:
    """The worker's last signals wait in the UI thread's queue after its thread has ended; a
    release in between (another ``start_worker``) must not drop them with the worker."""
    receiver = QObject()
    results: list[object] = []
    run_background(receiver, _chatty, results.append, name="late")  # nobody keeps the worker
    entry = next(e for e in _live.values() if e[1].name == "late")
    assert entry[0].wait(10000)  # ended; its signals not delivered yet (no events processed)
    reap_finished()
    assert any(w.name == "late" for _t, w in _live.values())
    del entry
    qtbot.waitUntil(lambda: results == ["result"], timeout=10000)

    def released() -> bool:
        reap_finished()
        return not any(w.name == "late" for _t, w in _live.values())

    qtbot.waitUntil(released, timeout=10000)
