"""The worker shape, the job queues and the run monitor on their own: the order of their signals
(``waitSignals(order="strict")``), one job per project at a time, titles from the kind, and the
monitor seeing a real project's state and log lines."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Slot
from pytestqt.qtbot import QtBot

from comfymanager.core.context import build_core_context
from comfymanager.core.errors import Cancelled, ComfyManagerError, ErrorInfo
from comfymanager.core.jobs import JobManager
from comfymanager.core.operations import Kind
from comfymanager.core.progress import CancelToken, Progress, Reporter
from comfymanager.core.projects import InstallState, Project, ProjectStore
from comfymanager.core.run.monitor import RunMonitor
from comfymanager.core.run.runs import Status
from comfymanager.core.workers import Worker, reap_finished, start_worker


class Collector(QObject):
    """Receives a signal on a QObject (not a bare Python callable): the connection ends with the
    collector, so nothing of a test outlives it."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[object] = []

    @Slot(object)
    def add(self, item: object) -> None:
        self.items.append(item)


class LineCollector(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    @Slot(str, list)
    def add(self, project: str, new: list[str]) -> None:
        self.lines.extend(new)


def _chatty(report: Reporter, cancel: CancelToken) -> str:
    report.progress(Progress(stage="one", message="one"))
    report.log("a line")
    return "result"


def test_worker_signals_in_order_progress_log_succeeded_finished(qtbot: QtBot) -> None:
    worker = Worker(_chatty, name="chatty")
    signals = [worker.progress, worker.log, worker.succeeded, worker.finished]
    with qtbot.waitSignals(signals, order="strict", timeout=10000):
        thread = start_worker(worker)
    assert thread.wait(10000)
    reap_finished()  # released here, on this thread, not by a later test's start_worker
    assert worker.result == "result" and worker.error is None and not worker.was_cancelled


def test_worker_failure_is_failed_then_finished_and_nothing_escapes(qtbot: QtBot) -> None:
    def boom(report: Reporter, cancel: CancelToken) -> None:
        raise ComfyManagerError("The disk is full.", "Free some space.")

    worker = Worker(boom, name="boom")
    with qtbot.waitSignals([worker.failed, worker.finished], order="strict", timeout=10000):
        thread = start_worker(worker)
    assert thread.wait(10000)
    reap_finished()  # released here, on this thread, not by a later test's start_worker
    assert worker.result is None and isinstance(worker.error, ErrorInfo)
    assert worker.error.message == "The disk is full." and worker.error.fix == "Free some space."


def test_worker_cancel_gives_cancelled_then_finished(qtbot: QtBot) -> None:
    started = threading.Event()

    def waits(report: Reporter, cancel: CancelToken) -> None:
        started.set()
        while True:
            cancel.check()
            cancel.wait(0.01)

    worker = Worker(waits, name="waits")
    with qtbot.waitSignals([worker.cancelled, worker.finished], order="strict", timeout=10000):
        thread = start_worker(worker)
        assert started.wait(10)
        worker.cancel()
    assert thread.wait(10000)
    reap_finished()  # released here, on this thread, not by a later test's start_worker
    assert worker.was_cancelled and worker.error is None


@pytest.fixture
def jobs() -> Iterator[JobManager]:
    manager = JobManager()
    yield manager
    manager.cancel_all()
    assert manager.wait_all(10000)
    reap_finished()  # the workers go before their manager, on this thread


def test_job_signals_in_order_and_title_from_kind(qtbot: QtBot, jobs: JobManager) -> None:
    signals = [
        jobs.job_added,
        jobs.job_started,
        jobs.job_progress,
        jobs.job_log,
        jobs.job_finished,
    ]
    finished = Collector()
    jobs.job_finished.connect(finished.add)
    with qtbot.waitSignals(signals, order="strict", timeout=10000):
        job = jobs.submit(Kind.REPAIR, "p", _chatty)
    assert finished.items == [job]
    assert job.title == "Repair 'p'" and job.kind is Kind.REPAIR
    assert job.outcome == "succeeded" and job.result == "result"
    assert not jobs.busy("p")


def test_one_job_per_project_at_a_time_projects_in_parallel(qtbot: QtBot, jobs: JobManager) -> None:
    release = threading.Event()
    order: list[str] = []

    def blocking(name: str) -> object:
        def fn(report: Reporter, cancel: CancelToken) -> None:
            order.append(f"start {name}")
            release.wait(10)
            order.append(f"end {name}")

        return fn

    with qtbot.waitSignals([jobs.job_started, jobs.job_started], timeout=10000):
        first = jobs.submit(Kind.CREATE, "a", blocking("a1"))  # type: ignore[arg-type]
        second = jobs.submit(Kind.LAUNCH, "a", blocking("a2"))  # type: ignore[arg-type]
        other = jobs.submit(Kind.LAUNCH, "b", blocking("b"))  # type: ignore[arg-type]
    assert first.running and other.running and not second.running
    assert jobs.kinds("a") == [Kind.CREATE, Kind.LAUNCH]
    assert jobs.installing("a") and not jobs.installing("b")
    finished = Collector()
    jobs.job_finished.connect(finished.add)
    release.set()
    qtbot.waitUntil(lambda: len(finished.items) == 3, timeout=10000)
    assert order.index("end a1") < order.index("start a2")  # the same project: one after another
    assert not jobs.busy("a") and not jobs.installing("a")


def test_cancel_a_queued_job_finishes_it_without_running(qtbot: QtBot, jobs: JobManager) -> None:
    release = threading.Event()
    ran: list[str] = []

    def first(report: Reporter, cancel: CancelToken) -> None:
        release.wait(10)

    def second(report: Reporter, cancel: CancelToken) -> None:
        ran.append("second")

    with qtbot.waitSignal(jobs.job_started, timeout=10000):
        jobs.submit(Kind.STOP, "q", first)
    queued = jobs.submit(Kind.DELETE, "q", second)
    with qtbot.waitSignal(jobs.job_finished, timeout=10000) as blocker:
        jobs.cancel(queued)
    assert blocker.args == [queued] and queued.outcome == "cancelled"
    with qtbot.waitSignal(jobs.job_finished, timeout=10000):
        release.set()
    assert ran == []


def test_a_cancelled_running_job_says_cancelled(qtbot: QtBot, jobs: JobManager) -> None:
    def waits(report: Reporter, cancel: CancelToken) -> None:
        while not cancel.wait(0.01):
            pass
        raise Cancelled()

    with qtbot.waitSignal(jobs.job_started, timeout=10000):
        job = jobs.submit(Kind.VERIFY, "v", waits)
    with qtbot.waitSignal(jobs.job_finished, timeout=10000):
        jobs.cancel(job)
    assert job.outcome == "cancelled" and job.error is None


def test_run_monitor_reports_states_and_new_log_lines(qtbot: QtBot, data_dir: Path) -> None:
    """A real project folder: the monitor reports its state, then a state change (the install
    finished), and lines appended to its ComfyUI log, all from its own thread."""
    ctx = build_core_context(data_dir)
    store = ProjectStore(ctx.paths)
    store.create(Project(id="watched", install=InstallState(status="new")))
    monitor = RunMonitor(ctx, interval=0.1, log_interval=0.05)
    statuses = Collector()
    monitor.status_changed.connect(statuses.add)
    logs = LineCollector()
    monitor.log_lines.connect(logs.add)
    seen: list[Status] = statuses.items  # type: ignore[assignment]
    lines = logs.lines
    monitor.start()
    try:
        qtbot.waitUntil(lambda: any(s.state == "not-installed" for s in seen), timeout=10000)
        project = store.load("watched")
        project.install.status = "ready"
        store.save(project)
        monitor.poke()
        qtbot.waitUntil(lambda: seen[-1].state == "stopped", timeout=10000)
        assert monitor.snapshot()["watched"].state == "stopped"
        log_file = store.dirs("watched").comfyui_log
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("a", encoding="utf-8") as fh:
            fh.write("To see the GUI go to: http://127.0.0.1:4001\n")
        qtbot.waitUntil(lambda: "To see the GUI go to: http://127.0.0.1:4001" in lines,
                        timeout=10000)  # fmt: skip
    finally:
        monitor.stop()
    assert [s.state for s in seen] == ["not-installed", "stopped"]
