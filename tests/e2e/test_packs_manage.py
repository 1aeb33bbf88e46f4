"""Packs as a list the user manages, with real uv environments and local git repositories:
add at a tag, update to the newest release, disable/enable (custom_nodes/.disabled), remove; a
pack ComfyUI-Manager put there while ComfyUI ran shows up and makes start take a snapshot; two
packs whose requirements clash are named and nothing changes; registry packs update to the
latest version; ComfyUI-Manager goes in as the pip package + --enable-manager on a ComfyUI that
ships manager_requirements.txt, and as a custom node on an older one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from comfymanager.core.context import CoreContext, build_core_context
from comfymanager.core.errors import Cancelled
from comfymanager.core.install import envs
from comfymanager.core.lifecycle import manager, packs
from comfymanager.core.lifecycle import snapshots as snaps
from comfymanager.core.lifecycle.pack_list import list_packs, read_git_head
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import ProjectStore
from comfymanager.core.run import launch
from tests.fixtures.comfyui import FakeComfyUI, cli, create_installed, git
from tests.fixtures.node_packs import ManagedPacks, NodePacks, comfyui_with_manager
from tests.fixtures.registry_server import Registry, zip_folder

pytestmark = [pytest.mark.slow]

R = Reporter()


def _c() -> CancelToken:
    return CancelToken()


def _freeze(ctx: CoreContext, name: str) -> dict[str, str]:
    """``uv pip freeze`` of the project: name -> version (a wheel installed from a file URL
    shows as ``name @ file:///.../name-1.0-py3-none-any.whl``)."""
    dirs = ProjectStore(ctx.paths).dirs(name)
    lines: list[str] = []
    envs.UvRunner(ctx.paths, ctx.settings).run(
        ["pip", "freeze", "--python", str(envs.venv_python(dirs.venv))],
        what="freeze",
        report=Reporter(log=lines.append),
        cancel=_c(),
    )
    out = {}
    for line in lines:
        if "==" in line:
            key, _, version = line.partition("==")
        elif " @ " in line:
            key, _, url = line.partition(" @ ")
            version = url.rsplit("/", 1)[-1].split("-")[1]
        else:
            continue
        out[key.strip().lower().replace("_", "-")] = version.strip()
    return out


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if ".git" not in p.parts)


@pytest.fixture
def snapshots(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, list[str]]]:
    """The real ``core.lifecycle.snapshots``, watched: each snapshot's reason and what
    custom_nodes held at that moment (so a test sees it was taken BEFORE the change)."""
    from comfymanager.core.lifecycle import snapshots as module

    taken: list[tuple[str, str, list[str]]] = []
    real = module.take_snapshot

    def take_snapshot(ctx: CoreContext, project_id: str, reason: str, **kw: Any) -> Any:
        nodes = ProjectStore(ctx.paths).dirs(project_id).custom_nodes
        taken.append((project_id, reason, sorted(p.name for p in nodes.iterdir())))
        return real(ctx, project_id, reason, **kw)

    monkeypatch.setattr(module, "take_snapshot", take_snapshot)
    return taken


