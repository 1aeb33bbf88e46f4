"""Fidelity of the workflow analysis: models found / models named, folders right, packs found.

Run: uv run --no-sync python bench/fidelity.py [NODE_DB_FOLDER]   (prints docs/FIDELITY.md's table)

Ground truth, independent of the analysis code:
- official templates (``comfyui-workflow-templates-json``): the models the files declare
  (top-level ``models`` and each node's ``properties.models`` entries in use), plus the value of
  every model input of a core loader whose real definition (the shipped node definitions,
  ComfyUI 0.3.64) says which folder it reads;
- our fixture workflows (``tests/fixtures/workflows/``): the model names written into them by
  hand, with the folder where one is knowable offline (None: only the project's own node
  definitions can tell, so the plan asks).

"folder without asking" = the analysis gives a folder; "folder right" = it equals the truth's.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from comfymanager.core.workflow.analyze import analyze  # noqa: E402
from comfymanager.core.workflow.models import clean_name, looks_like_model  # noqa: E402
from comfymanager.core.workflow.nodedb import NodeDatabase, load_node_db, refresh_node_db  # noqa: E402
from comfymanager.core.workflow.nodedefs import NodeDefinitions, shipped_definitions  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "workflows"

FIXTURE_TRUTH: dict[str, dict[str, str | None]] = {
    "issue11_custom_loaders.json": {
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
        "kolors/diffusion_pytorch_model.fp16.safetensors": "diffusion_models",
        "chatglm3-8bit.safetensors": None,
        "gemma-3-12b-it-qat-q4_0-unquantized/model-00001-of-00005.safetensors": None,
        "sd_xl_base_1.0.safetensors": "checkpoints",
        "video_depth_anything_vits.pth": None,
        "depth_anything_v2_vitl_fp32.safetensors": None,
        "comfy_gemma_3_12B_it.safetensors": "text_encoders",
        "ltx-2.3-22b-dev.safetensors": "checkpoints",
        "converted/detail_tweaker.safetensors": "loras",
        "wan2.1_t2v_1.3B_fp16.safetensors": "diffusion_models",
        "old/sd15.ckpt": "checkpoints",
    },
    "issue11_api_prompt.json": {
        "sdxl/juggernautXL_v9.safetensors": "checkpoints",
        "detail/add_detail.safetensors": "loras",
        "fooocus_inpaint_head.pth": None,
        "inpaint_v26.fooocus.patch": None,
        "MAT_Places512_G_fp16.safetensors": None,
        "hunyuan_video_720_fp8.safetensors": "diffusion_models",
        "comfy_gemma_3_12B_it.safetensors": "text_encoders",
        "ltx-2.3-22b-dev.safetensors": "checkpoints",
        "4x-UltraSharp.pth": "upscale_models",
        "EasyNegative": "embeddings",
    },
    "fixture_packs.json": {
        "fixvideo_t2v_720.safetensors": None,
        "fixvideo_vae.safetensors": None,
        "hyvid/motion.safetensors": None,
        "hyvid/style.safetensors": None,
        "hyvid/converted.safetensors": None,
        "fooocus_inpaint_head.pth": None,
        "broken_weights.safetensors": None,
        "component_inner.safetensors": None,
        "group_only_model.safetensors": None,
    },
}


@dataclass
class Score:
    files: int = 0
    named: int = 0
    found: int = 0
    with_folder: int = 0
    folder_known: int = 0  # truth has a folder
    folder_right: int = 0
    classes: int = 0
    classes_known: int = 0
    reported: int = 0  # every model the analysis reports, named in the truth or not
    reported_with_folder: int = 0
    asked: list[str] = field(default_factory=list)
    unknown_classes: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)

    def pct(self, a: int, b: int) -> str:
        return f"{a}/{b} ({100.0 * a / b:.1f}%)" if b else "-"


def templates() -> list[Path]:
    import comfyui_workflow_templates_json as pkg

    out = []
    for p in sorted((Path(pkg.__file__).parent / "templates").glob("*.json")):
        data = json.loads(p.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("nodes"), list):
            out.append(p)
    return out


def _graphs(graph: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield graph
    for sub in (graph.get("definitions") or {}).get("subgraphs") or []:
        if isinstance(sub, dict):
            yield from _graphs(sub)


_CONTROL = {"fixed", "increment", "decrement", "randomize"}


def _loader_values(node: dict[str, Any], defs: NodeDefinitions) -> Iterator[tuple[str, str]]:
    """(folder, value) of each model input of a class the shipped definitions know."""
    cdef = defs.get(node.get("type", ""))
    if cdef is None or not cdef.model_inputs:
        return
    values = node.get("widgets_values")
    if isinstance(values, dict):
        by_name = values
    elif isinstance(values, list):
        plain = [
            v
            for i, v in enumerate(values)
            if not (
                i
                and isinstance(v, str)
                and v in _CONTROL
                and isinstance(values[i - 1], int)
                and not isinstance(values[i - 1], bool)
            )
        ]
        if len(plain) != len(cdef.widgets):
            return
        by_name = dict(zip(cdef.widgets, plain, strict=True))
    else:
        return
    for widget, folders in cdef.model_inputs.items():
        value = by_name.get(widget)
        if looks_like_model(value):
            yield folders[0], clean_name(value)


def template_truth(data: dict[str, Any], defs: NodeDefinitions) -> dict[str, set[str]]:
    truth: dict[str, set[str]] = {}
    for graph in _graphs(data):
        for entry in graph.get("models") or []:
            truth.setdefault(clean_name(entry["name"]), set()).add(entry["directory"])
        for node in graph.get("nodes") or []:
            values = node.get("widgets_values")
            names = {
                clean_name(v)
                for v in (values.values() if isinstance(values, dict) else values or [])
                if isinstance(v, str)
            }
            for entry in (node.get("properties") or {}).get("models") or []:
                if clean_name(entry["name"]) in names:
                    truth.setdefault(clean_name(entry["name"]), set()).add(entry["directory"])
            for folder, name in _loader_values(node, defs):
                truth.setdefault(name, set()).add(folder)
    return truth


def _score_file(
    score: Score, path: Path, truth: dict[str, set[str | None]], db: NodeDatabase | None
) -> None:
    a = analyze(path, db)
    score.files += 1
    got: dict[str, set[str | None]] = {}
    for m in a.models:
        got.setdefault(m.requirement.name, set()).add(m.requirement.directory)
        score.reported += 1
        if m.requirement.directory is not None:
            score.reported_with_folder += 1
        else:
            score.asked.append(f"{path.name}: {m.requirement.name}")
    for name, folders in truth.items():
        score.named += 1
        if name not in got:
            score.missing.append(f"{path.name}: {name}")
            continue
        score.found += 1
        if any(f is not None for f in got[name]):
            score.with_folder += 1
        known = {f for f in folders if f is not None}
        if known:
            score.folder_known += 1
            if known <= got[name]:
                score.folder_right += 1
            else:
                score.wrong.append(f"{path.name}: {name} in {got[name]}, truth {known}")
    for n in a.nodes:
        score.classes += 1
        score.classes_known += n.kind != "unknown"
        if n.kind == "unknown":
            score.unknown_classes[n.class_type] = score.unknown_classes.get(n.class_type, 0) + 1


def measure_templates(db: NodeDatabase | None, paths: list[Path] | None = None) -> Score:
    defs = shipped_definitions()
    score = Score()
    for path in paths if paths is not None else templates():
        data = json.loads(path.read_text(encoding="utf-8"))
        truth: dict[str, set[str | None]] = {
            k: set(v) for k, v in template_truth(data, defs).items()
        }
        _score_file(score, path, truth, db)
    return score


def measure_fixtures(db: NodeDatabase | None) -> Score:
    score = Score()
    for name, expected in FIXTURE_TRUTH.items():
        truth = {k: {v} for k, v in expected.items()}
        _score_file(score, FIXTURES / name, truth, db)
    return score


def load_db(source: str) -> NodeDatabase | None:
    cache = Path(tempfile.mkdtemp(prefix="fidelity-nodedb-"))
    refresh_node_db(source, cache)
    return load_node_db(cache)


def main() -> int:
    source = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data/comfyui-manager"
    db = load_db(source)
    rows = [
        ("official templates", measure_templates(db)),
        ("official templates, no node database", measure_templates(None)),
        ("fixture workflows", measure_fixtures(db)),
    ]
    print("| set | files | models found / named | named: folder without asking | "
          "folder right | all reported: folder without asking | classes identified |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, s in rows:
        print(
            f"| {label} | {s.files} | {s.pct(s.found, s.named)} | "
            f"{s.pct(s.with_folder, s.found)} | {s.pct(s.folder_right, s.folder_known)} | "
            f"{s.pct(s.reported_with_folder, s.reported)} | "
            f"{s.pct(s.classes_known, s.classes)} |"
        )
    print()
    for label, s in rows:
        for line in s.missing[:10] + s.wrong[:10]:
            print(f"- {label}: {line}")
    templates_score = rows[0][1]
    print("\nAsked for a folder (templates):")
    for line in templates_score.asked:
        print(f"- {line}")
    print("\nUnknown classes (templates, with the node database), by node count:")
    top = sorted(templates_score.unknown_classes.items(), key=lambda kv: -kv[1])
    print(", ".join(f"{k} ({v})" for k, v in top[:20]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
