"""Make the node definitions shipped with the app from a real ComfyUI dump.

Run: uv run --no-sync python scripts/make_node_definitions.py \
        [OBJECT_INFO_JSON] [MODEL_INPUTS_JSON] [OUT]
Defaults: /work/shared/data/comfyui/object_info-0.3.64.json, model-inputs-0.3.64.json beside it,
and comfymanager/core/workflow/data/node-definitions.json.

``object_info`` (what ``GET /object_info`` answers) gives the classes, their modules and widget
order; ``model-inputs`` (made by loading the nodes with ``folder_paths.get_filename_list``
replaced by a marker function) gives the folder each model input reads. Widget order is the
``input_order`` of required then optional inputs, keeping only inputs the editor shows as
widgets (combos, INT, FLOAT, STRING, BOOLEAN) and not ``forceInput`` ones.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from comfymanager.core.workflow.nodedefs import (  # noqa: E402
    ClassDef,
    NodeDefinitions,
    write_definitions,
)

DATA = Path("/work/shared/data/comfyui")
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}


def _is_widget(spec: Any) -> bool:
    if not isinstance(spec, list) or not spec:
        return False
    kind, opts = spec[0], spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if opts.get("forceInput"):
        return False
    return isinstance(kind, list) or kind in WIDGET_TYPES


def _widgets(info: dict[str, Any]) -> tuple[str, ...]:
    inputs = info.get("input") or {}
    order = info.get("input_order") or {}
    out: list[str] = []
    for section in ("required", "optional"):
        specs = inputs.get(section) or {}
        for name in order.get(section) or list(specs):
            if _is_widget(specs.get(name)):
                out.append(name)
    return tuple(out)


def _version(model_inputs: dict[str, Any], object_info_path: Path) -> str:
    m = re.search(r"(\d+\.\d+\.\d+)", object_info_path.name)
    return m.group(1) if m else str(model_inputs.get("comfyui") or "")


def main() -> int:
    info_path = Path(sys.argv[1]) if len(sys.argv) > 1 else DATA / "object_info-0.3.64.json"
    inputs_path = Path(sys.argv[2]) if len(sys.argv) > 2 else DATA / "model-inputs-0.3.64.json"
    out = (
        Path(sys.argv[3])
        if len(sys.argv) > 3
        else ROOT / "comfymanager/core/workflow/data/node-definitions.json"
    )
    object_info = json.loads(info_path.read_text(encoding="utf-8"))
    model_inputs = json.loads(inputs_path.read_text(encoding="utf-8"))
    folders = model_inputs.get("model_inputs") or {}
    classes: dict[str, ClassDef] = {}
    for name, info in sorted(object_info.items()):
        module = str(info.get("python_module") or "nodes")
        pack = module.split(".", 1)[1] if module.startswith("custom_nodes.") else None
        classes[name] = ClassDef(
            name=name,
            module=module,
            pack=pack,
            widgets=_widgets(info),
            model_inputs={k: tuple(v) for k, v in (folders.get(name) or {}).items()},
        )
    missing = sorted(set(folders) - set(classes))
    if missing:
        print(f"model inputs of classes absent from object_info: {missing}", file=sys.stderr)
        return 1
    defs = NodeDefinitions(_version(model_inputs, info_path), "shipped", classes, {})
    write_definitions(out, defs)
    with_models = sum(1 for c in classes.values() if c.model_inputs)
    print(f"{out}: {len(classes)} classes, {with_models} with model inputs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
