"""Atomic versioned files and settings: what survives crashes, damage and newer versions."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from comfymanager.core import persist
from comfymanager.core import settings as settings_mod
from comfymanager.core.context import build_core_context
from comfymanager.core.errors import CorruptFile, InvalidInput
from comfymanager.core.paths import DataPaths


def test_write_then_read_keeps_a_backup(tmp_path: Path) -> None:
    f = tmp_path / "x.json"
    persist.write_json(f, "k", 1, {"a": 1})
    persist.write_json(f, "k", 1, {"a": 2})
    assert persist.read_json(f, "k", 1)["a"] == 2
    assert json.loads((tmp_path / "x.json.bak").read_text())["a"] == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.allow_error_log
def test_damaged_file_is_set_aside_and_backup_used(tmp_path: Path) -> None:
    f = tmp_path / "x.json"
    persist.write_json(f, "k", 1, {"a": 1})
    persist.write_json(f, "k", 1, {"a": 2})
    f.write_text('{"kind": "k", "vers')  # torn write from another tool
    assert persist.read_json(f, "k", 1)["a"] == 1
    assert any(p.name.startswith("x.json.corrupt-") for p in tmp_path.iterdir())


def test_damaged_without_backup_names_the_file(tmp_path: Path) -> None:
    f = tmp_path / "x.json"
    f.write_text("not json")
    with pytest.raises(CorruptFile) as err:
        persist.read_json(f, "k", 1)
    assert str(f) in err.value.message and "set aside" in (err.value.fix or "")


def test_newer_version_refused_older_migrated(tmp_path: Path) -> None:
    f = tmp_path / "x.json"
    persist.write_json(f, "k", 3, {})
    with pytest.raises(CorruptFile) as err:
        persist.read_json(f, "k", 2)
    assert "newer comfymanager" in err.value.message
    persist.write_json(f, "k", 1, {"old": True})
    data = persist.read_json(f, "k", 2, {1: lambda d: {**d, "new": d.pop("old")}})
    assert data["new"] is True and data["version"] == 2


def test_settings_round_trip_env_overrides_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMFYMANAGER_REGISTRY", "http://127.0.0.1:1/registry")
    ctx = build_core_context(tmp_path)
    assert ctx.settings.registry_url == "http://127.0.0.1:1/registry"
    ctx.settings.parallel_downloads = 5
    ctx.save_settings()
    stored = json.loads((tmp_path / "settings.json").read_text())
    assert stored["parallel_downloads"] == 5
    assert stored["registry_url"] == "https://api.comfy.org"
    assert ctx.settings.registry_url == "http://127.0.0.1:1/registry"


def test_settings_validation_and_bad_types(tmp_path: Path) -> None:
    paths = DataPaths(tmp_path).ensure()
    s = settings_mod.Settings(port_min=5000, port_max=4000)
    with pytest.raises(InvalidInput) as err:
        settings_mod.save(paths, s)
    assert "5000-4000" in err.value.message
    persist.write_json(
        paths.settings_file,
        settings_mod.KIND,
        settings_mod.VERSION,
        {"port_min": "lots", "parallel_downloads": 2},
    )
    loaded = settings_mod.load(paths, apply_env=False)
    assert loaded.port_min == 4001 and loaded.parallel_downloads == 2


class _FlakyOpen:
    """``open`` that fails with EIO for one file the first ``times`` times (a USB hiccup)."""

    def __init__(self, target: Path, times: int) -> None:
        import builtins

        self.target, self.times, self.calls = target, times, 0
        self._real = builtins.open

    def __call__(self, file: object, *args: object, **kwargs: object) -> object:
        if isinstance(file, (str, Path)) and Path(file) == self.target:
            self.calls += 1
            if self.calls <= self.times:
                raise OSError(errno.EIO, "Input/output error", str(file))
        return self._real(file, *args, **kwargs)  # type: ignore[call-overload]


def test_transient_read_error_is_retried_never_taken_for_damage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "project.json"
    persist.write_json(f, "k", 1, {"a": "old"})
    persist.write_json(f, "k", 1, {"a": "new"})
    flaky = _FlakyOpen(f, times=2)
    monkeypatch.setattr("builtins.open", flaky)
    assert persist.read_json(f, "k", 1)["a"] == "new"  # not the older .bak
    assert flaky.calls == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project.json", "project.json.bak"]


def test_lasting_read_error_is_a_typed_error_and_the_file_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "project.json"
    persist.write_json(f, "k", 1, {"a": "old"})
    persist.write_json(f, "k", 1, {"a": "new"})
    monkeypatch.setattr("builtins.open", _FlakyOpen(f, times=100))
    with pytest.raises(persist.ReadFailed) as err:
        persist.read_json(f, "k", 1)
    assert str(f) in err.value.message and "Input/output error" in err.value.message
    assert err.value.fix and "left as it is" in err.value.fix
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project.json", "project.json.bak"]
    assert persist.read_json(f, "k", 1)["a"] == "new"


@pytest.mark.parametrize(
    "content",
    [b"", b"\xff\xfe not utf-8", b"[1, 2]", b'{"kind": "other", "version": 1}', b'{"kind": "k"}'],
)
def test_only_unparsable_content_is_damaged(tmp_path: Path, content: bytes) -> None:
    f = tmp_path / "x.json"
    persist.write_json(f, "k", 1, {"a": 1})
    persist.write_json(f, "k", 1, {"a": 2})
    f.write_bytes(content)
    assert persist.read_json(f, "k", 1)["a"] == 1  # the backup
    assert any(p.name.startswith("x.json.corrupt-") for p in tmp_path.iterdir())


def test_save_retries_a_windows_sharing_violation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from comfymanager.core import fileops

    f = tmp_path / "settings.json"
    persist.write_json(f, "k", 1, {"a": 1})
    real_replace = os.replace
    fails = {"left": 3}

    def locked_replace(src: object, dst: object) -> None:
        if Path(str(dst)) == f and fails["left"]:
            fails["left"] -= 1
            exc = PermissionError(errno.EACCES, "The process cannot access the file")
            exc.winerror = 32  # type: ignore[attr-defined]
            raise exc
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(fileops, "IS_WINDOWS", True)
    monkeypatch.setattr(os, "replace", locked_replace)
    persist.write_json(f, "k", 1, {"a": 2})
    assert fails["left"] == 0
    assert persist.read_json(f, "k", 1)["a"] == 2
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
