"""The portable helpers the CI runners rely on: the linux_only marker skips with its reason off
Linux (and only there), venv paths and hard kills per OS."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures import portable


class _Item:
    def __init__(self, marker: Any) -> None:
        self.marker = marker
        self.added: list[Any] = []

    def get_closest_marker(self, name: str) -> Any:
        return self.marker if name == "linux_only" else None

    def add_marker(self, marker: Any) -> None:
        self.added.append(marker)


def test_linux_only_skips_elsewhere_with_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    marked = _Item(pytest.mark.linux_only(reason="reads /proc/stat").mark)
    plain = _Item(None)
    monkeypatch.setattr(portable.sys, "platform", "win32")
    portable.pytest_collection_modifyitems(None, [marked, plain])  # type: ignore[arg-type, list-item]
    assert [m.kwargs["reason"] for m in (x.mark for x in marked.added)] == [
        "Linux only: reads /proc/stat"
    ]
    assert plain.added == []
    again = _Item(pytest.mark.linux_only(reason="x").mark)
    monkeypatch.setattr(portable.sys, "platform", "linux")
    portable.pytest_collection_modifyitems(None, [again])  # type: ignore[arg-type, list-item]
    assert again.added == []


def test_kill_hard_ends_a_process_that_ignores_terminate(tmp_path: Path) -> None:
    code = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)\n"
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        portable.kill_hard(proc)
        assert proc.wait(timeout=10) != 0
        assert portable.was_killed(proc.returncode)
        assert not portable.was_killed(0) and not portable.was_killed(None)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert portable.venv_python(tmp_path).parent.name in ("bin", "Scripts")
