"""--cpu is added when the project's torch has no usable accelerator here; the user's flags win."""

from __future__ import annotations

import sys

import pytest

from comfymanager.core.install.hardware import Hardware
from comfymanager.core.projects import Project
from comfymanager.core.run.runs import device_flags

CPU = Hardware("cpu", "CPU", "", "cpu")
NVIDIA = Hardware("nvidia", "NVIDIA RTX", "570.1", "cu128")
AMD = Hardware("amd", "AMD GPU", "", "rocm")

pytestmark = pytest.mark.skipif(sys.platform == "darwin", reason="macOS torch uses MPS or CPU")


def _p(backend: str, version: str = "") -> Project:
    return Project(
        id="p", torch_backend="auto", torch_backend_resolved=backend, torch_version=version
    )


@pytest.mark.parametrize(
    ("project", "hw"),
    [
        (_p("cu128", "2.8.0+cu128"), CPU),
        (_p("rocm", "2.8.0+rocm6.4"), NVIDIA),
        (_p("xpu"), AMD),
        (_p("auto", "2.8.0+cu126"), AMD),
    ],
)
def test_cpu_added_and_said_when_the_build_has_no_device_here(
    project: Project, hw: Hardware
) -> None:
    flags, note = device_flags(project, [], hw)
    assert flags == ["--cpu"]
    assert note.startswith("--cpu added:") and "no " in note


@pytest.mark.parametrize(
    ("project", "hw"),
    [(_p("cu128", "2.8.0+cu128"), NVIDIA), (_p("rocm"), AMD), (_p("none"), CPU)],
)
def test_nothing_added_when_the_device_is_there(project: Project, hw: Hardware) -> None:
    assert device_flags(project, [], hw) == ([], "")


@pytest.mark.parametrize("user", [["--cpu"], ["--cuda-device", "1"], ["--directml"]])
def test_the_users_own_device_flags_win(user: list[str]) -> None:
    assert device_flags(_p("cu128", "2.8.0+cu128"), user, CPU) == ([], "")


def test_cpu_backend_always_runs_on_cpu() -> None:
    assert device_flags(_p("cpu", "2.8.0+cpu"), [], NVIDIA) == (["--cpu"], "")


def test_the_details_pane_shows_the_run_facts() -> None:
    from comfymanager.core.run.runs import Status
    from comfymanager.ui.models.project_list import ProjectRow
    from comfymanager.ui.panes.projects import state_html

    running = Status(
        "p",
        "running",
        4001,
        10,
        "http://127.0.0.1:4001",
        supervisor_lost=True,
        device_note="--cpu added: no NVIDIA GPU",
    )
    text = state_html(ProjectRow("p", _p("cu128"), running))
    assert "Supervisor lost" in text and "--cpu added" in text and "4001" in text
    starting = Status(
        "p",
        "starting",
        4001,
        10,
        "http://127.0.0.1:4001",
        foreign="port 4001 is answered by nginx (pid 7), not by this project's ComfyUI",
    )
    text = state_html(ProjectRow("p", _p("cu128"), starting))
    assert "Port 4001 is answered by nginx (pid 7)" in text
