"""``python -m comfymanager analyze`` as a user runs it: a real subprocess, JSON lines."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.fixtures.civitai_server import CivitaiServer
from tests.fixtures.comfyui import cli
from tests.fixtures.hf_server import HfServer
from tests.fixtures.http_server import make_safetensors
from tests.fixtures.node_packs import node, ui_workflow, write_workflow
from tests.fixtures.nodedb import snapshot_dir


def test_analyze_json_lines(workflows_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {
        **os.environ,
        "COMFYMANAGER_NODE_DB": str(snapshot_dir()),
        "COMFYMANAGER_DATA_DIR": str(data),
        "COMFYMANAGER_STORE_DIR": str(tmp_path / "store"),
    }
    (tmp_path / "store" / "checkpoints").mkdir(parents=True)
    (tmp_path / "store" / "checkpoints" / "sd15.safetensors").write_bytes(b"x")
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": "world"}')
    files = [
        str(workflows_dir / "api_prompt.json"),
        str(bad),
        str(workflows_dir / "ui_everything.json"),
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "comfymanager", "analyze", *files, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr  # one file failed, the others were analysed
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["file"] for line in lines] == files
    assert "not a ComfyUI workflow" in lines[1]["error"]
    api = lines[0]
    sd = next(m for m in api["models"] if m["name"] == "sd15.safetensors")
    assert sd["present"] is True
    ui = lines[2]
    assert any(n["class_type"] == "AIO_Preprocessor" and n["pack"] for n in ui["nodes"])
    assert (data / "cache" / "node-db" / "extension-node-map.json").is_file()


def test_analyze_readable_and_offline(workflows_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "COMFYMANAGER_DATA_DIR": str(tmp_path / "data")}  # dead node-db source
    proc = subprocess.run(
        [sys.executable, "-m", "comfymanager", "analyze", str(workflows_dir / "api_prompt.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "node database unavailable" in proc.stderr
    assert "Model: checkpoints/sd15.safetensors [missing]" in proc.stdout


def test_core_classes_known_without_the_node_database(workflows_dir: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "COMFYMANAGER_DATA_DIR": str(tmp_path / "data"),
        "COMFYMANAGER_STORE_DIR": str(tmp_path / "store"),
        "COMFYMANAGER_NODE_DB": str(tmp_path / "no-node-db"),  # a source that has nothing
    }
    wf = str(workflows_dir / "fixture_packs.json")
    analysed = subprocess.run(
        [sys.executable, "-m", "comfymanager", "analyze", wf],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert analysed.returncode == 0, analysed.stderr
    assert "Node classes: 9 (3 core, 0 custom, 5 unknown)" in analysed.stdout
    for cls in ("KSampler", "SaveImage", "EmptyImage"):
        assert f"Unknown node class: {cls}" not in analysed.stdout
    assert "Model: ?/group_only_model.safetensors" in analysed.stdout
    assert "--model-folder group_only_model.safetensors=<folder>" in analysed.stdout
    imported = subprocess.run(
        [sys.executable, "-m", "comfymanager", "import", wf, "--name", "offline"],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    assert imported.returncode != 0 and "Nothing was installed" in imported.stderr
    assert "--pack FixVideoModelLoader=<git URL>" in imported.stderr
    for cls in ("KSampler", "SaveImage", "EmptyImage"):
        assert f"--pack {cls}=" not in imported.stderr  # no git URL asked for a core class


def test_analyze_json_lookup_carries_online_suggestions(
    project_data_dir: Path, hf_server: HfServer, civitai_server: CivitaiServer, tmp_path: Path
) -> None:
    data = make_safetensors(3000, seed=21)
    hf_server.add("someone/paper-cut", "paper_cut.safetensors", data)
    civitai_url = civitai_server.add("Paper Cut", "paper_cut.safetensors", data)
    env = {"HF_ENDPOINT": hf_server.endpoint, "COMFYMANAGER_CIVITAI": civitai_server.base}
    wf = write_workflow(
        tmp_path / "w.json",
        ui_workflow(
            node(1, "LoraLoader", ["paper_cut.safetensors", 1.0, 1.0], cnr_id="comfy-core")
        ),
    )
    plain = json.loads(cli(project_data_dir, "analyze", "--json", str(wf), env=env).stdout)
    assert plain["models"][0]["suggestions"] == []  # offline: nothing asked of either host
    looked = cli(project_data_dir, "analyze", "--json", "--lookup", str(wf), env=env)
    (model,) = json.loads(looked.stdout)["models"]
    assert model["directory"] == "loras"
    by_origin = {s["origin"]: s for s in model["suggestions"]}
    assert set(by_origin) == {"Hugging Face", "CivitAI"}
    assert by_origin["CivitAI"]["url"] == civitai_url
    assert "someone/paper-cut" in by_origin["Hugging Face"]["url"]
    sha = hashlib.sha256(data).hexdigest()
    assert any(s["sha256"] == sha for s in model["suggestions"])  # when the host knows it
    assert all(s["filename"] == "paper_cut.safetensors" for s in model["suggestions"])
