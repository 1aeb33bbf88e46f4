"""analyze(): nodes -> packs, models, on hand-made workflows covering each rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from comfymanager.core.workflow.analyze import analysis_to_json, analyze
from comfymanager.core.workflow.nodedb import NodeDatabase


def _json(path: Path, db: NodeDatabase | None, **kw: Any) -> dict[str, Any]:
    return analysis_to_json(analyze(path, db, **kw), str(path))


@pytest.fixture
def everything(workflows_dir: Path, node_db: NodeDatabase) -> dict[str, Any]:
    return _json(workflows_dir / "ui_everything.json", node_db)


def _node(d: dict[str, Any], cls: str) -> dict[str, Any]:
    return next(n for n in d["nodes"] if n["class_type"] == cls)


def _model(d: dict[str, Any], directory: str | None, name: str) -> dict[str, Any]:
    return next(m for m in d["models"] if m["directory"] == directory and m["name"] == name)


def test_contract_shape(everything: dict[str, Any]) -> None:
    assert set(everything) == {
        "file",
        "format",
        "comfyui_version",
        "nodes",
        "packs",
        "models",
        "warnings",
    }
    assert all(
        set(n) == {"class_type", "kind", "pack", "candidates", "settled_by"}
        for n in everything["nodes"]
    )
    assert all(
        set(m) == {"name", "directory", "urls", "sha256", "active", "present", "suggestions"}
        for m in everything["models"]
    )
    assert everything["format"] == "ui" and everything["comfyui_version"] == "0.3.60"


def test_node_resolution_order(everything: dict[str, Any]) -> None:
    assert _node(everything, "KSampler")["kind"] == "core"  # from the map's ComfyUI key
    assert _node(everything, "Note")["kind"] == "frontend"
    impact = _node(everything, "ImpactWildcardProcessor")  # cnr_id + ver beats the plain map
    assert impact["pack"]["id"] == "comfyui-impact-pack" and impact["pack"]["version"] == "8.8.1"
    aux = _node(everything, "SomeNode")["pack"]
    assert aux["url"] == "https://github.com/someowner/some-pack" and aux["commit"] == "abc1234def"
    pre = _node(everything, "AIO_Preprocessor")["pack"]
    assert pre["url"] == "https://github.com/Fannovel16/comfyui_controlnet_aux"
    assert "rgthree" in _node(everything, "Power Lora Loader (rgthree)")["pack"]["url"]
    several = _node(everything, "LoadImageWithMetadata")
    assert several["kind"] == "custom" and several["pack"] is None
    assert len(several["candidates"]) >= 2
    assert any("several candidates" in w for w in everything["warnings"])
    assert _node(everything, "TotallyUnknownNodeXYZ")["kind"] == "unknown"
    # subgraph instances and group nodes are not classes; their insides are
    classes = {n["class_type"] for n in everything["nodes"]}
    assert not any(c.startswith(("workflow>", "a1b2c3d4")) for c in classes)
    assert {"VAELoader", "ControlNetLoader", "UpscaleModelLoader"} <= classes


def test_frontend_nodes_of_packs_need_their_pack(everything: dict[str, Any]) -> None:
    set_node = _node(everything, "SetNode")
    assert set_node["kind"] == "frontend" and "KJNodes" in set_node["pack"]["url"]
    urls = [p["url"] for p in everything["packs"]]
    assert len(urls) == len({u.lower() for u in urls})  # one entry per pack
    rg = next(p for p in everything["packs"] if "rgthree" in p["url"])
    assert set(rg["classes"]) == {"Power Lora Loader (rgthree)", "Fast Groups Bypasser (rgthree)"}


def test_models(everything: dict[str, Any]) -> None:
    ckpt = _model(everything, "checkpoints", "sub/dir/model.safetensors")  # backslashes fixed
    assert ckpt["urls"] == ["https://huggingface.co/org/repo/resolve/main/model.safetensors"]
    assert ckpt["sha256"] == "ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12"
    names = {m["name"] for m in everything["models"]}
    assert "not-selected.safetensors" not in names  # declared but not a widget value
    assert _model(everything, "loras", "style.safetensors")["active"] is False  # bypassed
    assert _model(everything, "vae", "muted_only_vae.safetensors")["active"] is False
    assert _model(everything, "vae", "promoted/other_vae.safetensors")["active"] is True
    extra = _model(everything, "vae", "extra.safetensors")  # mirrors, URL kept as given
    assert extra["urls"] == [
        "https://huggingface.co/x/y/resolve/main/extra.safetensors?download=true",
        "https://mirror.example/extra.safetensors",
    ]
    assert _model(everything, "loras", "renamed.safetensors")  # name from URL basename
    assert _model(everything, "embeddings", "EasyNegative")
    assert _model(everything, "embeddings", "sub/bad.pt")
    assert _model(everything, "loras", "rg/lora.safetensors")
    assert _model(everything, "text_encoders", "t5xxl.safetensors")
    assert _model(everything, "text_encoders", "clip_l.safetensors")
    assert _model(everything, "diffusion_models", "flux1-dev.sft")  # dict widgets_values
    assert _model(everything, "checkpoints", "named_ckpt.safetensors")  # widgets_values_named
    assert _model(everything, "controlnet", "cn.safetensors")  # nested subgraph definition
    assert _model(everything, "upscale_models", "4x.pth")  # legacy group node
    assert all(m["directory"] is not None for m in everything["models"])


def test_api_prompt(workflows_dir: Path, node_db: NodeDatabase) -> None:
    d = _json(workflows_dir / "api_prompt.json", node_db)
    assert d["format"] == "api"
    found = {(m["directory"], m["name"]) for m in d["models"]}
    assert found == {
        ("checkpoints", "sd15.safetensors"),
        ("loras", "loras/detail.safetensors"),
        ("text_encoders", "umt5.safetensors"),
        ("clip_vision", "vision.safetensors"),
        ("diffusion_models", "custom_unet.gguf"),
        ("embeddings", "goodstuff.safetensors"),
    }


def test_presence_is_checked(workflows_dir: Path, node_db: NodeDatabase, tmp_path: Path) -> None:
    store = tmp_path / "store"
    (store / "checkpoints").mkdir(parents=True)
    (store / "checkpoints" / "sd15.safetensors").write_bytes(b"x")
    (store / "embeddings").mkdir()
    d = _json(
        workflows_dir / "api_prompt.json",
        node_db,
        is_present=lambda f, n: (store / f / n).is_file(),
    )
    assert _model(d, "checkpoints", "sd15.safetensors")["present"] is True
    assert _model(d, "loras", "loras/detail.safetensors")["present"] is False


def test_without_database(workflows_dir: Path) -> None:
    d = _json(workflows_dir / "ui_everything.json", None)
    assert "node database unavailable" in d["warnings"][0]
    assert _node(d, "CheckpointLoaderSimple")["kind"] == "core"  # cnr_id still works
    assert _node(d, "Note")["kind"] == "frontend"
    assert _node(d, "KSampler")["kind"] == "core"  # the shipped node definitions know it
    assert not any("KSampler" in w for w in d["warnings"])


def test_launcher_file(workflows_dir: Path, node_db: NodeDatabase) -> None:
    d = _json(workflows_dir / "launcher.json", node_db)
    assert d["format"] == "launcher"
    impact = next(p for p in d["packs"] if "Impact" in p["url"])
    assert impact["commit"] == "0123456789abcdef0123456789abcdef01234567"
    ds = _model(d, "checkpoints", "dreamshaper_8.safetensors")
    assert len(ds["urls"]) == 2 and ds["sha256"].startswith("879db523")
    assert any("disabled" in w for w in d["warnings"])
    assert any("files[1]" in w for w in d["warnings"])  # the ../ path was refused


def test_manifest_file(workflows_dir: Path, node_db: NodeDatabase) -> None:
    d = _json(workflows_dir / "manifest.json", node_db)
    assert d["format"] == "manifest" and d["comfyui_version"] == "v0.3.60"
    assert len(d["packs"]) == 1 and d["packs"][0]["version"] == "8.8.1"
    assert d["packs"][0]["classes"] == ["SAMLoader"]
    sd = _model(d, "checkpoints", "sd15.safetensors")
    assert sd["urls"] and sd["sha256"]
    assert _model(d, "sams", "sam_vit_b_01ec64.pth")


def test_registry_lookup_for_unknown(workflows_dir: Path, node_db: NodeDatabase) -> None:
    from comfymanager.core.workflow.nodes import Resolution

    asked: list[str] = []

    def lookup(cls: str) -> Resolution | None:
        asked.append(cls)
        return None

    analyze(workflows_dir / "ui_everything.json", node_db, lookup=lookup)
    assert set(asked) == {"TotallyUnknownNodeXYZ", "CustomCkptThing"}