def test_git_pack_add_at_tag_update_disable_enable_remove(
    project_data_dir: Path,
    managed_packs: ManagedPacks,
    snapshots: list[tuple[str, str, list[str]]],
) -> None:
    create_installed(project_data_dir, "P")
    ctx = build_core_context(project_data_dir)
    dirs = ProjectStore(ctx.paths).dirs("P")
    name = "ComfyUI-TaggedPack"

    added = packs.add_pack(ctx, "P", f"{managed_packs.tagged}@1.0.0", report=R, cancel=_c())
    assert added.action == "add"
    assert snapshots[-1][:2] == ("P", f"pack add {name}")
    assert name not in snapshots[-1][2]  # taken before the pack arrived
    assert _freeze(ctx, "P")["tagdep"] == "1.0"
    [row] = list_packs(ctx, "P")
    assert (row.name, row.kind, row.version, row.enabled, row.origin) == (
        name,
        "git",
        "v1.0.0",
        True,
        "project",
    )
    assert row.commit == managed_packs.tags["v1.0.0"]
    assert not (dirs.root / packs.STAGING).exists()

    [change] = packs.update_pack(ctx, "P", name, report=R, cancel=_c())
    assert change.action == "update"
    assert (dirs.custom_nodes / name / ".git").exists()
    assert read_git_head(dirs.custom_nodes / name) == managed_packs.tags["v1.1.0"]
    assert _freeze(ctx, "P")["tagdep"] == "1.1"
    record = ProjectStore(ctx.paths).load("P").packs[0]
    assert (record.commit, record.version) == (managed_packs.tags["v1.1.0"], "v1.1.0")
    [again] = packs.update_pack(ctx, "P", report=R, cancel=_c())
    assert again.action == "unchanged"

    packs.set_enabled(ctx, "P", name, False, report=R, cancel=_c())
    assert not (dirs.custom_nodes / name).exists()
    assert (dirs.custom_nodes / ".disabled" / name / "__init__.py").exists()
    assert [r.enabled for r in list_packs(ctx, "P")] == [False]
    packs.set_enabled(ctx, "P", name, True, report=R, cancel=_c())
    assert (dirs.custom_nodes / name / "__init__.py").exists()
    assert [r.enabled for r in list_packs(ctx, "P")] == [True]
    assert not packs.changed_since_last_snapshot(ctx, "P")

    # ComfyUI-Manager installs a pack from inside ComfyUI: listed, and start must snapshot
    git(dirs.custom_nodes, "clone", "-q", managed_packs.clash_a, "ComfyUI-ClashA")
    assert packs.changed_since_last_snapshot(ctx, "P")
    outside = {r.name: r for r in list_packs(ctx, "P")}["ComfyUI-ClashA"]
    assert (outside.origin, outside.source, outside.kind) == (
        "outside",
        managed_packs.clash_a,
        "git",
    )
    assert len(outside.commit) == 40
    assert packs.snapshot_if_changed(ctx, "P")
    assert snapshots[-1][1] == "changed while running"
    assert not packs.changed_since_last_snapshot(ctx, "P")

    packs.remove_pack(ctx, "P", "ComfyUI-ClashA", report=R, cancel=_c())
    packs.remove_pack(ctx, "P", name, report=R, cancel=_c())
    assert list_packs(ctx, "P") == []
    assert ProjectStore(ctx.paths).load("P").packs == []
    assert sorted(p.name for p in dirs.custom_nodes.iterdir()) == [".disabled", "README.md"]
    # a pack added at its branch follows the branch: update never goes back to the last tag
    packs.add_pack(ctx, "P", f"{managed_packs.tagged}@main", report=R, cancel=_c())
    assert read_git_head(dirs.custom_nodes / name) == managed_packs.tagged_head
    [same] = packs.update_pack(ctx, "P", name, report=R, cancel=_c())
    assert (same.action, ProjectStore(ctx.paths).load("P").packs[0].version) == ("unchanged", "")
    reasons = [reason for _, reason, _ in snapshots]
    assert reasons == [
        f"pack add {name}",
        "pack update " + name,
        f"pack disable {name}",
        f"pack enable {name}",
        "changed while running",
        "pack remove ComfyUI-ClashA",
        f"pack remove {name}",
        f"pack add {name}",  # the branch one; its update changed nothing: no snapshot
    ]


