"""Shared test set-up: offscreen Qt, an isolated data root per test, strict logging.

Nothing here fakes the code under test: fixtures build real folders, git repos, servers and
environments (see ``tests/fixtures/``).
"""

from __future__ import annotations

import gc
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Tests must never reach real services: any endpoint a test forgets to point at a local fixture
# fails fast on this unroutable address instead of hanging or touching the network.
for _var in (
    "COMFYMANAGER_REGISTRY",
    "COMFYMANAGER_NODE_DB",
    "COMFYMANAGER_CIVITAI",
    "HF_ENDPOINT",
    "COMFYMANAGER_COMFYUI_SOURCE",
):
    os.environ[_var] = "http://127.0.0.1:9/unset-in-tests"
# a token in the developer's environment wins over stored ones: tests give their own or none
for _var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "CIVITAI_API_TOKEN", "CIVITAI_TOKEN"):
    os.environ.pop(_var, None)
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ.pop("VIRTUAL_ENV", None)
# hf_xet (imported by the Hub fixture) writes its logs under HF_XET_CACHE: keep them out of ~
os.environ["HF_XET_CACHE"] = tempfile.mkdtemp(prefix="comfymanager-tests-xet-")
# port claims are per user and machine: the suite claims in a folder of its own, never the user's
os.environ["COMFYMANAGER_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="comfymanager-tests-runtime-")

pytest_plugins = ["tests.fixtures.plugin"]

# Python's cycle collector runs on whichever thread happens to allocate: a Qt object it frees on
# a worker thread is deleted off its own thread and crashes Qt (as in the app, where
# ui/main_thread_gc.py does the same). Automatic collection is off; the main thread collects
# after every test.
gc.disable()


@pytest.fixture(autouse=True)
def _collect_on_the_main_thread() -> Iterator[None]:
    yield
    gc.collect()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data root, also set as COMFYMANAGER_DATA_DIR for code that reads the env."""
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("COMFYMANAGER_DATA_DIR", str(root))
    return root


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "allow_error_log: the test expects ERROR records in the log")


@pytest.fixture(autouse=True)
def _fail_on_error_logs(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    caplog.set_level(logging.INFO)
    yield
    if request.node.get_closest_marker("allow_error_log"):
        return
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    if errors:
        pytest.fail("unexpected ERROR log records:\n" + "\n".join(r.getMessage() for r in errors))
