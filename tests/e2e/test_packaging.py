"""The PyInstaller bundle builds, carries its icons and uv, and the frozen program runs.

Builds with packaging/build.sh (PyInstaller is added for the run with ``uv run --with``; the
only network it needs is PyPI), then runs the built program the way a user's double-click or
command line would. Bundle size and frozen start-up time are written to perf_packaging.md in the
system's temp folder. Linux only here: the CI ``bundle`` job builds and smoke-tests the bundle on
Windows and macOS.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest

from comfymanager import __version__
from comfymanager.ui.resources import all_resource_names
from tests.fixtures.hf_server import HfServer
from tests.fixtures.http_server import make_safetensors

REPO = Path(__file__).resolve().parents[2]
PERF_FILE = Path(tempfile.gettempdir()) / "perf_packaging.md"
EXE_SUFFIX = ".exe" if sys.platform == "win32" else ""


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def _run(
    argv: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)


def _timed(argv: list[str], env: dict[str, str], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = _run(argv, env)
        times.append(time.perf_counter() - start)
        assert result.returncode == 0, result.stderr
    return statistics.median(times)


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.linux_only(reason="bash packaging/build.sh; the CI bundle job builds the others")
def test_bundle_builds_and_runs(tmp_path: Path, hf_server: HfServer) -> None:
    if shutil.which("uv") is None and not (Path(sys.executable).parent / "uv").exists():
        pytest.fail("uv is needed to build the bundle (it adds PyInstaller for the build)")
    dist, work = tmp_path / "dist", tmp_path / "work"
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    command = [
        "bash",
        str(REPO / "packaging" / "build.sh"),
        "--dist",
        str(dist),
        "--work",
        str(work),
    ]
    start = time.perf_counter()
    build = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=1100, env=env)
    build_seconds = time.perf_counter() - start
    assert build.returncode == 0, f"build failed:\n{build.stdout[-3000:]}\n{build.stderr[-5000:]}"

    bundle = dist / "comfymanager"
    program = bundle / f"comfymanager{EXE_SUFFIX}"
    if sys.platform == "win32":
        program = bundle / "comfymanager-cli.exe"
    internal = bundle / "_internal"
    assert program.is_file()

    # every icon and installer file the app references is inside the bundle
    missing = [n for n in all_resource_names() if not (internal / "resources" / n).is_file()]
    assert missing == []

    # the bundled uv runs (project environments are built with it)
    uv_bin = internal / "uv" / f"uv{EXE_SUFFIX}"
    uv_version = _run([str(uv_bin), "--version"], env)
    assert uv_version.returncode == 0
    assert uv_version.stdout.startswith("uv ")

    run_env = {**env, "QT_QPA_PLATFORM": "offscreen", "COMFYMANAGER_DATA_DIR": str(tmp_path / "d")}
    version = _run([str(program), "--version"], run_env)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"comfymanager {__version__}"
    help_text = _run([str(program), "--help"], run_env)
    assert help_text.returncode == 0
    assert "usage: comfymanager" in help_text.stdout
    listed = _run([str(program), "--data-dir", str(tmp_path / "d"), "list"], run_env)
    assert listed.returncode == 0, listed.stderr  # core context, settings and paths load frozen

    # huggingface_hub and hf_xet work frozen: a Hugging Face file stored in Xet comes through Xet
    model = make_safetensors(1024 * 1024, seed=5)
    url = hf_server.add("org/frozen", "frozen.safetensors", model, xet=True)
    fetched = _run(
        [str(program), "--data-dir", str(tmp_path / "d"), "download", url, "--folder", "loras"],
        {**run_env, "HF_ENDPOINT": hf_server.endpoint},
    )
    assert fetched.returncode == 0, fetched.stderr
    assert Path(fetched.stdout.strip()).read_bytes() == model
    assert hf_server.xet_token_requests and hf_server.cdn.bytes_sent() == 0

    has_gui = (REPO / "comfymanager" / "app.py").is_file()
    smoke_argv = [str(program), "--data-dir", str(tmp_path / "smoke"), "--smoke-test"]
    if has_gui:
        smoke = _run(smoke_argv, run_env, timeout=120)
        assert smoke.returncode == 0, f"{smoke.stdout}\n{smoke.stderr}"

    size = _folder_size(bundle)
    version_time = _timed([str(program), "--version"], run_env)
    list_time = _timed([str(program), "--data-dir", str(tmp_path / "d"), "list"], run_env)
    source_time = _timed([sys.executable, "-m", "comfymanager", "--version"], run_env)
    smoke_time = _timed(smoke_argv, run_env) if has_gui else None
    biggest = sorted(
        ((p.stat().st_size, p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file()),
        reverse=True,
    )[:8]
    lines = [
        "# Packaging figures",
        "",
        f"Measured by tests/e2e/test_packaging.py on {sys.platform}, Python "
        f"{sys.version.split()[0]}, {os.cpu_count()} CPUs.",
        "",
        f"- Build command: `{' '.join(['packaging/build.sh', '--dist', 'DIST', '--work', 'WORK'])}`"
        f" (PyInstaller via `uv run --no-sync --with 'pyinstaller>=6.10,<7'`)",
        f"- Build time (incl. build.sh's own checks): {build_seconds:.0f} s",
        f"- Bundle size (dist/comfymanager/): {size / 1e6:.0f} MB "
        f"({sum(1 for p in bundle.rglob('*') if p.is_file())} files)",
        f"- Frozen start, `comfymanager --version` (median of 3): {version_time:.2f} s",
        f"- Frozen `comfymanager list` (core context, empty data root): {list_time:.2f} s",
        f"- For comparison, from source `python -m comfymanager --version`: {source_time:.2f} s",
        (
            f"- Frozen start, `comfymanager --smoke-test` offscreen (median of 3): "
            f"{smoke_time:.2f} s"
            if smoke_time is not None
            else "- `--smoke-test`: not measured (comfymanager/app.py does not exist yet)"
        ),
        "",
        "Largest files:",
        "",
        *[f"- {s / 1e6:.1f} MB `{p}`" for s, p in biggest],
        "",
    ]
    PERF_FILE.write_text("\n".join(lines), encoding="utf-8")


def _uv() -> str:
    beside = Path(sys.executable).parent / f"uv{EXE_SUFFIX}"
    found = str(beside) if beside.exists() else shutil.which("uv")
    if found is None:
        pytest.fail("uv is needed to build the wheel")
    return found


def test_installed_wheel_finds_its_resources(tmp_path: Path) -> None:
    out = tmp_path / "wheel"
    build = subprocess.run(
        [_uv(), "build", "--wheel", "--out-dir", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = out.glob("comfymanager-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    assert all((site / "comfymanager" / "_resources" / n).is_file() for n in all_resource_names())
    # the unpacked wheel shadows the source checkout: lookups must land in _resources
    probe = (
        "from comfymanager.ui.resources import resource_path;"
        "print(resource_path('icons/comfymanager.ico'))"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "QT_QPA_PLATFORM": "offscreen"}
    found = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert found.returncode == 0, found.stderr
    assert Path(found.stdout.strip()) == site / "comfymanager/_resources/icons/comfymanager.ico"
