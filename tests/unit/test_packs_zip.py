"""Registry zips unpacked by ``packs.install_pack`` against the local registry fixture, for the
cases the end-to-end test does not reach: archives that are not zips or hold links or Windows
traversal, a folder that did not come from the registry, an unreachable registry, no version."""

from __future__ import annotations

import hashlib
import io
import stat
import zipfile
from pathlib import Path

import pytest

from comfymanager.core.context import CoreContext, build_core_context
from comfymanager.core.errors import ComfyManagerError, ExternalToolError, InvalidInput
from comfymanager.core.install.envs import UvRunner
from comfymanager.core.install.packs import install_pack, installed_zip
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import PackRecord, ProjectDirs
from tests.fixtures.http_server import Served
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


def _damaged() -> bytes:
    """A zip whose member's bytes were changed after it was made (its CRC no longer holds)."""
    data = zip_members({"__init__.py": b"", "nodes.py": b"A" * 4000})
    at = data.index(b"A" * 4000) + 100
    return data[:at] + b"B" + data[at + 1 :]


@pytest.mark.parametrize(
    ("archive", "error", "message"),
    [
        (b"<html>not a zip</html>", ExternalToolError, "is not a zip file"),
        (_with_symlink(), InvalidInput, "a symbolic link: 'secrets'"),
        (zip_members({"ok.py": b"", "..\\evil.py": b""}), InvalidInput, "leaves the pack folder"),
        (zip_members({"C:/evil.py": b""}), InvalidInput, "an absolute path"),
        (zip_members({"p/x": b"1", "p/x/y.py": b"2"}), InvalidInput, "both as a file and as"),
        (_damaged(), ExternalToolError, "is damaged at 'nodes.py'"),
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


# --- integrity of registry archives (issue 10 item 10, issue 15 Windows names) -------------


def _install_record(ctx: CoreContext, root: Path, pack: PackRecord, registry: str) -> str:
    return install_pack(
        pack,
        ProjectDirs(root),
        UvRunner(ctx.paths, ctx.settings),
        report=Reporter(),
        cancel=CancelToken(),
        registry=registry,
    )


def _nodes(root: Path) -> list[str]:
    folder = root / "ComfyUI" / "custom_nodes"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_published_checksum_is_verified_and_the_sha256_recorded(
    ctx: CoreContext, registry: Registry, tmp_path: Path
) -> None:
    good = zip_members({"__init__.py": b"V = 1"})
    registry.add("signed", "1.0.0", good, checksum=True)
    registry.add("tampered", "1.0.0", good, checksum="0" * 64)
    root = tmp_path / "p"
    pack = PackRecord(url="", folder="signed", version="1.0.0", registry_id="signed")
    assert _install_record(ctx, root, pack, registry.base) == "1.0.0"
    assert pack.archive_sha256 == hashlib.sha256(good).hexdigest()
    bad = PackRecord(url="", folder="tampered", version="1.0.0", registry_id="tampered")
    with pytest.raises(ExternalToolError, match="does not match its published checksum") as err:
        _install_record(ctx, root, bad, registry.base)
    assert "0" * 64 in str(err.value) and err.value.fix
    assert _nodes(root) == ["signed"] and bad.archive_sha256 == ""


def test_without_a_published_checksum_the_recorded_sha256_pins_the_version(
    ctx: CoreContext, registry: Registry, tmp_path: Path
) -> None:
    first = zip_members({"__init__.py": b"V = 1"})
    registry.add("plain", "1.0.0", first)
    root = tmp_path / "p"
    pack = PackRecord(url="", folder="plain", version="1.0.0", registry_id="plain")
    _install_record(ctx, root, pack, registry.base)
    assert pack.archive_sha256 == hashlib.sha256(first).hexdigest()
    # the same version now serves other bytes: a reinstall (repair, an exported project)
    # refuses them and keeps what ran
    registry.server.add("/zips/plain-1.0.0.zip", zip_members({"__init__.py": b"EVIL = 1"}))
    (root / "ComfyUI" / "custom_nodes" / "plain" / ".comfymanager-registry.json").unlink()
    import shutil

    shutil.rmtree(root / "ComfyUI" / "custom_nodes" / "plain")
    with pytest.raises(ExternalToolError, match="does not match"):
        _install_record(ctx, root, pack, registry.base)
    assert _nodes(root) == []
    # an update to another version is not held to the old version's sha256
    registry.add("plain", "2.0.0", zip_members({"__init__.py": b"V = 2"}))
    registry.server.add("/zips/plain-1.0.0.zip", first)
    _install_record(ctx, root, pack, registry.base)
    pack.version = "2.0.0"
    assert _install_record(ctx, root, pack, registry.base) == "2.0.0"
    assert pack.archive_sha256 != hashlib.sha256(first).hexdigest()


@pytest.mark.parametrize(
    ("where", "says"),
    [
        ("download", "http://example.invalid/zips/x.zip"),
        ("registry", "http://registry.example.invalid"),
    ],
)
def test_plain_http_off_this_machine_is_refused_before_any_request(
    ctx: CoreContext, registry: Registry, tmp_path: Path, where: str, says: str
) -> None:
    registry.add("x", "1.0.0", zip_members({"__init__.py": b""}), download_url=says)
    base = registry.base if where == "download" else says
    with pytest.raises(InvalidInput, match="https only") as err:
        _install(ctx, tmp_path / "p", "x", "1.0.0", base)
    assert says.split("/zips")[0] in str(err.value)
    assert registry.server.gets("/zips/x-1.0.0.zip") == []
    assert _nodes(tmp_path / "p") == []


def test_redirects_are_bounded_and_each_hop_checked(
    ctx: CoreContext, registry: Registry, tmp_path: Path
) -> None:
    srv = registry.server
    data = zip_members({"__init__.py": b""})
    srv.add("/hop/final.zip", data)
    for i in range(7):
        target = "/hop/final.zip" if i == 6 else f"/hop/{i + 1}"
        srv.add(f"/hop/{i}", Served(redirect=srv.url(target)))
    registry.add("far", "1.0.0", data, download_url=srv.url("/hop/0"))
    with pytest.raises(ExternalToolError, match="redirects more than 5 times"):
        _install(ctx, tmp_path / "p", "far", "1.0.0", registry.base)
    registry.add("near", "1.0.0", data, download_url=srv.url("/hop/4"))  # 3 hops: fine
    assert _install(ctx, tmp_path / "p", "near", "1.0.0", registry.base) == "1.0.0"
    srv.add("/hop/out", Served(redirect="http://example.invalid/x.zip"))
    registry.add("out", "1.0.0", data, download_url=srv.url("/hop/out"))
    with pytest.raises(InvalidInput, match="https only"):
        _install(ctx, tmp_path / "p", "out", "1.0.0", registry.base)
    assert _nodes(tmp_path / "p") == ["near"]
    # a registry address that moved (a redirect) is followed the same way
    moved = srv.url("/nodes/near/install?version=1.0.0")
    srv.add("/old/nodes/near/install", Served(redirect=moved))
    (tmp_path / "q").mkdir()
    assert _install(ctx, tmp_path / "q", "near", "1.0.0", srv.url("/old")) == "1.0.0"


def test_an_archive_over_the_size_cap_is_refused_naming_the_limit(
    ctx: CoreContext, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from comfymanager.core.install import packs

    monkeypatch.setattr(packs, "ZIP_MAX", 2 * 1024 * 1024)
    big = zip_members({"blob.bin": hashlib.sha256(b"0").digest() * 100_000})
    registry.add("big", "1.0.0", big)
    with pytest.raises(InvalidInput, match="over the 2 MB limit for node pack archives"):
        _install(ctx, tmp_path / "p", "big", "1.0.0", registry.base)
    # no Content-Length (the body ends when the connection closes): the cap holds while
    # streaming
    registry.server.add("/zips/big-1.0.0.zip", Served(big, no_length=True))
    with pytest.raises(InvalidInput, match="larger than the 2 MB limit"):
        _install(ctx, tmp_path / "p", "big", "1.0.0", registry.base)
    assert _nodes(tmp_path / "p") == []


@pytest.mark.parametrize(
    ("member", "says"),
    [
        ("pack/a<b.py", "holds '<'"),
        ("pack/what?.py", "holds '?'"),
        ("pack/nodes.py:Zone.Identifier", "NTFS stream"),
        ("pack/aux.py", "reserved device name"),
        ("pack/CON/x.py", "reserved device name"),
        ("pack/COM1.txt", "reserved device name"),
        ("pack/dir./x.py", "ends with a dot or a space"),
        ("pack/name .py ", "ends with a dot or a space"),
        ("pack/bell\x07.py", "control character"),
    ],
)
def test_names_windows_cannot_store_are_refused(
    ctx: CoreContext, registry: Registry, tmp_path: Path, member: str, says: str
) -> None:
    registry.add("winpack", "1.0.0", zip_members({"pack/__init__.py": b"", member: b"x"}))
    with pytest.raises(InvalidInput, match="a name Windows cannot store") as err:
        _install(ctx, tmp_path / "p", "winpack", "1.0.0", registry.base)
    assert says in str(err.value)
    assert _nodes(tmp_path / "p") == []


def test_names_differing_only_in_case_are_refused(
    ctx: CoreContext, registry: Registry, tmp_path: Path
) -> None:
    archive = zip_members({"p/__init__.py": b"", "p/Nodes.py": b"a", "p/nodes.py": b"b"})
    registry.add("casepack", "1.0.0", archive)
    with pytest.raises(InvalidInput, match="differ only in case"):
        _install(ctx, tmp_path / "p", "casepack", "1.0.0", registry.base)
    assert _nodes(tmp_path / "p") == []


def test_the_swap_waits_for_a_scanner_holding_the_fresh_files_on_windows(
    ctx: CoreContext, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15 item 2: an antivirus holding the unpacked folder (WinError 32) delays the
    swap of a new version instead of failing it; a lasting hold is a typed error that keeps
    the installed version."""
    import errno
    import os

    from comfymanager.core import fileops

    registry.add("regpack", "1.0.0", zip_members({"__init__.py": b"V = 1"}))
    registry.add("regpack", "2.0.0", zip_members({"__init__.py": b"V = 2"}))
    registry.add("regpack", "3.0.0", zip_members({"__init__.py": b"V = 3"}))
    root = tmp_path / "p"
    pack = root / "ComfyUI" / "custom_nodes" / "regpack"
    _install(ctx, root, "regpack", "1.0.0", registry.base)

    real_rename = os.rename
    held = {"fails": 0, "limit": 2}

    def rename(src: object, dst: object) -> None:
        if str(src).endswith(".partial.disabled") and held["fails"] < held["limit"]:
            held["fails"] += 1
            exc = PermissionError(errno.EACCES, "being used by another process")
            exc.winerror = 32  # type: ignore[attr-defined]
            raise exc
        real_rename(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(fileops, "IS_WINDOWS", True)
    monkeypatch.setattr(os, "rename", rename)
    assert _install(ctx, root, "regpack", "2.0.0", registry.base) == "2.0.0"
    assert held["fails"] == 2
    assert (pack / "__init__.py").read_bytes() == b"V = 2"
    assert _nodes(root) == ["regpack"]  # no .partial/.old leftovers

    monkeypatch.setattr(fileops, "RETRY_SECONDS", 0.2)
    held.update(fails=0, limit=10**6)
    with pytest.raises(fileops.FileInUse, match="in use"):
        _install(ctx, root, "regpack", "3.0.0", registry.base)
    assert (pack / "__init__.py").read_bytes() == b"V = 2"