def test_conflicting_requirements_are_named_and_nothing_changes(
    project_data_dir: Path, managed_packs: ManagedPacks, node_packs: NodePacks
) -> None:
    create_installed(project_data_dir, "C")
    cli(project_data_dir, "pack", "add", "C", managed_packs.clash_a)
    ctx = build_core_context(project_data_dir)
    dirs = ProjectStore(ctx.paths).dirs("C")
    before = (_tree(dirs.custom_nodes), dirs.file.read_bytes(), _freeze(ctx, "C"))
    assert before[2]["clashdep"] == "1.0"

    proc = cli(project_data_dir, "pack", "add", "C", managed_packs.clash_b, check=False)
    assert proc.returncode == 1
    err = proc.stderr
    assert "pack ComfyUI-ClashA needs 'clashdep==1.0'" in err, err
    assert "pack ComfyUI-ClashB needs 'clashdep>=2.0'" in err, err
    assert "nothing was changed" in err
    assert "Traceback" not in err
    after = (_tree(dirs.custom_nodes), dirs.file.read_bytes(), _freeze(ctx, "C"))
    assert after == before
    assert not (dirs.root / packs.STAGING).exists()
    cancelled = CancelToken()
    cancelled.cancel()
    with pytest.raises(Cancelled):
        packs.add_pack(ctx, "C", managed_packs.tagged, report=R, cancel=cancelled)
    assert (_tree(dirs.custom_nodes), dirs.file.read_bytes()) == before[:2]
    assert not (dirs.root / packs.STAGING).exists()

    bad = cli(project_data_dir, "pack", "add", "C", node_packs.bad_url, check=False)
    assert bad.returncode == 1
    assert "The requirements of pack ComfyUI-BadPack cannot be installed" in bad.stderr
    assert (_tree(dirs.custom_nodes), dirs.file.read_bytes()) == before[:2]

    # an update whose new version conflicts leaves the pack where it was
    packs.add_pack(ctx, "C", f"{managed_packs.clash_later}@1.0.0", report=R, cancel=_c())
    later = dirs.custom_nodes / "ComfyUI-ClashLater"
    at = read_git_head(later)
    with pytest.raises(packs.PackConflict) as upd:
        packs.update_pack(ctx, "C", "ComfyUI-ClashLater", report=R, cancel=_c())
    assert set(upd.value.packs) == {"ComfyUI-ClashA", "ComfyUI-ClashLater"}
    assert "'clashdep>=2.0'" in upd.value.message
    assert read_git_head(later) == at
    assert "clashdep==1.0" in (later / "requirements.txt").read_text()
    assert ProjectStore(ctx.paths).load("C").packs[-1].version == "v1.0.0"
    packs.remove_pack(ctx, "C", "ComfyUI-ClashLater", report=R, cancel=_c())

    # disabling A lets B in; enabling A again is then the conflict, named the other way round
    packs.set_enabled(ctx, "C", "ComfyUI-ClashA", False, report=R, cancel=_c())
    packs.add_pack(ctx, "C", managed_packs.clash_b, report=R, cancel=_c())
    assert _freeze(ctx, "C")["clashdep"] == "2.0"
    with pytest.raises(packs.PackConflict) as info:
        packs.set_enabled(ctx, "C", "ComfyUI-ClashA", True, report=R, cancel=_c())
    assert set(info.value.packs) == {"ComfyUI-ClashA", "ComfyUI-ClashB"}
    assert (dirs.custom_nodes / ".disabled" / "ComfyUI-ClashA").is_dir()

    listed = json.loads(cli(project_data_dir, "packs", "C", "--json").stdout)
    assert {(r["name"], r["enabled"]) for r in listed} == {
        ("ComfyUI-ClashA", False),
        ("ComfyUI-ClashB", True),
    }
    text = cli(project_data_dir, "packs", "C").stdout
    assert "ComfyUI-ClashA" in text and "(disabled)" in text


