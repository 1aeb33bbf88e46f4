"""The ``download`` and ``models`` commands as a user runs them, in real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.hf_server import HfServer
from tests.fixtures.http_server import FileServer, Served, make_safetensors
from tests.fixtures.portable import kill_hard
from tests.unit.models.helpers import sha

SIZE = 4 * 1024 * 1024


def cli(data_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "comfymanager", "--data-dir", str(data_dir), *args]


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(Path(__file__).resolve().parents[3])
    return e


@pytest.mark.slow
def test_killed_download_resumes_fetching_only_the_missing_bytes(
    http_files: FileServer, data_dir: Path
) -> None:
    model = make_safetensors(SIZE, seed=11)
    url = http_files.add("/big.safetensors", Served(model, rate=1_500_000))
    args = cli(data_dir, "download", url, "--folder", "checkpoints", "--sha256", sha(model))
    part = data_dir / "models" / "checkpoints" / "big.safetensors.part"
    first = subprocess.Popen(args, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # kill once half the file is on disk (bytes the server sent may still sit in socket
        # buffers, so the server's count is not what the client kept)
        deadline = time.monotonic() + 60
        while not (part.exists() and part.stat().st_size >= SIZE // 2):
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.01)
        kill_hard(first)
        first.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate()
    kept = part.stat().st_size
    assert SIZE // 2 <= kept < SIZE
    assert not (data_dir / "models" / "checkpoints" / "big.safetensors").exists()

    http_files.files["/big.safetensors"].rate = None
    done = subprocess.run(args, env=env(), capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    final = data_dir / "models" / "checkpoints" / "big.safetensors"
    assert done.stdout.strip() == str(final.resolve())
    assert final.read_bytes() == model and not part.exists()
    second = http_files.gets("/big.safetensors")[-1]
    assert second.headers["Range"] == f"bytes={kept}-"
    assert second.sent == SIZE + len(model) - SIZE - kept  # exactly the missing bytes
    assert "Resuming" in done.stderr or "checking" in done.stderr.lower()

    listing = subprocess.run(
        cli(data_dir, "models", "--json"),
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows = [json.loads(line) for line in listing.stdout.splitlines()]
    assert rows == [
        {
            "folder": "checkpoints",
            "name": "big.safetensors",
            "size": len(model),
            "sha256": sha(model),
            "can_run_code": False,
            "sources": [url],
            "used_by": [],
            "path": str(final),
        }
    ]


def test_download_errors_are_one_clear_line(http_files: FileServer, data_dir: Path) -> None:
    done = subprocess.run(
        cli(data_dir, "download", http_files.url("/nope.ckpt"), "--folder", "checkpoints"),
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert "error: nope.ckpt: not found (404)" in done.stderr
    bad = subprocess.run(
        cli(data_dir, "download", http_files.url("/x"), "--folder", "loras", "--name", "../x"),
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 1 and "contains '..'" in bad.stderr


def test_download_of_a_xet_file_writes_only_into_the_data_root(
    hf_server: HfServer, data_dir: Path, tmp_path: Path
) -> None:
    model = make_safetensors(SIZE, seed=21)
    url = hf_server.add("org/xet", "flux/model.safetensors", model, xet=True)
    home = tmp_path / "home"
    home.mkdir()
    run_env = {k: v for k, v in env().items() if k != "HF_XET_CACHE"}
    run_env.update(HOME=str(home), HF_ENDPOINT=hf_server.endpoint)
    done = subprocess.run(
        cli(data_dir, "download", url, "--folder", "diffusion_models"),
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    final = data_dir / "models" / "diffusion_models" / "model.safetensors"
    assert done.stdout.strip() == str(final.resolve()) and final.read_bytes() == model
    assert hf_server.cdn.bytes_sent() == 0 and len(hf_server.xet_token_requests) == 1
    # hf_xet's own log is kept in the data root, and nothing was written in the home folder
    assert list((data_dir / "cache" / "xet" / "logs").glob("*.log"))
    assert list(home.rglob("*")) == []
