"""The pack list read from disk and reconciled with project.json (git packs read from .git
without running git, registry zips, plain folders, ComfyUI-Manager's .disabled layouts, missing
folders, the last verification's import errors), source parsing, and uv's resolver messages
mapped back to the packs that declared each requirement."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from comfymanager.core.context import build_core_context
from comfymanager.core.errors import Conflict, InvalidInput
from comfymanager.core.install import packs as pack_install
from comfymanager.core.lifecycle import packs
from comfymanager.core.lifecycle.pack_list import (
    changed_since_last_snapshot,
    list_packs,
    read_git_head,
)
from comfymanager.core.lifecycle.pack_reqs import (
    explain_conflict,
    explain_failure,
    requirement_lines,
)
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import PackRecord, Project, ProjectStore
from tests.fixtures.comfyui import git


def _git_pack(folder: Path, packed: bool = False) -> str:
    folder.mkdir(parents=True)
    git(folder, "init", "-q", "-b", "main")
    (folder / "__init__.py").write_text("NODE_CLASS_MAPPINGS = {}\n")
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", "one")
    git(folder, "remote", "add", "origin", f"https://example.invalid/o/{folder.name}.git")
    if packed:
        git(folder, "pack-refs", "--all")
    return git(folder, "rev-parse", "HEAD")


@pytest.fixture
def project(data_dir: Path) -> tuple[Project, Path]:
    ctx = build_core_context(data_dir)
    store = ProjectStore(ctx.paths)
    p = Project(id="L")
    p.packs = [
        PackRecord(
            url="https://example.invalid/o/Recorded.git",
            folder="Recorded",
            commit="x" * 40,
            status="installed",
        ),
        PackRecord(url="https://example.invalid/o/Gone.git", folder="Gone", status="installed"),
        PackRecord(
            url="", folder="regpack", version="1.2.0", registry_id="regpack", status="installed"
        ),
        PackRecord(url="https://example.invalid/o/Broken.git", folder="Broken", status="installed"),
    ]
    store.create(p)
    return p, store.dirs("L").custom_nodes


def test_list_reconciles_project_json_with_custom_nodes(
    data_dir: Path, project: tuple[Project, Path]
) -> None:
    _, nodes = project
    recorded = _git_pack(nodes / "Recorded")
    outside = _git_pack(nodes / "FromManager", packed=True)
    _git_pack(nodes / "Broken")
    (nodes / "regpack").mkdir()
    (nodes / "regpack" / pack_install.ZIP_MARKER).write_text(
        json.dumps({"registry_id": "regpack", "version": "1.2.0"})
    )
    (nodes / ".disabled" / "cnrpack@2.0.1").mkdir(parents=True)
    (nodes / ".disabled" / "cnrpack@2.0.1" / "pyproject.toml").write_text(
        '[project]\nname = "cnrpack"\nversion = "2.0.1"\n[tool.comfy]\nversion = "9"\n'
    )
    (nodes / "Legacy.disabled").mkdir()
    cnr = nodes / "comfyui-mgrcnr"  # how ComfyUI-Manager installs a registry pack
    cnr.mkdir()
    (cnr / ".tracking").write_text("__init__.py\n")
    (cnr / "pyproject.toml").write_text('[project]\nname = "comfyui-mgrcnr"\nversion = "1.0.5"\n')
    (nodes / "Plain").mkdir()
    (nodes / "mynode.py").write_text("NODE_CLASS_MAPPINGS = {}\n")  # a single-file pack
    (nodes / "websocket_image_save.py").write_text("# ComfyUI's own\n")
    (nodes / ".disabled" / "other.py").write_text("NODE_CLASS_MAPPINGS = {}\n")
    (nodes / "Half.partial").mkdir()  # an interrupted install: not a pack
    (nodes / "__pycache__").mkdir()
    (nodes / "README.md").write_text("x")
    defs = nodes.parent.parent / "node-definitions.json"
    defs.write_text(
        json.dumps({"failed_packs": {"Broken": "ModuleNotFoundError: missingdep", "mynode": "E"}})
    )
    future = time.time() + 60
    for folder in ("Recorded", "Broken", "regpack", "FromManager"):
        os.utime(nodes / folder, (future - 120, future - 120))
    os.utime(defs, (future - 60, future - 60))
    os.utime(nodes / "Plain", (future, future))  # changed after the last verification

    rows = {r.name: r for r in list_packs(build_core_context(data_dir), "L")}
    assert set(rows) == {
        "Recorded",
        "Gone",
        "regpack",
        "Broken",
        "FromManager",
        "cnrpack",
        "Legacy",
        "Plain",
        "comfyui-mgrcnr",
        "mynode.py",
        "other.py",
    }
    r = rows["Recorded"]
    assert (r.kind, r.commit, r.origin, r.state, r.enabled) == (
        "git",
        recorded,
        "project",
        "ok",
        True,
    )
    assert rows["Gone"].state == "missing" and rows["Gone"].path == ""
    assert (rows["regpack"].kind, rows["regpack"].version) == ("registry", "1.2.0")
    assert rows["Broken"].state == "failed"
    assert "missingdep" in rows["Broken"].error
    m = rows["FromManager"]
    assert (m.origin, m.commit, m.source) == (
        "outside",
        outside,
        "https://example.invalid/o/FromManager.git",
    )
    c = rows["cnrpack"]
    assert (c.enabled, c.version, c.kind, c.origin) == (False, "2.0.1", "local", "outside")
    assert rows["Legacy"].enabled is False
    assert (rows["mynode.py"].state, rows["mynode.py"].error) == ("failed", "E")
    assert (rows["other.py"].enabled, rows["other.py"].state) == (False, "disabled")
    g = rows["comfyui-mgrcnr"]
    assert (g.kind, g.source, g.version, g.origin) == (
        "registry",
        "comfyui-mgrcnr",
        "1.0.5",
        "outside",
    )
    assert rows["Plain"].state == "unknown"


def test_changed_since_last_snapshot_follows_custom_nodes(
    data_dir: Path, project: tuple[Project, Path]
) -> None:
    ctx = build_core_context(data_dir)
    _, nodes = project
    assert not changed_since_last_snapshot(ctx, "L")  # never recorded: nothing to compare
    _git_pack(nodes / "Recorded")
    assert not packs.snapshot_if_changed(ctx, "L")  # the first start records a baseline
    assert not changed_since_last_snapshot(ctx, "L")
    (nodes / "Added").mkdir()
    assert changed_since_last_snapshot(ctx, "L")
    (nodes / "Added").rmdir()
    assert not changed_since_last_snapshot(ctx, "L")
    (nodes / ".disabled").mkdir()
    (nodes / "Recorded").rename(nodes / ".disabled" / "Recorded")  # Manager disabled it
    assert changed_since_last_snapshot(ctx, "L")
    assert packs.snapshot_if_changed(ctx, "L")  # taken (recorded) at the next start
    assert not changed_since_last_snapshot(ctx, "L")
    state = nodes.parent.parent / "packs-state.json"
    state.write_text("{broken")  # damaged: its backup (the previous record) is read instead
    state.with_name("packs-state.json.bak").unlink(missing_ok=True)
    assert changed_since_last_snapshot(ctx, "L")  # nothing readable to compare with


def test_changes_refused_until_the_project_is_installed(
    data_dir: Path, project: tuple[Project, Path]
) -> None:
    with pytest.raises(Conflict, match="is not installed") as info:
        packs.remove_pack(
            build_core_context(data_dir), "L", "Gone", report=Reporter(), cancel=CancelToken()
        )
    assert info.value.fix and "repair L" in info.value.fix


def test_parse_source(tmp_path: Path) -> None:
    s = packs.parse_source("https://github.com/o/ComfyUI-Foo.git@v1.2")
    assert (s.kind, s.location, s.version, s.folder) == (
        "git",
        "https://github.com/o/ComfyUI-Foo.git",
        "v1.2",
        "ComfyUI-Foo",
    )
    with pytest.raises(InvalidInput, match="is not a git URL"):  # as pack installs say
        packs.parse_source("git@github.com:o/ComfyUI-Bar.git")
    s = packs.parse_source("ssh://git@github.com/o/ComfyUI-Bar.git")
    assert (s.kind, s.version, s.folder) == ("git", "", "ComfyUI-Bar")
    s = packs.parse_source("comfyui-kjnodes@1.0.5")
    assert (s.kind, s.location, s.version) == ("registry", "comfyui-kjnodes", "1.0.5")
    plain = tmp_path / "MyPack"
    plain.mkdir()
    assert packs.parse_source(str(plain)).kind == "local"
    with pytest.raises(InvalidInput, match="has no versions"):
        packs.parse_source(f"{plain}@1.0")
    for bad in ("", "not a source!", "../escape"):
        with pytest.raises(InvalidInput):
            packs.parse_source(bad)


def test_requirement_lines(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text(
        "# comment\n--find-links /w\n-r other.txt\nOpenCV_Python>=4 # cv\n"
        "clashdep @ file:///w/clashdep-1.0-py3-none-any.whl\n\ntorch\n"
    )
    assert requirement_lines(req) == {
        "opencv-python": "OpenCV_Python>=4",
        "clashdep": "clashdep @ file:///w/clashdep-1.0-py3-none-any.whl",
        "torch": "torch",
    }


DECLARED = {
    "ComfyUI": {"fakecomfydep": "fakecomfydep @ file:///w/f.whl"},
    "ComfyUI-A": {"clashdep": "clashdep==1.0", "numpy": "numpy"},
    "ComfyUI-B": {"needsclash": "needsclash"},
    "the project's pinned torch": {"torch": "torch==2.5.1"},
    "ComfyUI-T": {"torch": "torch==2.0.0"},
}


def test_conflicting_urls_name_both_packs() -> None:
    declared = {
        "ComfyUI-A": {"clashdep": "clashdep @ file:///w/clashdep-1.0-py3-none-any.whl"},
        "ComfyUI-B": {"clashdep": "clashdep @ file:///w/clashdep-2.0-py3-none-any.whl"},
    }
    out = (
        "Using Python 3.11.7 environment at: v\n"
        "error: Requirements contain conflicting URLs for package `clashdep`:\n"
        "- file:///w/clashdep-1.0-py3-none-any.whl\n- file:///w/clashdep-2.0-py3-none-any.whl\n"
    )
    exc = explain_conflict(out, declared)
    assert exc.packs == ("ComfyUI-A", "ComfyUI-B")
    assert "pack ComfyUI-A needs 'clashdep @ file:///w/clashdep-1.0" in exc.message


def test_transitive_conflict_names_both_packs() -> None:
    out = (
        "error: No solution found when resolving dependencies\n"
        "  cause: Because needsclash==1.0 depends on clashdep>=2 and only needsclash==1.0 is "
        "available, we can conclude that all versions of needsclash depend on clashdep>=2.\n"
        "And because you require clashdep==1.0 and needsclash, we can conclude that your "
        "requirements are unsatisfiable.\n"
    )
    exc = explain_conflict(out, DECLARED)
    assert set(exc.packs) == {"ComfyUI-A", "ComfyUI-B"}
    assert "'clashdep==1.0'" in exc.message and "'needsclash'" in exc.message


def test_a_pack_against_the_pinned_torch() -> None:
    out = (
        "error: No solution found when resolving dependencies\n"
        "  cause: Because you require torch==2.0.0 and torch==2.5.1, we can conclude that your "
        "requirements are unsatisfiable.\n"
    )
    exc = explain_conflict(out, DECLARED)
    assert exc.packs == ("the project's pinned torch", "ComfyUI-T")
    assert "the project's pinned torch needs 'torch==2.5.1'" in exc.message
    assert exc.fix


def test_one_pack_alone_cannot_resolve() -> None:
    out = (
        "error: No solution found when resolving dependencies\n"
        "  cause: Because there is no version of numpy==99 and you require numpy==99, we can "
        "conclude that your requirements are unsatisfiable.\n"
    )
    exc = explain_conflict(out, {"ComfyUI-A": {"numpy": "numpy==99"}})
    assert exc.packs == ("ComfyUI-A",)
    assert "The requirements of pack ComfyUI-A cannot be installed ('numpy==99'" in exc.message


def test_a_missing_wheel_names_its_pack() -> None:
    out = (
        "Using Python 3.11.7 environment at: v\n"
        "error: Distribution not found at: file:///w/baddep-1.0-py3-none-any.whl\n"
    )
    declared = {
        "ComfyUI": {"fakecomfydep": "fakecomfydep @ file:///w/fakecomfydep-1.0-py3-none-any.whl"},
        "ComfyUI-BadPack": {"baddep": "baddep @ file:///w/baddep-1.0-py3-none-any.whl"},
    }
    exc = explain_failure(out, declared)
    assert exc.message.startswith("The requirements of pack ComfyUI-BadPack cannot be installed")
    assert "Distribution not found" in exc.message and "nothing was changed" in exc.message
    assert "uv could not" in explain_failure("error: boom\n", declared).message


def test_head_of_a_linked_worktree(tmp_path: Path) -> None:
    main = tmp_path / "main"
    head = _git_pack(main)
    git(main, "worktree", "add", "-q", "-b", "wt", str(tmp_path / "nodes" / "WT"))
    assert (tmp_path / "nodes" / "WT" / ".git").is_file()
    assert read_git_head(tmp_path / "nodes" / "WT") == head