def test_registry_pack_updates_to_the_latest_version(
    project_data_dir: Path, registry: Registry, tmp_path: Path
) -> None:
    for version in ("1.0.0", "1.1.0"):
        folder = tmp_path / f"regpack-{version}"
        folder.mkdir()
        (folder / "__init__.py").write_text(f"VERSION = '{version}'\nNODE_CLASS_MAPPINGS = {{}}\n")
        (folder / "pyproject.toml").write_text(
            f'[project]\nname = "regpack"\nversion = "{version}"\n'
        )
    registry.add("regpack", "1.0.0", zip_folder(tmp_path / "regpack-1.0.0"))
    create_installed(project_data_dir, "R")
    ctx = build_core_context(project_data_dir)
    dirs = ProjectStore(ctx.paths).dirs("R")

    out = cli(project_data_dir, "pack", "add", "R", "regpack@1.0.0", "--json")
    assert json.loads(out.stdout)[0]["after"] == "1.0.0"
    [row] = list_packs(ctx, "R")
    assert (row.name, row.kind, row.source, row.version) == (
        "regpack",
        "registry",
        "regpack",
        "1.0.0",
    )

    registry.add("regpack", "1.1.0", zip_folder(tmp_path / "regpack-1.1.0"))
    [change] = packs.update_pack(ctx, "R", report=R, cancel=_c())
    assert (change.action, change.before, change.after) == ("update", "1.0.0", "1.1.0")
    assert "1.1.0" in (dirs.custom_nodes / "regpack" / "__init__.py").read_text()
    assert ProjectStore(ctx.paths).load("R").packs[0].version == "1.1.0"
    assert registry.install_requests("regpack")[-1] == "1.1.0"

    plain = tmp_path / "MyLocalPack"  # a plain folder (no git): copied, version from pyproject
    plain.mkdir()
    (plain / "__init__.py").write_text("NODE_CLASS_MAPPINGS = {}\n")
    (plain / "pyproject.toml").write_text('[project]\nname = "mylocal"\nversion = "0.1.0"\n')
    packs.add_pack(ctx, "R", str(plain), report=R, cancel=_c())
    local = {r.name: r for r in list_packs(ctx, "R")}["MyLocalPack"]
    assert (local.kind, local.version, local.origin) == ("local", "0.1.0", "project")
    assert (dirs.custom_nodes / "MyLocalPack" / "__init__.py").exists()
    assert (plain / "__init__.py").exists()  # the source folder is left as it was

    err = cli(project_data_dir, "pack", "add", "R", "no-such-pack", check=False)
    assert err.returncode == 1 and "has no node pack 'no-such-pack'" in err.stderr
    missing = cli(project_data_dir, "pack", "remove", "R", "Nope", check=False)
    assert (
        missing.returncode == 1
        and "has no pack 'Nope' (packs: MyLocalPack, regpack)" in missing.stderr
    )


