"""Manifest read/write round trip and validation of what other people's files may contain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from comfymanager.core.workflow.manifest import (
    ManifestError,
    manifest_to_dict,
    read_manifest,
    write_manifest,
)


def _data(workflows_dir: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((workflows_dir / "manifest.json").read_text())
    return result


def test_round_trip(workflows_dir: Path, tmp_path: Path) -> None:
    m = read_manifest(_data(workflows_dir))
    assert m.comfyui.ref == "v0.3.60" and m.python_version == "3.12"
    assert m.packs[0].folder_name == "ComfyUI-Impact-Pack"
    assert read_manifest(manifest_to_dict(m)) == m
    write_manifest(tmp_path / "m.json", m)
    assert read_manifest(json.loads((tmp_path / "m.json").read_text())) == m


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("packs", 0, "url"), "--upload-pack=evil", "packs[0].url"),
        (("packs", 0, "folder_name"), "../escape", "packs[0].folder_name"),
        (("models", 0, "directory"), "not_a_folder", "models[0].directory"),
        (("models", 0, "name"), "../../etc/passwd", "models[0].name"),
        (("models", 0, "name"), "/abs/file.safetensors", "models[0].name"),
        (("models", 0, "name"), "C:\\x.safetensors", "models[0].name"),
        (("models", 0, "sha256"), "xyz", "models[0].sha256"),
        (("models", 0, "size"), -1, "models[0].size"),
        (("models", 0, "urls"), ["ftp://x"], "models[0].urls"),
        (("workflows", 0, "content"), {"no": "nodes"}, "workflows[0].content"),
        (("comfyui", "commit"), "not a hash", "comfyui.commit"),
    ],
)
def test_bad_fields_are_named(
    workflows_dir: Path, path: tuple[Any, ...], value: Any, field: str
) -> None:
    data = _data(workflows_dir)
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ManifestError) as info:
        read_manifest(data)
    assert field in info.value.message


def test_newer_version_is_refused(workflows_dir: Path) -> None:
    data = _data(workflows_dir)
    data["version"] = 99
    with pytest.raises(ManifestError, match="Update comfymanager"):
        read_manifest(data)


def test_nan_in_workflow_is_written_as_null(workflows_dir: Path, tmp_path: Path) -> None:
    data = _data(workflows_dir)
    data["workflows"][0]["content"]["nodes"][0]["widgets_values"].append(float("nan"))
    write_manifest(tmp_path / "m.json", read_manifest(data))
    text = (tmp_path / "m.json").read_text()
    assert "NaN" not in text and json.loads(text)["workflows"][0]["content"]
