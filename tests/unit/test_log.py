"""The app log: one rotating file, a ring buffer, Qt messages routed in, secrets never written."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import qWarning

from comfymanager.core import log as applog
from comfymanager.core.log import (
    LOG_FILE_NAME,
    LogLine,
    redact,
    register_secret,
    setup_logging,
    shutdown_logging,
    unregister_secret,
)

HF_TOKEN = "hf_" + "Ab3dEf6hIj9kLm2nOp5qRs8t"


@pytest.fixture
def log_dir(data_dir: Path) -> Iterator[Path]:
    folder = data_dir / "logs"
    yield folder
    shutdown_logging()


def _ours() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if getattr(h, "_comfymanager", False)]


def _file_text(setup: applog.LogSetup) -> str:
    setup.file_handler.flush()
    return setup.log_file.read_text(encoding="utf-8")


def test_lines_go_to_the_file_and_the_ring(log_dir: Path) -> None:
    setup = setup_logging(log_dir)
    logging.getLogger("comfymanager.test").info("project %s built in %d s", "sdxl", 42)
    assert setup.log_file == log_dir / LOG_FILE_NAME
    assert "project sdxl built in 42 s" in _file_text(setup)
    assert setup.ring.lines()[-1].endswith("comfymanager.test: project sdxl built in 42 s")
    assert "INFO" in setup.ring.lines()[-1]


def test_registered_secret_never_reaches_file_or_ring(log_dir: Path) -> None:
    setup = setup_logging(log_dir)
    secret = "civitai-5ecret-value-77"
    register_secret(secret)
    try:
        logger = logging.getLogger("comfymanager.secrets")
        logger.info("download with key %s", secret)
        logger.warning("header was %r", {"Authorization": f"Bearer {secret}"})
        try:
            raise RuntimeError(f"server rejected {secret}")
        except RuntimeError:
            logger.warning("request failed", exc_info=True)  # the traceback carries it too
    finally:
        unregister_secret(secret)
    text = _file_text(setup)
    ring = "\n".join(setup.ring.lines())
    assert secret not in text
    assert secret not in ring
    assert "download with key ***" in text
    assert "RuntimeError: server rejected ***" in text
    assert "request failed" in ring


@pytest.mark.allow_error_log
def test_error_records_are_kept(log_dir: Path) -> None:
    setup = setup_logging(log_dir)
    logging.getLogger("x").error("boom")
    assert "ERROR" in setup.ring.lines()[-1]


@pytest.mark.parametrize(
    ("raw", "leaked"),
    [
        (f"token is {HF_TOKEN} ok", HF_TOKEN),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOiJIUzI1NiJ9"),
        ("GET https://civitai.com/api/download/models/1?token=abcdef123456&type=Model", "abcdef"),
        ("https://user:hunter2pass@mirror.example/x", "hunter2pass"),
        ("https://b.s3.amazonaws.com/m?X-Amz-Credential=AKIA123%2Fx&X-Amz-Signature=f00d", "f00d"),
        ("https://b.s3.amazonaws.com/m?X-Amz-Credential=AKIA1234567&x=1", "AKIA1234567"),
        ("https://cdn.example/m?Expires=1&Signature=AbCdEf&Key-Pair-Id=K2ABC", "AbCdEf"),
        ("https://cdn.example/m?Expires=1&Signature=AbCdEf&Key-Pair-Id=K2ABC", "K2ABC"),
        ("https://blob.core.windows.net/m?sv=2020&sig=s1gnatur3%3D", "s1gnatur3"),
        ("https://x.example/m?api_key=k3y-value&a=b", "k3y-value"),
        ("https://x.example/m?access_token=acc355", "acc355"),
        ("https://ghp_" + "a1b2c3d4e5f6g7h8i9j0k1l2@github.com/o/r.git", "a1b2c3d4e5f6"),
        ("https://oauth2tokenvalue12@gitlab.example/o/r.git", "oauth2tokenvalue12"),
        ('{"token": "s3cr3t-value", "name": "x"}', "s3cr3t-value"),
        ("HF_TOKEN=hf_shortbutsecret", "hf_shortbutsecret"),
    ],
)
def test_token_patterns_are_masked(raw: str, leaked: str) -> None:
    masked = redact(raw)
    assert leaked not in masked
    assert "***" in masked


def test_ordinary_text_is_untouched() -> None:
    text = "Downloaded token_count=5 files; tokenizer ready; key points: none"
    assert redact(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "ssh://git@github.com/owner/repo.git",
        "https://huggingface.co/org/m/resolve/main/x.safetensors?download=true",
        "The token: missing, add one in Settings",
        "Keys: checkpoints, loras; the key point is size",
        "https://example.com/a/b?page=2&sort=name",
    ],
)
def test_urls_and_prose_without_secrets_are_untouched(text: str) -> None:
    assert redact(text) == text


def test_token_environment_variables_are_masked_wherever_they_appear(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_TOKEN", "plain-Env-Value-123")
    monkeypatch.setenv("CIVITAI_API_TOKEN", "civ-Env-Value-456")
    masked = redact("sent plain-Env-Value-123 then civ-Env-Value-456")
    assert masked == "sent *** then ***"


def test_calling_twice_does_not_double_handlers(log_dir: Path) -> None:
    first = setup_logging(log_dir)
    second = setup_logging(log_dir, level=logging.DEBUG)
    assert len(_ours()) == 2
    assert second.ring is first.ring
    logging.getLogger("comfymanager.twice").info("once")
    assert _file_text(second).count("once") == 1
    setup_logging(log_dir, console=True)
    setup_logging(log_dir, console=True)
    assert len(_ours()) == 3
    setup_logging(log_dir)
    assert len(_ours()) == 2


def test_new_folder_replaces_handlers(log_dir: Path, tmp_path: Path) -> None:
    setup_logging(log_dir)
    other = setup_logging(tmp_path / "elsewhere")
    assert len(_ours()) == 2
    logging.getLogger("comfymanager.move").info("moved")
    assert "moved" in _file_text(other)
    assert "moved" not in (log_dir / LOG_FILE_NAME).read_text(encoding="utf-8")


def test_shutdown_removes_everything(log_dir: Path) -> None:
    setup_logging(log_dir, console=True)
    shutdown_logging()
    assert _ours() == []
    assert applog.current_setup() is None


def test_subscribers_follow_new_lines_from_any_thread(log_dir: Path) -> None:
    setup = setup_logging(log_dir)
    seen: list[LogLine] = []
    unsubscribe = setup.ring.subscribe(seen.append)
    register_secret("sub-secret-9876")
    try:
        worker = threading.Thread(
            target=lambda: logging.getLogger("comfymanager.worker").warning("using sub-secret-9876")
        )
        worker.start()
        worker.join()
    finally:
        unregister_secret("sub-secret-9876")
    unsubscribe()
    logging.getLogger("comfymanager.worker").info("after unsubscribe")
    assert [line.level for line in seen] == [logging.WARNING]
    assert seen[0].logger == "comfymanager.worker"
    assert seen[0].text.endswith("using ***")


def test_a_failing_subscriber_does_not_break_logging(log_dir: Path) -> None:
    setup = setup_logging(log_dir)

    def broken(_: LogLine) -> None:
        raise ValueError("subscriber bug")

    setup.ring.subscribe(broken)
    logging.getLogger("comfymanager.x").info("still logged")
    assert "still logged" in _file_text(setup)


def test_ring_is_bounded() -> None:
    ring = applog.RingBuffer(capacity=3)
    ring.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("comfymanager.ringtest")
    logger.addHandler(ring)
    try:
        for i in range(10):
            logger.warning("line %d", i)
    finally:
        logger.removeHandler(ring)
    assert ring.lines() == ["line 7", "line 8", "line 9"]
    assert ring.lines(last=1) == ["line 9"]


def test_file_rotates(log_dir: Path) -> None:
    setup = setup_logging(log_dir)
    setup.file_handler.maxBytes = 2000
    for i in range(100):
        logging.getLogger("comfymanager.rotate").info("filler line number %03d", i)
    assert (log_dir / f"{LOG_FILE_NAME}.1").exists()
    assert setup.log_file.stat().st_size <= 2000


def test_qt_messages_are_routed_into_logging(log_dir: Path) -> None:
    setup = setup_logging(log_dir)
    qWarning(f"qt says {HF_TOKEN}")
    last = setup.ring.lines()[-1]
    assert "WARNING" in last
    assert " qt" in last
    assert "qt says hf_***" in last
    assert HF_TOKEN not in _file_text(setup)