def test_manager_as_a_custom_node_on_an_older_comfyui(
    project_data_dir: Path, managed_packs: ManagedPacks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMFYMANAGER_MANAGER_SOURCE", managed_packs.manager_repo)
    create_installed(project_data_dir, "Old")
    ctx = build_core_context(project_data_dir)
    dirs = ProjectStore(ctx.paths).dirs("Old")

    change = manager.set_manager(ctx, "Old", True, report=R, cancel=_c())
    assert change.how == "custom-node"
    assert (dirs.custom_nodes / "ComfyUI-Manager" / "__init__.py").exists()
    project = ProjectStore(ctx.paths).load("Old")
    assert project.manager
    assert [p.folder for p in project.packs] == ["ComfyUI-Manager"]
    assert "--enable-manager" not in launch.build_argv(ctx, project, dirs, 4555)

    before = len(snaps.list_snapshots(ctx, "Old"))
    manager.set_manager(ctx, "Old", False, report=R, cancel=_c())
    # what turning it on installed is gone: the folder, the record, the row in `packs`
    assert not (dirs.custom_nodes / "ComfyUI-Manager").exists()
    assert not (dirs.custom_nodes / ".disabled" / "ComfyUI-Manager").exists()
    project = ProjectStore(ctx.paths).load("Old")
    assert not project.manager and project.packs == []
    assert [p.name for p in list_packs(ctx, "Old")] == []
    assert len(snaps.list_snapshots(ctx, "Old")) == before + 1  # the way back
    manager.set_manager(ctx, "Old", True, report=R, cancel=_c())
    assert (dirs.custom_nodes / "ComfyUI-Manager" / "__init__.py").is_file()
    assert [p.name for p in list_packs(ctx, "Old")] == ["ComfyUI-Manager"]


def test_create_with_manager_on_a_comfyui_with_manager_requirements(
    project_data_dir: Path,
    managed_packs: ManagedPacks,
    fake_comfyui: FakeComfyUI,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    stop_all: None,
) -> None:
    repo = comfyui_with_manager(
        fake_comfyui.repo, tmp_path / "ComfyUI-new", managed_packs.manager_wheel
    )
    monkeypatch.setenv("COMFYMANAGER_COMFYUI_SOURCE", str(repo))
    cli(project_data_dir, "create", "New", "--torch-backend", "none", "--manager")
    ctx = build_core_context(project_data_dir)
    dirs = ProjectStore(ctx.paths).dirs("New")
    project = ProjectStore(ctx.paths).load("New")
    assert project.manager and project.comfyui_ref == "v0.4.0"
    assert _freeze(ctx, "New")["comfyui-manager"] == "4.0"
    assert "--enable-manager" in launch.build_argv(ctx, project, dirs, 4556)
    # the (strict) fake ComfyUI accepts the flag and becomes ready
    cli(project_data_dir, "start", "New", "--wait", "--timeout", "60")
    busy = cli(project_data_dir, "pack", "add", "New", managed_packs.clash_a, check=False)
    assert busy.returncode == 1 and "is running" in busy.stderr and "stop New" in busy.stderr
    cli(project_data_dir, "stop", "New")

    cli(project_data_dir, "pack", "manager", "New", "--off")
    project = ProjectStore(ctx.paths).load("New")
    assert "--enable-manager" not in launch.build_argv(ctx, project, dirs, 4556)
    assert "comfyui-manager" not in _freeze(ctx, "New")  # the package is uninstalled
    newest = snaps.list_snapshots(ctx, "New")[0]  # the snapshot before still has it
    assert any(line.lower().replace("_", "-").startswith("comfyui-manager") for line in newest.lock)
    cli(project_data_dir, "pack", "manager", "New", "--on")
    assert _freeze(ctx, "New")["comfyui-manager"] == "4.0"


@pytest.mark.parametrize("point", ["pack-add-recorded", "pack-add-moved"])
def test_pack_add_killed_then_run_again_finishes(
    project_data_dir: Path, managed_packs: ManagedPacks, point: str
) -> None:
    create_installed(project_data_dir, f"K-{point}")
    name = f"K-{point}"
    killed = cli(
        project_data_dir,
        "pack",
        "add",
        name,
        f"{managed_packs.tagged}@1.0.0",
        env={"COMFYMANAGER_TEST_KILL_AT": point},
        check=False,
    )
    assert killed.returncode == -9, killed.stderr
    ctx = build_core_context(project_data_dir)
    [row] = list_packs(ctx, name)  # listed, pending: its requirements are not installed yet
    assert row.name == "ComfyUI-TaggedPack"
    cli(project_data_dir, "pack", "add", name, f"{managed_packs.tagged}@1.0.0")
    [row] = list_packs(ctx, name)
    assert (row.commit, row.enabled) == (managed_packs.tags["v1.0.0"], True)
    assert ProjectStore(ctx.paths).load(name).packs[0].status == "installed"
    assert _freeze(ctx, name)["tagdep"] == "1.0"
    dirs = ProjectStore(ctx.paths).dirs(name)
    assert not (dirs.root / packs.STAGING).exists()
    assert sorted(p.name for p in dirs.custom_nodes.iterdir()) == [
        "ComfyUI-TaggedPack",
        "README.md",
    ]


def test_pack_update_killed_mid_swap_then_run_again_finishes(
    project_data_dir: Path, managed_packs: ManagedPacks
) -> None:
    create_installed(project_data_dir, "U")
    cli(project_data_dir, "pack", "add", "U", f"{managed_packs.tagged}@1.0.0")
    killed = cli(
        project_data_dir,
        "pack",
        "update",
        "U",
        env={"COMFYMANAGER_TEST_KILL_AT": "pack-swap-old-aside"},
        check=False,
    )
    assert killed.returncode == -9, killed.stderr
    ctx = build_core_context(project_data_dir)
    [row] = list_packs(ctx, "U")
    assert row.state == "missing"  # the old version set aside, the new one not yet in
    cli(project_data_dir, "pack", "update", "U")
    [row] = list_packs(ctx, "U")
    assert (row.commit, row.version, row.enabled) == (managed_packs.tags["v1.1.0"], "v1.1.0", True)
    assert _freeze(ctx, "U")["tagdep"] == "1.1"
    dirs = ProjectStore(ctx.paths).dirs("U")
    assert sorted(p.name for p in dirs.custom_nodes.iterdir()) == [
        "ComfyUI-TaggedPack",
        "README.md",
    ]
    assert not (dirs.root / packs.STAGING).exists()
