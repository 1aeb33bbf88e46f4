"""Online suggestions for models of unknown source: Hugging Face and CivitAI searches against
local fixture servers, and the plan-level look-up that never picks a file unless its name and
sha256 both match."""

from __future__ import annotations

import hashlib
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from comfymanager.core.context import CoreContext, build_core_context
from comfymanager.core.importer.plan import plan_import
from comfymanager.core.importer.search import lookup_model_sources
from comfymanager.core.models.search import (
    SearchFailed,
    search_civitai,
    search_huggingface,
)
from comfymanager.core.progress import format_bytes
from comfymanager.core.secrets import Secrets
from comfymanager.core.workflow.nodedb import load_node_db, refresh_node_db
from tests.fixtures.civitai_server import API_KEY, CivitaiServer, header
from tests.fixtures.hf_server import HfServer, MemoryKeyring
from tests.fixtures.http_server import make_safetensors
from tests.fixtures.node_packs import NodePacks, node, ui_workflow, write_workflow

HF_TOKEN = "hf_testtokenabcdefghijklmnopqrstuvwxyz"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def ctx(data_dir: Path, hf_server: HfServer, civitai_server: CivitaiServer) -> CoreContext:
    c = build_core_context(data_dir)
    c.settings.hf_endpoint = hf_server.endpoint
    c.settings.civitai_url = civitai_server.base
    return c


@pytest.fixture
def secrets(memory_keyring: MemoryKeyring) -> Secrets:
    s = Secrets()
    s.set("huggingface", HF_TOKEN)
    s.set("civitai", API_KEY)
    return s


def lora(node_id: int, name: str, sha256: str | None = None) -> dict[str, Any]:
    entry = {"name": name, "directory": "loras", "hash": sha256, "hash_type": "sha256"}
    props = {"models": [entry]} if sha256 else {}
    return node(node_id, "LoraLoader", [name, 1.0, 1.0], **props)


# --- Hugging Face -------------------------------------------------------------------------


def test_huggingface_finds_the_file_with_size_and_sha(hf_server: HfServer) -> None:
    data = make_safetensors(3000, seed=1)
    hf_server.add("someone/detail-tweaker-lora", "detail_tweaker.safetensors", data)
    hf_server.add("someone/detail-tweaker-lora", "README.md", b"# readme", lfs=False)
    hf_server.add("other/detail-tweaker-xl", "detail_tweaker_xl.safetensors", b"x" * 10)
    hf_server.add("third/detail-tweaker-mix", "sub/Detail_Tweaker.safetensors", b"y" * 20)
    hf_server.add("unrelated/sdxl", "detail_tweaker.safetensors", b"z" * 30)  # name not found

    found = search_huggingface(
        "loras\\detail_tweaker.safetensors", endpoint=hf_server.endpoint, token=None
    )

    assert [(f.source, f.filename, f.exact) for f in found] == [
        ("someone/detail-tweaker-lora", "detail_tweaker.safetensors", True),
        ("third/detail-tweaker-mix", "Detail_Tweaker.safetensors", False),  # other case: last
    ]
    best = found[0]
    commit = hf_server.repos["someone/detail-tweaker-lora"].commit
    assert best.url == (
        f"{hf_server.endpoint}/someone/detail-tweaker-lora/resolve/{commit}/"
        "detail_tweaker.safetensors"
    )
    assert best.size == len(data) and best.sha256 == sha(data)
    assert best.origin == "Hugging Face" and best.directory == ""
    assert requests.get(best.url, timeout=10).content == data  # the URL really downloads it
    # bounded: the stem found nothing, its hyphen form found three repos, and only the two
    # that list the file were read
    calls = hf_server.api_calls()
    assert [c.split("?")[0] for c in calls] == [
        "/api/models",
        "/api/models",
        "/api/models/someone/detail-tweaker-lora",
        "/api/models/third/detail-tweaker-mix",
    ]
    assert "search=detail_tweaker&" in calls[0] and "search=detail-tweaker&" in calls[1]
    assert "full=true" in calls[1] and "blobs=true" in calls[2]


