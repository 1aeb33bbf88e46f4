"""Issue 11, analysis half: every model a workflow names is in the analysis, with the best
folder there is; core classes are known offline; pack choice uses the workflow's context."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from comfymanager.core.errors import CorruptFile
from comfymanager.core.workflow.analyze import (
    Context,
    analysis_to_json,
    analyze,
    project_context,
)
from comfymanager.core.workflow.nodedb import NodeDatabase
from comfymanager.core.workflow.nodedefs import (
    ClassDef,
    NodeDefinitions,
    layered,
    read_definitions,
    shipped_definitions,
    write_definitions,
)


def _json(path: Path, db: NodeDatabase | None, context: Context | None = None) -> dict[str, Any]:
    return analysis_to_json(analyze(path, db, context=context), path.name)


def _models(d: dict[str, Any]) -> dict[str, str | None]:
    return {m["name"]: m["directory"] for m in d["models"]}


def _node(d: dict[str, Any], cls: str) -> dict[str, Any]:
    return next(n for n in d["nodes"] if n["class_type"] == cls)


ISSUE_MODELS = {
    # every model-file value of the classes issue 11 saw dropped, and where it goes
    "hyvideo/hunyuan_video_720_cfgdistill_fp8_e4m3fn.safetensors": "diffusion_models",
    "hunyuan_video_vae_bf16.safetensors": "vae",
    "hyvid/hyvideo_FastVideo_LoRA-fp8.safetensors": "loras",
    "flux-canny-controlnet-v3.safetensors": None,
    "ip_adapter.safetensors": None,
    "clip_vision_l.safetensors": None,
    "furry_lora.safetensors": None,
    "fooocus_inpaint_head.pth": None,
    "inpaint_v26.fooocus.patch": None,
    "big-lama.pt": None,
    "kolors/diffusion_pytorch_model.fp16.safetensors": "diffusion_models",  # converted unet_name
    "chatglm3-8bit.safetensors": None,
    "gemma-3-12b-it-qat-q4_0-unquantized/model-00001-of-00005.safetensors": None,
    "sd_xl_base_1.0.safetensors": "checkpoints",
    "video_depth_anything_vits.pth": None,
    "depth_anything_v2_vitl_fp32.safetensors": None,
    "comfy_gemma_3_12B_it.safetensors": "text_encoders",  # LTXAVTextEncoderLoader (core)
    "ltx-2.3-22b-dev.safetensors": "checkpoints",
    "converted/detail_tweaker.safetensors": "loras",  # lora_name only in inputs[].widget
    "wan2.1_t2v_1.3B_fp16.safetensors": "diffusion_models",  # a URL as the widget value
    "old/sd15.ckpt": "checkpoints",  # CheckpointLoader: the real definition's widget order
}


@pytest.mark.parametrize("with_db", [True, False])
def test_no_model_of_the_issue_is_dropped(
    workflows_dir: Path, node_db: NodeDatabase, with_db: bool
) -> None:
    d = _json(workflows_dir / "issue11_custom_loaders.json", node_db if with_db else None)
    assert _models(d) == ISSUE_MODELS
    for name, folder in ISSUE_MODELS.items():
        asked = any(f"the folder of {name!r}" in w for w in d["warnings"])
        assert asked == (folder is None), name  # the plan asks exactly for the unknown ones
    wan = next(m for m in d["models"] if m["name"].startswith("wan2.1"))
    assert wan["urls"] == [
        "https://huggingface.co/Kijai/WanVideo_comfy/resolve/main/wan2.1_t2v_1.3B_fp16.safetensors"
    ]


def test_api_prompt_of_the_same_shapes(workflows_dir: Path) -> None:
    d = _json(workflows_dir / "issue11_api_prompt.json", None)
    assert _models(d) == {
        "sdxl/juggernautXL_v9.safetensors": "checkpoints",
        "detail/add_detail.safetensors": "loras",
        "fooocus_inpaint_head.pth": None,
        "inpaint_v26.fooocus.patch": None,
        "MAT_Places512_G_fp16.safetensors": None,
        "hunyuan_video_720_fp8.safetensors": "diffusion_models",
        "comfy_gemma_3_12B_it.safetensors": "text_encoders",
        "ltx-2.3-22b-dev.safetensors": "checkpoints",
        "4x-UltraSharp.pth": "upscale_models",  # by the real definition, not the name
        "EasyNegative": "embeddings",
    }


def test_notes_pickers_and_non_model_widgets_yield_nothing(workflows_dir: Path) -> None:
    d = _json(workflows_dir / "issue11_custom_loaders.json", None)
    names = set(_models(d))
    assert not any(n in names for n in ("`", "minimaxh3_art_is_explosion`", "my_lora.safetensors"))
    assert not any(m["directory"] == "embeddings" for m in d["models"])
    assert "None" not in names and "microsoft/Florence-2-base" not in names
    # SaveImage's filename_prefix is no model input in its real definition
    assert "renders/out.safetensors" not in names
    assert "v1-inference.yaml" not in names


def test_fixture_pack_workflow_keeps_every_name(workflows_dir: Path) -> None:
    d = _json(workflows_dir / "fixture_packs.json", None)
    assert set(_models(d)) == {
        "fixvideo_t2v_720.safetensors",
        "fixvideo_vae.safetensors",
        "hyvid/motion.safetensors",
        "hyvid/style.safetensors",  # the backslash form, cleaned
        "hyvid/converted.safetensors",
        "fooocus_inpaint_head.pth",
        "broken_weights.safetensors",
        "component_inner.safetensors",  # inside a subgraph component
        "group_only_model.safetensors",  # a group node without a definition in the file
    }
    assert all(m["directory"] != "embeddings" for m in d["models"])


def test_project_definitions_give_the_folders(workflows_dir: Path, tmp_path: Path) -> None:
    scan = NodeDefinitions(
        "0.3.64",
        "project-scan",
        {
            "FixVideoModelLoader": ClassDef(
                "FixVideoModelLoader",
                "custom_nodes.ComfyUI-FixtureVideo",
                "ComfyUI-FixtureVideo",
                ("model", "precision"),
                {"model": ("diffusion_models",)},
            ),
            "FixVideoVAELoader": ClassDef(
                "FixVideoVAELoader",
                "custom_nodes.ComfyUI-FixtureVideo",
                "ComfyUI-FixtureVideo",
                ("vae",),
                {"vae": ("vae",)},
            ),
            "FixVideoLoraSelect": ClassDef(
                "FixVideoLoraSelect",
                "custom_nodes.ComfyUI-FixtureVideo",
                "ComfyUI-FixtureVideo",
                ("lora", "strength"),
                {"lora": ("loras",)},
            ),
            "FixInpaintLoader": ClassDef(
                "FixInpaintLoader",
                "custom_nodes.ComfyUI-FixtureInpaint",
                "ComfyUI-FixtureInpaint",
                ("head",),
                {"head": ("inpaint",)},
            ),
        },
        {"ComfyUI-FixtureBroken": "ModuleNotFoundError: No module named 'missingdep'"},
    )
    path = tmp_path / "node-definitions.json"
    write_definitions(path, scan)
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw["version"] == 1 and raw["made_by"] == "project-scan"
    assert raw["classes"]["FixInpaintLoader"]["model_inputs"] == {"head": ["inpaint"]}
    back = read_definitions(path)
    assert back.failed_packs and back.packs == {"ComfyUI-FixtureVideo", "ComfyUI-FixtureInpaint"}
    context = project_context([], back)
    d = _json(workflows_dir / "fixture_packs.json", None, context)
    assert _models(d) == {
        "fixvideo_t2v_720.safetensors": "diffusion_models",
        "fixvideo_vae.safetensors": "vae",
        "hyvid/motion.safetensors": "loras",
        "hyvid/style.safetensors": "loras",
        "hyvid/converted.safetensors": "loras",
        "fooocus_inpaint_head.pth": "inpaint",
        "broken_weights.safetensors": None,  # its pack failed to load: still asked
        "component_inner.safetensors": "diffusion_models",
        "group_only_model.safetensors": None,
    }
    assert _node(d, "KSampler")["kind"] == "core"  # the shipped core stays under a scan


def test_bad_definitions_file_is_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "node-definitions.json"
    path.write_text('{"version": 1, "classes": [1, 2]}', encoding="utf-8")
    with pytest.raises(CorruptFile, match="not a node-definitions file"):
        read_definitions(path)
    path.write_text('{"version": 9, "classes": {}}', encoding="utf-8")
    with pytest.raises(CorruptFile, match="format version 9"):
        read_definitions(path)
    path.write_text("{nope", encoding="utf-8")
    with pytest.raises(CorruptFile, match="cannot be read"):
        read_definitions(path)


def test_definitions_reader_skips_junk_entries(tmp_path: Path) -> None:
    path = tmp_path / "node-definitions.json"
    path.write_text(
        json.dumps(
            {
                "kind": "node-definitions",  # extra keys are allowed
                "version": 1,
                "comfyui": "v0.3.64-5-gabc",
                "made_by": "project-scan",
                "classes": {
                    "Good": {"module": "custom_nodes.P", "pack": "P", "widgets": ["m", 3],
                             "model_inputs": {"m": ["/loras/", 7], "x": "vae", "y": []}},
                    "Junk": [1, 2],
                    "Bare": {},
                },
                "failed_packs": {"Q": "ImportError: nope"},
            }
        ),
        encoding="utf-8",
    )  # fmt: skip
    defs = read_definitions(path)
    good = defs.classes["Good"]
    assert good.widgets == ("m",) and dict(good.model_inputs) == {"m": ("loras",), "x": ("vae",)}
    assert "Junk" not in defs.classes and defs.classes["Bare"].pack is None
    assert defs.is_core("Bare") and not defs.is_core("Good")
    assert defs.failed_packs == {"Q": "ImportError: nope"}


def test_shipped_definitions_know_core_offline(workflows_dir: Path) -> None:
    shipped = shipped_definitions()
    assert shipped.made_by == "shipped" and len(shipped.classes) > 400
    assert shipped.get("CheckpointLoader") is not None
    assert shipped.classes["CheckpointLoader"].model_inputs["ckpt_name"] == ("checkpoints",)
    assert all(shipped.is_core(c) for c in ("KSampler", "SaveImage", "EmptyImage"))
    assert layered(None) is shipped
    d = _json(workflows_dir / "fixture_packs.json", None)
    for cls in ("KSampler", "SaveImage", "EmptyImage"):
        assert _node(d, cls)["kind"] == "core"


def _vhs_workflow(tmp_path: Path, hint_on_load: bool) -> Path:
    props = {"aux_id": "Kosinkadink/ComfyUI-VideoHelperSuite"} if hint_on_load else {}
    data = {
        "last_node_id": 3,
        "last_link_id": 0,
        "version": 0.4,
        "links": [],
        "nodes": [
            {"id": 1, "type": "VHS_LoadVideo", "mode": 0, "properties": props},
            {"id": 2, "type": "VHS_VideoCombine", "mode": 0, "properties": {}},
        ],
    }
    path = tmp_path / "vhs.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_popular_pack_is_recommended_not_taken(tmp_path: Path, node_db: NodeDatabase) -> None:
    d = _json(_vhs_workflow(tmp_path, False), node_db)
    combine = _node(d, "VHS_VideoCombine")
    assert combine["pack"] is None and combine["settled_by"] is None
    first = combine["candidates"][0]
    assert first["title"] == "ComfyUI-VideoHelperSuite" and first["reason"] == "recommended"
    assert all(c["reason"] is None for c in combine["candidates"][1:])
    assert any(
        "VHS_VideoCombine" in w and "recommended: ComfyUI-VideoHelperSuite" in w
        for w in d["warnings"]
    )


def test_workflow_hint_settles_the_other_classes(tmp_path: Path, node_db: NodeDatabase) -> None:
    d = _json(_vhs_workflow(tmp_path, True), node_db)
    load, combine = _node(d, "VHS_LoadVideo"), _node(d, "VHS_VideoCombine")
    assert load["settled_by"] == "workflow hint"
    assert [c["reason"] for c in load["candidates"]] == ["workflow hint", None]  # + the fork
    assert combine["settled_by"] == "already in plan"
    assert combine["pack"]["url"].lower().endswith("comfyui-videohelpersuite")
    assert combine["candidates"][0]["reason"] == "already in plan"
    assert not any("VHS_" in w for w in d["warnings"])  # settled: no warning
    assert len(d["packs"]) == 1 and set(d["packs"][0]["classes"]) == {
        "VHS_LoadVideo",
        "VHS_VideoCombine",
    }


def test_pack_in_the_project_settles(tmp_path: Path, node_db: NodeDatabase) -> None:
    context = project_context([("", "ComfyUI-S3-IO")], None)  # the obscure fork is installed
    d = _json(_vhs_workflow(tmp_path, False), node_db, context)
    load, combine = _node(d, "VHS_LoadVideo"), _node(d, "VHS_VideoCombine")
    assert load["settled_by"] == "in project" and load["pack"]["title"] == "ComfyUI-S3-IO"
    assert combine["settled_by"] == "already in plan"  # the class settled just before
    assert combine["pack"]["title"] == "ComfyUI-S3-IO"
    assert not any("VHS_" in w for w in d["warnings"])


def test_json_carries_model_list_suggestions(tmp_path: Path, node_db: NodeDatabase) -> None:
    entry = next(e for ms in node_db.models_by_filename.values() for e in ms if e.size)
    data = {
        "last_node_id": 1,
        "last_link_id": 0,
        "version": 0.4,
        "links": [],
        "nodes": [{"id": 1, "type": "UnknownLoaderX", "mode": 0, "properties": {},
                   "widgets_values": [entry.filename]}],
    }  # fmt: skip
    path = tmp_path / "w.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    d = _json(path, node_db)
    (model,) = d["models"]
    assert model["directory"] is None
    sugg = model["suggestions"][0]
    assert sugg["origin"] == "model list" and sugg["url"] == entry.url
    assert sugg["size"] == entry.size and sugg["directory"] == entry.directory
