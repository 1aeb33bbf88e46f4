"""No system git: sources falls back to pygit2 when git is absent or is the macOS stub.

Real repositories (the fake ComfyUI and the node-pack fixtures), a real uv environment for the
create + pack install flow; git is taken away by pointing PATH at a folder whose only ``git`` is
a script that fails like ``/usr/bin/git`` on a Mac without the developer tools.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from comfymanager.core.context import build_core_context
from comfymanager.core.errors import Cancelled, NotFound
from comfymanager.core.install import envs, packs, sources
from comfymanager.core.progress import CancelToken, Progress, Reporter
from comfymanager.core.projects import PackRecord, ProjectStore
from tests.fixtures.comfyui import GIT_ENV, FakeComfyUI, create_installed
from tests.fixtures.node_packs import NodePacks

XCRUN_STUB = """#!/bin/sh
echo "xcrun: error: invalid active developer path (/Library/Developer/CommandLineTools), \
missing xcrun at: /Library/Developer/CommandLineTools/usr/bin/xcrun" >&2
exit 1
"""


REAL_GIT = shutil.which("git") or "git"


def git(cwd: Path, *args: str) -> str:
    """The fixtures' git, by absolute path: these tests hide git from the code under test."""
    out = subprocess.run(
        [REAL_GIT, *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def _stub_git(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    stub = folder / "git"
    stub.write_text(XCRUN_STUB)
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    return stub


@pytest.fixture
def no_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """PATH holds only a failing git stub: git is unusable. On the macOS and Windows runners
    Homebrew's and Git for Windows' git would (rightly) still be found in their folders, so
    there the fallback is forced instead."""
    stub_dir = tmp_path / "stub-bin"
    _stub_git(stub_dir)
    monkeypatch.setenv("PATH", str(stub_dir))
    if sys.platform.startswith("linux"):
        monkeypatch.delenv(sources.ENV_GIT, raising=False)
    else:
        monkeypatch.setenv(sources.ENV_GIT, sources.PYGIT2)
    sources.forget_git()
    yield stub_dir
    sources.forget_git()


def test_git_candidates_look_where_gui_apps_cannot_see() -> None:
    mac = sources.git_candidates("darwin", {}, which=lambda _: "/usr/bin/git")
    assert mac[0] == "/usr/bin/git"  # PATH first, then Homebrew (Apple silicon and Intel)
    assert "/opt/homebrew/bin/git" in mac and "/usr/local/bin/git" in mac
    win = sources.git_candidates(
        "win32",
        {"ProgramFiles": "C:\\Program Files", "LOCALAPPDATA": "C:\\Users\\a\\AppData\\Local"},
        which=lambda _: None,
    )
    assert win == [
        "C:\\Program Files\\Git\\cmd\\git.exe",
        "C:\\Users\\a\\AppData\\Local\\Programs\\Git\\cmd\\git.exe",
    ]


@pytest.mark.skipif(os.name == "nt", reason="the stubs are POSIX shell scripts")
def test_the_macos_stub_is_not_a_working_git(tmp_path: Path) -> None:
    stub = _stub_git(tmp_path / "bin")
    assert not sources.git_works(str(stub))
    assert not sources.git_works(str(tmp_path / "missing" / "git"))
    hanging = tmp_path / "hang" / "git"  # the stub can also sit on its "install tools" dialog
    hanging.parent.mkdir()
    hanging.write_text("#!/bin/sh\nexec sleep 30\n")
    hanging.chmod(0o755)
    assert not sources.git_works(str(hanging), timeout=0.5)


def test_frozen_builds_use_uv_managed_python_only() -> None:
    assert envs.python_preference(frozen=True) == "only-managed"
    assert envs.python_preference(frozen=False) == ""


def test_a_working_git_is_preferred_and_can_be_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(sources.ENV_GIT, raising=False)
    real = sources.git_candidates(sys.platform)
    assert real and sources.git_works(real[0])  # this machine has git; the suite needs it
    sources.forget_git()
    assert sources.backend() == "git"
    monkeypatch.setenv(sources.ENV_GIT, "pygit2")
    assert sources.backend() == "pygit2"
    monkeypatch.setenv(sources.ENV_GIT, "/nonexistent/git")
    with pytest.raises(NotFound):
        sources.find_git()


def test_pygit2_lists_clones_fetches_and_checks_out(
    no_git: Path, fake_comfyui: FakeComfyUI, tmp_path: Path
) -> None:
    assert sources.find_git() == sources.PYGIT2
    refs = sources.list_remote(str(fake_comfyui.repo))
    assert refs.releases() == ["v0.3.2", "v0.3.1"]
    assert refs.tags["v0.3.2"] == fake_comfyui.tags["v0.3.2"]  # annotated tag peeled
    assert refs.head_branch == "master"

    seen: list[Progress] = []
    dest = tmp_path / "co"
    url = fake_comfyui.repo.as_uri()  # file://: libgit2 reports transfer progress for it
    commit = sources.checkout(
        url,
        "v0.3.1",
        dest,
        stage="clone",
        report=Reporter(progress=seen.append),
        cancel=CancelToken(),
    )
    assert commit == fake_comfyui.tags["v0.3.1"]
    assert sources.head_commit(dest) == commit
    assert not (dest / "comfyui_version.py").exists()  # the work tree is v0.3.1's
    assert sources.origin_url(dest) == url
    assert any(p.unit == "objects" and p.total for p in seen)

    again = sources.checkout(
        str(fake_comfyui.repo),
        "master",
        dest,
        stage="clone",
        report=Reporter(),
        cancel=CancelToken(),
    )
    assert again == fake_comfyui.head and (dest / "NEWS.md").exists()
    short = sources.checkout(
        str(fake_comfyui.repo),
        fake_comfyui.tags["v0.3.2"][:10],
        dest,
        stage="clone",
        report=Reporter(),
        cancel=CancelToken(),
    )
    assert short == fake_comfyui.tags["v0.3.2"] and sources.head_commit(dest) == short
    with pytest.raises(NotFound, match="'nope' does not exist"):
        sources.checkout(
            str(fake_comfyui.repo),
            "nope",
            dest,
            stage="clone",
            report=Reporter(),
            cancel=CancelToken(),
        )


def test_pygit2_fetches_a_tag_made_after_the_clone(
    no_git: Path, node_packs: NodePacks, tmp_path: Path
) -> None:
    upstream = tmp_path / "upstream"
    git(tmp_path, "clone", "-q", str(node_packs.good), str(upstream))
    dest = tmp_path / "pack"
    sources.checkout(
        str(upstream), "main", dest, stage="packs", report=Reporter(), cancel=CancelToken()
    )
    (upstream / "NEW.md").write_text("new\n")
    git(upstream, "add", "-A")
    git(upstream, "commit", "-q", "-m", "new")
    git(upstream, "tag", "v9.0.0")
    got = sources.checkout(
        str(upstream), "v9.0.0", dest, stage="packs", report=Reporter(), cancel=CancelToken()
    )
    assert got == git(upstream, "rev-parse", "HEAD") and (dest / "NEW.md").exists()


def test_pygit2_clone_is_cancelled_and_leaves_no_checkout(
    no_git: Path, fake_comfyui: FakeComfyUI, tmp_path: Path
) -> None:
    cancel = CancelToken()
    seen: list[Progress] = []

    def on_progress(p: Progress) -> None:  # the user presses Cancel once objects arrive
        seen.append(p)
        if p.unit == "objects":
            cancel.cancel()

    dest = tmp_path / "co"
    with pytest.raises(Cancelled):
        sources.checkout(
            fake_comfyui.repo.as_uri(),
            "v0.3.1",
            dest,
            stage="clone",
            report=Reporter(progress=on_progress),
            cancel=cancel,
        )
    assert any(p.unit == "objects" for p in seen)
    assert sources.head_commit(dest) is None and not dest.exists()
    # a retry starts over from the leftover and succeeds
    again = sources.checkout(
        fake_comfyui.repo.as_uri(),
        "v0.3.1",
        dest,
        stage="clone",
        report=Reporter(),
        cancel=CancelToken(),
    )
    assert again == fake_comfyui.tags["v0.3.1"]


def test_pygit2_bad_address_is_a_typed_error(no_git: Path, tmp_path: Path) -> None:
    empty = tmp_path / "not-a-repo"
    empty.mkdir()
    with pytest.raises(Exception) as info:
        sources.list_remote(str(empty))
    assert info.type.__module__ == "comfymanager.core.errors"
    assert "Listing versions" in str(info.value)


@pytest.mark.slow
def test_create_pack_install_and_update_without_git(
    no_git: Path, project_data_dir: Path, fake_comfyui: FakeComfyUI, node_packs: NodePacks
) -> None:
    # uv must still be found: it is the uv package's binary, not looked up on PATH
    create_installed(project_data_dir, "nogit")
    ctx = build_core_context(project_data_dir)
    project = ProjectStore(ctx.paths).list()[0][0]
    dirs = ProjectStore(ctx.paths).dirs(project.id)
    assert sources.head_commit(dirs.comfyui) == fake_comfyui.tags["v0.3.2"]
    # ComfyUI-Manager inside the project gets pygit2 and is told to use it
    assert envs.has_package(dirs.venv, "pygit2")
    assert envs.comfyui_git_env(dirs.venv) == {"CM_USE_PYGIT2": "1"}

    pack = PackRecord(
        url=node_packs.good_url, folder="ComfyUI-GoodPack", commit=node_packs.good_pinned
    )
    uv = envs.UvRunner(ctx.paths, ctx.settings)
    got = packs.install_pack(pack, dirs, uv, report=Reporter(), cancel=CancelToken())
    assert got == node_packs.good_pinned
    assert (dirs.custom_nodes / "ComfyUI-GoodPack" / "__init__.py").exists()
    assert not (dirs.custom_nodes / "ComfyUI-GoodPack" / "CHANGELOG.md").exists()

    updated = sources.checkout(
        project.comfyui_source,
        "master",
        dirs.comfyui,
        stage="update",
        report=Reporter(),
        cancel=CancelToken(),
    )
    assert updated == fake_comfyui.head == sources.head_commit(dirs.comfyui)