def test_huggingface_file_outside_lfs_has_no_sha(hf_server: HfServer) -> None:
    hf_server.add("org/tiny_vae", "tiny_vae.pt", b"small", lfs=False)
    [hit] = search_huggingface("tiny_vae.pt", endpoint=hf_server.endpoint, token=HF_TOKEN)
    assert hit.sha256 is None and hit.size == 5
    auths = {header(h.headers, "Authorization") for h in hf_server.hub.gets()}
    assert auths == {f"Bearer {HF_TOKEN}"}


def test_huggingface_dead_endpoint_fails_fast_with_a_sentence() -> None:
    start = time.monotonic()
    with pytest.raises(SearchFailed, match=r"Hugging Face search failed: could not reach"):
        search_huggingface("x.safetensors", endpoint=closed_port_url(), token=None)
    assert time.monotonic() - start < 5  # no retries with back-off


# --- CivitAI ------------------------------------------------------------------------------


def test_civitai_by_hash_and_by_name(civitai_server: CivitaiServer) -> None:
    data = make_safetensors(4096, seed=2)
    url = civitai_server.add("Detail Tweaker LoRA", "detail_tweaker.safetensors", data)
    renamed = make_safetensors(1000, seed=3)
    other_url = civitai_server.add("Some Style", "style_v2.safetensors", renamed, type="Other")
    session = requests.Session()

    [hit] = search_civitai(
        "detail_tweaker.safetensors",
        sha(data),
        base_url=civitai_server.base,
        api_key=None,
        session=session,
    )
    assert hit.url == url and hit.sha256 == sha(data) and hit.exact
    assert hit.directory == "loras" and hit.origin == "CivitAI"
    assert hit.size is not None and abs(hit.size - len(data)) < 1024
    assert "Detail Tweaker LoRA" in hit.source
    # the hash found the file under its own name: no name search was needed
    assert [p.split("?")[0] for p, _ in civitai_server.hits("/api/")] == [
        f"/api/v1/model-versions/by-hash/{sha(data)}"
    ]

    [by_name] = search_civitai(
        "detail_tweaker.safetensors",
        None,
        base_url=civitai_server.base,
        api_key=None,
        session=session,
    )
    assert by_name.url == url and by_name.sha256 == sha(data)
    assert civitai_server.hits("/api/v1/models")[0][0].startswith(
        "/api/v1/models?query=detail+tweaker"
    )

    # the same bytes under another name: found by hash, but not as the same name
    [by_hash] = search_civitai(
        "my_style.safetensors",
        sha(renamed),
        base_url=civitai_server.base,
        api_key=None,
        session=session,
    )
    assert by_hash.url == other_url and by_hash.filename == "style_v2.safetensors"
    assert not by_hash.exact and by_hash.directory == ""  # type "Other": no folder made up


def test_civitai_refused_key_says_where_to_set_it(civitai_server: CivitaiServer) -> None:
    with pytest.raises(SearchFailed) as caught:
        search_civitai(
            "a.safetensors",
            None,
            base_url=civitai_server.base,
            api_key="wrong",
            session=requests.Session(),
        )
    assert "401" in caught.value.message and "refused" in caught.value.message
    assert caught.value.fix is not None and "Settings > Tokens" in caught.value.fix


# --- the plan -----------------------------------------------------------------------------


