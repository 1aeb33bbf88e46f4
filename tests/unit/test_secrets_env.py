"""Tokens from the environment (HF_TOKEN, HUGGING_FACE_HUB_TOKEN, CIVITAI_API_TOKEN): they win
over a stored token, go only to their own host, and are never written anywhere."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from comfymanager.core.context import build_core_context
from comfymanager.core.errors import ComfyManagerError
from comfymanager.core.models.download import DownloadRequest
from comfymanager.core.models.queue import DownloadQueue
from comfymanager.core.secrets import ENV_TOKENS, Secrets
from tests.fixtures.hf_server import HfServer, MemoryKeyring
from tests.fixtures.http_server import Served, make_safetensors
from tests.unit.models.helpers import fetch, sha

MODEL = make_safetensors(256 * 1024, seed=11)
ENV_HF = "hf_EnvTokenFromTheShell0123456789"
STORED_HF = "hf_StoredTokenInTheKeyring98765"
ENV_CIVITAI = "civitai-env-key-0a1b2c3d4e5f"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for names in ENV_TOKENS.values():
        for var in names:
            monkeypatch.delenv(var, raising=False)


def test_env_token_wins_over_the_keyring_and_says_where_it_comes_from(
    memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = Secrets()
    s.set("huggingface", STORED_HF)
    src = s.source("huggingface")
    assert s.get("huggingface") == STORED_HF and src is not None and src.kind == "keyring"
    monkeypatch.setenv("HF_TOKEN", ENV_HF)
    assert s.get("huggingface") == ENV_HF
    src = s.source("huggingface")
    assert src is not None and (src.kind, src.variable) == ("environment", "HF_TOKEN")
    assert src.label == "from the environment (HF_TOKEN)"
    # the stored token is untouched and comes back when the variable goes
    assert memory_keyring.values[("comfymanager", "huggingface")] == STORED_HF
    monkeypatch.delenv("HF_TOKEN")
    assert s.get("huggingface") == STORED_HF
    # the older name works too, and HF_TOKEN wins over it
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", "hf_OlderVariableName000000000")
    assert s.source("huggingface").variable == "HUGGING_FACE_HUB_TOKEN"  # type: ignore[union-attr]
    monkeypatch.setenv("HF_TOKEN", ENV_HF)
    assert s.get("huggingface") == ENV_HF
    assert s.source("civitai") is None


def test_without_a_keyring_the_environment_is_the_way_in(
    no_keyring: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = Secrets()
    assert s.get("civitai") is None
    monkeypatch.setenv("CIVITAI_API_TOKEN", ENV_CIVITAI)
    assert s.get("civitai") == ENV_CIVITAI
    assert s.source("civitai").kind == "environment"  # type: ignore[union-attr]
    s.set("civitai", "civitai-typed-in-session-000")  # a session token does not hide the env's
    assert s.get("civitai") == ENV_CIVITAI
    monkeypatch.delenv("CIVITAI_API_TOKEN")
    assert s.source("civitai").kind == "session"  # type: ignore[union-attr]


def test_env_tokens_go_to_their_host_only_and_are_never_written(
    hf_server: HfServer,
    http_factory,  # type: ignore[no-untyped-def]
    data_dir: Path,
    memory_keyring: MemoryKeyring,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("HF_TOKEN", ENV_HF)
    monkeypatch.setenv("CIVITAI_API_TOKEN", ENV_CIVITAI)
    secrets = Secrets()
    secrets.set("huggingface", STORED_HF)  # the env's token must win at the Hub
    store = data_dir / "models"
    url = hf_server.add("org/gated", "m.safetensors", MODEL, gated_token=ENV_HF)
    result = fetch(url, store, hf=hf_server.endpoint, secrets=secrets)
    assert result.path.read_bytes() == MODEL
    assert [h.headers.get("Authorization") for h in hf_server.cdn.hits] == [None]
    civ = http_factory()
    cdn = http_factory()
    civ.add("/api/download/models/9", Served(redirect=cdn.add("/signed/m", MODEL)))
    civ.add(
        "/api/v1/model-versions/9",
        Served(
            json.dumps({"files": [{"primary": True, "hashes": {"SHA256": sha(MODEL)}}]}).encode(),
            content_type="application/json",
        ),
    )
    fetch(
        civ.url("/api/download/models/9"),
        store,
        name="civ.safetensors",
        civitai=civ.base,
        secrets=secrets,
    )
    assert civ.hits and all(
        h.headers.get("Authorization") == f"Bearer {ENV_CIVITAI}" for h in civ.hits
    )
    assert [h.headers.get("Authorization") for h in cdn.hits] == [None]
    # a failure at the token's own host: the error text carries no token
    civ.add("/api/download/models/10", Served(status=401))  # refused at the token's host
    with pytest.raises(ComfyManagerError) as err:
        fetch(civ.url("/api/download/models/10"), store, name="x.safetensors", civitai=civ.base,
              secrets=secrets)  # fmt: skip
    # the settings and the download queue are saved; neither holds a token
    ctx = build_core_context(data_dir)
    ctx.save_settings()
    queue = DownloadQueue(ctx.paths.downloads_file)
    queue.add(DownloadRequest(urls=(url,), folder="loras", name="a.safetensors"), "p1")
    queue.save()
    assert ctx.paths.settings_file.exists() and ctx.paths.downloads_file.exists()
    for token in (ENV_HF, ENV_CIVITAI):
        assert token not in str(err.value) and token not in err.value.message
        assert token not in caplog.text
        for path in [*data_dir.rglob("*"), *Path(os.environ["HF_XET_CACHE"]).rglob("*")]:
            if path.is_file():
                assert token.encode() not in path.read_bytes(), path
    assert ("comfymanager", "civitai") not in memory_keyring.values  # nor into the keyring
