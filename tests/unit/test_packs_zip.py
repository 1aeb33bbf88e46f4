"""Registry zips unpacked by ``packs.install_pack`` against the local registry fixture, for the
cases the end-to-end test does not reach: archives that are not zips or hold links or Windows
traversal, a folder that did not come from the registry, an unreachable registry, no version."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from comfymanager.core.context import CoreContext, build_core_context
from comfymanager.core.envs import UvRunner
from comfymanager.core.errors import ComfyManagerError, ExternalToolError, InvalidInput
from comfymanager.core.packs import install_pack, installed_zip
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import PackRecord, ProjectDirs
from tests.fixtures.registry_server import Registry, zip_members


@pytest.fixture
def ctx(data_dir: Path) -> CoreContext:
    return build_core_context(data_dir)


def _install(ctx: CoreContext, root: Path, pack_id: str, version: str, registry: str) -> str:
    lines: list[str] = []
    pack = PackRecord(url="", folder=pack_id, version=version, registry_id=pack_id)
    return install_pack(
        pack,
        ProjectDirs(root),
        UvRunner(ctx.paths, ctx.settings),
        report=Reporter(log=lines.append),
        cancel=CancelToken(),
        registry=registry,
    )


def _with_symlink() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("__init__.py", b"")
        link = zipfile.ZipInfo("secrets")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("archive", "error", "message"),
    [
        (b"<html>not a zip</html>", ExternalToolError, "is not a zip file"),
        (_with_symlink(), InvalidInput, "a symbolic link: 'secrets'"),
        (zip_members({"ok.py": b"", "..\\evil.py": b""}), InvalidInput, "leaves the pack folder"),
        (zip_members({"C:/evil.py": b""}), InvalidInput, "an absolute path"),
    ],
)
def test_bad_archives_leave_nothing(
    ctx: CoreContext,
    registry: Registry,
    tmp_path: Path,
    archive: bytes,
    error: type[ComfyManagerError],
    message: str,
) -> None:
    registry.add("badpack", "1.0.0", archive)
    with pytest.raises(error, match=message):
        _install(ctx, tmp_path / "p", "badpack", "1.0.0", registry.base)
    assert list((tmp_path / "p" / "ComfyUI" / "custom_nodes").iterdir()) == []


def test_no_version_takes_the_latest_and_a_foreign_folder_is_kept(
    ctx: CoreContext, registry: Registry, tmp_path: Path
) -> None:
    registry.add("regpack", "1.0.0", zip_members({"__init__.py": b"V = 1"}))
    registry.add("regpack", "2.0.0", zip_members({"__init__.py": b"V = 2"}))
    root = tmp_path / "p"
    assert _install(ctx, root, "regpack", "", registry.base) == "2.0.0"
    pack = root / "ComfyUI" / "custom_nodes" / "regpack"
    assert (pack / "__init__.py").read_bytes() == b"V = 2"
    assert installed_zip(pack) == ("regpack", "2.0.0")
    assert _install(ctx, root, "regpack", "", registry.base) == "2.0.0"  # kept, not fetched
    assert registry.install_requests("regpack") == [""]

    mine = root / "ComfyUI" / "custom_nodes" / "minepack"
    mine.mkdir()
    (mine / "notes.txt").write_text("my own work")
    registry.add("minepack", "1.0.0", zip_members({"__init__.py": b""}))
    with pytest.raises(InvalidInput, match="was not installed from the Comfy Registry"):
        _install(ctx, root, "minepack", "1.0.0", registry.base)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_unreachable_registry_is_a_typed_error(ctx: CoreContext, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(ExternalToolError, match="cannot be reached") as info:
        _install(ctx, tmp_path / "p", "regpack", "1.0.0", dead)
    assert "'regpack' version 1.0.0" in str(info.value)
