"""Running ComfyUI: crashes, adoption after the app dies, PID reuse, ports, concurrent launches."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import requests

from comfymanager.core import persist
from comfymanager.core.context import CoreContext, build_core_context
from comfymanager.core.errors import Conflict
from comfymanager.core.install import install
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import ProjectStore
from comfymanager.core.run import runs
from tests.fixtures.comfyui import cli, create_installed
from tests.fixtures.portable import kill_hard

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("stop_all")]


def _make(ctx: CoreContext, name: str) -> None:
    create_installed(ctx.paths.root, name)


@pytest.fixture
def ctx(project_data_dir: Path) -> CoreContext:
    return build_core_context(project_data_dir)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_state(ctx: CoreContext, name: str, state: str, timeout: float = 30) -> runs.Status:
    deadline = time.monotonic() + timeout
    while True:
        st = runs.status(ctx, ProjectStore(ctx.paths).load(name))
        if st.state == state or time.monotonic() > deadline:
            return st
        time.sleep(0.2)


def test_crash_is_reported_with_exit_code_and_last_lines(
    ctx: CoreContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    _make(ctx, "crashy")
    monkeypatch.setenv("FAKE_COMFYUI_MODE", "crash")
    runs.start(ctx, "crashy")
    runs.wait_ready(ctx, "crashy", timeout=60)
    st = _wait_state(ctx, "crashy", "crashed")
    assert st.state == "crashed"
    assert st.exit_code == 3
    assert "exited with code 3" in st.message
    assert any("fake crash" in line for line in st.last_lines)


def test_start_failure_raises_with_the_log(
    ctx: CoreContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    _make(ctx, "broken")
    monkeypatch.setenv("FAKE_COMFYUI_MODE", "crash-early")
    runs.start(ctx, "broken")
    with pytest.raises(runs.LaunchFailed) as err:
        runs.wait_ready(ctx, "broken", timeout=60)
    assert "did not start" in err.value.message
    assert "fake start-up failure" in err.value.details
    # nothing hangs in "Running"
    assert runs.status(ctx, ProjectStore(ctx.paths).load("broken")).state == "crashed"


def test_app_killed_then_adopted_and_pid_reuse_is_never_touched(
    project_data_dir: Path, ctx: CoreContext
) -> None:
    _make(ctx, "adopt")
    # a separate process (an app that is then killed) starts ComfyUI
    app = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; from comfymanager.core.run import runs;"
                "from comfymanager.core.context import build_core_context as b;"
                f"c = b({str(project_data_dir)!r}); runs.start(c, 'adopt');"
                "runs.wait_ready(c, 'adopt', timeout=60); print('up', flush=True); time.sleep(600)"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert app.stdout is not None
    assert app.stdout.readline().strip() == "up"
    kill_hard(app)
    app.wait()
    app.stdout.close()
    # a new app finds it running and can stop it
    st = runs.status(ctx, ProjectStore(ctx.paths).load("adopt"))
    assert st.state == "running" and st.pid and psutil.pid_exists(st.pid)
    comfy_pid = st.pid
    runs.stop(ctx, "adopt")
    assert not _alive(comfy_pid)
    assert runs.status(ctx, ProjectStore(ctx.paths).load("adopt")).state == "stopped"

    # a run record whose PID now belongs to another program: shown stopped, never killed
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dirs = ProjectStore(ctx.paths).dirs("adopt")
        persist.write_json(
            dirs.run_file,
            runs.RUN_KIND,
            runs.RUN_VERSION,
            {
                "port": 4050,
                "url": "http://127.0.0.1:4050",
                "started_at": 0,
                "argv": [],
                "supervisor": {"pid": bystander.pid, "create_time": 12345.0},
                "stop_requested_at": None,
            },
        )
        dirs.child_file.write_text(json.dumps({"pid": bystander.pid, "create_time": 12345.0}))
        st = runs.status(ctx, ProjectStore(ctx.paths).load("adopt"))
        assert st.state != "running"
        runs.stop(ctx, "adopt", timeout=1)
        assert bystander.poll() is None, "a process that is not ours was signalled"
    finally:
        bystander.kill()
        bystander.wait()


def test_stop_kills_a_comfyui_that_ignores_terminate(
    ctx: CoreContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    _make(ctx, "stubborn")
    monkeypatch.setenv("FAKE_COMFYUI_MODE", "ignore-term")
    runs.start(ctx, "stubborn")
    st = runs.wait_ready(ctx, "stubborn", timeout=60)
    t0 = time.monotonic()
    runs.stop(ctx, "stubborn", timeout=1.5)
    assert time.monotonic() - t0 < 10
    assert st.pid and not _alive(st.pid)
    assert runs.status(ctx, ProjectStore(ctx.paths).load("stubborn")).state == "stopped"


def test_ports_fixed_busy_and_concurrent(project_data_dir: Path, ctx: CoreContext) -> None:
    _make(ctx, "one")
    _make(ctx, "two")
    with socket.socket() as foreign:
        foreign.bind(("127.0.0.1", 0))
        foreign.listen()
        busy = foreign.getsockname()[1]
        with pytest.raises(Conflict) as err:
            runs.start(ctx, "one", port=busy)
        assert f"Port {busy} is in use" in err.value.message
    # both at the same moment, from two processes: different ports
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "comfymanager",
                "--data-dir",
                str(project_data_dir),
                "start",
                name,
                "--wait",
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("one", "two")
    ]
    outs = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    ports = {o["port"] for o in outs}
    assert len(ports) == 2
    for o in outs:
        assert requests.get(o["url"] + "/system_stats", timeout=5).status_code == 200
    # a fixed port held by one of ours names the project
    one_port = next(o["port"] for o in outs if o["project"] == "one")
    ProjectStore(ctx.paths).update("two", port=one_port)
    runs.stop(ctx, "two")
    with pytest.raises(Conflict) as err:
        runs.start(ctx, "two")
    assert "in use by project 'one'" in err.value.message


def test_cancel_during_install_then_resume(ctx: CoreContext) -> None:
    token = CancelToken()
    stages: list[str] = []

    def on_progress(p: object) -> None:
        stage = getattr(p, "stage", "")
        stages.append(stage)
        if stage == "venv":
            token.cancel()

    spec = install.ProjectSpec(name="cancelme", torch_backend="none")
    from comfymanager.core.errors import Cancelled

    with pytest.raises(Cancelled):
        install.create_project(ctx, spec, report=Reporter(progress=on_progress), cancel=token)
    project = ProjectStore(ctx.paths).load("cancelme")
    assert project.install.status == "cancelled"
    assert "requirements" not in project.install.stages_done
    assert runs.status(ctx, project).state == "install-failed"
    result = install.install_project(ctx, "cancelme", report=Reporter(), cancel=CancelToken())
    assert result.commit
    assert ProjectStore(ctx.paths).load("cancelme").install.status == "ready"


def test_killed_install_resumes_and_half_made_venv_is_rebuilt(
    project_data_dir: Path, ctx: CoreContext
) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "comfymanager",
            "--data-dir",
            str(project_data_dir),
            "create",
            "interrupted",
            "--torch-backend",
            "none",
            "-v",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:  # kill it while the environment is being made
        if "Creating the Python environment" in line or "Installing ComfyUI" in line:
            break
    proc.kill()
    proc.wait()
    proc.stderr.close()
    st = runs.status(ctx, ProjectStore(ctx.paths).load("interrupted"))
    assert st.state == "install-failed"
    # break what is there: a venv without our marker is what a kill leaves behind
    venv = project_data_dir / "projects/interrupted/venv"
    venv.mkdir(exist_ok=True)
    (venv / ".comfymanager-venv").unlink(missing_ok=True)
    (venv / "junk").write_text("half made")
    out = cli(project_data_dir, "repair", "interrupted")
    assert "ready" in out.stderr
    assert not (venv / "junk").exists()
    cli(project_data_dir, "start", "interrupted", "--wait")
    cli(project_data_dir, "stop", "interrupted")


def test_project_busy_with_another_job_is_refused(ctx: CoreContext) -> None:
    _make(ctx, "busy")
    started = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with install.project_lock(ctx, "busy"):
            started.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    started.wait(5)
    try:
        with pytest.raises(Conflict) as err:
            install.install_project(ctx, "busy", report=Reporter(), cancel=CancelToken())
        assert "busy with another job" in err.value.message
    finally:
        release.set()
        t.join()


def test_cuda_torch_without_an_nvidia_gpu_launches_with_cpu_and_says_so(
    ctx: CoreContext,
) -> None:
    from comfymanager.core.install import hardware

    _make(ctx, "cudaless")
    store = ProjectStore(ctx.paths)
    store.update("cudaless", torch_backend_resolved="cu128", torch_version="2.8.0+cu128")
    gpu = hardware.detect().vendor == "nvidia"
    runs.start(ctx, "cudaless")
    st = runs.wait_ready(ctx, "cudaless", timeout=60)
    argv = requests.get(f"{st.url}/system_stats", timeout=5).json()["system"]["argv"]
    log = store.dirs("cudaless").comfyui_log.read_text()
    if gpu:  # this machine can run CUDA torch: nothing added
        assert argv.count("--cpu") == 1 and not st.device_note
    else:
        assert "--cpu" in argv
        assert st.device_note.startswith("--cpu added") and "NVIDIA" in st.device_note
        assert st.device_note in log
    # the user's own device flag wins: nothing added, no note
    runs.stop(ctx, "cudaless")
    store.update("cudaless", launch_args=["--cpu"])
    runs.start(ctx, "cudaless")
    st = runs.wait_ready(ctx, "cudaless", timeout=60)
    argv = requests.get(f"{st.url}/system_stats", timeout=5).json()["system"]["argv"]
    assert argv.count("--cpu") == 1 and not st.device_note
