"""Structured progress, cancellation and the reporter every core operation takes.

Core operations have the shape ``fn(..., report: Reporter, cancel: CancelToken) -> Result``.
``Reporter`` carries two callbacks (progress and log lines); ``CancelToken`` is checked between
steps and chunks. ``Throttle`` keeps progress at ~10 updates a second and ``RateMeter`` turns
byte counts into speed and ETA over a rolling window.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from comfymanager.core.errors import Cancelled


@dataclass(frozen=True)
class Progress:
    """One progress report. ``total`` is None when unknown (indeterminate bar)."""

    stage: str
    done: int = 0
    total: int | None = None
    unit: str = ""  # "bytes", "steps" or ""
    speed: float | None = None  # units per second
    eta: float | None = None  # seconds
    message: str = ""
    key: str = ""  # which item (a download id, a project id); "" for the job itself

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


def _noop(_: object) -> None:
    return None


@dataclass(frozen=True)
class Reporter:
    """The two channels an operation reports through. Both may be called from any thread."""

    progress: Callable[[Progress], None] = field(default=_noop)
    log: Callable[[str], None] = field(default=_noop)

    def stage(self, stage: str, message: str = "", total: int | None = None) -> None:
        self.progress(Progress(stage=stage, total=total, message=message or stage))
        if message:
            self.log(message)


NULL_REPORTER = Reporter()


class CancelToken:
    """Cooperative cancellation: ``cancel()`` from any thread, ``check()`` inside loops."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if cancelled meanwhile."""
        return self._event.wait(seconds)


class RateMeter:
    """Speed over a rolling window (default 5 s) and the ETA it implies."""

    def __init__(self, window: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window
        self._clock = clock
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, done: int) -> None:
        now = self._clock()
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[0][0] > self._window:
            self._samples.popleft()

    def speed(self) -> float | None:
        if len(self._samples) < 2:
            return None
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        if t1 <= t0:
            return None
        return max(0.0, (d1 - d0) / (t1 - t0))

    def eta(self, total: int | None) -> float | None:
        speed = self.speed()
        if total is None or not speed or not self._samples:
            return None
        return max(0.0, (total - self._samples[-1][1]) / speed)


class Throttle:
    """Passes progress on at most every ``interval`` seconds, but always on a stage change
    and when ``done == total``."""

    def __init__(
        self,
        sink: Callable[[Progress], None],
        interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sink = sink
        self._interval = interval
        self._clock = clock
        self._last_time = float("-inf")
        self._last_stage: tuple[str, str] | None = None

    def __call__(self, p: Progress) -> None:
        now = self._clock()
        stage = (p.key, p.stage)
        final = p.total is not None and p.done >= p.total
        if stage != self._last_stage or final or now - self._last_time >= self._interval:
            self._last_time = now
            self._last_stage = stage
            self._sink(p)


def format_bytes(n: float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"
