"""Where a project's life meets the rest (issue 14's integration points), with real uv
environments and local git repositories: start snapshots a project whose packs changed while it
ran; a repair leaves disabled packs disabled and keeps plain-folder packs; ComfyUI-Manager as the
pip package survives a repair, and an update to a ComfyUI that ships it disables the custom-node
copy; an in-place project refuses every change and its delete says only the record goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from comfymanager.core.adopt import adopt
from comfymanager.core.context import CoreContext, build_core_context
from comfymanager.core.errors import InvalidInput
from comfymanager.core.install import envs, install
from comfymanager.core.lifecycle import manager, packs, rollback, snapshots, update
from comfymanager.core.lifecycle.pack_list import list_packs
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import PackRecord, ProjectStore
from comfymanager.core.run import runs
from comfymanager.core.verify.verify import verify_project
from tests.fixtures.comfyui import FakeComfyUI, cli, create_installed, git
from tests.fixtures.installs import make_portable, tree_checksum
from tests.fixtures.node_packs import ManagedPacks, comfyui_with_manager

pytestmark = [pytest.mark.slow]

R = Reporter()
TAGGED = "ComfyUI-TaggedPack"


def _c() -> CancelToken:
    return CancelToken()


def _installed(ctx: CoreContext, name: str) -> set[str]:
    """Distribution names in the project's environment (``uv pip list``)."""
    dirs = ProjectStore(ctx.paths).dirs(name)
    lines: list[str] = []
    envs.UvRunner(ctx.paths, ctx.settings).run(
        ["pip", "freeze", "--python", str(envs.venv_python(dirs.venv))],
        what="freeze",
        report=Reporter(log=lines.append),
        cancel=_c(),
    )
    return {ln.split("==")[0].split(" @ ")[0].strip().lower() for ln in lines if ln.strip()}


def test_repair_keeps_disabled_and_plain_packs_and_start_snapshots_outside_changes(
    project_data_dir: Path, managed_packs: ManagedPacks, stop_all: None
) -> None:
    create_installed(project_data_dir, "P")
    ctx = build_core_context(project_data_dir)
    store = ProjectStore(ctx.paths)
    dirs = store.dirs("P")
    packs.add_pack(ctx, "P", f"{managed_packs.tagged}@1.0.0", report=R, cancel=_c())
    packs.set_enabled(ctx, "P", TAGGED, False, report=R, cancel=_c())
    # a pack recorded with neither URL nor registry id (a folder put there as it is)
    plain = dirs.custom_nodes / "PlainPack"
    plain.mkdir()
    (plain / "__init__.py").write_text("NODE_CLASS_MAPPINGS = {}\n")
    project = store.load("P")
    project.packs.append(PackRecord(url="", folder="PlainPack", status="installed"))
    store.save(project)

    install.install_project(ctx, "P", report=R, cancel=_c())  # what `repair` runs

    assert not (dirs.custom_nodes / TAGGED).exists()  # not cloned again beside the disabled one
    assert (dirs.custom_nodes / ".disabled" / TAGGED / "__init__.py").exists()
    assert (plain / "__init__.py").exists()
    after = {p.folder: p for p in store.load("P").packs}
    assert (after["PlainPack"].status, after["PlainPack"].error) == ("installed", "")
    assert after[TAGGED].status == "installed"
    assert store.load("P").install.status == "ready"

    # ComfyUI-Manager clones a pack while nothing watches: the next start snapshots first
    before = len(snapshots.list_snapshots(ctx, "P"))
    git(dirs.custom_nodes, "clone", "-q", managed_packs.clash_a, "ComfyUI-ClashA")
    runs.start(ctx, "P")
    taken = snapshots.list_snapshots(ctx, "P")
    assert len(taken) == before + 1
    assert taken[0].reason == "changed while running"
    assert "ComfyUI-ClashA" in {p.folder for p in taken[0].packs}
    runs.stop(ctx, "P")
    runs.start(ctx, "P")  # nothing changed since: no second snapshot
    assert len(snapshots.list_snapshots(ctx, "P")) == before + 1
    # Manager clones a pack while ComfyUI runs: listed at once, recorded at the next start
    git(dirs.custom_nodes, "clone", "-q", managed_packs.clash_b, "ComfyUI-ClashB")
    assert "ComfyUI-ClashB" in {p.name for p in list_packs(ctx, "P")}
    runs.stop(ctx, "P")
    runs.start(ctx, "P")
    taken = snapshots.list_snapshots(ctx, "P")
    assert len(taken) == before + 2 and taken[0].reason == "changed while running"
    assert "ComfyUI-ClashB" in {p.folder for p in taken[0].packs}
    runs.stop(ctx, "P")


