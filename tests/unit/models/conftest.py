from __future__ import annotations

import pytest

from comfymanager.core.models import transfer


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries back off 10 ms instead of seconds (the behaviour is the same)."""
    monkeypatch.setattr(transfer, "BACKOFF", 0.01)
