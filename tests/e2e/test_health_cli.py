"""The command line shows a project's health: ``list`` says "needs attention (N)", ``status
--json`` lists the problems, ``start`` warns and goes on, and a crashed run is a problem with its
cause. Real CLI processes, a real (fake) ComfyUI, real failing packs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from comfymanager.core.context import build_core_context
from comfymanager.core.run import ports, runs
from tests.fixtures.comfyui import FakeComfyUI, cli
from tests.fixtures.node_packs import NodePacks
from tests.fixtures.verify_project import make_scan_project

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def own_claims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ports.RUNTIME_ENV, str(tmp_path / "runtime"))


def test_status_list_and_start_show_the_problems_and_a_crash(
    data_dir: Path, fake_comfyui: FakeComfyUI, node_packs: NodePacks
) -> None:
    ctx = build_core_context(data_dir)
    dirs = make_scan_project(ctx.paths, "vid", fake_comfyui, node_packs)
    # its Python is the test interpreter: give the stand-in ComfyUI its one dependency
    (dirs.comfyui / "fakecomfydep.py").write_text('VERSION = "1.0"\n')
    try:
        assert cli(data_dir, "verify", "vid", check=False).returncode in (0, 1)
        status = json.loads(cli(data_dir, "status", "vid", "--json").stdout)
        problems = status["problems"]
        assert status["health"] == f"Needs attention ({len(problems)})"
        kinds = {(p["kind"], p["subject"]) for p in problems}
        assert ("pack", "ComfyUI-FixtureBroken") in kinds and ("node", "FixBroken") in kinds
        assert all(p.keys() >= {"kind", "subject", "cause", "fix", "action"} for p in problems)
        listed = cli(data_dir, "list").stdout
        assert f"needs attention ({len(problems)})" in listed
        text = cli(data_dir, "status", "vid").stdout
        assert "health:  Needs attention" in text and "[node] FixBroken" in text

        started = cli(data_dir, "start", "vid", "--wait", "--timeout", "60")
        assert "warning: vid needs attention" in started.stderr and "FixBroken" in started.stderr
        assert started.stdout.strip().startswith("http://127.0.0.1:")
        cli(data_dir, "stop", "vid")

        crashed = cli(
            data_dir,
            "start", "vid", "--wait", "--timeout", "60",
            env={"FAKE_COMFYUI_MODE": "crash-early"},
            check=False,
        )  # fmt: skip
        assert crashed.returncode == 1  # a real launch failure still fails --wait
        after = json.loads(cli(data_dir, "status", "vid", "--json").stdout)
        [crash] = [p for p in after["problems"] if p["kind"] == "crashed"]
        assert "RuntimeError: fake start-up failure" in crash["cause"]
        assert crash["action"] == "view_log"
        listed = json.loads(cli(data_dir, "list", "--json").stdout)
        [row] = listed["projects"]
        assert row["health"]["summary"] == after["health"] and not row["health"]["ok"]
    finally:
        runs.stop(ctx, "vid", timeout=3)
