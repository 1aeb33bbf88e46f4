"""A project lives on: update with a way back, rollback, and a killed rollback that repair
finishes. Real uv environments, a local ComfyUI repository with several release tags whose
requirements differ (locally built wheels), and local git packs with several tags."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from comfymanager.core.context import CoreContext, build_core_context
from comfymanager.core.errors import Conflict
from comfymanager.core.install import install, sources
from comfymanager.core.install.packs import installed_zip
from comfymanager.core.lifecycle import rollback as rb
from comfymanager.core.lifecycle import snapshots as snaps
from comfymanager.core.lifecycle.pack_list import list_packs
from comfymanager.core.lifecycle.update import UpdateFailed, check_updates, plan_update, update
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import PackRecord, ProjectStore
from comfymanager.core.run import runs
from tests.fixtures.comfyui import build_wheel, cli, git, make_fake_comfyui
from tests.fixtures.portable import was_killed
from tests.fixtures.registry_server import Registry, zip_folder

pytestmark = pytest.mark.slow

PACK_INIT = (
    "class {cls}:\n"
    "    @classmethod\n"
    "    def INPUT_TYPES(cls):\n"
    "        return {{'required': {{}}}}\n"
    "    RETURN_TYPES = ()\n"
    "    FUNCTION = 'run'\n"
    "NODE_CLASS_MAPPINGS = {{'{cls}': {cls}}}\n"
)


@dataclass(frozen=True)
class Sources:
    comfyui: Path
    tags: dict[str, str]  # tag -> commit
    life_pack: Path  # tags 1.0.0 and 1.1.0 (a newer requirement)
    stable_pack: Path  # tag 1.0.0 only


def _tag(repo: Path, tag: str, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    git(repo, "tag", tag)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def life_sources(tmp_path_factory: pytest.TempPathFactory) -> Sources:
    return make_life_sources(tmp_path_factory.mktemp("life-sources"))


def make_life_sources(root: Path) -> Sources:
    fake = make_fake_comfyui(root)
    tags = dict(fake.tags)
    repo = fake.repo
    dep2 = build_wheel(root / "wheels2", version="2.0")
    (repo / "requirements.txt").write_text(f"fakecomfydep @ {dep2.as_uri()}\n")
    tags["v0.4.0"] = _tag(repo, "v0.4.0", "v0.4.0: fakecomfydep 2.0")
    missing = (root / "wheels2" / "nowhere-1.0-py3-none-any.whl").as_uri()
    (repo / "requirements.txt").write_text(f"fakecomfydep @ {dep2.as_uri()}\nnowhere @ {missing}\n")
    tags["v0.5.0"] = _tag(repo, "v0.5.0", "v0.5.0: a requirement that cannot install")
    (repo / "requirements.txt").write_text(f"fakecomfydep @ {dep2.as_uri()}\n")
    git(repo, "commit", "-qam", "unreleased: the requirement fixed")

    life = root / "ComfyUI-LifePack"
    life.mkdir()
    git(life, "init", "-q", "-b", "main")
    w1 = build_wheel(root / "lifewheels1", name="lifepackdep", version="1.0")
    w2 = build_wheel(root / "lifewheels2", name="lifepackdep", version="2.0")
    (life / "__init__.py").write_text(PACK_INIT.format(cls="LifeNode"))
    (life / "requirements.txt").write_text(f"lifepackdep @ {w1.as_uri()}\n")
    _tag(life, "1.0.0", "first")
    (life / "requirements.txt").write_text(f"lifepackdep @ {w2.as_uri()}\n")
    _tag(life, "1.1.0", "lifepackdep 2.0")

    stable = root / "ComfyUI-StablePack"
    stable.mkdir()
    git(stable, "init", "-q", "-b", "main")
    (stable / "__init__.py").write_text(PACK_INIT.format(cls="StableNode"))
    _tag(stable, "1.0.0", "only release")
    return Sources(repo, tags, life, stable)


def _create(ctx: CoreContext, src: Sources, name: str) -> None:
    """A project at v0.3.1 with LifePack 1.0.0 and StablePack 1.0.0, installed for real."""
    project = install.validate_spec(
        ctx,
        install.ProjectSpec(
            name=name,
            comfyui_source=str(src.comfyui),
            comfyui_ref="v0.3.1",
            torch_backend="none",
        ),
    )
    project.packs = [
        PackRecord(url=src.life_pack.as_uri(), folder="ComfyUI-LifePack", version="1.0.0"),
        PackRecord(url=src.stable_pack.as_uri(), folder="ComfyUI-StablePack", version="1.0.0"),
    ]
    ProjectStore(ctx.paths).create(project)
    install.install_project(ctx, name, report=Reporter(), cancel=CancelToken())


@pytest.fixture
def life_ctx(project_data_dir: Path, life_sources: Sources) -> CoreContext:
    return build_core_context(project_data_dir)


def _heads(ctx: CoreContext, name: str) -> dict[str, str]:
    dirs = ProjectStore(ctx.paths).dirs(name)
    out = {"ComfyUI": sources.head_commit(dirs.comfyui) or ""}
    for folder, (path, _enabled) in snaps.pack_folders(dirs).items():
        out[folder] = sources.head_commit(path) or ""
    return out


def _assert_equals_snapshot(ctx: CoreContext, name: str, snap: snaps.Snapshot) -> None:
    dirs = ProjectStore(ctx.paths).dirs(name)
    assert snaps.freeze(ctx, dirs) == snap.lock
    heads = _heads(ctx, name)
    assert heads["ComfyUI"] == snap.comfyui_commit
    assert {p.folder: p.commit for p in snap.packs} == {
        k: v for k, v in heads.items() if k != "ComfyUI"
    }
    assert not rb.intent_file(dirs).exists()


def test_update_then_rollback_and_failed_update_rolls_back(
    life_ctx: CoreContext, life_sources: Sources
) -> None:
    ctx, src = life_ctx, life_sources
    _create(ctx, src, "life")
    dirs = ProjectStore(ctx.paths).dirs("life")
    before = snaps.freeze(ctx, dirs)
    assert any(line.startswith("lifepackdep") and "1.0" in line for line in before)

    check = check_updates(ctx, "life", timeout=20)
    assert check.error == "" and check.available
    assert check.comfyui_latest == "v0.5.0" and check.comfyui_available
    head = _heads(ctx, "life")["ComfyUI-LifePack"][:10]
    assert [(p.folder, p.old, p.new) for p in check.packs] == [
        ("ComfyUI-LifePack", f"1.0.0 ({head})", "1.1.0")  # the release, as `packs` shows it
    ]

    plan = plan_update(ctx, "life", ref="v0.4.0", packs=True)
    assert plan.commits[0][1] == "v0.4.0: fakecomfydep 2.0"
    assert not plan.downgrade
    assert any("2.0" in d and d.startswith("+") for d in plan.requirements_diff)
    assert [(p.folder, p.new) for p in plan.packs] == [("ComfyUI-LifePack", "1.1.0")]
    assert _heads(ctx, "life")["ComfyUI"] == src.tags["v0.3.1"]  # a plan changes nothing

    logs: list[str] = []
    result = update(
        ctx,
        "life",
        ref="v0.4.0",
        packs=True,
        report=Reporter(log=logs.append),
        cancel=CancelToken(),
    )
    assert result.applied
    after = snaps.freeze(ctx, dirs)
    assert after != before
    assert any(line.startswith("fakecomfydep") and "wheels2" in line for line in after)
    assert any(line.startswith("lifepackdep") and "lifewheels2" in line for line in after)
    assert _heads(ctx, "life")["ComfyUI"] == src.tags["v0.4.0"]
    project = ProjectStore(ctx.paths).load("life")
    assert project.comfyui_commit == src.tags["v0.4.0"]
    versions = {p.name: p.version for p in list_packs(ctx, "life")}
    assert versions["ComfyUI-LifePack"] == "1.1.0"  # `packs` lists the new release

    snap = snaps.load_snapshot(ctx, "life", result.snapshot_id)
    assert snap.reason == "update" and snap.lock == before
    back = rb.rollback(ctx, "life", snap.id, Reporter(), CancelToken())
    assert back.snapshot_id == snap.id
    _assert_equals_snapshot(ctx, "life", snap)
    assert ProjectStore(ctx.paths).load("life").comfyui_commit == src.tags["v0.3.1"]
    assert {p.name: p.version for p in list_packs(ctx, "life")}["ComfyUI-LifePack"] == "1.0.0"
    # the state before the rollback was recorded: the rollback can be undone
    at_b = snaps.list_snapshots(ctx, "life")[0]
    assert at_b.reason == "rollback"
    changed = snaps.changes_between(snap, at_b)
    assert changed[0] == f"ComfyUI {src.tags['v0.3.1'][:10]} -> {src.tags['v0.4.0'][:10]}"
    assert changed[1] == "pack ComfyUI-LifePack 1.0.0 -> 1.1.0"  # releases, where recorded
    assert changed[2] == "2 packages: fakecomfydep, lifepackdep"

    # an update whose requirements cannot install goes back by itself and says what failed
    with pytest.raises(UpdateFailed) as failed:
        update(ctx, "life", ref="v0.5.0", report=Reporter(), cancel=CancelToken())
    assert "ComfyUI's requirements" in failed.value.message
    assert "rolled back" in failed.value.message
    newest = snaps.list_snapshots(ctx, "life")[0]
    assert newest.reason == "update"
    _assert_equals_snapshot(ctx, "life", newest)
    assert snaps.freeze(ctx, dirs) == before

    # nothing to do at the same ref; a project ahead of the latest release has no update
    assert not plan_update(ctx, "life", ref="v0.3.1").changes
    update(ctx, "life", ref="master", report=Reporter(), cancel=CancelToken())
    ahead = check_updates(ctx, "life", packs=False, timeout=20)
    assert ahead.comfyui_latest == "v0.5.0" and not ahead.comfyui_available, ahead

    # while ComfyUI runs, nothing is changed under it
    runs.start(ctx, "life")
    try:
        runs.wait_ready(ctx, "life", timeout=60)
        at = _heads(ctx, "life")
        with pytest.raises(Conflict, match="running"):
            rb.rollback(ctx, "life", snap.id, Reporter(), CancelToken())
        with pytest.raises(Conflict, match="running"):
            update(ctx, "life", ref="v0.4.0", report=Reporter(), cancel=CancelToken())
        assert _heads(ctx, "life") == at
    finally:
        runs.stop(ctx, "life")


def test_cli_snapshots_and_killed_rollback_finished_by_repair(
    life_ctx: CoreContext, life_sources: Sources, project_data_dir: Path
) -> None:
    ctx, src = life_ctx, life_sources
    _create(ctx, src, "cli")
    dirs = ProjectStore(ctx.paths).dirs("cli")
    first = cli(project_data_dir, "snapshot", "cli", "--note", "works").stdout.strip()
    listed = json.loads(cli(project_data_dir, "snapshots", "cli", "--json").stdout)
    assert listed[0]["id"] == first and listed[0]["note"] == "works"
    assert listed[0]["comfyui_commit"] == src.tags["v0.3.1"]
    assert {p["folder"] for p in listed[0]["packs"]} == {"ComfyUI-LifePack", "ComfyUI-StablePack"}
    assert {"id", "created", "reason", "note", "comfyui_commit", "packs"} <= set(listed[0])

    dry = cli(project_data_dir, "update", "cli", "--comfyui-ref", "v0.4.0", "--dry-run")
    assert "v0.4.0: fakecomfydep 2.0" in dry.stdout and "Dry run" in dry.stdout
    assert _heads(ctx, "cli")["ComfyUI"] == src.tags["v0.3.1"]

    update(ctx, "cli", ref="v0.4.0", packs=True, report=Reporter(), cancel=CancelToken())
    down = plan_update(ctx, "cli", ref="v0.3.1")
    assert down.downgrade and down.comfyui_new == src.tags["v0.3.1"]
    assert down.commits[0][1] == "v0.4.0: fakecomfydep 2.0"
    assert any(d.startswith("-") and "wheels2" in d for d in down.requirements_diff)
    no = cli(project_data_dir, "rollback", "cli", first, check=False)
    assert no.returncode == 1 and "--yes" in no.stderr
    assert _heads(ctx, "cli")["ComfyUI"] == src.tags["v0.4.0"]

    # killed while syncing the environment: the intent stays, repair goes back to the snapshot
    killed = cli(
        project_data_dir,
        "rollback",
        "cli",
        first,
        "--yes",
        env={"COMFYMANAGER_TEST_KILL_AT": "rollback:environment"},
        check=False,
    )
    assert was_killed(killed.returncode), killed.stderr
    assert rb.intent_file(dirs).exists()
    cli(project_data_dir, "repair", "cli")
    _assert_equals_snapshot(ctx, "cli", snaps.load_snapshot(ctx, "cli", first))
    assert os.path.isdir(dirs.venv)

    # killed in the middle of an update (ComfyUI already checked out): repair undoes it
    killed = cli(
        project_data_dir,
        "update",
        "cli",
        "--comfyui-ref",
        "v0.4.0",
        env={"COMFYMANAGER_TEST_KILL_AT": "update:comfyui"},
        check=False,
    )
    assert was_killed(killed.returncode), killed.stderr
    assert _heads(ctx, "cli")["ComfyUI"] == src.tags["v0.4.0"]
    intent = rb.read_intent(dirs)
    assert intent is not None and intent["operation"] == "update"
    cli(project_data_dir, "repair", "cli")
    newest = snaps.list_snapshots(ctx, "cli")[0]
    assert newest.reason == "update" and newest.id == intent["snapshot_id"]
    _assert_equals_snapshot(ctx, "cli", newest)
    assert newest.comfyui_commit == src.tags["v0.3.1"]


ROLLBACK_KILLS = ("rollback:comfyui", "rollback:packs", "replace:project.json")
UPDATE_KILLS = ("update:packs", "replace:rollback.json")


def test_a_kill_at_any_step_leaves_what_repair_brings_back(
    life_ctx: CoreContext, life_sources: Sources, project_data_dir: Path
) -> None:
    ctx, src = life_ctx, life_sources
    _create(ctx, src, "kills")
    start = snaps.take_snapshot(ctx, "kills", "manual", note="start")
    for point in ROLLBACK_KILLS:
        update(ctx, "kills", ref="v0.4.0", packs=True, report=Reporter(), cancel=CancelToken())
        killed = cli(
            project_data_dir,
            "rollback",
            "kills",
            start.id,
            "--yes",
            env={"COMFYMANAGER_TEST_KILL_AT": point},
            check=False,
        )
        assert was_killed(killed.returncode), (point, killed.stderr)
        cli(project_data_dir, "repair", "kills")
        _assert_equals_snapshot(ctx, "kills", start)
    for point in UPDATE_KILLS:
        killed = cli(
            project_data_dir,
            "update",
            "kills",
            "--comfyui-ref",
            "v0.4.0",
            "--packs",
            env={"COMFYMANAGER_TEST_KILL_AT": point},
            check=False,
        )
        assert was_killed(killed.returncode), (point, killed.stderr)
        cli(project_data_dir, "repair", "kills")
        newest = snaps.list_snapshots(ctx, "kills")[0]
        assert newest.lock == start.lock
        _assert_equals_snapshot(ctx, "kills", newest)


def test_registry_pack_and_enabled_state_come_back(
    life_ctx: CoreContext, life_sources: Sources, registry: Registry, tmp_path: Path
) -> None:
    ctx, src = build_core_context(life_ctx.paths.root), life_sources  # registry set by env
    for version, dep in (("1.0.0", "1.0"), ("1.1.0", "2.0")):
        folder = tmp_path / f"reg-{version}"
        folder.mkdir()
        (folder / "__init__.py").write_text(PACK_INIT.format(cls="RegNode"))
        wheel = build_wheel(tmp_path / f"regwheels{dep}", name="regdep", version=dep)
        (folder / "requirements.txt").write_text(f"regdep @ {wheel.as_uri()}\n")
        registry.add("regpack", version, zip_folder(folder), checksum=True)
    project = install.validate_spec(
        ctx,
        install.ProjectSpec(
            name="reg", comfyui_source=str(src.comfyui), comfyui_ref="v0.3.1", torch_backend="none"
        ),
    )
    project.packs = [
        PackRecord(url="", folder="regpack", registry_id="regpack", version="1.0.0"),
        PackRecord(url=src.stable_pack.as_uri(), folder="ComfyUI-StablePack", version="1.0.0"),
    ]
    ProjectStore(ctx.paths).create(project)
    install.install_project(ctx, "reg", report=Reporter(), cancel=CancelToken())
    dirs = ProjectStore(ctx.paths).dirs("reg")

    check = check_updates(ctx, "reg", timeout=20)
    assert [(p.folder, p.old, p.new) for p in check.packs] == [("regpack", "1.0.0", "1.1.0")]
    assert check.comfyui_available  # v0.5.0 is out

    result = update(ctx, "reg", packs=True, report=Reporter(), cancel=CancelToken())
    assert result.plan.comfyui_new == src.tags["v0.3.1"]  # only the packs
    assert installed_zip(dirs.custom_nodes / "regpack") == ("regpack", "1.1.0")
    assert any("regdep-2.0" in line for line in snaps.freeze(ctx, dirs))
    snap = snaps.load_snapshot(ctx, "reg", result.snapshot_id)
    [reg] = [p for p in snap.packs if p.folder == "regpack"]
    assert (reg.kind, reg.version) == ("registry", "1.0.0") and len(reg.archive_sha256) == 64

    # by hand after the update: a pack disabled, a folder added
    stable = dirs.custom_nodes / "ComfyUI-StablePack"
    stable.rename(stable.with_name("ComfyUI-StablePack.disabled"))
    (dirs.custom_nodes / "Extra").mkdir()
    (dirs.custom_nodes / "Extra" / "__init__.py").write_text("")

    rb.rollback(ctx, "reg", snap.id, Reporter(), CancelToken())
    assert installed_zip(dirs.custom_nodes / "regpack") == ("regpack", "1.0.0")
    assert snaps.freeze(ctx, dirs) == snap.lock
    folders = snaps.pack_folders(dirs)
    assert folders["ComfyUI-StablePack"][1] is True and stable.is_dir()
    assert folders["Extra"][1] is False and (dirs.custom_nodes / "Extra.disabled").is_dir()
    assert registry.install_requests("regpack")[-1] == "1.0.0"

    # a new version that no longer imports: the update's verification rolls it back
    broken = tmp_path / "reg-broken"
    broken.mkdir()
    (broken / "__init__.py").write_text("import module_that_is_not_there\n")
    registry.add("regpack", "1.2.0", zip_folder(broken), checksum=True)
    with pytest.raises(UpdateFailed) as failed:
        update(ctx, "reg", packs=True, report=Reporter(), cancel=CancelToken())
    assert "verification" in failed.value.message and "regpack" in failed.value.message
    assert "rolled back" in failed.value.message
    assert installed_zip(dirs.custom_nodes / "regpack") == ("regpack", "1.0.0")
    assert ProjectStore(ctx.paths).load("reg").comfyui_ref == "v0.3.1"

    # a pack whose source no longer answers is named in the plan and does not stop it
    git(stable, "remote", "set-url", "origin", (tmp_path / "gone").as_uri())
    plan = plan_update(ctx, "reg", packs=True)
    assert [f for f, _ in plan.unchecked] == ["ComfyUI-StablePack"]
    assert any("not checked" in line for line in plan.lines())
    assert [p.folder for p in plan.packs] == ["regpack"]
