"""Atomic versioned files and settings: what survives crashes, damage and newer versions."""

from __future__ import annotations

import json
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


def test_settings_round_trip_env_overrides_not_written(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
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
    persist.write_json(paths.settings_file, settings_mod.KIND, settings_mod.VERSION,
                       {"port_min": "lots", "parallel_downloads": 2})
    loaded = settings_mod.load(paths, apply_env=False)
    assert loaded.port_min == 4001 and loaded.parallel_downloads == 2
