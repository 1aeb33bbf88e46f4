"""The run layer under faults: real ComfyUI stand-ins, real CLI processes, real SIGKILLs.

Each test asserts what a user would check: the state ``status`` shows, the URL that answers, the
processes left behind (none), and what ``start --wait`` says when it fails.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest
import requests

from comfymanager.core.context import CoreContext, build_core_context
from comfymanager.core.errors import Conflict
from comfymanager.core.install.envs import venv_python
from comfymanager.core.projects import ProjectStore
from comfymanager.core.run import ports, runs
from tests.fixtures.comfyui import cli, create_installed
from tests.fixtures.portable import kill_hard, was_killed

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("stop_all")]


@pytest.fixture(autouse=True)
def own_claims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Port claims of this test only (the CLI subprocesses inherit it)."""
    monkeypatch.setenv(ports.RUNTIME_ENV, str(tmp_path / "runtime"))


@pytest.fixture
def ctx(project_data_dir: Path) -> CoreContext:
    return build_core_context(project_data_dir)


def _status(ctx: CoreContext, name: str) -> runs.Status:
    return runs.status(ctx, ProjectStore(ctx.paths).load(name))


def _until(check: object, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.05)


def _project_processes(ctx: CoreContext, name: str) -> list[psutil.Process]:
    """Every live process started for this project (supervisor or ComfyUI)."""
    root = str(ProjectStore(ctx.paths).dirs(name).root)
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE or proc.pid == os.getpid():
                continue
            if any(root in part for part in proc.info["cmdline"] or []):
                found.append(proc)
        except (psutil.Error, TypeError):
            continue
    return found


def _comfyuis(ctx: CoreContext, name: str) -> list[psutil.Process]:
    return [p for p in _project_processes(ctx, name) if p.cmdline()[1:2] == ["main.py"]]


def _no_orphans(ctx: CoreContext, name: str) -> None:
    _until(lambda: not _project_processes(ctx, name), 10, f"no processes left for {name}")


