"""Hugging Face through huggingface_hub against a local hub, CivitAI, keyring tokens, and
proof that a token never lands in a file or a log line."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from comfymanager.core.errors import NotFound
from comfymanager.core.models.hosts import Endpoints, classify
from comfymanager.core.models.index import ModelIndex
from comfymanager.core.models.part import DownloadFailed
from comfymanager.core.secrets import Secrets, redact
from tests.fixtures.hf_server import HfServer, MemoryKeyring
from tests.fixtures.http_server import FileServer, make_safetensors
from tests.unit.models.helpers import fetch, sha

MODEL = make_safetensors(2 * 1024 * 1024, seed=3)
HF_TOKEN = "hf_TestTokenAbcdefghijklmnop123"
CIVITAI_KEY = "civitai-key-9f8e7d6c5b4a"


def test_hf_links_are_parsed_and_rewritten_to_the_mirror() -> None:
    ep = Endpoints(hf_endpoint="https://hf-mirror.example", civitai_url="https://civ.example")
    src = classify(
        "https://huggingface.co/Comfy-Org/flux/blob/main/split/a%20b.safetensors?download=true", ep
    )
    assert src.kind == "hf" and src.hf is not None
    assert (src.hf.repo_id, src.hf.revision, src.hf.filename) == (
        "Comfy-Org/flux",
        "main",
        "split/a b.safetensors",
    )
    assert (
        src.url == "https://hf-mirror.example/Comfy-Org/flux/resolve/main/split/a%20b.safetensors"
    )
    civ = classify("https://civitai.com/api/download/models/12345?type=Model", ep)
    assert civ.kind == "civitai" and civ.civitai_version == "12345"
    assert civ.url == "https://civ.example/api/download/models/12345?type=Model"
    assert classify("https://example.com/x.safetensors", ep).kind == "http"


def test_hf_download_through_huggingface_hub_metadata_and_verified(
    hf_server: HfServer, tmp_path: Path
) -> None:
    url = hf_server.add("Comfy-Org/demo", "split/model.safetensors", MODEL)
    result = fetch(
        url.replace("/resolve/", "/blob/") + "?download=true",
        tmp_path,
        hf=hf_server.endpoint,
        index=ModelIndex.load(tmp_path),
    )
    assert result.path.read_bytes() == MODEL and result.sha256 == sha(MODEL)
    heads = [h for h in hf_server.hub.hits if h.method == "HEAD"]
    assert heads and heads[0].path == "/Comfy-Org/demo/resolve/main/split/model.safetensors"
    # the bytes are fetched pinned to the commit the metadata named, from the CDN
    assert hf_server.hub.gets()[0].path.startswith(f"/Comfy-Org/demo/resolve/{'0123456789abcdef'}")
    assert hf_server.cdn.bytes_sent() == len(MODEL)


def test_hf_huggingface_co_link_goes_to_the_configured_endpoint(
    hf_server: HfServer, tmp_path: Path
) -> None:
    hf_server.add("org/m", "m.safetensors", MODEL)
    result = fetch(
        "https://huggingface.co/org/m/resolve/main/m.safetensors", tmp_path, hf=hf_server.endpoint
    )
    assert result.path.read_bytes() == MODEL


def test_gated_repo_says_accept_the_licence_and_add_a_token(
    hf_server: HfServer, tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    url = hf_server.add("bfl/gated", "m.safetensors", MODEL, gated_token=HF_TOKEN)
    with pytest.raises(DownloadFailed) as err:
        fetch(url, tmp_path, hf=hf_server.endpoint, secrets=Secrets())
    assert "gated or private Hugging Face repository (bfl/gated)" in err.value.message
    assert err.value.fix == (
        f"Accept the licence on {hf_server.endpoint}/bfl/gated and add a "
        "Hugging Face token in Settings."
    )


def test_hf_missing_file_and_repo(hf_server: HfServer, tmp_path: Path) -> None:
    hf_server.add("org/m", "m.safetensors", MODEL)
    with pytest.raises(NotFound, match=r"nope.safetensors: not found \(404\)"):
        fetch(
            f"{hf_server.endpoint}/org/m/resolve/main/nope.safetensors",
            tmp_path,
            hf=hf_server.endpoint,
        )
    with pytest.raises(NotFound, match="repository org/none was not found"):
        fetch(
            f"{hf_server.endpoint}/org/none/resolve/main/x.safetensors",
            tmp_path,
            hf=hf_server.endpoint,
        )


def test_hf_expected_hash_conflict_is_caught_before_downloading(
    hf_server: HfServer, tmp_path: Path
) -> None:
    url = hf_server.add("org/m", "m.safetensors", MODEL)
    with pytest.raises(DownloadFailed, match="was expected"):
        fetch(url, tmp_path, hf=hf_server.endpoint, sha256="00" * 32)
    assert hf_server.cdn.gets() == []


def test_civitai_needs_a_key_message(http_files: FileServer, tmp_path: Path) -> None:
    from tests.fixtures.http_server import Served

    http_files.add("/api/download/models/42", Served(status=401))
    with pytest.raises(DownloadFailed, match="CivitAI refused the download \\(401\\)") as err:
        fetch(http_files.url("/api/download/models/42"), tmp_path, civitai=http_files.base)
    assert "API key" in (err.value.fix or "")


def test_keyring_round_trip(memory_keyring: MemoryKeyring) -> None:
    s = Secrets()
    assert s.usable() and "MemoryKeyring" in s.backend_name()
    s.set("huggingface", HF_TOKEN)
    assert memory_keyring.values[("comfymanager", "huggingface")] == HF_TOKEN
    assert Secrets().get("huggingface") == HF_TOKEN
    s.delete("huggingface")
    assert s.get("huggingface") is None
    s.delete("huggingface")  # deleting twice is fine


def test_no_keyring_keeps_tokens_for_the_session_only(no_keyring: None, data_dir: Path) -> None:
    s = Secrets()
    assert not s.usable()
    assert "until comfymanager quits" in s.describe()
    s.set("civitai", CIVITAI_KEY)
    assert s.get("civitai") == CIVITAI_KEY
    assert Secrets().get("civitai") is None  # nothing persisted anywhere
    assert not any(
        CIVITAI_KEY.encode() in p.read_bytes() for p in data_dir.rglob("*") if p.is_file()
    )


def test_redact_masks_known_tokens_and_hf_looking_strings(memory_keyring: MemoryKeyring) -> None:
    Secrets().set("civitai", CIVITAI_KEY)
    text = f"key={CIVITAI_KEY} hf=hf_abcdefghijklmnopqrstu Authorization: Bearer xyz123"
    out = redact(text)
    assert CIVITAI_KEY not in out and "hf_abcdefghijklmnopqrstu" not in out
    assert "xyz123" not in out and "***" in out


def test_tokens_never_reach_files_logs_or_the_cdn(
    hf_server: HfServer,
    http_factory,
    data_dir: Path,  # type: ignore[no-untyped-def]
    memory_keyring: MemoryKeyring,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from comfymanager.core.models.queue import DownloadQueue
    from tests.fixtures.http_server import Served

    caplog.set_level(logging.DEBUG)
    secrets = Secrets()
    secrets.set("huggingface", HF_TOKEN)
    secrets.set("civitai", CIVITAI_KEY)
    store = data_dir / "models"
    url = hf_server.add("bfl/gated", "m.safetensors", MODEL, gated_token=HF_TOKEN)
    result = fetch(url, store, hf=hf_server.endpoint, secrets=secrets, index=ModelIndex.load(store))
    assert result.path.read_bytes() == MODEL
    assert [h.headers.get("Authorization") for h in hf_server.cdn.hits] == [None]
    # a gated file stored in Xet: the Hub token buys a Xet token at the Hub, and goes no further
    xet_url = hf_server.add("bfl/gated", "x.safetensors", MODEL, gated_token=HF_TOKEN, xet=True)
    xet_result = fetch(
        xet_url, store, name="gated-xet.safetensors", hf=hf_server.endpoint, secrets=secrets
    )
    assert xet_result.path.read_bytes() == MODEL
    assert [r.get("Authorization") for r in hf_server.xet_token_requests] == [f"Bearer {HF_TOKEN}"]
    civ = http_factory()
    cdn = http_factory()
    civ.add(
        "/api/v1/model-versions/7",
        Served(
            json.dumps(
                {
                    "files": [
                        {"primary": True, "sizeKB": 2048, "hashes": {"SHA256": sha(MODEL).upper()}}
                    ]
                }
            ).encode(),
            content_type="application/json",
        ),
    )
    civ.add("/api/download/models/7", Served(redirect=cdn.add("/signed/m", MODEL)))
    result2 = fetch(
        civ.url("/api/download/models/7"),
        store,
        name="civ.safetensors",
        civitai=civ.base,
        secrets=secrets,
        index=ModelIndex.load(store),
    )
    assert result2.sha256 == sha(MODEL)
    assert all(h.headers.get("Authorization") == f"Bearer {CIVITAI_KEY}" for h in civ.hits)
    assert [h.headers.get("Authorization") for h in cdn.hits] == [None]
    # a failed download's error text and sidecar carry no token either
    civ.add("/api/download/models/8", Served(MODEL, fail_after=10, fail_times=99))
    with pytest.raises(DownloadFailed) as err:
        fetch(
            civ.url("/api/download/models/8"),
            store,
            name="x.safetensors",
            civitai=civ.base,
            secrets=secrets,
        )
    queue = DownloadQueue(data_dir / "downloads.json")
    from comfymanager.core.models.download import DownloadRequest

    queue.add(DownloadRequest(urls=(url,), folder="loras", name="a.safetensors"), "p1")
    queue.save()
    for token in (HF_TOKEN, CIVITAI_KEY):
        assert token not in str(err.value)
        assert token not in caplog.text
        for path in [*data_dir.rglob("*"), *Path(os.environ["HF_XET_CACHE"]).rglob("*")]:
            if path.is_file():
                assert token.encode() not in path.read_bytes(), path
