"""The project lifecycle through the real command line: real git, real uv, real processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tests.fixtures.comfyui import FakeComfyUI, cli

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("stop_all")]


def test_create_start_status_stop_delete(project_data_dir: Path, fake_comfyui: FakeComfyUI) -> None:
    store = project_data_dir / "models" / "checkpoints"
    store.mkdir(parents=True)
    (store / "keep.safetensors").write_bytes(b"shared model")

    created = cli(project_data_dir, "create", "demo", "--torch-backend", "none")
    assert "ready" in created.stderr
    project = project_data_dir / "projects" / "demo"
    assert (project / "ComfyUI" / "main.py").exists()
    assert (project / "venv").is_dir()

    listed = json.loads(cli(project_data_dir, "list", "--json").stdout)
    [entry] = listed["projects"]
    assert entry["project"] == "demo" and entry["state"] == "stopped"
    # default ref = the newest release tag, and its commit is recorded
    assert entry["commit"] == fake_comfyui.tags["v0.3.2"]

    started = cli(project_data_dir, "start", "demo", "--wait", "--timeout", "60")
    url = started.stdout.strip()
    assert url.startswith("http://127.0.0.1:")
    port = int(url.rsplit(":", 1)[1])
    assert 4001 <= port <= 4100
    stats = requests.get(f"{url}/system_stats", timeout=5).json()
    argv = stats["system"]["argv"]
    # ComfyUI runs from the project's own venv, with its folders and the shared store
    assert Path(argv[0]).name == "main.py"
    assert Path(stats["system"]["executable"]).is_relative_to(project / "venv")
    assert argv[argv.index("--listen") + 1] == "127.0.0.1"
    assert argv[argv.index("--database-url") + 1].endswith("demo/user/comfyui.db")
    assert argv[argv.index("--output-directory") + 1] == str(project / "output")
    assert "--extra-model-paths-config" in argv

    status = json.loads(cli(project_data_dir, "status", "demo", "--json").stdout)
    assert status["state"] == "running"
    assert status["port"] == port and status["url"] == url and status["pid"]

    cli(project_data_dir, "stop", "demo")
    status = json.loads(cli(project_data_dir, "status", "demo", "--json").stdout)
    assert status["state"] == "stopped"
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/system_stats", timeout=2)

    refused = cli(project_data_dir, "delete", "demo", check=False)
    assert refused.returncode == 1 and "--yes" in refused.stderr
    cli(project_data_dir, "delete", "demo", "--yes")
    assert not project.exists()
    assert (store / "keep.safetensors").read_bytes() == b"shared model"


def test_create_at_a_given_ref_and_bad_input(
    project_data_dir: Path, fake_comfyui: FakeComfyUI
) -> None:
    bad = cli(project_data_dir, "create", "bad\x1bname", "--torch-backend", "none", check=False)
    assert bad.returncode == 1
    assert "control or invisible" in bad.stderr  # a display name is free text, on one line
    assert not (project_data_dir / "escape").exists()
    assert not (project_data_dir.parent / "escape").exists()

    missing = cli(
        project_data_dir,
        "create",
        "old",
        "--comfyui-ref",
        "v9.9.9",
        "--torch-backend",
        "none",
        check=False,
    )
    assert (
        missing.returncode == 1
        and "v9.9.9" in missing.stderr
        and "does not exist" in missing.stderr
    )
    # the failed install is kept with its error and log, never silently deleted
    status = json.loads(cli(project_data_dir, "status", "old", "--json").stdout)
    assert status["state"] == "install-failed" and "v9.9.9" in status["message"]
    assert "v9.9.9" in (project_data_dir / "projects/old/logs/install.log").read_text()

    cli(project_data_dir, "create", "pinned", "--comfyui-ref", "v0.3.1", "--torch-backend", "none")
    status = json.loads(cli(project_data_dir, "status", "pinned", "--json").stdout)
    assert status["commit"] == fake_comfyui.tags["v0.3.1"]
