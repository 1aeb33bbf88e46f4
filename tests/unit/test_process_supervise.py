"""The supervisor: stdlib only, survives rotation errors, always writes exit.json."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from comfymanager.core.run import supervise

SOURCE = Path(supervise.__file__).with_suffix(".py")
PRINT_LOTS = (  # ~200 KB over ~1.5 s: the supervisor looks at the size twice a second
    "import sys, time\n"
    "for i in range(3000):\n"
    "    print(f'line {i} ' + 'x' * 60, file=sys.stderr, flush=True)\n"
    "    if i % 200 == 0: time.sleep(0.1)\n"
    "sys.exit(4)\n"
)


def test_supervisor_imports_only_the_standard_library() -> None:
    tree = ast.parse(SOURCE.read_text(encoding="utf-8"))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module.split(".")[0])
    assert modules, "no imports found: the check itself is broken"
    assert all(m in sys.stdlib_module_names or m == "__future__" for m in modules), modules


def _args(tmp: Path, *extra: str) -> list[str]:
    return [
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
        *extra,
    ]


def test_runs_alone_from_a_copy_with_an_isolated_python_and_rotates(tmp_path: Path) -> None:
    copy = tmp_path / "supervise.py"
    shutil.copy(SOURCE, copy)
    (tmp_path / "run.json").write_text(json.dumps({"run_id": "r1"}))
    # -I: no site-packages, no PYTHONPATH: comfymanager cannot be imported from here
    out = subprocess.run(
        [
            sys.executable,
            "-I",
            str(copy),
            *_args(tmp_path, "--max-bytes", "20000"),
            "--",
            sys.executable,
            "-c",
            PRINT_LOTS,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    ended = json.loads((tmp_path / "exit.json").read_text())
    assert ended["exit_code"] == 4 and ended["run_id"] == "r1"
    child = json.loads((tmp_path / "child.json").read_text())
    assert child["run_id"] == "r1" and child["pid"] and child["supervisor"]["pid"]
    assert (tmp_path / "comfyui.1.log").exists(), "the log was never rotated"
    text = "".join(p.read_text() for p in sorted(tmp_path.glob("comfyui*.log")))
    assert "line 2999" in text and "ComfyUI exited with code 4" in text


def test_a_stale_supervisor_starts_nothing(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text(json.dumps({"run_id": "newer"}))
    marker = tmp_path / "spawned"
    code = supervise.main(
        [*_args(tmp_path), "--", sys.executable, "-c", f"open({str(marker)!r}, 'w')"]
    )
    assert code == 0
    assert not marker.exists() and not (tmp_path / "exit.json").exists()


def test_rotation_errors_are_skipped_and_exit_json_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "run.json").write_text(json.dumps({"run_id": "r1"}))

    def sharing_violation(*_a: object, **_k: object) -> None:
        raise PermissionError(13, "The process cannot access the file (WinError 32)")

    monkeypatch.setattr(supervise, "rotate_live", sharing_violation)
    code = supervise.main(
        [*_args(tmp_path, "--max-bytes", "1000"), "--", sys.executable, "-c", PRINT_LOTS]
    )
    assert code == 0
    ended = json.loads((tmp_path / "exit.json").read_text())
    assert ended["exit_code"] == 4
    assert "log rotation failed (skipped)" in capsys.readouterr().err


def test_replace_is_retried_on_sharing_violations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "comfyui.log"
    log.write_text("old run\n")
    real = os.replace
    failures = {"left": 3}

    def flaky(src: object, dst: object) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise PermissionError(13, "Access is denied (WinError 5)")
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(supervise.os, "replace", flaky)
    supervise.rotate(log)
    assert (tmp_path / "comfyui.1.log").read_text() == "old run\n" and not log.exists()
    supervise.write_atomic(tmp_path / "exit.json", {"exit_code": 0})
    assert json.loads((tmp_path / "exit.json").read_text()) == {"exit_code": 0}


def test_start_time_matches_psutil() -> None:
    import psutil

    if not sys.platform.startswith(("linux", "win")):
        assert supervise.create_time(os.getpid()) is None
        return
    mine = supervise.create_time(os.getpid())
    assert mine is not None and abs(mine - psutil.Process().create_time()) < 0.5