def test_lookup_picks_only_exact_name_and_hash(
    ctx: CoreContext,
    hf_server: HfServer,
    civitai_server: CivitaiServer,
    secrets: Secrets,
    tmp_path: Path,
) -> None:
    exact = make_safetensors(2048, seed=10)
    civitai_url = civitai_server.add("Exact Lora", "exact_lora.safetensors", exact, login=True)
    hf_server.add("someone/exact_lora", "exact_lora.safetensors", exact)
    wrong_bytes = make_safetensors(2048, seed=11)
    hf_server.add("someone/samename", "samename.safetensors", wrong_bytes)
    renamed = make_safetensors(2048, seed=12)
    civitai_server.add("Renamed", "renamed_upload.safetensors", renamed)
    loose = make_safetensors(512, seed=13)
    civitai_server.add("Loose Lora", "loose_lora.safetensors", loose)
    wf = write_workflow(
        tmp_path / "w.json",
        ui_workflow(
            lora(1, "exact_lora.safetensors", sha(exact)),
            lora(2, "samename.safetensors", "ab" * 32),  # same name, other hash
            lora(3, "mine.safetensors", sha(renamed)),  # same hash, other name
            lora(4, "nowhere.safetensors"),
            models=[{"name": "loose_lora.safetensors", "hash": sha(loose), "hash_type": "sha256"}],
        ),
    )
    plan = plan_import(ctx, [wf], db=None)
    assert {m.name: m.status for m in plan.models}["exact_lora.safetensors"] == "unknown"

    with requests.Session() as session:
        looked = lookup_model_sources(plan, ctx, session, secrets)
    rows = {m.name: m for m in looked.models}

    picked = rows["exact_lora.safetensors"]
    assert picked.auto_picked and picked.status == "download"
    assert [(s.origin, s.sha256) for s in picked.suggestions] == [
        ("Hugging Face", sha(exact)),
        ("CivitAI", sha(exact)),
    ]
    assert picked.urls == (picked.suggestions[0].url,)
    assert picked.suggestions[1].url == civitai_url

    same_name = rows["samename.safetensors"]
    assert not same_name.auto_picked and same_name.status == "unknown" and same_name.urls == ()
    [s] = same_name.suggestions
    assert s.origin == "Hugging Face" and s.sha256 == sha(wrong_bytes) and s.directory == "loras"

    same_hash = rows["mine.safetensors"]
    assert not same_hash.auto_picked and same_hash.status == "unknown"
    [s] = same_hash.suggestions
    assert s.filename == "renamed_upload.safetensors" and s.url.startswith(civitai_server.base)

    assert rows["nowhere.safetensors"].suggestions == ()

    # no folder in the workflow: the CivitAI LORA type gives one; nothing else is invented
    loose_row = rows["loose_lora.safetensors"]
    assert loose_row.auto_picked and loose_row.directory == "loras"
    assert loose_row.status == "download"
    assert looked.warnings == plan.warnings

    # each key went to its own host only
    civitai_auth = {auth for _, auth in civitai_server.hits()}
    assert civitai_auth == {f"Bearer {API_KEY}"}
    hf_auth = {header(h.headers, "Authorization") for h in hf_server.hub.gets()}
    assert hf_auth == {f"Bearer {HF_TOKEN}"}


def test_dead_hosts_become_warnings(
    ctx: CoreContext, node_packs: NodePacks, tmp_path: Path, no_keyring: None
) -> None:
    ctx.settings.hf_endpoint = closed_port_url()
    ctx.settings.civitai_url = closed_port_url()
    refresh_node_db(str(node_packs.db_dir), ctx.paths.node_db)
    db = load_node_db(ctx.paths.node_db)
    wf = write_workflow(
        tmp_path / "w.json",
        ui_workflow(
            node(1, "UpscaleModelLoader", ["suggested_x4.safetensors"]),
            lora(2, "a.safetensors"),
            lora(3, "b.safetensors"),
        ),
    )
    plan = plan_import(ctx, [wf], db=db)
    with requests.Session() as session:
        looked = lookup_model_sources(plan, ctx, session, Secrets())
    assert looked.models == plan.models  # the model-list suggestion is still there
    failures = [w for w in looked.warnings if "search failed" in w]
    assert len(failures) == 2  # one per host, though three models were looked up
    assert failures[0].startswith("Hugging Face search failed: could not reach")
    assert failures[1].startswith("CivitAI search failed: could not reach")


def test_model_list_suggestion_and_hub_hit_are_one_entry(
    ctx: CoreContext, hf_server: HfServer, node_packs: NodePacks, tmp_path: Path
) -> None:
    data = make_safetensors(1024, seed=20)
    hf_server.add("tests/upscalers", "suggested_x4.safetensors", data)
    refresh_node_db(str(node_packs.db_dir), ctx.paths.node_db)
    db = load_node_db(ctx.paths.node_db)
    wf = write_workflow(
        tmp_path / "w.json",
        ui_workflow(node(1, "UpscaleModelLoader", ["suggested_x4.safetensors"])),
    )
    plan = plan_import(ctx, [wf], db=db)
    with requests.Session() as session:
        looked = lookup_model_sources(plan, ctx, session, None)
    [row] = looked.models
    [s] = row.suggestions  # the model list names the same Hub file: shown once...
    assert s.origin == "model list" and s.url.startswith("https://huggingface.co/tests/")
    assert s.sha256 == sha(data) and s.size == format_bytes(len(data))  # ...what the Hub told
    assert not row.auto_picked  # the workflow gives no hash
