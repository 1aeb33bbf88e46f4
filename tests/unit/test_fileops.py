"""fileops: what a Windows user sees when another program holds a file open.

Windows cannot run here, so its sharing violations are injected: the os call raises the same
``PermissionError`` (errno EACCES, ``winerror`` 32) that Windows raises, and ``fileops.IS_WINDOWS``
is switched on. Everything else (the files, the trees, the kills) is real.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from comfymanager.core import fileops
from tests.fixtures.portable import was_killed


def sharing_violation(winerror: int = 32) -> PermissionError:
    exc = PermissionError(
        errno.EACCES,
        "The process cannot access the file because it is being used by another process",
    )
    exc.winerror = winerror  # type: ignore[attr-defined]
    return exc


def locked(
    real: Callable[..., Any], target: Path, times: int, winerror: int = 32
) -> tuple[Callable[..., Any], dict[str, int]]:
    """``real`` (an os function) failing ``times`` times for paths naming ``target``."""
    seen = {"fails": 0}

    def call(*args: Any, **kwargs: Any) -> Any:
        if any(str(a) == str(target) for a in args) and seen["fails"] < times:
            seen["fails"] += 1
            raise sharing_violation(winerror)
        return real(*args, **kwargs)

    return call, seen


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fileops, "IS_WINDOWS", True)


@pytest.mark.parametrize("winerror", [5, 32, 33])
def test_replace_waits_out_a_short_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, windows: None, winerror: int
) -> None:
    src, dst = tmp_path / "new", tmp_path / "project.json"
    src.write_text("new")
    dst.write_text("old")
    call, seen = locked(os.replace, dst, times=4, winerror=winerror)
    monkeypatch.setattr(os, "replace", call)
    started = time.monotonic()
    fileops.replace(src, dst)
    assert seen["fails"] == 4
    assert dst.read_text() == "new" and not src.exists()
    assert time.monotonic() - started < 1.0


def test_a_lasting_lock_gives_a_typed_error_after_about_two_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, windows: None
) -> None:
    src, dst = tmp_path / "new", tmp_path / "run.json"
    src.write_text("new")
    dst.write_text("old")
    call, seen = locked(os.replace, dst, times=10_000)
    monkeypatch.setattr(os, "replace", call)
    started = time.monotonic()
    with pytest.raises(fileops.FileInUse) as err:
        fileops.replace(src, dst)
    elapsed = time.monotonic() - started
    assert 1.5 < elapsed < 3.0
    assert 4 <= seen["fails"] <= 12
    assert str(dst) in err.value.message and "in use by another program" in err.value.message
    assert err.value.fix and "try again" in err.value.fix
    assert isinstance(err.value, PermissionError)  # callers catching OSError still catch it
    assert dst.read_text() == "old" and src.read_text() == "new"  # nothing half-done


def test_off_windows_a_permission_error_is_permanent_and_raised_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dst = tmp_path / "f"
    dst.write_text("x")
    calls = {"n": 0}

    def denied(*_a: Any, **_k: Any) -> None:
        calls["n"] += 1
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "unlink", denied)
    with pytest.raises(PermissionError) as err:
        fileops.remove_file(dst)
    assert calls["n"] == 1 and not isinstance(err.value, fileops.FileInUse)


def test_on_windows_plain_eacces_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, windows: None
) -> None:
    dst = tmp_path / "model.safetensors"
    dst.write_text("x")
    real, calls = os.unlink, {"n": 0}

    def once_denied(path: Any, *a: Any, **k: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise PermissionError(errno.EACCES, "Access is denied")
        real(path, *a, **k)

    monkeypatch.setattr(os, "unlink", once_denied)
    fileops.remove_file(dst)
    assert not dst.exists() and calls["n"] == 2


def test_remove_file_names_the_holder_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, windows: None
) -> None:
    model = tmp_path / "sdxl.safetensors"
    model.write_bytes(b"weights")
    call, _ = locked(os.unlink, model, times=10_000)
    monkeypatch.setattr(os, "unlink", call)
    monkeypatch.setattr(fileops, "RETRY_SECONDS", 0.2)
    with pytest.raises(fileops.FileInUse) as err:
        fileops.remove_file(model, holder="a running ComfyUI", fix="Stop it and try again.")
    assert err.value.message == f"Could not delete {model}: it is in use by a running ComfyUI."
    assert str(err.value).endswith("Stop it and try again.")
    assert "WinError" not in str(err.value)
    assert model.exists()


def test_missing_files_are_fine_unless_asked(tmp_path: Path) -> None:
    fileops.remove_file(tmp_path / "gone")
    with pytest.raises(FileNotFoundError):
        fileops.remove_file(tmp_path / "gone", missing_ok=False)
    fileops.remove_tree(tmp_path / "no-such-folder")


def test_rename_of_a_fresh_clone_waits_for_the_indexer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, windows: None
) -> None:
    partial = tmp_path / "ComfyUI.partial"
    (partial / ".git").mkdir(parents=True)
    call, seen = locked(os.rename, partial, times=3)
    monkeypatch.setattr(os, "rename", call)
    fileops.rename(partial, tmp_path / "ComfyUI")
    assert seen["fails"] == 3 and (tmp_path / "ComfyUI" / ".git").is_dir()


def make_tree(root: Path) -> None:
    (root / "venv" / "lib").mkdir(parents=True)
    (root / "venv" / "lib" / "torch.so").write_bytes(b"x" * 1000)
    obj = root / "ComfyUI" / ".git" / "objects" / "ab"
    obj.mkdir(parents=True)
    (obj / "cdef").write_bytes(b"git object")
    os.chmod(obj / "cdef", stat.S_IREAD)  # git's objects are read-only
    os.chmod(obj, stat.S_IREAD | stat.S_IEXEC)  # and so can a folder be


def test_remove_tree_removes_read_only_files_and_folders(tmp_path: Path) -> None:
    root = tmp_path / ".deleting-p-1"
    make_tree(root)
    assert fileops.tree_size(root) == 1000 + len(b"git object")
    fileops.remove_tree(root)
    assert not root.exists()


def test_remove_tree_never_follows_links_out(tmp_path: Path) -> None:
    outside = tmp_path / "my-models"
    outside.mkdir()
    (outside / "keep.safetensors").write_bytes(b"precious")
    root = tmp_path / "project"
    root.mkdir()
    (root / "models").symlink_to(outside, target_is_directory=True)
    (root / "file-link").symlink_to(outside / "keep.safetensors")
    assert fileops.tree_size(root) < 1000  # the links' own size, not their targets'
    fileops.remove_tree(root)
    assert not root.exists()
    assert (outside / "keep.safetensors").read_bytes() == b"precious"
    # a link given as the tree itself: only the link goes
    link = tmp_path / "link-to-models"
    link.symlink_to(outside, target_is_directory=True)
    fileops.remove_tree(link)
    assert not link.exists() and (outside / "keep.safetensors").exists()


def test_remove_tree_waits_for_a_file_held_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, windows: None
) -> None:
    root = tmp_path / "p"
    make_tree(root)
    held = root / "venv" / "lib" / "torch.so"
    call, seen = locked(os.unlink, held, times=3)
    monkeypatch.setattr(os, "unlink", call)
    fileops.remove_tree(root)
    assert seen["fails"] == 3 and not root.exists()


def test_remove_tree_held_for_good_keeps_the_rest_for_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, windows: None
) -> None:
    root = tmp_path / "p"
    make_tree(root)
    held = root / "venv" / "lib" / "torch.so"
    call, _ = locked(os.unlink, held, times=10_000)
    monkeypatch.setattr(os, "unlink", call)
    monkeypatch.setattr(fileops, "RETRY_SECONDS", 0.2)
    with pytest.raises(fileops.FileInUse):
        fileops.remove_tree(root)
    assert held.exists()
    monkeypatch.undo()
    fileops.remove_tree(root)
    assert not root.exists()


def test_kill_point_kills_the_process_at_the_named_nth_point(tmp_path: Path) -> None:
    code = (
        "from comfymanager.core.killpoint import kill_point\n"
        "for i in range(5):\n"
        "    kill_point('other')\n"
        "    kill_point('here')\n"
        "    print(i, flush=True)\n"
    )
    env = {**os.environ, "COMFYMANAGER_TEST_KILL_AT": "here#3"}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert was_killed(proc.returncode)
    assert proc.stdout.split() == ["0", "1"]
    env.pop("COMFYMANAGER_TEST_KILL_AT")
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and proc.stdout.split() == ["0", "1", "2", "3", "4"]


def test_a_verified_download_waits_for_the_antivirus_instead_of_failing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, windows: None, http_files: Any
) -> None:
    """The final rename of a verified download is retried: no raw PermissionError, no rehash."""
    from tests.fixtures.http_server import make_safetensors
    from tests.unit.models.helpers import fetch, sha

    data = make_safetensors(200_000)
    url = http_files.add("/m.safetensors", data)
    store = tmp_path / "models"
    target = store / "checkpoints" / "model.safetensors"
    call, seen = locked(os.replace, target, times=3)
    monkeypatch.setattr(os, "replace", call)
    result = fetch(url, store, sha256=sha(data))
    assert seen["fails"] == 3 and result.path.read_bytes() == data
    assert len(http_files.gets("/m.safetensors")) == 1
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.safetensors"]


def test_log_rotation_survives_a_held_log_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, windows: None
) -> None:
    import logging

    from comfymanager.core import log as log_mod

    setup = log_mod.setup_logging(tmp_path)
    try:
        handler = setup.file_handler
        assert handler.rotator is fileops.replace
        current = tmp_path / log_mod.LOG_FILE_NAME
        call, seen = locked(os.replace, current, times=2)
        monkeypatch.setattr(os, "replace", call)
        logging.getLogger("t").warning("before rotation")
        handler.doRollover()
        logging.getLogger("t").warning("after rotation")
        assert seen["fails"] == 2
        assert "before rotation" in (tmp_path / (log_mod.LOG_FILE_NAME + ".1")).read_text()
        assert "after rotation" in current.read_text()
    finally:
        log_mod.shutdown_logging()
