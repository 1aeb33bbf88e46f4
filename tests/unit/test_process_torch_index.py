"""A torch index that cannot be reached: one clear sentence and the alternatives, apart."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from comfymanager.core.errors import ExternalToolError
from comfymanager.core.install import envs
from comfymanager.core.paths import DataPaths
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.settings import Settings


@pytest.mark.slow
def test_unreachable_torch_index_names_the_alternatives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")  # a user setting uv honours: no 12 s of retries
    with socket.socket() as s:  # a port nothing listens on: connection refused at once
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    paths = DataPaths(tmp_path / "data").ensure()
    uv = envs.UvRunner(paths, Settings(torch_index_url=f"http://127.0.0.1:{closed}/whl"))
    venv = tmp_path / "venv"
    subprocess.run([envs.find_uv(), "venv", "-q", str(venv)], check=True, env=uv.env())
    with pytest.raises(ExternalToolError) as err:
        envs.install_torch(uv, venv, "cu128", report=Reporter(), cancel=CancelToken())
    e = err.value
    assert e.message == (
        f"The PyTorch index (127.0.0.1:{closed}) could not be reached, so torch (cu128) "
        "was not installed."
    )
    assert e.fix is not None
    for alternative in ("Settings > Mirrors", "--torch-backend pypi", "--torch-backend none"):
        assert alternative in e.fix
    assert "uv exited" not in e.message  # the tool's words stay in the details
    assert e.details
