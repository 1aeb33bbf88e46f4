"""The log pane under a flood: a ComfyUI printing 5000 lines a second must not stall the UI
thread, and the pane keeps a bounded buffer."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from pytestqt.qtbot import QtBot

from comfymanager.ui.app_context import shutdown
from comfymanager.ui.panes.log import BUFFER_LINES, MAX_BLOCKS, LogPane
from tests.fixtures.comfyui import create_installed
from tests.fixtures.window import Harness, make_window, state

STALL_LIMIT_MS = 100  # the target is 50 ms; the 2-core CI is shared with other test runs
# On a shared VM the host may take the CPUs away ("steal" in /proc/stat): up to three quarters
# of them for seconds at a time was measured here, and every timer is late then, whatever the app
# does. So the stall is measured in 5 s windows: one window under the limit passes (a stall the
# pane causes comes back with every batch of lines, so it would show in every window); a window
# over the limit fails unless the host stole more than STEAL_LIMIT of the CPU time in it, in
# which case it is measured again, at most WINDOWS times.
STEAL_LIMIT = 0.10
WINDOWS = 6


def stolen_seconds() -> float:
    """CPU seconds the hypervisor took from this machine so far (0 where unknown)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class StallProbe:
    """A 5 ms timer; each gap between two ticks minus 5 ms is a stall."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)
        self.last = 0.0
        self.stalls: list[float] = []
        self.ticks = 0

    @property
    def worst(self) -> float:
        return max(self.stalls, default=0.0)

    def start(self) -> None:
        self.last = time.perf_counter()
        self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.stalls.append(now - self.last - 0.005)
        self.last = now
        self.ticks += 1


@pytest.mark.slow
def test_spam_does_not_stall_the_ui_and_stays_bounded(
    qtbot: QtBot, harness: Harness, project_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    create_installed(project_data_dir, "spammy")
    qtbot.waitUntil(lambda: state(h, "spammy") == "stopped", timeout=10000)
    h.win.select("spammy")
    monkeypatch.setenv("FAKE_COMFYUI_MODE", "spam")
    monkeypatch.setenv("FAKE_COMFYUI_SPAM", "5000")
    h.app.intents.start.emit("spammy")
    qtbot.waitUntil(lambda: state(h, "spammy") == "running", timeout=60000)
    qtbot.waitUntil(lambda: "spam line" in h.win.log_pane.view.toPlainText(), timeout=20000)
    lines_before = len(h.win.log_pane.lines("spammy"))
    seen = []
    for _ in range(WINDOWS):
        probe = StallProbe()
        stolen, start = stolen_seconds(), time.monotonic()
        probe.start()
        qtbot.waitUntil(lambda t0=start: time.monotonic() - t0 > 5.0, timeout=15000)
        probe.timer.stop()
        share = (stolen_seconds() - stolen) / ((time.monotonic() - start) * (os.cpu_count() or 1))
        seen.append(f"{probe.worst * 1000:.0f} ms with {share:.0%} stolen")
        if probe.worst * 1000 < STALL_LIMIT_MS or share <= STEAL_LIMIT:
            break
    else:
        pytest.fail(f"the host took the CPUs away in every window ({'; '.join(seen)})")
    worst_ms = probe.worst * 1000
    print(
        f"\nlog pane under 5000 lines/s: longest UI stall {worst_ms:.1f} ms over "
        f"{probe.ticks} ticks; view blocks {h.win.log_pane.view.blockCount()}; "
        f"windows: {'; '.join(seen)}"
    )
    assert worst_ms < STALL_LIMIT_MS
    assert probe.ticks > 300
    assert h.win.log_pane.view.blockCount() <= MAX_BLOCKS
    assert len(h.win.log_pane.lines("spammy")) <= BUFFER_LINES
    assert lines_before > 0
    text = h.win.log_pane.view.toPlainText()
    assert "spam line" in text.splitlines()[-1]


def test_switching_projects_filter_and_scrolled_up_view(qtbot: QtBot, data_dir: Path) -> None:
    h = make_window(qtbot, data_dir)
    try:
        pane = LogPane(h.app)
        qtbot.addWidget(pane)
        pane.show()
        pane.set_project("a")
        pane.append("a", [f"a line {i}" for i in range(3000)])
        pane.append("b", ["b only"])
        qtbot.waitUntil(lambda: pane.view.blockCount() >= 3000, timeout=5000)
        assert "b only" not in pane.view.toPlainText()
        pane.set_project("b")
        assert pane.view.toPlainText() == "b only"
        pane.set_project("a")
        assert pane.view.toPlainText().endswith("a line 2999")
        # scrolled up: new lines do not move the view
        bar = pane.view.verticalScrollBar()
        bar.setValue(10)
        pane.append("a", ["late line"])
        qtbot.waitUntil(lambda: pane.view.toPlainText().endswith("late line"), timeout=5000)
        assert bar.value() == 10
        pane.append("a", [f"more {i}" for i in range(BUFFER_LINES + 100)])
        assert len(pane.lines("a")) == BUFFER_LINES
        qtbot.waitUntil(
            lambda: pane.view.toPlainText().endswith(f"more {BUFFER_LINES + 99}"), timeout=5000
        )
        assert pane.view.blockCount() <= MAX_BLOCKS
        pane.search.setText("MORE 12")  # case-insensitive
        shown = pane.view.toPlainText().splitlines()
        assert shown and all(s.startswith("more 12") for s in shown)
        pane.search.setText("more 5099")
        assert pane.view.toPlainText() == "more 5099"
        pane.search.clear()
        pane.open_file.click()
        assert h.opened.paths and h.opened.paths[-1].name in ("logs", "comfyui.log", "install.log")
    finally:
        h.win.quit_done = True
        shutdown(h.app)
