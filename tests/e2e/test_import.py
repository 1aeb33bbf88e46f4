"""Importing a workflow through the real command line: real git packs, real uv, a real download
from a local HTTP server, the fake ComfyUI started and stopped; export and rebuild elsewhere."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
import requests

from tests.fixtures.comfyui import FakeComfyUI, cli, git
from tests.fixtures.http_server import FileServer, make_safetensors
from tests.fixtures.node_packs import NodePacks, node, ui_workflow, write_workflow
from tests.fixtures.portable import venv_python

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("stop_all")]


def _workflow(path: Path, packs: NodePacks, model_url: str, sha: str, *, bad: bool) -> Path:
    nodes = [
        node(1, "KSampler", [1, "fixed", 20], cnr_id="comfy-core", ver="0.3.2"),
        node(2, "GoodPackNode", [], cnr_id="comfyui-goodpack", ver=packs.good_pinned),
        node(
            3,
            "CheckpointLoaderSimple",
            ["tiny.safetensors"],
            models=[
                {
                    "name": "tiny.safetensors",
                    "url": model_url,
                    "directory": "checkpoints",
                    "hash": sha,
                    "hash_type": "SHA256",
                }
            ],
        ),
    ]
    if bad:
        nodes.append(node(4, "BadPackNode"))
    return write_workflow(path, ui_workflow(*nodes))


def _python(project: Path) -> Path:
    return venv_python(project / "venv")


def _project_json(project: Path) -> dict[str, object]:
    data = json.loads((project / "project.json").read_text())
    return data.get("payload", data)  # type: ignore[no-any-return]


def test_create_with_workflow_start_export_rebuild(
    project_data_dir: Path,
    node_packs_env: NodePacks,
    http_files: FileServer,
    fake_comfyui: FakeComfyUI,
    shared_uv_cache: Path,
    tmp_path: Path,
) -> None:
    packs = node_packs_env
    data = make_safetensors(4096)
    sha = hashlib.sha256(data).hexdigest()
    url = http_files.add("/models/tiny.safetensors", data)
    wf = _workflow(tmp_path / "Tiny Flow.json", packs, url, sha, bad=False)

    created = cli(
        project_data_dir, "create", "demo", "--torch-backend", "none", "--workflow", str(wf)
    )
    assert "ready" in created.stderr
    project = project_data_dir / "projects" / "demo"
    pack = project / "ComfyUI" / "custom_nodes" / "ComfyUI-GoodPack"
    assert git(pack, "rev-parse", "HEAD") == packs.good_pinned  # the workflow's pin, not head
    assert (pack / "installed.marker").read_text() == "install.py ran\n"
    subprocess.run([_python(project), "-c", "import goodpackdep"], check=True)
    model = project_data_dir / "models" / "checkpoints" / "tiny.safetensors"
    assert hashlib.sha256(model.read_bytes()).hexdigest() == sha
    saved = project / "user" / "default" / "workflows" / "Tiny Flow.json"
    assert json.loads(saved.read_text())["nodes"][1]["type"] == "GoodPackNode"
    meta = _project_json(project)
    assert meta["workflows"] == ["Tiny Flow.json"]
    assert {"directory": "checkpoints", "name": "tiny.safetensors"} in meta["models"]  # type: ignore[operator]

    started = cli(project_data_dir, "start", "demo", "--wait", "--timeout", "60")
    base = started.stdout.strip()
    assert requests.get(f"{base}/system_stats", timeout=5).status_code == 200
    cli(project_data_dir, "stop", "demo")

    exported = cli(project_data_dir, "export", "demo")
    manifest = json.loads(exported.stdout)
    assert manifest["kind"] == "comfymanager.manifest"
    [mpack] = manifest["packs"]
    assert mpack["commit"] == packs.good_pinned and mpack["folder_name"] == "ComfyUI-GoodPack"
    [mmodel] = manifest["models"]
    assert mmodel["sha256"] == sha and mmodel["size"] == len(data) and mmodel["urls"] == [url]
    manifest_file = tmp_path / "demo.manifest.json"
    manifest_file.write_text(exported.stdout)

    # another machine: a fresh data root, same sources reachable
    other = tmp_path / "other-data"
    other.mkdir()  # its uv cache is the shared one: COMFYMANAGER_UV_CACHE_DIR (project_data_dir)
    cli(other, "create", "copy", "--manifest", str(manifest_file))
    copy = other / "projects" / "copy"
    first, second = _project_json(project), _project_json(copy)
    assert second["comfyui_commit"] == first["comfyui_commit"]
    assert second["torch_backend"] == "none"
    assert [(p["folder"], p["commit"]) for p in second["packs"]] == [  # type: ignore[attr-defined]
        ("ComfyUI-GoodPack", packs.good_pinned)
    ]
    copied = other / "models" / "checkpoints" / "tiny.safetensors"
    assert hashlib.sha256(copied.read_bytes()).hexdigest() == sha
    assert (copy / "user" / "default" / "workflows" / "Tiny Flow.json").is_file()


def test_failing_pack_is_reported_and_project_still_ready(
    project_data_dir: Path, node_packs_env: NodePacks, http_files: FileServer, tmp_path: Path
) -> None:
    data = make_safetensors(1024, seed=2)
    url = http_files.add("/tiny.safetensors", data)
    wf = _workflow(
        tmp_path / "flow.json", node_packs_env, url, hashlib.sha256(data).hexdigest(), bad=True
    )
    proc = cli(
        project_data_dir,
        "import",
        str(wf),
        "--name",
        "mixed",
        "--torch-backend",
        "none",
        "--yes",
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "pack ComfyUI-BadPack: failed" in proc.stderr
    assert "baddep" in proc.stderr  # the cause is named
    assert "pack ComfyUI-GoodPack: installed" in proc.stderr
    assert "incomplete" in proc.stderr and "kept" in proc.stderr
    project = project_data_dir / "projects" / "mixed"
    status = json.loads(cli(project_data_dir, "status", "mixed", "--json").stdout)
    assert status["state"] == "stopped"  # installed and ready to start
    assert _project_json(project)["install"]["status"] == "ready"  # type: ignore[index]
    assert "baddep" in (project / "logs" / "install.log").read_text()
    started = cli(project_data_dir, "start", "mixed", "--wait", "--timeout", "60")
    assert requests.get(f"{started.stdout.strip()}/system_stats", timeout=5).status_code == 200
    cli(project_data_dir, "stop", "mixed")
