"""Watches projects from a background thread: state changes and new log lines.

``RunMonitor`` polls every project's status (process identities, a ``/system_stats`` probe) about
once a second and tails each project's ComfyUI log, so the UI thread never waits on a process or
a socket. It sees runs it did not start (command line, an earlier app) the same way: that is the
adoption after a crash.

Signals:

- ``status_changed(Status)``: a project's state, port or pid changed;
- ``log_lines(str project, list[str] lines)``: new lines of its ComfyUI log, batched (at most
  every 100 ms per project) so thousands of lines a second cost the UI a few appends;
- ``health_changed(Health)``: a project's problems changed (``core.health.project_health``,
  derived at each status poll in this thread, the download queue read once per poll; the
  window and the tray show "Needs attention (N)" from it without touching the disk).

The monitor itself stays on the thread that made it (the UI thread) and its signals arrive
there, whatever is connected to them: the polling runs in a ``_Poller`` on the monitor's thread,
whose signals are connected to the monitor's (as for ``core.workers.Worker``: PySide6 calls a
plain callable connected to a signal on the thread the sender lives on).
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QThread, Signal, Slot

from comfymanager.core.context import CoreContext
from comfymanager.core.health import Health, load_queue, project_health
from comfymanager.core.projects import ProjectStore
from comfymanager.core.run.runs import Status, status

if TYPE_CHECKING:
    from comfymanager.core.models.queue import DownloadQueue

log = logging.getLogger(__name__)


class LogTail:
    """Reads what was appended to a file since the last call; follows rotation."""

    def __init__(self, path: os.PathLike[str] | str, from_end: bool = True) -> None:
        self.path = str(path)
        self._pos = -1 if from_end else 0
        self._inode: int | None = None
        self._partial = b""

    def read(self, max_bytes: int = 1 << 20) -> list[str]:
        try:
            st = os.stat(self.path)
        except OSError:
            return []
        if self._inode is not None and (st.st_ino != self._inode or st.st_size < self._pos):
            self._pos = 0  # rotated or truncated: start the new file from the top
            self._partial = b""
        self._inode = st.st_ino
        if self._pos < 0:
            self._pos = max(0, st.st_size - 16384)  # show some context when attaching
        if st.st_size == self._pos:
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self._pos)
            data = fh.read(max_bytes)
            self._pos = fh.tell()
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        return [ln.decode("utf-8", errors="replace").rstrip("\r") for ln in lines]


class _Poller(QObject):
    """Lives on the monitor's thread: runs the polling loop there and emits from it."""

    status_changed = Signal(object)
    log_lines = Signal(str, list)
    health_changed = Signal(object)

    def __init__(self, monitor: RunMonitor) -> None:
        super().__init__()
        self._monitor = weakref.ref(monitor)  # the monitor owns the poller: no cycle

    @Slot()
    def run(self) -> None:
        monitor = self._monitor()
        if monitor is not None:
            monitor._loop(self)


class RunMonitor(QObject):
    """See the module docstring."""

    status_changed = Signal(object)
    log_lines = Signal(str, list)
    health_changed = Signal(object)

    def __init__(self, ctx: CoreContext, interval: float = 1.0, log_interval: float = 0.1) -> None:
        super().__init__()
        self.ctx = ctx
        self.interval = interval
        self.log_interval = log_interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._last: dict[str, Status] = {}
        self._health: dict[str, Health] = {}
        self._tails: dict[str, LogTail] = {}
        self._lock = threading.Lock()
        self._thread = QThread()
        self._thread.setObjectName("run-monitor")
        self._poller = _Poller(self)
        self._poller.moveToThread(self._thread)
        # signal to signal, the monitor as receiver: queued to the monitor's thread, in order
        self._poller.status_changed.connect(self.status_changed)
        self._poller.log_lines.connect(self.log_lines)
        self._poller.health_changed.connect(self.health_changed)
        self._thread.started.connect(self._poller.run)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.quit()
        self._thread.wait(5000)

    def poke(self) -> None:
        """Check now (after a start/stop) instead of at the next tick."""
        self._wake.set()

    def snapshot(self) -> dict[str, Status]:
        with self._lock:
            return dict(self._last)

    def healths(self) -> dict[str, Health]:
        """The last derived health of every project."""
        with self._lock:
            return dict(self._health)

    def _loop(self, out: _Poller) -> None:
        elapsed = self.interval
        while not self._stop.is_set():
            if elapsed >= self.interval or self._wake.is_set():
                self._wake.clear()
                elapsed = 0.0
                try:
                    self._poll_status(out)
                except Exception:  # the monitor must keep going
                    log.exception("status poll failed")
            self._poll_logs(out)
            self._wake.wait(self.log_interval)
            elapsed += self.log_interval

    def _poll_status(self, out: _Poller) -> None:
        store = ProjectStore(self.ctx.paths)
        projects, _ = store.list()
        seen = set()
        queue = load_queue(self.ctx)
        for p in projects:
            seen.add(p.id)
            st = status(self.ctx, p)
            with self._lock:
                changed = self._last.get(p.id) != st
                self._last[p.id] = st
            if p.id not in self._tails:
                self._tails[p.id] = LogTail(store.dirs(p.id).comfyui_log)
            if changed:
                out.status_changed.emit(st)
            self._poll_health(out, p.id, st, queue)
        with self._lock:
            for gone in set(self._last) - seen:
                del self._last[gone]
                self._tails.pop(gone, None)
            for gone in set(self._health) - seen:
                del self._health[gone]

    def _poll_health(
        self, out: _Poller, project: str, st: Status, queue: DownloadQueue | None
    ) -> None:
        try:
            health = project_health(self.ctx, project, status=st, queue=queue)
        except Exception:  # a project's health must not stop the others
            log.exception("health of %s failed", project)
            return
        with self._lock:
            changed = self._health.get(project) != health
            self._health[project] = health
        if changed:
            out.health_changed.emit(health)

    def _poll_logs(self, out: _Poller) -> None:
        for project, tail in list(self._tails.items()):
            lines = tail.read()
            if lines:
                out.log_lines.emit(project, lines)