def _start_cli(
    root: Path, name: str, *extra: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    full = {**os.environ, **(env or {})}
    full.pop("VIRTUAL_ENV", None)
    return subprocess.Popen(
        [sys.executable, "-m", "comfymanager", "--data-dir", str(root), "start", name, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full,
    )


class _Foreign(BaseHTTPRequestHandler):
    """Another program that answers /system_stats with ComfyUI's shape."""

    def do_GET(self) -> None:
        body = json.dumps(
            {"system": {"python_version": "3.12", "comfyui_version": "9.9"}, "devices": []}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_a: object) -> None:
        pass


@pytest.fixture
def foreign() -> Iterator[list[ThreadingHTTPServer]]:
    servers: list[ThreadingHTTPServer] = []
    yield servers
    for s in servers:
        s.shutdown()
        s.server_close()


def _serve_foreign(servers: list[ThreadingHTTPServer], port: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), _Foreign)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    servers.append(server)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_starts_at_once_spawn_one_comfyui(project_data_dir: Path, ctx: CoreContext) -> None:
    create_installed(project_data_dir, "twice")
    procs = [_start_cli(project_data_dir, "twice", "--wait", "--json") for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 1], outs
    loser = next(err for p, (_o, err) in zip(procs, outs, strict=True) if p.returncode)
    url = _status(ctx, "twice").url
    assert f"already starting on {url}" in loser or f"already running on {url}" in loser, loser
    assert len(_comfyuis(ctx, "twice")) == 1
    assert requests.get(f"{url}/system_stats", timeout=5).status_code == 200
    runs.stop(ctx, "twice")
    _no_orphans(ctx, "twice")
    assert _status(ctx, "twice").state == "stopped"


KILL_POINTS = ("claimed", "recorded", "spawned", "updated")


def test_cli_killed_at_every_point_of_start_recovers(
    project_data_dir: Path, ctx: CoreContext
) -> None:
    create_installed(project_data_dir, "k")
    held = []
    for point in KILL_POINTS:
        r = cli(project_data_dir, "start", "k", env={runs.KILL_AT_ENV: point}, check=False)
        assert was_killed(r.returncode), (point, r.stderr)
        st = _status(ctx, "k")  # what the next command (or the window) sees
        if point in ("claimed", "recorded"):  # nothing was spawned: stopped at once
            assert st.state == "stopped", (point, st)
            assert not _project_processes(ctx, "k")
            runs.start(ctx, "k")
            assert runs.wait_ready(ctx, "k", timeout=60).state == "running"
        else:  # the supervisor runs: found again (adopted), never a second one
            assert st.state in ("starting", "running"), (point, st)
            _until(lambda: _status(ctx, "k").state == "running", 30, f"{point}: running")
            with pytest.raises(Conflict) as err:
                runs.start(ctx, "k")
            assert "already running on http://127.0.0.1:" in err.value.message
        assert len(_comfyuis(ctx, "k")) == 1, point
        runs.stop(ctx, "k")
        _no_orphans(ctx, "k")
        assert _status(ctx, "k").state == "stopped"
        assert ports.claims() == {}, point
        held.append(point)
    assert held == list(KILL_POINTS)


def test_a_foreign_server_on_the_port_is_named_never_running(
    project_data_dir: Path,
    ctx: CoreContext,
    foreign: list[ThreadingHTTPServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    create_installed(project_data_dir, "fixed")
    port = _free_port()
    ProjectStore(ctx.paths).update("fixed", port=port)
    monkeypatch.setenv("FAKE_COMFYUI_MODE", "slow")
    monkeypatch.setenv("FAKE_COMFYUI_DELAY", "2")
    runs.start(ctx, "fixed")
    _serve_foreign(foreign, port)  # takes the port while ComfyUI is still loading
    assert requests.get(f"http://127.0.0.1:{port}/system_stats", timeout=5).status_code == 200
    st = _status(ctx, "fixed")
    assert st.state == "starting"
    assert f"port {port} is answered by" in st.foreign and f"(pid {os.getpid()})" in st.foreign
    assert "not by this project's ComfyUI" in st.message
    t0 = time.monotonic()
    with pytest.raises(runs.LaunchFailed) as err:
        runs.wait_ready(ctx, "fixed", timeout=60)
    assert time.monotonic() - t0 < 15  # at once when ComfyUI gives up, not at the timeout
    assert f"Port {port} is answered by" in err.value.message
    assert f"(pid {os.getpid()})" in err.value.message
    assert "address already in use" in err.value.details
    assert _status(ctx, "fixed").state == "crashed"


def test_an_automatic_port_lost_to_a_race_is_retried_on_the_next(
    project_data_dir: Path,
    ctx: CoreContext,
    foreign: list[ThreadingHTTPServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    create_installed(project_data_dir, "auto")
    monkeypatch.setenv("FAKE_COMFYUI_MODE", "slow")
    monkeypatch.setenv("FAKE_COMFYUI_DELAY", "1")
    first = runs.start(ctx, "auto")
    assert first.port is not None
    _serve_foreign(foreign, first.port)
    st = runs.wait_ready(ctx, "auto", timeout=60)
    assert st.state == "running" and st.port != first.port
    assert (
        requests.get(f"{st.url}/system_stats", timeout=5).json()["system"]["comfyui_version"]
        == "0.3.99"
    )


def test_comfyui_exiting_before_binding_fails_start_wait_at_once(project_data_dir: Path) -> None:
    create_installed(project_data_dir, "early")
    t0 = time.monotonic()
    r = cli(
        project_data_dir,
        "start",
        "early",
        "--wait",
        "--timeout",
        "120",
        env={"FAKE_COMFYUI_MODE": "crash-early"},
        check=False,
    )
    assert time.monotonic() - t0 < 20
    assert r.returncode == 1 and "Traceback" not in r.stderr.split("last lines")[0]
    assert "exited with code 1 before it was ready" in r.stderr
    lines = r.stderr.splitlines()
    assert any(ln.startswith("fix:") for ln in lines)  # cause and fix apart
    assert "fake start-up failure" in r.stderr  # the log's last lines


@pytest.mark.parametrize("mode", ["slow", "quiet"])
def test_late_binding_and_silent_comfyui_are_found(
    project_data_dir: Path, ctx: CoreContext, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    create_installed(project_data_dir, mode)
    monkeypatch.setenv("FAKE_COMFYUI_MODE", mode)
    monkeypatch.setenv("FAKE_COMFYUI_DELAY", "2")
    t0 = time.monotonic()
    runs.start(ctx, mode)
    assert _status(ctx, mode).state == "starting"
    st = runs.wait_ready(ctx, mode, timeout=60)
    assert st.state == "running" and st.pid
    if mode == "slow":
        assert time.monotonic() - t0 >= 2
    runs.stop(ctx, mode)
    _no_orphans(ctx, mode)


def test_comfyui_survives_its_supervisor_while_printing_10k_lines_a_second(
    project_data_dir: Path, ctx: CoreContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_installed(project_data_dir, "spam")
    monkeypatch.setenv("FAKE_COMFYUI_MODE", "spam")
    monkeypatch.setenv("FAKE_COMFYUI_SPAM", "10000")
    runs.start(ctx, "spam")
    st = runs.wait_ready(ctx, "spam", timeout=60)
    dirs = ProjectStore(ctx.paths).dirs("spam")
    run = runs.read_run(dirs)
    assert run is not None
    supervisor = psutil.Process(int(run["supervisor"]["pid"]))
    # it runs from the project's own Python, from a copy in the project
    assert supervisor.cmdline()[:3] == [
        str(venv_python(dirs.venv)),
        "-I",
        str(dirs.root / "supervise.py"),
    ]
    kill_hard(supervisor)
    _until(lambda: _status(ctx, "spam").supervisor_lost, 10, "supervisor lost")
    # ComfyUI keeps running and writing its log: wait for ~2 s worth of its output
    size = dirs.comfyui_log.stat().st_size
    _until(lambda: dirs.comfyui_log.stat().st_size > size + 1_400_000, 20, "log growth")
    assert st.pid and psutil.pid_exists(st.pid)
    assert requests.get(f"{st.url}/system_stats", timeout=5).status_code == 200
    now = _status(ctx, "spam")
    assert now.state == "running" and now.supervisor_lost and "supervisor is gone" in now.message
    shown = cli(project_data_dir, "status", "spam").stdout
    assert "supervisor: lost" in shown
    runs.stop(ctx, "spam", timeout=5)
    _no_orphans(ctx, "spam")
    assert _status(ctx, "spam").state == "stopped"


def test_restart_at_once_on_the_same_fixed_port(project_data_dir: Path, ctx: CoreContext) -> None:
    create_installed(project_data_dir, "again")
    port = _free_port()
    ProjectStore(ctx.paths).update("again", port=port)
    runs.start(ctx, "again")
    st = runs.wait_ready(ctx, "again", timeout=60)
    for _ in range(5):  # connections that ComfyUI closes: TIME_WAIT on its port
        requests.get(f"{st.url}/system_stats", timeout=5)
    runs.stop(ctx, "again")
    runs.start(ctx, "again")
    st2 = runs.wait_ready(ctx, "again", timeout=60)
    assert st2.port == port and st2.state == "running"


def test_bad_ports_are_clear_errors(project_data_dir: Path) -> None:
    for args in (
        ("start", "p", "--port", "99999"),
        ("start", "p", "--port", "80"),
        ("create", "q", "--port", "0"),
        ("start", "p", "--port", "abc"),
    ):
        r = cli(project_data_dir, *args, check=False)
        assert r.returncode == 1, (args, r.stderr)
        assert "Traceback" not in r.stderr
        assert "between 1024 and 65535" in r.stderr, r.stderr
    assert not (project_data_dir / "projects" / "q").exists()
