"""``analyze --lookup`` and ``import --lookup`` through the real command line: models a workflow
names without an address get Hugging Face and CivitAI suggestions (fixture servers), the one whose
name and sha256 both match is downloaded, the other stays a suggestion with the exact option."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.fixtures.civitai_server import CivitaiServer
from tests.fixtures.comfyui import cli
from tests.fixtures.hf_server import HfServer
from tests.fixtures.http_server import make_safetensors
from tests.fixtures.node_packs import node, ui_workflow, write_workflow

pytestmark = [pytest.mark.slow]


def _workflow(path: Path, detail_sha: str) -> Path:
    return write_workflow(
        path,
        ui_workflow(
            node(1, "KSampler", cnr_id="comfy-core", ver="0.3.2"),
            # declared with its hash but no address: an exact name + hash match may be taken
            node(
                2,
                "LoraLoader",
                ["detail_tweaker.safetensors", 1.0, 1.0],
                cnr_id="comfy-core",
                models=[
                    {
                        "name": "detail_tweaker.safetensors",
                        "directory": "loras",
                        "hash": detail_sha,
                        "hash_type": "SHA256",
                    }
                ],
            ),
            # name only: suggestions are listed, never picked
            node(3, "LoraLoader", ["paper_cut.safetensors", 1.0, 1.0], cnr_id="comfy-core"),
        ),
    )


def test_lookup_suggests_and_takes_only_the_exact_match(
    project_data_dir: Path, hf_server: HfServer, civitai_server: CivitaiServer, tmp_path: Path
) -> None:
    detail = make_safetensors(4000, seed=11)
    paper = make_safetensors(3000, seed=12)
    hf_server.add("someone/detail-tweaker", "detail_tweaker.safetensors", detail)
    civitai_url = civitai_server.add("Paper Cut", "paper_cut.safetensors", paper)
    env = {"HF_ENDPOINT": hf_server.endpoint, "COMFYMANAGER_CIVITAI": civitai_server.base}
    wf = _workflow(tmp_path / "Loras.json", hashlib.sha256(detail).hexdigest())

    # offline analysis: nothing is asked of either host
    plain = cli(project_data_dir, "analyze", str(wf), env=env)
    assert "--model paper_cut.safetensors=<URL>" in plain.stdout
    assert hf_server.api_calls() == [] and civitai_server.hits("/api/v1") == []

    looked = cli(project_data_dir, "analyze", "--lookup", str(wf), env=env)
    assert f"--model paper_cut.safetensors={civitai_url}" in looked.stdout
    assert "(CivitAI: paper_cut.safetensors)" in looked.stdout
    assert "detail_tweaker.safetensors: its download address" not in looked.stdout

    done = cli(
        project_data_dir,
        "import",
        str(wf),
        "--lookup",
        "--torch-backend",
        "none",
        "--yes",
        env=env,
        check=False,
    )
    err = done.stderr
    assert "model loras/detail_tweaker.safetensors: downloaded" in err, err
    assert "Going on without: model loras/paper_cut.safetensors" in err
    store = project_data_dir / "models" / "loras"
    assert (store / "detail_tweaker.safetensors").read_bytes() == detail
    assert not (store / "paper_cut.safetensors").exists()
