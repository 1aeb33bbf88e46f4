"""Per-project settings after creation: checked before anything is written, kept in project.json,
applied by the launch (GPU variables and flag, extra environment), and a sticky automatic port.
Real projects on the stand-in ComfyUI, real launches, the real command line."""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import sys
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from comfymanager.cli import main as cli_main
from comfymanager.core import configure
from comfymanager.core.context import CoreContext, build_core_context
from comfymanager.core.errors import Conflict, InvalidInput, NotFound
from comfymanager.core.projects import InstallState, Project, ProjectStore
from comfymanager.core.run import launch, ports, runs
from tests.fixtures.comfyui import FakeComfyUI, git


@pytest.fixture(autouse=True)
def own_claims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ports.RUNTIME_ENV, str(tmp_path / "runtime"))


@pytest.fixture
def ctx(data_dir: Path) -> CoreContext:
    return build_core_context(data_dir)


def _runnable(ctx: CoreContext, name: str, fake: FakeComfyUI, **fields: object) -> Project:
    """An installed project on the stand-in ComfyUI whose Python is the test interpreter."""
    store = ProjectStore(ctx.paths)
    project = store.create(Project(id=name, install=InstallState(status="ready"), **fields))  # type: ignore[arg-type]
    dirs = store.dirs(name)
    git(dirs.root, "clone", "-q", str(fake.repo), str(dirs.comfyui))
    (dirs.comfyui / "fakecomfydep.py").write_text('VERSION = "1.0"\n')
    bin_dir = dirs.venv / ("Scripts" if os.name == "nt" else "bin")
    bin_dir.mkdir(parents=True)
    (bin_dir / ("python.exe" if os.name == "nt" else "python")).symlink_to(sys.executable)
    return project


def _start(ctx: CoreContext, name: str) -> runs.Status:
    runs.start(ctx, name)
    return runs.wait_ready(ctx, name, timeout=60)


def test_bad_values_are_refused_and_nothing_is_written(
    ctx: CoreContext, fake_comfyui: FakeComfyUI
) -> None:
    _runnable(ctx, "p", fake_comfyui)
    file = ProjectStore(ctx.paths).dirs("p").file
    before = file.read_bytes()
    cases = {
        "out of range": dict(port=80),
        "is not a number": dict(port="eighty"),
        "cannot be split": dict(launch_args='--preview-method "auto'),
        "--port is set by comfymanager": dict(launch_args="--port 9000"),
        "--output-directory is set by": dict(launch_args="--output-directory=/tmp/x"),
        "does not know the flag --lowram": dict(launch_args="--lowram"),
        "not a list of GPU numbers": dict(gpu="cuda:0"),
        "not an environment variable name": dict(env={"my-var": "1"}),
        "PIP_CONSTRAINT cannot be set": dict(env={"PIP_CONSTRAINT": "/x"}),
        "PYTHONPATH cannot be set": dict(env={"PYTHONPATH": "/x"}),
        "tokens are never written": dict(env={"HF_TOKEN": "hf_x"}),
        "CUDA_VISIBLE_DEVICES cannot be set": dict(env={"CUDA_VISIBLE_DEVICES": "0"}),
    }
    for words, change in cases.items():
        with pytest.raises(InvalidInput) as err:
            configure.configure(ctx, "p", **{"listen": True, **change})  # type: ignore[arg-type]
        assert words in err.value.message, (words, err.value.message)
        assert err.value.fix or "cannot be set" in err.value.message
    assert file.read_bytes() == before  # a refused change writes nothing, not even listen=True
    ProjectStore(ctx.paths).create(Project(id="q", port=4555))
    with pytest.raises(Conflict) as taken:
        configure.configure(ctx, "p", port=4555)
    assert "fixed port of project 'q'" in taken.value.message
    assert file.read_bytes() == before


