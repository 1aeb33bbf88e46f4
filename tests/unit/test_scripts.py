"""Set-up on a fresh machine: uv found by its full path when it is not on PATH, run.sh builds an
environment without the dev tools, the Qt platform check says in one line why no window can
open (no display, a missing library read by the real ldd from a real ELF file), and tests that
need the node database fail under CI instead of skipping."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from comfymanager import platform_check

ROOT = Path(__file__).resolve().parents[2]
BASH = shutil.which("bash")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="xcb is Linux's")
needs_bash = pytest.mark.skipif(  # run.sh & co. are for Linux and macOS (Windows: the bundle)
    BASH is None or os.name == "nt", reason="the scripts are bash scripts for Linux and macOS"
)


def _real_uv() -> str:
    found = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    assert Path(found).is_file(), "the tests run under uv"
    return found


@needs_bash
def test_uv_off_path_is_found_by_its_full_path_not_installed_again(tmp_path: Path) -> None:
    home = tmp_path / "home"
    user_bin = home / ".local" / "bin"
    user_bin.mkdir(parents=True)
    (user_bin / "uv").symlink_to(_real_uv())
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "PYTHONUSERBASE": str(home / ".local")}
    out = subprocess.run(
        [str(BASH), "-c", '. scripts/common.sh && find_uv && echo "$UV"'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert out.stdout.strip() == str(user_bin / "uv")
    assert "installing" not in out.stderr


@needs_bash
@pytest.mark.slow
def test_run_sh_installs_only_what_the_app_needs(tmp_path: Path) -> None:
    copy = tmp_path / "clone"
    shutil.copytree(
        ROOT, copy, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info")
    )
    env = {
        k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")
    }
    env["COMFYMANAGER_UV"] = _real_uv()
    out = subprocess.run(
        [str(BASH), "scripts/run.sh", "--version"],
        cwd=copy, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("comfymanager ")
    site = next((copy / ".venv").glob("lib*/python*/site-packages"))
    assert (site / "PySide6").is_dir()
    for dev_tool in ("pytest", "ruff", "mypy"):
        assert not (site / dev_tool).exists(), dev_tool


@linux_only
def test_no_display_is_one_line_on_stderr_not_an_abort() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["QT_QPA_PLATFORM"] = "xcb"
    out = subprocess.run(
        [sys.executable, "-m", "comfymanager"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "DISPLAY is not set" in lines[0] and "Fix:" in lines[0]


@linux_only
@pytest.mark.skipif(shutil.which("ldd") is None, reason="ldd is how the check reads the plugin")
def test_a_missing_library_is_named_with_the_command_that_installs_it(tmp_path: Path) -> None:
    plugin = platform_check.xcb_plugin()
    assert plugin is not None
    assert platform_check.missing_libraries(plugin) == []  # this machine has them all
    # the same plugin needing a library this system lacks (its name patched, same length)
    data = plugin.read_bytes()
    assert data.count(b"libxcb-cursor.so.0\0") == 1
    platforms = tmp_path / "plugins" / "platforms"  # its RUNPATH: $ORIGIN/../../lib
    platforms.mkdir(parents=True)
    (tmp_path / "lib").symlink_to(plugin.parents[2] / "lib")
    broken = platforms / "libqxcb.so"
    broken.write_bytes(data.replace(b"libxcb-cursor.so.0\0", b"libxcb-cursoR.so.0\0"))
    assert platform_check.missing_libraries(broken) == ["libxcb-cursoR.so.0"]
    line = platform_check.qt_platform_problem({"DISPLAY": ":0"}, plugin=broken)
    assert line is not None and "libxcb-cursoR.so.0" in line
    assert "install your distribution's packages" in line and "\n" not in line
    # on Debian/Ubuntu the known libraries come with the apt-get line
    ldd_text = (
        "\tlibxcb-cursor.so.0 => not found\n\tlibxcb-icccm.so.4 => not found\n"
        "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n"
    )
    line = platform_check.qt_platform_problem(
        {"DISPLAY": ":0"}, plugin=broken, ldd=lambda _p: ldd_text, debian=True
    )
    assert line is not None
    assert "Fix: sudo apt-get install -y libxcb-cursor0 libxcb-icccm4 " in line
    # offscreen (tests, --smoke-test) and Wayland sessions do not need xcb
    assert platform_check.qt_platform_problem({"QT_QPA_PLATFORM": "offscreen"}) is None
    assert platform_check.qt_platform_problem({"WAYLAND_DISPLAY": "wayland-0"}) is None


@pytest.mark.slow
def test_tests_needing_the_node_database_fail_under_ci_and_say_how_to_point_at_it(
    tmp_path: Path,
) -> None:
    env = dict(os.environ, COMFYMANAGER_TEST_NODE_DB=str(tmp_path / "nowhere"))
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs",
            "tests/unit/workflow/test_nodedb.py::test_file_url_source"]  # fmt: skip
    env.pop("CI", None)
    skipped = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert skipped.returncode == 0 and "1 skipped" in skipped.stdout
    assert "COMFYMANAGER_TEST_NODE_DB" in skipped.stdout
    failed = subprocess.run(
        args, cwd=ROOT, env=dict(env, CI="true"), capture_output=True, text=True, timeout=120
    )
    assert failed.returncode == 1 and "1 failed" in failed.stdout
    assert "extension-node-map.json" in failed.stdout


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_set_up_scripts_pass_shellcheck() -> None:
    scripts = [ROOT / "scripts" / n for n in ("run.sh", "test.sh", "common.sh")]
    out = subprocess.run(
        ["shellcheck", "-x", *map(str, scripts)], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout


@linux_only
@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb for a real X server")
def test_a_display_with_no_x_server_is_named_and_a_running_one_passes() -> None:
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", "1", "-nolisten", "tcp", "-screen", "0", "640x480x24"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        display = f":{server.stdout.readline().strip()}"  # written once it accepts clients
        assert platform_check.local_display_answers(display)
        assert platform_check.qt_platform_problem({"DISPLAY": display}) is None
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stdout is not None:
            server.stdout.close()
    line = platform_check.qt_platform_problem({"DISPLAY": display})
    assert line is not None and f"no X server answers on display {display}" in line
    assert platform_check.local_display_answers("remote.example:0")  # not probed
