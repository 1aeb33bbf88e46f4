"""Adopting real installs: a git clone with a venv (rebuild) and a portable folder (in place).

Real git clones, real uv environments, the real command line and a real ComfyUI process (the
fixture's main.py, which serves /system_stats and logs the argv it got). The adopted folder is
checksummed before and after: not a byte may change, and the model files keep their inodes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import requests

from comfymanager.core import health
from comfymanager.core.adopt.adopt import adopt, read_record
from comfymanager.core.context import CoreContext, build_core_context
from comfymanager.core.errors import InvalidInput
from comfymanager.core.health import project_health
from comfymanager.core.install import install
from comfymanager.core.install.envs import has_package
from comfymanager.core.models.search_paths import model_present, read_model_roots
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import ProjectStore
from comfymanager.core.run import runs
from comfymanager.core.run.runstate import read_run
from tests.fixtures.comfyui import FakeComfyUI, cli
from tests.fixtures.installs import make_git_install, make_portable, tree_checksum

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("stop_all")]


@pytest.fixture
def ctx(project_data_dir: Path) -> CoreContext:
    return build_core_context(project_data_dir)


def _logged_argv(ctx: CoreContext, name: str) -> list[str]:
    log = ProjectStore(ctx.paths).dirs(name).comfyui_log.read_text(encoding="utf-8")
    line = next(ln for ln in log.splitlines() if ln.startswith("argv: "))
    argv: list[str] = json.loads(line[len("argv: ") :])
    return argv


def test_rebuild_a_git_install_reads_models_in_place_and_changes_nothing(
    ctx: CoreContext, tmp_path: Path, fake_comfyui: FakeComfyUI
) -> None:
    inst = make_git_install(tmp_path / "ComfyUI-home", fake_comfyui)
    model = inst.comfyui / "models" / "checkpoints" / "x.safetensors"
    before, inode = tree_checksum(inst.root), os.stat(model)

    result = adopt(ctx, inst.root, "rebuilt", report=Reporter(), cancel=CancelToken())

    assert tree_checksum(inst.root) == before
    after = os.stat(model)
    assert (after.st_ino, after.st_nlink, after.st_mtime_ns) == (
        inode.st_ino,
        inode.st_nlink,
        inode.st_mtime_ns,
    )
    store = ProjectStore(ctx.paths)
    project, dirs = store.load("rebuilt"), store.dirs("rebuilt")
    assert project.install.status == "ready" and not project.in_place
    assert project.comfyui_commit == inst.commit  # pinned, never updated
    packs = {p.folder: p for p in project.packs}
    assert packs["ComfyUI-AdoptedGit"].commit == inst.git_pack_commit
    assert (dirs.custom_nodes / "ComfyUI-AdoptedGit" / "__init__.py").exists()
    assert result.copied_packs == ("my-local-pack",)
    assert (dirs.custom_nodes / "my-local-pack" / "__init__.py").exists()
    assert has_package(dirs.venv, "localpackdep")  # its requirements, in the project's venv
    record = read_record(dirs)
    assert record is not None and record["local_packs"] == ["my-local-pack"]
    # user data copied, not moved
    assert (dirs.workflows / "a.json").read_text() == '{"nodes": [], "links": []}\n'
    assert (dirs.user / "default" / "comfy.settings.json").exists()
    assert (dirs.database).read_bytes().startswith(b"SQLite format 3")
    assert (inst.comfyui / "user" / "comfyui.db").exists()
    # models: the store first and default, then the install's folders where they are
    yaml = dirs.extra_model_paths.read_text(encoding="utf-8")
    assert yaml.index("is_default: true") < yaml.index("adopted_models:")
    assert f'base_path: "{inst.comfyui.resolve() / "models"}"' in yaml
    assert f'base_path: "{inst.root.resolve() / "shared-models"}"' in yaml
    assert not (dirs.root / "models").exists()
    # what the project's ComfyUI will find, read from that yaml: the install's model counts as
    # present (verify and health would otherwise call it missing)
    roots = read_model_roots(dirs.extra_model_paths)
    assert roots["checkpoints"][0] == ctx.store.resolve() / "checkpoints"
    assert model_present(ctx.store, "checkpoints", "x.safetensors", roots=roots)
    assert not model_present(ctx.store, "checkpoints", "y.safetensors", roots=roots)
    assert not model_present(ctx.store, "loras", "x.safetensors", roots=roots)
    # and the project's health says so: the install's model is there, another one is missing
    project.models += [
        {"directory": "checkpoints", "name": "x.safetensors"},
        {"directory": "checkpoints", "name": "y.safetensors"},
    ]
    store.save(project)
    missing = [p.subject for p in project_health(ctx, "rebuilt").of_kind(health.MODEL)]
    assert missing == ["checkpoints/y.safetensors"]

    runs.start(ctx, "rebuilt")
    st = runs.wait_ready(ctx, "rebuilt", timeout=60)
    assert requests.get(f"{st.url}/system_stats", timeout=5).status_code == 200
    argv = _logged_argv(ctx, "rebuilt")
    assert argv[argv.index("--extra-model-paths-config") + 1] == str(dirs.extra_model_paths)
    runs.stop(ctx, "rebuilt")

    # a repair rewrites the store's section, keeps the adopted one, puts a lost local pack back
    from comfymanager.core.fileops import remove_tree

    remove_tree(dirs.custom_nodes / "my-local-pack")
    install.install_project(ctx, "rebuilt", report=Reporter(), cancel=CancelToken())
    assert dirs.extra_model_paths.read_text(encoding="utf-8") == yaml
    assert (dirs.custom_nodes / "my-local-pack" / "__init__.py").exists()
    assert not list(dirs.custom_nodes.glob("*.adopt.disabled"))
    assert tree_checksum(inst.root) == before


def test_portable_in_place_starts_stops_and_needs_a_rebuild_to_change(
    project_data_dir: Path, ctx: CoreContext, tmp_path: Path, fake_comfyui: FakeComfyUI
) -> None:
    inst = make_portable(tmp_path / "ComfyUI_windows_portable", fake_comfyui)
    before = tree_checksum(inst.root)
    out = cli(project_data_dir, "adopt", str(inst.root), "--in-place", "--name", "port", "--json")
    assert json.loads(out.stdout)["project"] == "port"
    assert tree_checksum(inst.root) == before
    project = ProjectStore(ctx.paths).load("port")
    assert project.in_place and project.external_root == str(inst.comfyui.resolve())
    assert project.comfyui_commit == inst.commit

    source_only = tree_checksum(inst.root, skip=("__pycache__",))
    twice = cli(project_data_dir, "adopt", str(inst.root), "--in-place", check=False)
    assert twice.returncode == 1 and "already adopted in place as project 'port'" in twice.stderr
    cli(project_data_dir, "start", "port")
    st = runs.wait_ready(ctx, "port", timeout=60)
    assert st.state == "running"
    assert requests.get(f"{st.url}/system_stats", timeout=5).status_code == 200
    dirs = ProjectStore(ctx.paths).dirs("port")
    run = read_run(dirs)
    assert run is not None
    python = Path(run["argv"][0])
    assert python.parent.parent == (inst.root / "python_embeded").resolve()
    assert run["argv"][2] == str(inst.comfyui.resolve() / "main.py")
    argv = _logged_argv(ctx, "port")
    assert "--lowvram" in argv and "8190" not in argv  # the .bat's own args, our port
    assert dirs.comfyui_log.exists()  # logs and run records live with comfymanager
    assert not (inst.root / "logs").exists() and not (inst.comfyui / "run.json").exists()
    cli(project_data_dir, "stop", "port")
    assert runs.status(ctx, ProjectStore(ctx.paths).load("port")).state == "stopped"
    # running writes only bytecode caches in the install, as it always did
    assert tree_checksum(inst.root, skip=("__pycache__",)) == source_only

    with pytest.raises(InvalidInput, match="needs a project comfymanager built"):
        install.install_project(ctx, "port", report=Reporter(), cancel=CancelToken())
    failed = cli(project_data_dir, "repair", "port", check=False)
    assert failed.returncode == 1 and "adopt" in failed.stderr

    # a damaged record is rebuilt as the same in-place project, never as an install of its own
    dirs.file.unlink()
    dirs.file.with_name("project.json.bak").unlink(missing_ok=True)
    cli(project_data_dir, "repair", "port")
    again = ProjectStore(ctx.paths).load("port")
    assert again.in_place and again.external_root == str(inst.comfyui.resolve())
    assert again.install.status == "ready" and not dirs.comfyui.exists()
    assert tree_checksum(inst.root, skip=("__pycache__",)) == source_only

    install.delete_project(ctx, "port")
    assert not dirs.root.exists()
    assert (inst.comfyui / "main.py").exists()
    assert (inst.comfyui / "models" / "checkpoints" / "x.safetensors").exists()


def test_dry_run_prints_the_plan_and_writes_nothing(
    project_data_dir: Path, tmp_path: Path, fake_comfyui: FakeComfyUI
) -> None:
    inst = make_git_install(tmp_path / "inst", fake_comfyui, venv=False)
    before = tree_checksum(inst.root)
    out = cli(project_data_dir, "adopt", str(inst.root), "--dry-run")
    assert "Dry run: nothing was written." in out.stdout
    assert inst.commit[:12] in out.stdout and "my-local-pack: copy" in out.stdout
    assert tree_checksum(inst.root) == before
    assert not (project_data_dir / "projects" / "inst").exists()
    bad = cli(project_data_dir, "adopt", str(tmp_path), "--dry-run", check=False)
    assert bad.returncode == 1 and "is not a ComfyUI install" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_an_adopt_killed_while_copying_is_finished_by_repair(
    project_data_dir: Path, ctx: CoreContext, tmp_path: Path, fake_comfyui: FakeComfyUI
) -> None:
    from comfymanager.core.killpoint import ENV as KILL_ENV

    inst = make_git_install(tmp_path / "inst", fake_comfyui, venv=False)
    before = tree_checksum(inst.root)
    killed = cli(
        project_data_dir,
        "adopt",
        str(inst.root),
        "--name",
        "halfway",
        "--torch-backend",
        "none",
        env={KILL_ENV: "adopt-copy-file"},
        check=False,
    )
    assert killed.returncode != 0 and "Adopted" not in killed.stdout, killed.stderr
    dirs = ProjectStore(ctx.paths).dirs("halfway")
    assert not (dirs.custom_nodes / "my-local-pack").exists()
    (dirs.workflows).mkdir(parents=True, exist_ok=True)
    cli(project_data_dir, "repair", "halfway")
    assert ProjectStore(ctx.paths).load("halfway").install.status == "ready"
    assert (dirs.workflows / "a.json").exists()
    assert (dirs.user / "default" / "comfy.settings.json").exists() and dirs.database.exists()
    assert (dirs.custom_nodes / "my-local-pack" / "__init__.py").exists()
    assert not list(dirs.root.rglob("*.adopt.tmp"))
    record = read_record(dirs)
    assert record is not None and record["user_copied"] is True
    # copied once: a workflow the user changes in the project survives the next repair
    (dirs.workflows / "a.json").write_text('{"changed": true}\n')
    install.install_project(ctx, "halfway", report=Reporter(), cancel=CancelToken())
    assert (dirs.workflows / "a.json").read_text() == '{"changed": true}\n'
    assert tree_checksum(inst.root) == before


def test_rebuild_the_desktop_apps_base_folder(
    ctx: CoreContext, tmp_path: Path, fake_comfyui: FakeComfyUI
) -> None:
    from tests.fixtures.installs import make_desktop

    cfg_dir = tmp_path / "config" / "ComfyUI"
    inst = make_desktop(tmp_path / "Documents" / "ComfyUI", cfg_dir)
    before = tree_checksum(inst.root)
    result = adopt(
        ctx,
        inst.root,
        "desk",
        torch_backend="none",
        python="",  # the default interpreter: the install's 3.12 may need a download here
        desktop_config=[cfg_dir],
        report=Reporter(),
        cancel=CancelToken(),
    )
    assert tree_checksum(inst.root) == before
    assert any("desktop app ships ComfyUI" in w for w in result.plan.warnings)
    store = ProjectStore(ctx.paths)
    project, dirs = store.load("desk"), store.dirs("desk")
    assert project.install.status == "ready"
    assert project.comfyui_commit == fake_comfyui.tags["v0.3.2"]  # the default: latest release
    assert (dirs.workflows / "a.json").exists() and dirs.database.exists()
    yaml = dirs.extra_model_paths.read_text(encoding="utf-8")
    assert yaml.count("is_default: true") == 1  # the store's; the app's own default is dropped
    assert "adopted_1_comfyui_desktop:" in yaml and f'base_path: "{inst.root}"' in yaml
