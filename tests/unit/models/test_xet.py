"""Hugging Face files stored in Xet: streamed by hf_xet into the same resumable, verified .part.

The Xet store is hf_xet's own local (``local://``) client, filled by hf_xet's uploader; the Hub
side (metadata headers, token route) is the local Hub fixture.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from comfymanager.core.errors import Cancelled
from comfymanager.core.models import transfer
from comfymanager.core.models.part import DownloadFailed
from comfymanager.core.progress import CancelToken, Progress
from comfymanager.core.secrets import Secrets
from tests.fixtures.hf_server import HfServer, MemoryKeyring
from tests.fixtures.http_server import make_safetensors
from tests.unit.models.helpers import fetch, sha

MODEL = make_safetensors(6 * 1024 * 1024, seed=11)
HF_TOKEN = "hf_XetTestTokenAbcdefghijkl42"


def _cancel_after(n: int, cancel: CancelToken) -> list[Progress]:
    """A progress sink that cancels the download once ``n`` bytes are reported."""

    class Sink(list[Progress]):
        def append(self, p: Progress) -> None:
            if p.stage == "downloading" and (p.done or 0) >= n:
                cancel.cancel()

    return Sink()


def test_xet_file_is_streamed_by_hf_xet_and_verified(
    hf_server: HfServer, tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    Secrets().set("huggingface", HF_TOKEN)
    url = hf_server.add("org/xet-model", "model.safetensors", MODEL, xet=True)
    progress: list[Progress] = []
    result = fetch(url, tmp_path, hf=hf_server.endpoint, secrets=Secrets(), progress=progress)
    assert result.path.read_bytes() == MODEL
    assert result.sha256 == sha(MODEL)  # the LFS sha256, checked while streaming
    assert result.bytes_fetched == len(MODEL)
    assert hf_server.cdn.bytes_sent() == 0  # no byte came over plain HTTP
    # the Hub token went to the Hub's token route only, for a short-lived Xet token
    [asked] = hf_server.xet_token_requests
    assert asked["Authorization"] == f"Bearer {HF_TOKEN}"
    assert any(p.stage == "downloading" and p.total == len(MODEL) for p in progress)
    assert not list((tmp_path / "checkpoints").glob("*.part*"))


def test_a_part_from_http_is_continued_by_xet_from_the_exact_byte(
    hf_server: HfServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = hf_server.add("org/xet-model", "model.safetensors", MODEL, xet=True)
    cancel = CancelToken()
    sink = _cancel_after(2 * 1024 * 1024, cancel)
    monkeypatch.setattr(transfer, "PROGRESS_INTERVAL", 0.0)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")  # the first run goes over HTTP
    with pytest.raises(Cancelled):
        fetch(url, tmp_path, hf=hf_server.endpoint, cancel=cancel, progress=sink)
    monkeypatch.delenv("HF_HUB_DISABLE_XET")
    part = tmp_path / "checkpoints" / "model.safetensors.part"
    kept = part.stat().st_size
    assert 0 < kept < len(MODEL)
    over_http = hf_server.cdn.bytes_sent()

    result = fetch(url, tmp_path, hf=hf_server.endpoint)
    assert result.resumed_from == kept
    assert result.bytes_fetched == len(MODEL) - kept  # Xet sent exactly the missing bytes
    assert hf_server.cdn.bytes_sent() == over_http
    assert result.path.read_bytes() == MODEL and not part.exists()


def test_when_xet_fails_the_download_continues_over_http(
    hf_server: HfServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = hf_server.add("org/xet-model", "model.safetensors", MODEL, xet=True)
    empty = tmp_path / "empty-cas"
    empty.mkdir()
    hf_server.cas_url = f"local://{empty}"  # the token route sends hf_xet to a store without it
    with caplog.at_level(logging.INFO, logger="comfymanager"):
        result = fetch(url, tmp_path / "store", hf=hf_server.endpoint)
    assert result.path.read_bytes() == MODEL and result.sha256 == sha(MODEL)
    assert hf_server.cdn.bytes_sent() == len(MODEL)
    assert "Xet transfer stopped" in caplog.text


def test_hf_hub_disable_xet_is_honoured(
    hf_server: HfServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    url = hf_server.add("org/xet-model", "model.safetensors", MODEL, xet=True)
    result = fetch(url, tmp_path, hf=hf_server.endpoint)
    assert result.path.read_bytes() == MODEL
    assert hf_server.xet_token_requests == []
    assert hf_server.cdn.bytes_sent() == len(MODEL)


def test_xet_bytes_that_do_not_match_the_sha256_are_not_placed(
    hf_server: HfServer, tmp_path: Path
) -> None:
    """The Xet store serves another file under this hash: the streaming hash catches it."""
    other = make_safetensors(len(MODEL) - 200, seed=12)
    url = hf_server.add("org/xet-model", "model.safetensors", MODEL, xet=True)
    repo = hf_server.repos["org/xet-model"]
    wrong = hf_server._xet_upload("other.safetensors", other + b"\0" * 200)
    repo.xet["model.safetensors"] = wrong
    with pytest.raises(DownloadFailed, match="damaged or not the expected file"):
        fetch(url, tmp_path, hf=hf_server.endpoint)
    assert not (tmp_path / "checkpoints" / "model.safetensors").exists()


def test_cancel_during_a_xet_stream_keeps_the_part_for_the_next_run(
    hf_server: HfServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = hf_server.add("org/xet-model", "model.safetensors", MODEL, xet=True)
    cancel = CancelToken()
    sink = _cancel_after(1024 * 1024, cancel)
    monkeypatch.setattr(transfer, "PROGRESS_INTERVAL", 0.0)
    with pytest.raises(Cancelled):
        fetch(url, tmp_path, hf=hf_server.endpoint, cancel=cancel, progress=sink)
    part = tmp_path / "checkpoints" / "model.safetensors.part"
    kept = part.stat().st_size
    assert 1024 * 1024 <= kept < len(MODEL)
    assert f'"bytes_done": {kept}' in part.with_name(part.name + ".json").read_text()
    result = fetch(url, tmp_path, hf=hf_server.endpoint)
    assert (result.resumed_from, result.bytes_fetched) == (kept, len(MODEL) - kept)
    assert result.path.read_bytes() == MODEL
    assert hf_server.cdn.bytes_sent() == 0