def test_pip_manager_survives_repair_and_update_retires_the_custom_node_copy(
    project_data_dir: Path,
    managed_packs: ManagedPacks,
    fake_comfyui: FakeComfyUI,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    repo = comfyui_with_manager(
        fake_comfyui.repo, tmp_path / "ComfyUI-new", managed_packs.manager_wheel
    )
    monkeypatch.setenv("COMFYMANAGER_COMFYUI_SOURCE", str(repo))
    monkeypatch.setenv("COMFYMANAGER_MANAGER_SOURCE", managed_packs.manager_repo)
    ctx = build_core_context(project_data_dir)
    spec = install.ProjectSpec(name="U", torch_backend="none", comfyui_ref="v0.3.2")
    install.create_project(ctx, spec, report=R, cancel=_c())
    dirs = ProjectStore(ctx.paths).dirs("U")
    assert manager.set_manager(ctx, "U", True, report=R, cancel=_c()).how == "custom-node"
    assert (dirs.custom_nodes / manager.MANAGER_FOLDER / "__init__.py").exists()

    result = update.update(ctx, "U", ref="v0.4.0", verify=False, report=R, cancel=_c())
    assert result.applied
    assert not (dirs.custom_nodes / manager.MANAGER_FOLDER).exists()
    assert (dirs.custom_nodes / ".disabled" / manager.MANAGER_FOLDER).is_dir()
    assert "comfyui-manager" in _installed(ctx, "U")

    # a repair (after the package went missing) puts the pip Manager back
    envs.UvRunner(ctx.paths, ctx.settings).run(
        ["pip", "uninstall", "--python", str(envs.venv_python(dirs.venv)), "comfyui-manager"],
        what="uninstall",
        report=R,
        cancel=_c(),
    )
    assert "comfyui-manager" not in _installed(ctx, "U")
    install.install_project(ctx, "U", report=R, cancel=_c())
    assert "comfyui-manager" in _installed(ctx, "U")

    # and rolling back to before the update brings the custom-node copy back, enabled
    rollback.rollback(ctx, "U", result.snapshot_id, report=R, cancel=_c())
    assert (dirs.custom_nodes / manager.MANAGER_FOLDER / "__init__.py").exists()


def test_an_in_place_project_refuses_changes_and_delete_keeps_the_install(
    project_data_dir: Path, tmp_path: Path, fake_comfyui: FakeComfyUI
) -> None:
    inst = make_portable(tmp_path / "ComfyUI_windows_portable", fake_comfyui)
    before = tree_checksum(inst.root)
    ctx = build_core_context(project_data_dir)
    adopt.adopt(ctx, inst.root, "port", adopt.IN_PLACE)
    assert ProjectStore(ctx.paths).load("port").in_place

    refused = {
        "update": lambda: update.update(ctx, "port", latest=True, report=R, cancel=_c()),
        "plan": lambda: update.plan_update(ctx, "port", latest=True),
        "rollback": lambda: rollback.rollback(ctx, "port", "x", report=R, cancel=_c()),
        "add": lambda: packs.add_pack(ctx, "port", str(tmp_path), report=R, cancel=_c()),
        "disable": lambda: packs.set_enabled(ctx, "port", "x", False, report=R, cancel=_c()),
        "manager": lambda: manager.set_manager(ctx, "port", True, report=R, cancel=_c()),
        "snapshot": lambda: snapshots.take_snapshot(ctx, "port", "by hand"),
        "verify": lambda: verify_project(ctx, "port", R, _c()),
    }
    for what, call in refused.items():
        with pytest.raises(InvalidInput, match="needs a project comfymanager built") as err:
            call()
        assert err.value.fix and "--name port-rebuilt" in err.value.fix, what

    asked = cli(project_data_dir, "delete", "port", check=False)
    assert asked.returncode == 1
    assert "removes only comfymanager's record" in asked.stderr
    assert str(inst.comfyui.resolve()) in asked.stderr
    done = cli(project_data_dir, "delete", "port", "--yes")
    assert "is as it was" in done.stderr
    assert ProjectStore(ctx.paths).folder("port") is None
    assert tree_checksum(inst.root) == before


def test_delete_of_a_built_project_still_warns_about_its_folder(project_data_dir: Path) -> None:
    asked = cli(project_data_dir, "delete", "nosuch", check=False)
    assert asked.returncode == 1 and "removes its folder and environment" in asked.stderr
