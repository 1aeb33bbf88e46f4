"""Names, progress maths, ports, the process wrapper and git sources, on real resources."""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from comfymanager.core import process
from comfymanager.core.errors import Cancelled, Conflict, InvalidInput, NotFound
from comfymanager.core.install import hardware, sources
from comfymanager.core.paths import DataPaths
from comfymanager.core.progress import CancelToken, Progress, RateMeter, Reporter, Throttle
from comfymanager.core.projects import Project, ProjectStore, validate_id
from comfymanager.core.run import ports
from tests.fixtures.comfyui import FakeComfyUI


@pytest.mark.parametrize(
    "name",
    [
        "",
        "   ",
        "../x",
        "a/b",
        "a\\b",
        "..",
        "CON",
        "nul.txt",
        "x" * 65,
        "-flag",
        "trailing.",
        "tab\tname",
        "emoji😀",
    ],
)
def test_bad_project_names_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(InvalidInput) as err:
        validate_id(name)  # a folder name; display names are free text (test_project_slugs)
    assert err.value.fix and "letters, digits" in err.value.fix


@pytest.mark.parametrize("name", ["demo", "SDXL turbo", "flux-1.dev", "a_b", "x" * 64])
def test_good_project_names(name: str) -> None:
    assert validate_id(name) == name


@pytest.mark.allow_error_log
def test_a_corrupt_project_is_listed_not_fatal(tmp_path: Path) -> None:
    store = ProjectStore(DataPaths(tmp_path).ensure())
    store.create(Project(id="good"))
    store.create(Project(id="bad"))
    (tmp_path / "projects/bad/project.json").write_text("{broken")
    (tmp_path / "projects/bad/project.json.bak").unlink(missing_ok=True)
    projects, broken = store.list()
    assert [p.id for p in projects] == ["good"]
    assert broken[0].id == "bad" and "could not be parsed" in broken[0].reason


def test_delete_removes_only_the_project(tmp_path: Path) -> None:
    paths = DataPaths(tmp_path / "data").ensure()
    outside = tmp_path / "precious.txt"
    outside.write_text("keep")
    store = ProjectStore(paths)
    store.create(Project(id="p"))
    (paths.projects / "p" / "link").symlink_to(outside)
    store.delete_files("p")
    assert not (paths.projects / "p").exists()
    assert outside.read_text() == "keep"


def test_rate_meter_and_throttle() -> None:
    now = [0.0]
    meter = RateMeter(window=5, clock=lambda: now[0])
    for i in range(11):
        now[0] = i * 0.5
        meter.add(i * 1000)
    assert meter.speed() == pytest.approx(2000)
    assert meter.eta(20000) == pytest.approx(5.0)
    seen: list[Progress] = []
    t = Throttle(seen.append, interval=0.1, clock=lambda: now[0])
    for i in range(100):
        t(Progress("dl", done=i, total=100))
    t(Progress("dl", done=100, total=100))
    assert [p.done for p in seen] == [0, 100]


def test_run_tool_streams_lines_and_cancel_kills_the_tree() -> None:
    lines: list[str] = []
    out = process.run_tool(
        [sys.executable, "-c", "print('a');print('b\\rc')"], on_line=lines.append
    )
    assert out.ok and lines == ["a", "c"]
    token = CancelToken()
    child_code = (
        "import subprocess,sys,time;subprocess.Popen([sys.executable,'-c',"
        "'import time;time.sleep(60)']);print('ready',flush=True);time.sleep(60)"
    )
    pids: list[int] = []

    def on_line(line: str) -> None:
        if line == "ready":
            me = psutil.Process()
            pids.extend(c.pid for c in me.children(recursive=True))
            token.cancel()

    t0 = time.monotonic()
    with pytest.raises(Cancelled):
        process.run_tool([sys.executable, "-c", child_code], on_line=on_line, cancel=token)
    assert time.monotonic() - t0 < 10
    assert len(pids) >= 2
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids)


def test_failed_tool_error_names_the_last_line() -> None:
    out = process.run_tool([sys.executable, "-c", "import sys;print('boom: no space');sys.exit(2)"])
    with pytest.raises(Exception) as err:
        process.check(out, "Doing the thing")
    assert "exited with code 2" in str(err.value) and "boom: no space" in str(err.value)
    with pytest.raises(NotFound):
        process.run_tool(["definitely-not-a-program-xyz"])


def test_clean_env_drops_leaky_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIRTUAL_ENV", "/x/venv")
    monkeypatch.setenv("PYTHONHOME", "/x")
    monkeypatch.setenv("UV_INDEX_URL", "http://x")
    monkeypatch.setenv("KEEP_ME", "1")
    env = process.clean_env()
    assert "VIRTUAL_ENV" not in env and "PYTHONHOME" not in env and "UV_INDEX_URL" not in env
    assert env["KEEP_ME"] == "1"


def test_ports_pool_skips_busy_and_never_doubles(tmp_path: Path) -> None:
    paths = DataPaths(tmp_path).ensure()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        got = ports.allocate(
            paths, "a", fixed=None, port_range=(busy, busy + 5), in_use_by_projects=dict
        )
        assert got != busy
        with pytest.raises(Conflict) as err:
            ports.allocate(
                paths, "b", fixed=busy, port_range=(busy, busy + 5), in_use_by_projects=dict
            )
        assert f"Port {busy} is in use" in err.value.message
    results: list[int] = []
    lock = threading.Lock()

    def grab(name: str) -> None:
        p = ports.allocate(
            paths, name, fixed=None, port_range=(got, got + 10), in_use_by_projects=dict
        )
        with lock:
            results.append(p)

    threads = [threading.Thread(target=grab, args=(f"p{i}",)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 5


def test_sources_list_versions_and_checkout(fake_comfyui: FakeComfyUI, tmp_path: Path) -> None:
    refs = sources.list_remote(str(fake_comfyui.repo))
    assert refs.releases() == ["v0.3.2", "v0.3.1"]
    assert refs.tags["v0.3.2"] == fake_comfyui.tags["v0.3.2"]  # annotated tag peeled
    assert refs.head_branch == "master"
    dest = tmp_path / "co"
    commit = sources.checkout(
        str(fake_comfyui.repo),
        "v0.3.1",
        dest,
        stage="clone",
        report=Reporter(),
        cancel=CancelToken(),
    )
    assert commit == fake_comfyui.tags["v0.3.1"]
    assert not (dest / "comfyui_version.py").exists()
    again = sources.checkout(
        str(fake_comfyui.repo),
        "master",
        dest,
        stage="clone",
        report=Reporter(),
        cancel=CancelToken(),
    )
    assert again == fake_comfyui.head and (dest / "NEWS.md").exists()
    with pytest.raises(NotFound):
        sources.checkout(
            str(fake_comfyui.repo),
            "nope",
            dest,
            stage="clone",
            report=Reporter(),
            cancel=CancelToken(),
        )
    with pytest.raises(NotFound):
        sources.validate_source(str(tmp_path / "missing"))


def test_cuda_backend_follows_the_driver() -> None:
    assert hardware.cuda_backend_for_driver("581.15") == "cu130"
    assert hardware.cuda_backend_for_driver("570.86.10") == "cu128"
    assert hardware.cuda_backend_for_driver("535.1") == "cu126"
    assert hardware.cuda_backend_for_driver("470.0") == "cpu"
    hw = hardware.detect()  # this machine: no GPU
    assert hw.suggested_backend in ("cpu", "cu126", "cu128", "cu130", "rocm", "xpu", "pypi")
    assert hardware.resolve_backend("cu128") == "cu128"
