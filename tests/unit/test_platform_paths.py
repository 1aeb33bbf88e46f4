"""Folder facts per platform: Windows long paths, case-insensitive pack folders, portable mode
inside a macOS app bundle. Windows' registry and macOS bundles are injected; the case probe runs
on the real file system (case-sensitive here, case-insensitive on the Windows/macOS runners)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from comfymanager.core import paths
from comfymanager.core.errors import ComfyManagerError
from comfymanager.core.importer.apply import _merge_packs
from comfymanager.core.projects import PackRecord, Project
from tests.fixtures.comfyui import FakeComfyUI


def test_long_paths_are_explained_only_when_windows_has_them_off() -> None:
    assert paths.long_paths_problem("win32", lambda: 1) == ""
    for off in (0, None):  # set to 0, or never set (the default)
        text = paths.long_paths_problem("win32", lambda off=off: off)
        assert "260 characters" in text and "LongPathsEnabled" in text
        assert "-Value 1" in text  # how to enable it, copyable
    assert paths.long_paths_problem("linux", lambda: 0) == ""
    assert paths.long_paths_problem("darwin", lambda: None) == ""


def test_the_case_probe_sees_this_file_system_and_leaves_nothing(tmp_path: Path) -> None:
    expected = sys.platform in ("win32", "darwin")  # NTFS and APFS defaults
    assert paths.folder_is_case_insensitive(tmp_path) is expected
    assert paths.folder_is_case_insensitive(tmp_path / "not" / "yet") is expected
    assert list(tmp_path.iterdir()) == []


def test_a_case_insensitive_folder_makes_two_spellings_one_pack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert paths.same_folder_name("comfyui-kjnodes", "ComfyUI-KJNodes", case_insensitive=True)
    assert not paths.same_folder_name("comfyui-kjnodes", "ComfyUI-KJNodes", case_insensitive=False)

    git_pack = PackRecord(
        url="https://github.com/kijai/ComfyUI-KJNodes",
        folder="ComfyUI-KJNodes",
        commit="a" * 40,
        status="installed",
    )
    registry = PackRecord(
        url="", folder="comfyui-kjnodes", version="1.1.0", registry_id="comfyui-kjnodes"
    )

    monkeypatch.setattr(paths, "default_case_insensitive", lambda os_name=None: True)
    project = Project(id="p", packs=[git_pack])
    _merge_packs(project, [registry])
    assert [p.folder for p in project.packs] == ["ComfyUI-KJNodes"]  # one folder, kept once

    monkeypatch.setattr(paths, "default_case_insensitive", lambda os_name=None: False)
    project = Project(id="p", packs=[git_pack])
    _merge_packs(project, [registry])
    assert [p.folder for p in project.packs] == ["ComfyUI-KJNodes", "comfyui-kjnodes"]


def test_portable_mode_looks_beside_the_app_bundle() -> None:
    exe = Path("/Applications/Tools/comfymanager.app/Contents/MacOS/comfymanager")
    assert paths.portable_base(exe) == Path("/Applications/Tools")
    win = Path("D:/apps/comfymanager/comfymanager.exe")
    assert paths.portable_base(win) == Path("D:/apps/comfymanager")
    odd = Path("/opt/x/Contents/MacOS/comfymanager")  # not inside a .app: stays beside it
    assert paths.portable_base(odd) == Path("/opt/x/Contents/MacOS")


def test_a_manifest_backend_without_wheels_here_falls_back_to_auto(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, fake_comfyui: FakeComfyUI
) -> None:
    from comfymanager.core.context import build_core_context
    from comfymanager.core.importer import apply as importer_apply
    from comfymanager.core.importer.plan import ImportPlan
    from comfymanager.core.install import install
    from comfymanager.core.settings import backends_for
    from comfymanager.core.workflow.manifest import ComfyUIPin, Manifest

    ctx = build_core_context(data_dir)
    pin = ComfyUIPin(source=str(fake_comfyui.repo))
    plan = ImportPlan((), (), (), (), None, None, (), True, Manifest(pin, torch_backend="cu128"))
    spec = install.ProjectSpec(name="from-windows")

    def on(system: str, arch: str) -> None:  # this machine is a Mac / a Windows PC
        for module in (importer_apply, install):
            monkeypatch.setattr(module, "backends_for", lambda: backends_for(system, arch))

    on("darwin", "arm64")
    on_mac = importer_apply._new_project(ctx, plan, spec)  # made on Windows, opened on a Mac
    assert on_mac.torch_backend == "auto"
    on("win32", "AMD64")
    spec2 = install.ProjectSpec(name="on-windows")
    assert importer_apply._new_project(ctx, plan, spec2).torch_backend == "cu128"
    on("darwin", "arm64")
    with pytest.raises(ComfyManagerError, match="has no wheels for this system") as info:
        install.validate_spec(ctx, install.ProjectSpec(name="amd", torch_backend="rocm"))
    assert "pypi" in (info.value.fix or "")
