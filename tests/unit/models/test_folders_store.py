"""Folder keys, safe store paths, URL rules and the extra_model_paths.yaml ComfyUI reads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml  # installed with the dev tools (not a dependency of the app)

from comfymanager.core.errors import InvalidInput
from comfymanager.core.models.folders import (
    can_run_code,
    canonical_folder,
    check_url,
    safe_store_path,
)
from comfymanager.core.models.store import ensure_layout, write_extra_model_paths


def test_names_with_subfolders_and_backslashes_land_inside_the_folder(tmp_path: Path) -> None:
    p = safe_store_path(tmp_path, "loras", "wan\\style\\x.safetensors")
    assert p == (tmp_path / "loras" / "wan" / "style" / "x.safetensors").resolve()


def test_legacy_folder_names_map_to_canonical_ones(tmp_path: Path) -> None:
    assert canonical_folder("clip") == "text_encoders"
    assert canonical_folder("unet") == "diffusion_models"
    assert canonical_folder("t2i_adapter") == "controlnet"
    assert safe_store_path(tmp_path, "unet", "a.gguf").parent.name == "diffusion_models"


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("../evil.safetensors", "'..'"),
        ("a/../../evil.safetensors", "'..'"),
        ("/etc/passwd", "absolute"),
        ("C:\\Windows\\x.ckpt", "absolute"),
        ("a//b.safetensors", "empty path part"),
        ("sub/", "empty path part"),
        ("bad\x00name.pt", "control characters"),
        ("CON.safetensors", "reserved name"),
        ("sub/aux", "reserved name"),
        ("what?.pt", "'?'"),
        ("", "empty"),
    ],
)
def test_bad_names_are_refused_naming_the_problem(tmp_path: Path, name: str, says: str) -> None:
    with pytest.raises(InvalidInput) as err:
        safe_store_path(tmp_path, "checkpoints", name)
    assert says in str(err.value)
    assert err.value.fix


def test_unknown_folder_is_refused_with_the_list(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="Unknown model folder 'nope'") as err:
        canonical_folder("nope")  # a user's choice must be a known key
    assert "checkpoints" in (err.value.fix or "")
    # the store layer also takes a folder a node pack registers (learnt by the verification)
    assert safe_store_path(tmp_path, "inpaint", "x.pth") == tmp_path / "inpaint" / "x.pth"
    for bad in ("../up", "a/b", "CON", ".hidden", ""):
        with pytest.raises(InvalidInput):
            safe_store_path(tmp_path, bad, "x.safetensors")


def test_a_symlink_out_of_the_store_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "store" / "loras").mkdir(parents=True)
    (tmp_path / "store" / "loras" / "link").symlink_to(outside)
    with pytest.raises(InvalidInput, match=r"link is a link to .*outside the model store") as err:
        safe_store_path(tmp_path / "store", "loras", "link/x.safetensors")
    assert "link" in str(err.value) and err.value.fix


def test_pickle_formats_are_flagged() -> None:
    assert can_run_code("x.ckpt") and can_run_code("a/b.PTH") and can_run_code("m.bin")
    assert not can_run_code("x.safetensors") and not can_run_code("x.gguf")


def test_only_https_or_loopback_http_urls() -> None:
    assert check_url("https://huggingface.co/a/b")
    assert check_url("http://127.0.0.1:8000/x")
    assert check_url("http://localhost/x")
    with pytest.raises(InvalidInput, match="unencrypted"):
        check_url("http://example.com/x.safetensors")
    with pytest.raises(InvalidInput, match="not a download address"):
        check_url("file:///etc/passwd")


def test_extra_model_paths_yaml_reads_back_as_comfyui_expects(tmp_path: Path) -> None:
    store = tmp_path / 'my "models" #1: ünï'
    ensure_layout(store)
    yaml_path = write_extra_model_paths(store, tmp_path / "proj" / "extra_model_paths.yaml")
    data = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    assert list(data) == ["comfymanager"]
    section = data["comfymanager"]
    assert section["base_path"] == str(store.resolve())
    assert section["is_default"] is True
    assert section["checkpoints"] == "checkpoints"
    # ComfyUI splits multi-line values on newlines: one folder per line
    assert section["text_encoders"].split() == ["text_encoders", "clip"]
    assert section["diffusion_models"].split() == ["diffusion_models", "unet"]
    assert section["controlnet"].split() == ["controlnet", "t2i_adapter"]
    assert (store / "checkpoints").is_dir()
    assert not list(yaml_path.parent.glob("*.tmp"))
