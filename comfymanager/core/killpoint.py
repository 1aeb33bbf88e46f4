"""TEST-ONLY: make the process SIGKILL itself at a named point, to test crash recovery.

``COMFYMANAGER_TEST_KILL_AT=NAME`` kills the process the first time ``kill_point(NAME)`` is
reached; ``NAME#N`` kills it the N-th time. Unset (always, outside the fault tests) it costs one
string comparison. The points are listed in ``docs/RELIABILITY.md`` ("Damaged states and kills").
"""

from __future__ import annotations

import os
import signal

ENV = "COMFYMANAGER_TEST_KILL_AT"

_target, _, _nth = os.environ.get(ENV, "").partition("#")
_wanted = int(_nth) if _nth.isdigit() else 1
_seen = 0


def kill_point(name: str) -> None:
    """Die here, at once and without clean-up, when the fault tests ask for ``name``."""
    global _seen
    if not _target or name != _target:
        return
    _seen += 1
    if _seen >= _wanted:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
