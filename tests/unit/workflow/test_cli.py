"""``python -m comfymanager analyze`` as a user runs it: a real subprocess, JSON lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
