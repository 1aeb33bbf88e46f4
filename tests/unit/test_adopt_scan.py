"""The read-only scan of an existing install, and the plan built from it (nothing written)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from comfymanager.core.adopt import scan as scan_mod
from comfymanager.core.adopt.adopt import IN_PLACE, model_sections, plan
from comfymanager.core.adopt.scan import launch_args_from_script, read_head, scan
from comfymanager.core.context import build_core_context
from comfymanager.core.errors import InvalidInput, NotFound
from tests.fixtures.comfyui import FakeComfyUI, git
from tests.fixtures.installs import make_desktop, make_git_install, tree_checksum


def _fake_venv(path: Path, torch: str = "", py: str = "3.12.3") -> None:
    sp = path / "lib" / f"python{py.rsplit('.', 1)[0]}" / "site-packages"
    sp.mkdir(parents=True)
    (path / "bin").mkdir()
    (path / "bin" / "python").write_text("")
    (path / "pyvenv.cfg").write_text(f"home = /usr/bin\nversion_info = {py}\n")
    if torch:
        (sp / f"torch-{torch}.dist-info").mkdir()


def test_git_install_is_read_as_files(tmp_path: Path, fake_comfyui: FakeComfyUI) -> None:
    inst = make_git_install(tmp_path / "inst", fake_comfyui, venv=False)
    _fake_venv(inst.comfyui / "venv", torch="2.7.1+cu128")
    before = tree_checksum(inst.root)
    s = scan(inst.root)
    assert tree_checksum(inst.root) == before
    assert s.kind == "git"
    assert s.comfyui_dir == str(inst.comfyui.resolve())
    assert s.comfyui_commit == inst.commit == fake_comfyui.tags["v0.3.2"]
    assert s.comfyui_origin == str(fake_comfyui.repo)
    assert s.comfyui_version == "0.3.2"
    assert (s.python_version, s.torch_version) == ("3.12.3", "2.7.1+cu128")
    assert s.torch_variant == "cu128"
    packs = {p.folder: p for p in s.packs}
    assert set(packs) == {"ComfyUI-AdoptedGit", "my-local-pack"}
    git_pack = packs["ComfyUI-AdoptedGit"]
    assert (git_pack.kind, git_pack.commit, git_pack.origin) == (
        "git",
        inst.git_pack_commit,
        inst.git_pack_origin,
    )
    assert git_pack.reproducible
    assert packs["my-local-pack"].kind == "local" and not packs["my-local-pack"].reproducible
    assert any("my-local-pack" in w and "not reproducible" in w for w in s.warnings)
    assert s.models_dirs == (str(inst.comfyui.resolve() / "models"),)
    assert s.model_files == 1
    assert s.extra_model_paths == (str(inst.comfyui.resolve() / "extra_model_paths.yaml"),)
    assert s.workflows == ("a.json",)
    assert s.has_settings and s.has_database


def test_branch_from_packed_refs_and_local_only_git_pack(
    tmp_path: Path, fake_comfyui: FakeComfyUI
) -> None:
    inst = make_git_install(tmp_path / "inst", fake_comfyui, venv=False)
    git(inst.comfyui, "checkout", "-q", "-b", "work")
    git(inst.comfyui, "pack-refs", "--all")
    assert not (inst.comfyui / ".git" / "refs" / "heads" / "work").exists()
    assert read_head(inst.comfyui) == (inst.commit, "work")
    pack = inst.comfyui / "custom_nodes" / "ComfyUI-AdoptedGit"
    git(pack, "remote", "remove", "origin")
    s = scan(inst.comfyui)  # the ComfyUI folder itself works too
    found = {p.folder: p for p in s.packs}["ComfyUI-AdoptedGit"]
    assert found.kind == "local" and found.commit == inst.git_pack_commit
    assert not found.reproducible


def test_registry_disabled_and_linked_packs(tmp_path: Path, fake_comfyui: FakeComfyUI) -> None:
    inst = make_git_install(tmp_path / "inst", fake_comfyui, venv=False)
    nodes = inst.comfyui / "custom_nodes"
    reg = nodes / "comfyui-regpack"
    reg.mkdir()
    (reg / "pyproject.toml").write_text(
        '[project]\nname = "comfyui-regpack"\nversion = "1.2.3"\n\n'
        '[tool.comfy]\nPublisherId = "someone"\n'
    )
    (nodes / "old.disabled").mkdir()
    (nodes / ".disabled" / "gone").mkdir(parents=True)
    packs = {p.folder: p for p in scan(inst.root).packs}
    reg_pack = packs["comfyui-regpack"]
    assert (reg_pack.kind, reg_pack.version) == ("registry", "1.2.3")
    assert reg_pack.registry_id == "comfyui-regpack"
    assert not packs["old"].enabled and not packs["gone"].enabled


def test_portable_layout_python_and_launch_args(tmp_path: Path, fake_comfyui: FakeComfyUI) -> None:
    root = tmp_path / "ComfyUI_windows_portable"
    inst = make_git_install(root, fake_comfyui, venv=False)
    emb = root / "python_embeded"
    (emb / "Lib" / "site-packages" / "torch-2.6.0+cu126.dist-info").mkdir(parents=True)
    (emb / "python.exe").write_bytes(b"MZ")
    (emb / "python312._pth").write_text("python312.zip\n.\n")
    (root / "run_nvidia_gpu.bat").write_text(
        ".\\python_embeded\\python.exe -s ComfyUI\\main.py --windows-standalone-build "
        "--port 9000 --listen --lowvram\r\npause\r\n"
    )
    s = scan(root)
    assert s.kind == "portable"
    assert s.comfyui_dir == str(inst.comfyui.resolve())
    assert s.python_exe == str(emb.resolve() / "python.exe")
    assert (s.python_version, s.torch_variant) == ("3.12", "cu126")
    assert s.launch_script == "run_nvidia_gpu.bat"
    assert s.launch_args == ("--windows-standalone-build", "--lowvram")


def test_launch_args_drop_our_own_flags() -> None:
    text = "rem main.py\r\npython main.py --listen 0.0.0.0 --port=9 --cpu --user-directory x %*\r\n"
    assert launch_args_from_script(text) == ("--cpu",)


def test_desktop_base_folder_with_its_config(tmp_path: Path) -> None:
    cfg_dir = tmp_path / "config" / "ComfyUI"
    inst = make_desktop(tmp_path / "Documents" / "ComfyUI", cfg_dir)
    s = scan(inst.root, desktop_config=[cfg_dir])
    assert s.kind == "desktop" and s.comfyui_dir == ""
    assert (s.python_version, s.torch_version) == ("3.12.9", "2.7.1+cu128")
    assert str(cfg_dir / "extra_models_config.yaml") in s.extra_model_paths
    assert any("desktop app ships ComfyUI" in w for w in s.warnings)
    ctx = build_core_context(tmp_path / "data")
    with pytest.raises(InvalidInput, match="desktop app's base folder"):
        plan(ctx, inst.root, "desk", IN_PLACE)


def test_not_a_comfyui_gets_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        scan(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(InvalidInput, match="not a folder"):
        scan(tmp_path / "file.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match="is not a ComfyUI install") as err:
        scan(tmp_path / "empty")
    assert err.value.fix


@pytest.mark.linux_only(reason="symlinks need rights on Windows")
def test_links_out_of_the_tree_are_not_followed_and_walks_are_bounded(
    tmp_path: Path, fake_comfyui: FakeComfyUI, monkeypatch: pytest.MonkeyPatch
) -> None:
    inst = make_git_install(tmp_path / "inst", fake_comfyui, venv=False)
    outside = tmp_path / "outside-pack"
    outside.mkdir()
    (outside / "__init__.py").write_text("")
    (inst.comfyui / "custom_nodes" / "linked").symlink_to(outside)
    assert {p.folder: p for p in scan(inst.root).packs}["linked"].kind == "link"
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "many").mkdir(parents=True)
    for i in range(50):
        (elsewhere / "many" / f"{i}.safetensors").write_bytes(b"x")
    (inst.comfyui / "models" / "outside").symlink_to(elsewhere)
    s = scan(inst.root)
    assert s.model_files == 1  # the link was not walked
    for i in range(30):
        (inst.comfyui / "models" / "checkpoints" / f"{i}.safetensors").write_bytes(b"y")
    monkeypatch.setattr(scan_mod, "MAX_ENTRIES", 10)
    s = scan(inst.root)
    assert s.truncated and s.model_files <= 10
    assert any("counts are partial" in w for w in s.warnings)


def test_plan_writes_nothing_and_keeps_the_store_default(
    tmp_path: Path, fake_comfyui: FakeComfyUI
) -> None:
    inst = make_git_install(tmp_path / "inst", fake_comfyui, venv=False)
    _fake_venv(inst.comfyui / "venv")
    ctx = build_core_context(tmp_path / "data")
    before = tree_checksum(inst.root)
    p = plan(ctx, inst.root, "adopted")
    assert tree_checksum(inst.root) == before
    assert not (ctx.paths.projects / "adopted").exists()
    assert p.comfyui_ref == inst.commit and p.torch_backend == "none"  # a venv without torch
    actions = {pp.folder: pp.action for pp in p.packs}
    assert actions == {"ComfyUI-AdoptedGit": "git", "my-local-pack": "copy"}
    text = "\n".join(p.lines())
    assert "local, not reproducible" in text and inst.commit[:12] in text
    sections = model_sections(p.scan)
    assert f'base_path: "{inst.comfyui.resolve() / "models"}"' in sections
    assert '  checkpoints: "checkpoints"' in sections
    assert f'base_path: "{inst.root.resolve() / "shared-models"}"' in sections
    assert "is_default" not in sections
    assert os.path.exists(inst.comfyui / "extra_model_paths.yaml")


def test_an_installs_yaml_is_rebased_quoted_commented_or_without_base(tmp_path: Path) -> None:
    from comfymanager.core.adopt.adopt import _rebased_yaml

    yaml_file = tmp_path / "ComfyUI" / "extra_model_paths.yaml"
    yaml_file.parent.mkdir()
    yaml_file.write_text(
        "# mine\n"
        "a:\n  base_path: 'My Models/x'  # quoted\n  loras: loras\n"
        "b:\n  base_path: ~/models # plain\n  is_default: true\n"
        "c:\n  checkpoints: |\n    /abs/one\n    /abs/two\n"
    )
    out = "\n".join(_rebased_yaml(yaml_file, "p_"))
    assert f'p_a:\n  base_path: "{yaml_file.parent / "My Models" / "x"}"\n  loras: loras' in out
    assert f'p_b:\n  base_path: "{Path("~/models").expanduser()}"' in out
    assert f'p_c:\n  base_path: "{yaml_file.parent}"\n  checkpoints: |\n    /abs/one' in out
    assert "is_default" not in out and "# mine" not in out


def test_desktop_rebuild_plan_reads_the_app_config_without_its_default(tmp_path: Path) -> None:
    cfg_dir = tmp_path / "config" / "ComfyUI"
    inst = make_desktop(tmp_path / "Documents" / "ComfyUI", cfg_dir)
    ctx = build_core_context(tmp_path / "data")
    ctx.settings.comfyui_source = str(tmp_path)  # an existing folder: the source check passes
    p = plan(ctx, inst.root, "desk", torch_backend="none", desktop_config=[cfg_dir])
    assert p.comfyui_ref == ctx.settings.default_comfyui_ref  # unknown commit: the default, said
    assert any("desktop app ships ComfyUI" in w for w in p.warnings)
    assert "adopted_1_comfyui_desktop:" in p.model_sections
    assert f'base_path: "{inst.root}"' in p.model_sections
    assert "is_default" not in p.model_sections
    assert p.copy_user and p.scan.workflows == ("a.json",)


def test_a_rebuild_asks_for_the_installs_python_only_when_it_differs() -> None:
    import sys

    from comfymanager.core.adopt.adopt import python_request

    ours = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert python_request(ours + ".4") == ""
    other = "3.9" if ours != "3.9" else "3.10"
    assert python_request(other + ".1") == other
    assert python_request("") == "" and python_request("weird") == ""


def test_a_taken_name_is_refused_before_anything_is_written(
    tmp_path: Path, fake_comfyui: FakeComfyUI
) -> None:
    from comfymanager.core.errors import Conflict
    from comfymanager.core.projects import Project, ProjectStore

    inst = make_git_install(tmp_path / "inst", fake_comfyui, venv=False)
    ctx = build_core_context(tmp_path / "data")
    ProjectStore(ctx.paths).create(Project(id="taken"))
    with pytest.raises(Conflict, match="already exists"):
        plan(ctx, inst.root, "taken")
    with pytest.raises(InvalidInput):
        plan(ctx, inst.root, "bad\x1bname")  # a display name is free text, on one line
    with pytest.raises(InvalidInput, match="Unknown adopt mode"):
        plan(ctx, inst.root, "x", "move")


def test_too_many_packs_are_bounded(
    tmp_path: Path, fake_comfyui: FakeComfyUI, monkeypatch: pytest.MonkeyPatch
) -> None:
    inst = make_git_install(tmp_path / "inst", fake_comfyui, venv=False)
    for i in range(5):
        (inst.comfyui / "custom_nodes" / f"extra{i}").mkdir()
    monkeypatch.setattr(scan_mod, "MAX_PACKS", 3)
    s = scan(inst.root)
    assert len(s.packs) == 3 and s.truncated
    assert any("only the first are listed" in w for w in s.warnings)


def test_in_place_launch_finds_the_installs_python_and_says_when_it_is_gone(
    tmp_path: Path, fake_comfyui: FakeComfyUI
) -> None:
    from comfymanager.core.adopt.guard import in_place_launch, require_managed
    from comfymanager.core.projects import Project

    inst = make_git_install(tmp_path / "inst", fake_comfyui, venv=False)
    _fake_venv(inst.root / ".venv")  # beside the ComfyUI folder
    project = Project(id="here", in_place=True, external_root=str(inst.comfyui))
    python, main = in_place_launch(project)
    assert python == inst.root / ".venv" / "bin" / "python"
    assert main == inst.comfyui / "main.py"
    with pytest.raises(InvalidInput, match="update needs a project comfymanager built") as err:
        require_managed(project, "update")
    assert err.value.fix and "comfymanager adopt" in err.value.fix
    require_managed(Project(id="built"), "update")  # a normal project may
    (inst.root / ".venv" / "bin" / "python").unlink()
    with pytest.raises(NotFound, match="no Python environment"):
        in_place_launch(project)
    (inst.comfyui / "main.py").unlink()
    with pytest.raises(NotFound, match="is gone"):
        in_place_launch(project)


def test_a_clone_without_origin_is_warned_about(tmp_path: Path, fake_comfyui: FakeComfyUI) -> None:
    inst = make_git_install(tmp_path / "inst", fake_comfyui, venv=False)
    git(inst.comfyui, "remote", "remove", "origin")
    ctx = build_core_context(tmp_path / "data")
    ctx.settings.comfyui_source = str(fake_comfyui.repo)
    p = plan(ctx, inst.root, "noorigin")
    assert p.comfyui_source == str(fake_comfyui.repo) and p.comfyui_ref == inst.commit
    assert any("no origin remote" in w for w in p.warnings)
    git(inst.comfyui, "remote", "add", "origin", str(tmp_path / "moved-away"))
    p = plan(ctx, inst.root, "gone-origin")
    assert p.comfyui_source == str(fake_comfyui.repo)
    assert any("does not exist any more" in w for w in p.warnings)


def test_a_git_pack_changed_locally_is_flagged(tmp_path: Path, fake_comfyui: FakeComfyUI) -> None:
    from comfymanager.core.adopt.scan import worktree_changed

    inst = make_git_install(tmp_path / "inst", fake_comfyui, venv=False)
    pack = inst.comfyui / "custom_nodes" / "ComfyUI-AdoptedGit"
    assert worktree_changed(pack) is False
    assert worktree_changed(inst.comfyui) is False
    assert {p.folder: p for p in scan(inst.root).packs}["ComfyUI-AdoptedGit"].note == ""
    (pack / "__init__.py").write_text("# my edit\n" + (pack / "__init__.py").read_text())
    assert worktree_changed(pack) is True
    found = {p.folder: p for p in scan(inst.root).packs}["ComfyUI-AdoptedGit"]
    assert found.reproducible and "changed locally" in found.note
    ctx = build_core_context(tmp_path / "data")
    p = plan(ctx, inst.root, "edited", torch_backend="none")
    assert any("edits stay in the original" in w for w in p.warnings)
    (pack / "__init__.py").unlink()
    assert worktree_changed(pack) is True
    assert not any("ComfyUI's files were changed" in w for w in p.warnings)
    (inst.comfyui / "main.py").write_text("# patched\n")
    assert any("ComfyUI's files were changed" in w for w in scan(inst.root).warnings)


def test_an_unreadable_part_is_a_sentence_not_a_traceback(
    tmp_path: Path, fake_comfyui: FakeComfyUI, monkeypatch: pytest.MonkeyPatch
) -> None:
    inst = make_git_install(tmp_path / "inst", fake_comfyui, venv=False)
    real_iterdir = Path.iterdir

    def denied(self: Path):  # type: ignore[no-untyped-def]
        if self.name == "custom_nodes":
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    # running as root in CI makes chmod useless: the OS error is injected where it would come
    monkeypatch.setattr(Path, "iterdir", denied)
    with pytest.raises(InvalidInput, match="custom_nodes cannot be read: Permission denied"):
        scan(inst.root)
