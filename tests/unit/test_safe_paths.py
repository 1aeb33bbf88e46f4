"""Nothing escapes the store, a pack folder or the workflow folder (issue 10 item 8), and the
platform points of issue 15: case-insensitive lock keys, F_FULLFSYNC, EFBIG on FAT32.

Each escape case plants a real symbolic link pointing outside, runs the real operation (a
download from a local HTTP server, a registry pack install, a workflow save) and checks what a
user would: the error names the link, and the file outside keeps its bytes and its mtime.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from filelock import FileLock

from comfymanager.core.context import CoreContext, build_core_context
from comfymanager.core.importer.apply import save_workflow
from comfymanager.core.install.envs import UvRunner
from comfymanager.core.install.packs import install_pack
from comfymanager.core.models import part as part_mod
from comfymanager.core.models import safe_path
from comfymanager.core.models.download import lock_key, lock_path
from comfymanager.core.models.folders import safe_store_path
from comfymanager.core.models.part import TransferSpec
from comfymanager.core.models.safe_path import LinkRefused, fold_key, full_fsync
from comfymanager.core.models.transfer import transfer
from comfymanager.core.progress import CancelToken, Progress, Reporter
from comfymanager.core.projects import PackRecord, ProjectDirs
from tests.fixtures.http_server import FileServer, make_safetensors
from tests.fixtures.registry_server import Registry, zip_members
from tests.unit.models.helpers import fetch, sha

MODEL = make_safetensors(256 * 1024 + 17)
NAME = "model.safetensors"


@dataclass
class Outside:
    """A folder outside every root, with one file whose bytes and mtime must never change."""

    folder: Path
    file: Path
    data: bytes
    mtime: int

    def unchanged(self) -> bool:
        return (
            self.file.read_bytes() == self.data
            and self.file.stat().st_mtime_ns == self.mtime
            and sorted(p.name for p in self.folder.iterdir()) == [self.file.name]
        )


@pytest.fixture
def outside(tmp_path: Path) -> Outside:
    folder = tmp_path / "outside"
    folder.mkdir()
    file = folder / "precious.bin"
    file.write_bytes(b"do not touch me" * 10)
    os.utime(file, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    return Outside(folder, file, file.read_bytes(), file.stat().st_mtime_ns)


def _link(at: Path, to: Path) -> Path:
    at.parent.mkdir(parents=True, exist_ok=True)
    at.symlink_to(to)
    return at


# --- the model store -----------------------------------------------------------------------

Plant = Callable[[Path, Outside], Path]  # plants a link in the store, returns the link

STORE_CASES: dict[str, Plant] = {
    "part file": lambda s, o: _link(s / "checkpoints" / f"{NAME}.part", o.file),
    "part sidecar": lambda s, o: _link(s / "checkpoints" / f"{NAME}.part.json", o.file),
    "sidecar backup": lambda s, o: _link(s / "checkpoints" / f"{NAME}.part.json.bak", o.file),
    "target file": lambda s, o: _link(s / "checkpoints" / NAME, o.file),
    "store subfolder": lambda s, o: _link(s / "checkpoints", o.folder),
    "lock folder": lambda s, o: _link(s / ".comfymanager", o.folder),
    "index backup": lambda s, o: _link(s / ".comfymanager-index.json.bak", o.file),
}


@pytest.mark.parametrize("case", sorted(STORE_CASES))
def test_a_link_in_the_store_is_refused_before_a_byte_is_written(
    http_files: FileServer, tmp_path: Path, outside: Outside, case: str
) -> None:
    store = tmp_path / "store"
    (store / "checkpoints").mkdir(parents=True) if case != "store subfolder" else store.mkdir()
    link = STORE_CASES[case](store, outside)
    url = http_files.add("/m.safetensors", MODEL)
    with pytest.raises(LinkRefused) as err:
        fetch(url, store, name=NAME, sha256=sha(MODEL))
    assert str(link) in err.value.message and err.value.fix
    assert err.value.link == link
    assert outside.unchanged()
    assert http_files.gets() == []  # refused before anything was fetched
    assert link.is_symlink()  # the link itself is left for the user to look at


def test_a_nested_link_out_of_a_store_folder_is_refused(
    http_files: FileServer, tmp_path: Path, outside: Outside
) -> None:
    store = tmp_path / "store"
    link = _link(store / "loras" / "styles", outside.folder)
    url = http_files.add("/m.safetensors", MODEL)
    with pytest.raises(LinkRefused, match="outside the model store") as err:
        fetch(url, store, folder="loras", name="styles/x.safetensors")
    assert err.value.link == link and outside.unchanged()


def test_a_link_that_stays_inside_the_store_folder_is_followed(
    http_files: FileServer, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    real = store / "loras" / "real"
    real.mkdir(parents=True)
    _link(store / "loras" / "alias", real)
    url = http_files.add("/m.safetensors", MODEL)
    result = fetch(url, store, folder="loras", name="alias/x.safetensors", sha256=sha(MODEL))
    assert (real / "x.safetensors").read_bytes() == MODEL
    assert result.path.read_bytes() == MODEL


def test_a_link_planted_after_the_check_is_refused_by_o_nofollow(
    http_files: FileServer, tmp_path: Path, outside: Outside
) -> None:
    """The transfer opens the part itself with O_NOFOLLOW: a link that appears between the
    store check and the open (another process) is refused there too."""
    url = http_files.add("/m.safetensors", MODEL)
    part = _link(tmp_path / "store" / "checkpoints" / f"{NAME}.part", outside.file)
    spec = TransferSpec(url=url, part=part, name=NAME, expected_sha256=sha(MODEL))
    import requests

    with requests.Session() as session, pytest.raises(LinkRefused) as err:
        transfer(spec, session, Reporter(), CancelToken())
    assert err.value.link == part and outside.unchanged()


# --- node packs ----------------------------------------------------------------------------


@pytest.fixture
def ctx(data_dir: Path) -> CoreContext:
    return build_core_context(data_dir)


PACK_CASES: dict[str, Plant] = {
    "pack folder": lambda r, o: _link(r / "ComfyUI" / "custom_nodes" / "regpack", o.folder),
    "custom_nodes": lambda r, o: _link(r / "ComfyUI" / "custom_nodes", o.folder),
    "unpack folder": lambda r, o: _link(
        r / "ComfyUI" / "custom_nodes" / "regpack.partial.disabled", o.folder
    ),
    "previous folder": lambda r, o: _link(
        r / "ComfyUI" / "custom_nodes" / "regpack.old.disabled", o.folder
    ),
    "clone folder": lambda r, o: _link(
        r / "ComfyUI" / "custom_nodes" / "regpack.partial", o.folder
    ),
}


@pytest.mark.parametrize("case", sorted(PACK_CASES))
def test_a_link_in_custom_nodes_is_refused(
    ctx: CoreContext, registry: Registry, tmp_path: Path, outside: Outside, case: str
) -> None:
    registry.add("regpack", "1.0.0", zip_members({"__init__.py": b"V = 1"}))
    root = tmp_path / "p"
    (root / "ComfyUI").mkdir(parents=True)
    link = PACK_CASES[case](root, outside)
    pack = PackRecord(url="", folder="regpack", version="1.0.0", registry_id="regpack")
    with pytest.raises(LinkRefused) as err:
        install_pack(
            pack,
            ProjectDirs(root),
            UvRunner(ctx.paths, ctx.settings),
            report=Reporter(),
            cancel=CancelToken(),
            registry=registry.base,
        )
    assert str(link) in err.value.message and err.value.link == link
    assert outside.unchanged()
    assert registry.server.gets() == []


# --- workflows an import writes ------------------------------------------------------------

WORKFLOW_CASES: dict[str, Plant] = {
    "workflows folder": lambda r, o: _link(r / "user" / "default" / "workflows", o.folder),
    "user folder": lambda r, o: _link(r / "user", o.folder),
    "workflow file": lambda r, o: _link(r / "user" / "default" / "workflows" / "wf.json", o.file),
}


def test_a_link_at_the_old_temporary_name_is_never_followed(
    tmp_path: Path, outside: Outside
) -> None:
    """The atomic writer makes a fresh temp file (O_EXCL, a random name): a link planted where
    the temp file used to be is left alone and nothing is written through it."""
    dirs = ProjectDirs(tmp_path / "p")
    dirs.root.mkdir()
    _link(dirs.root / "user" / "default" / "workflows" / "wf.json.tmp", outside.file)
    saved = save_workflow(dirs.workflows, "wf.json", b'{"nodes": []}')
    assert saved.read_bytes() == b'{"nodes": []}' and not saved.is_symlink()
    assert outside.unchanged()


@pytest.mark.parametrize("case", sorted(WORKFLOW_CASES))
def test_a_link_in_the_workflow_folder_is_refused(
    tmp_path: Path, outside: Outside, case: str
) -> None:
    dirs = ProjectDirs(tmp_path / "p")
    dirs.root.mkdir()
    link = WORKFLOW_CASES[case](dirs.root, outside)
    with pytest.raises(LinkRefused) as err:
        save_workflow(dirs.workflows, "wf.json", b'{"nodes": []}')
    assert str(link) in err.value.message and outside.unchanged()


def test_a_workflow_is_saved_when_no_link_is_in_the_way(tmp_path: Path) -> None:
    dirs = ProjectDirs(tmp_path / "p")
    first = save_workflow(dirs.workflows, "wf.json", b"1")
    second = save_workflow(dirs.workflows, "wf.json", b"2")
    assert first.read_bytes() == b"1" and second.name == "wf (2).json"
    assert save_workflow(dirs.workflows, "wf.json", b"1") == first
    assert sorted(p.name for p in dirs.workflows.iterdir()) == ["wf (2).json", "wf.json"]


# --- case-insensitive file systems: one lock for names that are one file there ---------------


def test_fold_key_matches_names_a_case_insensitive_file_system_takes_as_one() -> None:
    assert fold_key("Model.SafeTensors") == fold_key("model.safetensors")
    assert fold_key("Stra\u00dfe.pt") == fold_key("STRASSE.pt")
    assert fold_key("Cafe\u0301.pt") == fold_key("Caf\u00e9.pt")  # macOS stores NFD
    assert fold_key("a.pt") != fold_key("b.pt")
    store = Path("/s")
    assert lock_key(store, store / "loras" / "X.safetensors") == lock_key(
        store, store / "loras" / "x.safetensors"
    )
    assert lock_key(store, store / "loras" / "x.safetensors") != lock_key(
        store, store / "vae" / "x.safetensors"
    )


def test_a_download_waits_for_another_of_the_same_name_in_another_case(
    http_files: FileServer, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    url = http_files.add("/m.safetensors", MODEL)
    other = safe_store_path(store, "checkpoints", "MODEL.safetensors")
    lock_file = lock_path(store, other)
    lock_file.parent.mkdir(parents=True)
    held = FileLock(str(lock_file))
    held.acquire()
    waiting = threading.Event()
    done: list[object] = []

    def on_progress(p: Progress) -> None:
        if p.stage == "waiting":
            waiting.set()

    def run() -> None:
        try:
            done.append(fetch(url, store, name=NAME, progress=_Sink(on_progress)))
        except BaseException as exc:  # reported to the test thread below
            done.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    try:
        assert waiting.wait(10), "the second download did not wait for the first"
        assert http_files.gets() == []
    finally:
        held.release()
    worker.join(30)
    assert len(done) == 1 and not isinstance(done[0], BaseException), done
    assert (store / "checkpoints" / NAME).read_bytes() == MODEL


class _Sink(list[Progress]):
    """A progress list that also calls back on each append (to see "waiting" as it happens)."""

    def __init__(self, callback: Callable[[Progress], None]) -> None:
        super().__init__()
        self._callback = callback

    def append(self, p: Progress) -> None:
        super().append(p)
        self._callback(p)


# --- durable writes on macOS, and FAT32's 4 GB limit ----------------------------------------


def test_full_fsync_uses_f_fullfsync_on_macos_and_falls_back_to_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """macOS cannot run here: its platform name and the fcntl constant are simulated, the
    fallback (a file system that refuses F_FULLFSYNC) uses the real fsync."""
    import fcntl

    calls: list[tuple[str, int]] = []
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(fcntl, "F_FULLFSYNC", 51, raising=False)
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        calls.append(("fsync", fd))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)

    def fake_fcntl(fd: int, cmd: int, *args: object) -> int:
        calls.append(("fcntl", cmd))
        if refuse:
            raise OSError(45, "Operation not supported")
        return 0

    monkeypatch.setattr(fcntl, "fcntl", fake_fcntl)
    with open(tmp_path / "f", "wb") as fh:
        refuse = False
        full_fsync(fh.fileno())
        assert calls == [("fcntl", 51)]
        refuse = True
        full_fsync(fh.fileno())
        assert calls[1:] == [("fcntl", 51), ("fsync", fh.fileno())]
    monkeypatch.setattr(sys, "platform", "linux")
    calls.clear()
    with open(tmp_path / "g", "wb") as fh:
        full_fsync(fh.fileno())
    assert [c[0] for c in calls] == ["fsync"]
    assert vars(part_mod)["full_fsync"] is safe_path.full_fsync  # the download's flush


def _limit_file_size() -> None:
    # the per-process file size limit makes write() fail with EFBIG, as on a FAT32 drive
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (128 * 1024, 128 * 1024))


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE"), reason="needs RLIMIT_FSIZE (POSIX)")
def test_a_file_too_large_for_the_drive_says_fat32_and_what_to_do(
    http_files: FileServer, data_dir: Path
) -> None:
    url = http_files.add("/big.safetensors", MODEL)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    args = [sys.executable, "-m", "comfymanager", "--data-dir", str(data_dir)]
    args += ["download", url, "--folder", "checkpoints"]
    done = subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=120, preexec_fn=_limit_file_size
    )
    assert done.returncode == 1, done.stderr
    assert "cannot hold files over 4 GB (FAT32)" in done.stderr
    assert "Choose another store folder" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (data_dir / "models" / "checkpoints" / "big.safetensors").exists()


def test_a_windows_junction_counts_as_a_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows cannot run here: a junction is simulated by the reparse tag its lstat carries."""
    folder = tmp_path / "junction"
    folder.mkdir()
    real_lstat = os.lstat

    class Junction:
        def __init__(self, st: os.stat_result) -> None:
            self.st_mode = st.st_mode
            self.st_reparse_tag = safe_path.MOUNT_POINT_TAG

    def lstat(path: object) -> object:
        st = real_lstat(path)  # type: ignore[arg-type]
        return Junction(st) if Path(str(path)) == folder else st

    assert not safe_path.is_link(folder)
    monkeypatch.setattr(os, "lstat", lstat)
    assert safe_path.is_link(folder)
    assert not safe_path.is_link(tmp_path)