def test_round_trip_and_the_cli(
    ctx: CoreContext, fake_comfyui: FakeComfyUI, capsys: pytest.CaptureFixture[str]
) -> None:
    _runnable(ctx, "p", fake_comfyui)
    project = configure.configure(
        ctx, "p", port="4321", listen=True, launch_args="--lowvram  --cpu", gpu="1, 0,1",
        env={"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True", "PYTHONUTF8": "1"},
    )  # fmt: skip
    again = ProjectStore(ctx.paths).load("p")
    assert again == project
    assert (again.port, again.listen_network, again.gpu) == (4321, True, "1,0")
    assert again.launch_args == ["--lowvram", "--cpu"]
    assert again.env == {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True", "PYTHONUTF8": "1"}

    root = str(ctx.paths.root)
    assert cli_main(["--data-dir", root, "config", "p", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["port"] == 4321 and shown["launch_args_text"] == "--lowvram --cpu"
    code = cli_main([
        "--data-dir", root, "config", "p", "--port", "auto", "--no-listen",
        "--launch-args=--lowvram", "--gpu", "", "--env", "A_B=x y", "--unset-env", "PYTHONUTF8",
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "port:        auto" in out and "127.0.0.1 only" in out
    assert "launch args: --lowvram" in out and "gpu:         all" in out and "A_B=x y" in out
    p = ProjectStore(ctx.paths).load("p")
    assert p.port is None
    assert p.env == {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True", "A_B": "x y"}
    # a refused value: one line on stderr, exit code 1, nothing changed
    assert cli_main(["--data-dir", root, "config", "p", "--env", "PIP_CONSTRAINT=/x"]) == 1
    assert "PIP_CONSTRAINT" in capsys.readouterr().err
    assert ProjectStore(ctx.paths).load("p") == p
    assert cli_main(["--data-dir", root, "config", "nope"]) == 1


def test_gpu_flag_for_one_gpu_of_a_cuda_or_rocm_torch(ctx: CoreContext) -> None:
    dirs = ProjectStore(ctx.paths).dirs("g")
    nvidia = SimpleNamespace(vendor="nvidia")
    cuda = Project(id="g", torch_backend_resolved="cu126", gpu="1")
    argv, _ = launch.build(ctx, cuda, dirs, 4001, hw=nvidia)
    assert argv[argv.index("--cuda-device") + 1] == "1"
    assert configure.gpu_env(cuda) == {"CUDA_VISIBLE_DEVICES": "1"}
    rocm = Project(id="g", torch_backend_resolved="rocm6.3", gpu="0,1")
    assert configure.gpu_env(rocm) == {"HIP_VISIBLE_DEVICES": "0,1"}
    argv, _ = launch.build(ctx, rocm, dirs, 4001, hw=SimpleNamespace(vendor="amd"))
    assert "--cuda-device" not in argv  # two GPUs: the variable alone
    user = Project(id="g", torch_backend_resolved="cu126", gpu="1", launch_args=["--cpu"])
    assert "--cuda-device" not in launch.build(ctx, user, dirs, 4001, hw=nvidia)[0]


@pytest.mark.slow
def test_launch_applies_gpu_and_env(ctx: CoreContext, fake_comfyui: FakeComfyUI) -> None:
    _runnable(ctx, "g", fake_comfyui, torch_backend_resolved="cu126")
    configure.configure(ctx, "g", gpu="1", env={"COMFY_TEST_VALUE": "from config"})
    try:
        st = _start(ctx, "g")
        assert st.pid is not None
        env = psutil.Process(st.pid).environ()
        assert env["CUDA_VISIBLE_DEVICES"] == "1" and env["COMFY_TEST_VALUE"] == "from config"
    finally:
        runs.stop(ctx, "g", timeout=5)


@pytest.mark.slow
def test_automatic_port_sticks_to_its_project(ctx: CoreContext, fake_comfyui: FakeComfyUI) -> None:
    # a pool of its own: other tests on this machine start ComfyUIs in the default one
    base = random.randrange(20000, 30000, 50)
    ctx.settings.port_min, ctx.settings.port_max = base, base + 49
    for name in ("a", "b"):
        _runnable(ctx, name, fake_comfyui)
    try:
        first = {n: _start(ctx, n).port for n in ("a", "b")}
        assert first["a"] != first["b"]
        for n in ("a", "b"):
            runs.stop(ctx, n, timeout=5)
        second = {n: _start(ctx, n).port for n in ("b", "a")}  # the other order
        assert second == first
        assert ProjectStore(ctx.paths).load("a").last_port == first["a"]
        for n in ("a", "b"):
            runs.stop(ctx, n, timeout=5)
        # a new project does not take a port another project remembers
        _runnable(ctx, "c", fake_comfyui)
        c_port = _start(ctx, "c").port
        assert c_port not in first.values()
        # taken by another program: a free one this time, and that one is remembered
        with socket.socket() as other:
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT
            other.bind(("127.0.0.1", first["a"]))
            other.listen()
            moved = _start(ctx, "a").port
        assert moved not in (first["a"], c_port)
        assert ProjectStore(ctx.paths).load("a").last_port == moved
    finally:
        for n in ("a", "b", "c"):
            with contextlib.suppress(NotFound):
                runs.stop(ctx, n, timeout=5)


def test_a_busy_project_is_not_changed_under_its_job(
    ctx: CoreContext, fake_comfyui: FakeComfyUI
) -> None:
    import subprocess

    _runnable(ctx, "p", fake_comfyui)
    lock = ctx.paths.locks / "project-p.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from filelock import FileLock; l = FileLock(sys.argv[1]); "
         "l.acquire(); print('held', flush=True); time.sleep(60)", str(lock)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(Conflict) as err:
            configure.configure(ctx, "p", gpu="0", lock_timeout=0.3)
        assert "busy" in err.value.message
        assert ProjectStore(ctx.paths).load("p").gpu == ""
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert configure.configure(ctx, "p", gpu="0").gpu == "0"
