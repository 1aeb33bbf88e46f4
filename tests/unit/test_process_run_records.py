"""Run records classify every instant of a killed start; the supervisor obeys a stop request."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from comfymanager.core import persist
from comfymanager.core.context import CoreContext, build_core_context
from comfymanager.core.projects import InstallState, Project, ProjectStore
from comfymanager.core.run import runs, supervise
from tests.fixtures.portable import posix_only


@pytest.fixture
def ctx(data_dir: Path) -> CoreContext:
    c = build_core_context(data_dir)
    ProjectStore(c.paths).create(Project(id="p", install=InstallState(status="ready")))
    return c


def _dead_identity() -> dict[str, float]:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    ident = psutil.Process(p.pid).create_time()
    p.wait()
    return {"pid": p.pid, "create_time": ident}


def _record(ctx: CoreContext, run_id: str, **extra: object) -> None:
    dirs = ProjectStore(ctx.paths).dirs("p")
    persist.write_json(
        dirs.run_file,
        runs.RUN_KIND,
        runs.RUN_VERSION,
        {
            "run_id": run_id,
            "port": 4999,
            "url": "http://127.0.0.1:4999",
            "auto_port": True,
            "started_at": time.time(),
            "argv": [],
            "owner": _dead_identity(),
            "supervisor": None,
            "stop_requested_at": None,
            **extra,
        },
    )


def _state(ctx: CoreContext) -> runs.Status:
    return runs.status(ctx, ProjectStore(ctx.paths).load("p"), probe_http=False)


def test_start_killed_before_spawning_is_stale_not_starting_for_ever(ctx: CoreContext) -> None:
    _record(ctx, "r-dead")
    st = _state(ctx)
    assert st.state == "stopped" and "interrupted" in st.message


def test_start_killed_just_after_spawning_finds_the_supervisor_by_its_run_id(
    ctx: CoreContext,
) -> None:
    _record(ctx, "r-live")
    # a supervisor that has not written child.json yet: only its argv names the run
    sup = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "--run-id", "r-live"]
    )
    try:
        assert _state(ctx).state == "starting"
        assert runs.running_ports(ctx) == {4999: "p"}
    finally:
        sup.kill()
        sup.wait()
    assert _state(ctx).state == "stopped"


def test_records_of_another_run_are_stale(ctx: CoreContext) -> None:
    dirs = ProjectStore(ctx.paths).dirs("p")
    _record(ctx, "r-new", supervisor=_dead_identity())
    me = psutil.Process()
    # a child.json and exit.json of an older run: neither makes this run alive or crashed
    dirs.child_file.write_text(
        json.dumps({"run_id": "r-old", "pid": me.pid, "create_time": me.create_time()})
    )
    dirs.exit_file.write_text(json.dumps({"run_id": "r-old", "exit_code": 0}))
    st = _state(ctx)
    assert st.state == "crashed" and st.exit_code is None  # r-new's supervisor died unrecorded
    assert "never launched" in st.message


def _supervise(tmp: Path, *cmd: str, grace: str = "10") -> subprocess.Popen[bytes]:
    (tmp / "run.json").write_text(json.dumps({"run_id": "r1"}))
    return subprocess.Popen(
        [
            sys.executable,
            "-I",
            str(Path(supervise.__file__)),
            "--log-file",
            str(tmp / "comfyui.log"),
            "--exit-file",
            str(tmp / "exit.json"),
            "--child-file",
            str(tmp / "child.json"),
            "--run-file",
            str(tmp / "run.json"),
            "--run-id",
            "r1",
            "--cwd",
            str(tmp),
            "--stop-grace",
            grace,
            "--",
            *cmd,
        ]
    )


def _wait_child(tmp: Path) -> None:
    deadline = time.monotonic() + 20
    while True:
        data = json.loads((tmp / "child.json").read_text()) if (tmp / "child.json").exists() else {}
        if data.get("pid"):
            return
        assert time.monotonic() < deadline
        time.sleep(0.02)


@posix_only("exit.json names the signal; on Windows ComfyUI ends by CTRL_BREAK or its job")
def test_a_stop_request_file_stops_comfyui_as_windows_does(tmp_path: Path) -> None:
    sup = _supervise(tmp_path, sys.executable, "-c", "import time; time.sleep(60)")
    _wait_child(tmp_path)
    (tmp_path / "stop.request").write_text("stop\n")  # what runs.stop writes on Windows
    assert sup.wait(timeout=20) == 0
    ended = json.loads((tmp_path / "exit.json").read_text())
    assert ended["signal"] == "SIGTERM" and ended["stop_requested"] is True


@posix_only("exit.json names the signal; on Windows ComfyUI ends by CTRL_BREAK or its job")
def test_a_comfyui_ignoring_stop_is_killed_after_the_grace(tmp_path: Path) -> None:
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    sup = _supervise(tmp_path, sys.executable, "-c", stubborn, grace="0.3")
    _wait_child(tmp_path)
    (tmp_path / "stop.request").write_text("stop\n")
    assert sup.wait(timeout=20) == 0
    assert json.loads((tmp_path / "exit.json").read_text())["signal"] == "SIGKILL"


def test_a_stale_record_naming_another_program_is_never_killed(ctx: CoreContext) -> None:
    dirs = ProjectStore(ctx.paths).dirs("p")
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        ident = psutil.Process(bystander.pid).create_time()
        dirs.child_file.write_text(
            json.dumps({"run_id": "r-old", "pid": bystander.pid, "create_time": ident})
        )
        _record(ctx, "r-new")
        runs.stop(ctx, "p", timeout=1)
        assert bystander.poll() is None, "a process that is not this project's was signalled"
    finally:
        bystander.kill()
        bystander.wait()


def test_a_stop_before_comfyui_is_spawned_starts_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "spawned"
    (tmp_path / "run.json").write_text(json.dumps({"run_id": "r1"}))
    (tmp_path / "stop.request").write_text("stop\n")
    sup = supervise.Supervisor(
        supervise.argparse.Namespace(
            log_file=tmp_path / "comfyui.log",
            exit_file=tmp_path / "exit.json",
            child_file=tmp_path / "child.json",
            run_file=tmp_path / "run.json",
            run_id="r1",
            cwd=tmp_path,
            max_bytes=supervise.LOG_MAX_BYTES,
            stop_grace=1.0,
        ),
        [sys.executable, "-c", f"open({str(marker)!r}, 'w')"],
    )
    sup.request_stop()  # SIGTERM arrived while the supervisor was starting
    assert sup.run() == 0
    assert not marker.exists()
    ended = json.loads((tmp_path / "exit.json").read_text())
    assert ended["exit_code"] is None and ended["stop_requested"] is True


def test_the_log_pane_follows_a_copy_and_truncate_rotation(tmp_path: Path) -> None:
    from comfymanager.core.run.monitor import LogTail

    log = tmp_path / "comfyui.log"
    log.write_text("one\ntwo\n")
    follow = LogTail(log, from_end=False)
    assert follow.read() == ["one", "two"]
    with open(log, "ab") as writer:  # ComfyUI's own handle, appending
        writer.write(b"three\n")
        writer.flush()
        assert follow.read() == ["three"]
        supervise.rotate_live(log)  # what the supervisor does at 10 MB
        writer.write(b"four\n")
        writer.flush()
    assert follow.read() == ["four"]
    assert (tmp_path / "comfyui.1.log").read_text() == "one\ntwo\nthree\n"


def test_a_supervisor_that_cannot_run_is_reported_with_its_own_words(ctx: CoreContext) -> None:
    """The project's Python is broken: the supervisor dies at once, before ComfyUI exists."""
    dirs = ProjectStore(ctx.paths).dirs("p")
    dirs.logs.mkdir(parents=True, exist_ok=True)
    with open(dirs.logs / "supervisor.log", "wb") as err:
        sup = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.exit('Fatal Python error: init_fs_encoding')"],
            stderr=err,
        )
    ident = {"pid": sup.pid, "create_time": psutil.Process(sup.pid).create_time()}
    sup.wait()
    _record(ctx, "r-broken", supervisor=ident)
    st = _state(ctx)
    assert st.state == "crashed" and "never launched" in st.message
    assert any("init_fs_encoding" in ln for ln in st.last_lines)
