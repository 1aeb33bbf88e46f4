"""Fuzz every workflow reader: mutated official templates and generated graphs, as JSON and
embedded in PNG, WebP, FLAC, Opus, MP3, MP4 and WebM files, plus manifests and launcher files.

Run: uv run --no-sync python scripts/fuzz_readers.py [CASES] [SEED] [NODE_DB_FOLDER]
(default 10000 cases, seed 1, the node database snapshot in /work/shared/data/comfyui-manager).

Each case goes through ``analyze`` (which calls ``load_workflow``); the only exceptions allowed
out are the typed ``ComfyManagerError`` family. Anything else is a crash: it is counted, and the
first few are printed with the case's name so ``--replay SEED:I`` reproduces one.

The mutation engine (``mutate_json``, ``mutate_bytes``, ``generate_graph``, ``write_case``) is
also used by ``tests/unit/workflow/test_fuzz_readers.py`` under hypothesis.
"""

from __future__ import annotations

import copy
import json
import random
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from comfymanager.core.errors import ComfyManagerError  # noqa: E402

# --- values a hostile or damaged file may hold anywhere --------------------------------------

ODD_VALUES: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    1.5,
    2**63,
    -(2**70),
    float("nan"),
    float("inf"),
    "",
    "x",
    "\0",
    "a\nb",
    "\u202eevil.safetensors",
    "../../etc/passwd.safetensors",
    "C:\\Windows\\x.ckpt",
    "model.safetensors",
    "embedding:bad\0name",
    "x" * 5000 + ".safetensors",
    "é" * 200 + ".safetensors",
    "workflow>nope",
    "workflow/nope",
    [],
    [1],
    [[1, 2], 3],
    [None, None, None, None, None, None],
    {},
    {"id": 1},
    {"name": 3},
    {"nodes": 5},
    {"nodes": [{"type": 1}]},
)

KEYS_OF_INTEREST = (
    "nodes",
    "links",
    "linkIds",
    "inputs",
    "outputs",
    "widgets_values",
    "widgets_values_named",
    "properties",
    "models",
    "definitions",
    "subgraphs",
    "id",
    "type",
    "mode",
    "extra",
    "groupNodes",
    "target_id",
    "target_slot",
    "widget",
    "name",
    "url",
    "directory",
    "hash",
    "hash_type",
    "cnr_id",
    "aux_id",
    "ver",
    "class_type",
    "frontendVersion",
)


def _containers(obj: Any, out: list[Any], depth: int = 0) -> None:
    if depth > 40 or len(out) > 50_000:
        return
    if isinstance(obj, (dict, list)):
        out.append(obj)
        values = obj.values() if isinstance(obj, dict) else obj
        for v in values:
            _containers(v, out, depth + 1)


def _odd(rng: random.Random, sample: list[Any]) -> Any:
    r = rng.random()
    if r < 0.6:
        return copy.deepcopy(rng.choice(ODD_VALUES))
    if r < 0.9 and sample:
        return copy.deepcopy(rng.choice(sample))  # a value from elsewhere in the same file
    return generate_value(rng, 3)


def mutate_json(data: Any, rng: random.Random, rounds: int | None = None) -> Any:
    """A copy of ``data`` with 1-6 structural mutations (replace, delete, retype, swap, nest)."""
    data = copy.deepcopy(data)
    for _ in range(rounds if rounds is not None else rng.randint(1, 6)):
        boxes: list[Any] = []
        _containers(data, boxes)
        if not boxes:
            return _odd(rng, [])
        box = rng.choice(boxes)
        values = list(box.values()) if isinstance(box, dict) else list(box)
        op = rng.random()
        if isinstance(box, dict):
            keys = list(box)
            interesting = [k for k in keys if k in KEYS_OF_INTEREST]
            key = rng.choice(interesting or keys) if keys else rng.choice(KEYS_OF_INTEREST)
            if op < 0.55 or not keys:
                box[key] = _odd(rng, values)
            elif op < 0.7:
                box.pop(key, None)
            elif op < 0.8:
                box[key] = [box.get(key)]  # wrap in a list
            elif op < 0.9:
                box[rng.choice(KEYS_OF_INTEREST)] = _odd(rng, values)
            else:
                v = box.get(key)
                box[key] = v[0] if isinstance(v, list) and v else {"0": v}
        else:
            if not box or op < 0.3:
                box.append(_odd(rng, values))
            elif op < 0.6:
                box[rng.randrange(len(box))] = _odd(rng, values)
            elif op < 0.75:
                del box[rng.randrange(len(box))]
            elif op < 0.9:
                rng.shuffle(box)
            else:
                box.extend(copy.deepcopy(box[: rng.randint(1, 3)]))
    return data


def mutate_bytes(raw: bytes, rng: random.Random) -> bytes:
    """Flip, truncate, splice or stretch raw bytes (damaged files, cut downloads)."""
    buf = bytearray(raw)
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        if not buf:
            buf += bytes(rng.getrandbits(8) for _ in range(16))
        elif op < 0.35:
            for _ in range(rng.randint(1, 8)):
                buf[rng.randrange(len(buf))] = rng.getrandbits(8)
        elif op < 0.55:
            del buf[rng.randrange(len(buf)) :]
        elif op < 0.7:
            at = rng.randrange(len(buf))
            buf[at:at] = rng.choice([b"\xff" * 4, b"\x7f\xff\xff\xff", b"\0" * 4, b"\x01" * 8])
        elif op < 0.85:
            at = rng.randrange(max(1, len(buf) - 4))
            buf[at : at + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\0\0\0\x01"])
        else:
            at = rng.randrange(len(buf))
            del buf[at : at + rng.randint(1, 64)]
    return bytes(buf)


def generate_value(rng: random.Random, depth: int) -> Any:
    r = rng.random()
    if depth <= 0 or r < 0.5:
        return copy.deepcopy(rng.choice(ODD_VALUES))
    if r < 0.75:
        return [generate_value(rng, depth - 1) for _ in range(rng.randint(0, 4))]
    return {
        rng.choice(KEYS_OF_INTEREST): generate_value(rng, depth - 1)
        for _ in range(rng.randint(0, 4))
    }


def _gen_node(rng: random.Random, nid: int, sub_ids: list[str]) -> dict[str, Any]:
    types = ["CheckpointLoaderSimple", "LoraLoader", "KSampler", "VAELoader", "UnknownX"]
    ntype: Any = rng.choice(types + sub_ids + ["workflow>g1"])
    node: dict[str, Any] = {
        "id": nid,
        "type": ntype,
        "mode": rng.choice([0, 2, 4, None, "0"]),
        "widgets_values": [generate_value(rng, 2) for _ in range(rng.randint(0, 4))],
        "properties": {
            "cnr_id": rng.choice(["comfy-core", "some-pack", 5, None]),
            "models": [generate_value(rng, 2) for _ in range(rng.randint(0, 2))],
        },
        "inputs": [
            {"name": rng.choice(["ckpt_name", "x"]), "link": rng.randint(0, 9)}
            for _ in range(rng.randint(0, 2))
        ],
    }
    if rng.random() < 0.3:
        node["widgets_values"] = {"ckpt_name": generate_value(rng, 1)}
    return node


def generate_graph(rng: random.Random) -> dict[str, Any]:
    """A UI graph built from scratch: nodes, links in both shapes, subgraphs, group nodes."""
    sub_ids = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(rng.randint(0, 3))]
    subgraphs = []
    for sid in sub_ids:
        subgraphs.append(
            {
                "id": sid if rng.random() < 0.9 else generate_value(rng, 1),
                "nodes": [_gen_node(rng, i, sub_ids) for i in range(rng.randint(0, 4))],
                "links": [
                    rng.choice(
                        [
                            [i, 0, 0, rng.randint(0, 4), rng.randint(-1, 3), "MODEL"],
                            {"id": i, "target_id": rng.randint(0, 4), "target_slot": 0},
                            generate_value(rng, 2),
                        ]
                    )
                    for i in range(rng.randint(0, 4))
                ],
                "inputs": [
                    {
                        "name": rng.choice(["ckpt_name", "in", 3]),
                        "linkIds": rng.choice([[0, 1], [[0]], 5, None, ["x"], [{"a": 1}]]),
                    }
                    for _ in range(rng.randint(0, 3))
                ],
                "definitions": rng.choice([None, {"subgraphs": []}, {"subgraphs": 3}]),
            }
        )
    graph: dict[str, Any] = {
        "nodes": [_gen_node(rng, i, sub_ids) for i in range(rng.randint(0, 8))],
        "links": [generate_value(rng, 2) for _ in range(rng.randint(0, 3))],
        "definitions": {"subgraphs": subgraphs},
        "extra": {
            "groupNodes": {"g1": {"nodes": [_gen_node(rng, 99, [])]}},
            "frontendVersion": rng.choice(["1.2.3", 5, None]),
        },
        "models": [generate_value(rng, 2) for _ in range(rng.randint(0, 2))],
    }
    return graph


def generate_api(rng: random.Random) -> dict[str, Any]:
    return {
        str(i): {
            "class_type": rng.choice(["CheckpointLoaderSimple", "LoraLoader", 5, "X"]),
            "inputs": rng.choice(
                [
                    {"ckpt_name": generate_value(rng, 1), "model": ["1", 0]},
                    generate_value(rng, 2),
                ]
            ),
        }
        for i in range(rng.randint(1, 6))
    }


# --- containers -------------------------------------------------------------------------------

CONTAINERS = ("json", "png", "png-itxt", "webp", "flac", "opus", "mp3", "mp4", "mp4-itunes", "webm")
SUFFIX = {
    "json": ".json",
    "png": ".png",
    "png-itxt": ".png",
    "webp": ".webp",
    "flac": ".flac",
    "opus": ".opus",
    "mp3": ".mp3",
    "mp4": ".mp4",
    "mp4-itunes": ".mp4",
    "webm": ".webm",
}


def write_case(container: str, data: Any, path: Path, rng: random.Random | None = None) -> Path:
    """Write ``data`` (a workflow dict, or any JSON value) as ``container`` at ``path``; with
    ``rng``, media files are then damaged at the byte level half of the time."""
    from tests.unit.workflow import media_builders as mb

    text = json.dumps(data, allow_nan=True)
    key = "prompt" if isinstance(data, dict) and "nodes" not in data else "workflow"
    tags = {key: text}
    path = path.with_suffix(SUFFIX[container])
    if container == "json":
        path.write_text(text, encoding="utf-8")
    elif container == "png":
        mb.png(path, tags)
    elif container == "png-itxt":
        mb.png(path, tags, itxt=True)
    elif container == "webp":
        mb.webp(path, text if key == "workflow" else None, text if key == "prompt" else None)
    elif container == "flac":
        mb.flac(path, tags)
    elif container == "opus":
        mb.opus(path, tags)
    elif container == "mp3":
        mb.mp3(path, tags)
    elif container == "mp4":
        mb.mp4_mdta(path, tags)
    elif container == "mp4-itunes":
        mb.mp4_itunes(path, tags)
    else:
        mb.webm(path, tags)
    if rng is not None and container != "json" and rng.random() < 0.5:
        path.write_bytes(mutate_bytes(path.read_bytes(), rng))
    return path


def templates() -> list[dict[str, Any]]:
    import comfyui_workflow_templates_json as pkg

    out = []
    for p in sorted((Path(pkg.__file__).parent / "templates").glob("*.json")):
        data = json.loads(p.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("nodes"), list):
            out.append(data)
    return out


def extra_seeds() -> list[Any]:
    """The fixture workflows: API prompt, manifest, launcher file, a UI file with everything."""
    folder = ROOT / "tests" / "fixtures" / "workflows"
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]


def make_case(rng: random.Random, seeds: list[Any], extras: list[Any]) -> tuple[str, Any]:
    """(container, data) for one case: 50 % mutated template, 10 % mutated fixture (API prompt,
    manifest, launcher file, UI file with everything), 25 % generated UI graph, 15 % generated
    API prompt; 60 % as JSON, the rest embedded in one of the media containers."""
    r = rng.random()
    if r < 0.5:
        data = mutate_json(rng.choice(seeds), rng)
    elif r < 0.6:
        data = mutate_json(rng.choice(extras), rng)
    elif r < 0.85:
        data = generate_graph(rng)
    else:
        data = generate_api(rng)
    container = "json" if rng.random() < 0.6 else rng.choice(CONTAINERS[1:])
    return container, data


def check(path: Path, analyze: Callable[[Path], Any]) -> tuple[str, BaseException | None]:
    """("analysed" | "refused", None) when ``analyze`` succeeded or raised a typed error;
    ("crash", the stray exception) otherwise."""
    try:
        analyze(path)
    except ComfyManagerError as exc:
        # guard_reader turns a stray exception into a typed error; still a crash of the reader
        cause = exc.__cause__
        if isinstance(cause, BaseException) and not isinstance(cause, ComfyManagerError):
            return "crash", cause
        return "refused", None
    except Exception as exc:  # the crash this script counts
        return "crash", exc
    return "analysed", None


def main(argv: list[str]) -> int:
    replay = ""
    if "--replay" in argv:
        at = argv.index("--replay")
        replay = argv[at + 1]
        argv = argv[:at] + argv[at + 2 :]
    args = argv
    cases = int(args[0]) if args else 10_000
    seed = int(args[1]) if len(args) > 1 else 1
    source = args[2] if len(args) > 2 else "/work/shared/data/comfyui-manager"

    from comfymanager.core.workflow.analyze import analyze
    from comfymanager.core.workflow.nodedb import load_node_db, refresh_node_db

    work = Path(tempfile.mkdtemp(prefix="fuzz-readers-"))
    db = None
    if Path(source).is_dir():
        refresh_node_db(source, work / "db")
        db = load_node_db(work / "db")
    seeds, extras = templates(), extra_seeds()
    print(
        f"{len(seeds)} templates + {len(extras)} fixtures, node database: {'yes' if db else 'no'}",
        flush=True,
    )
    crashes = 0
    kinds: dict[str, int] = {}
    by_container: dict[str, int] = {}
    outcomes: dict[str, int] = {}
    slowest = (0.0, "")
    start = time.perf_counter()
    names = [replay] if replay else [f"{seed}:{i}" for i in range(cases)]
    for n, case_seed in enumerate(names, start=1):
        rng = random.Random(case_seed)
        container, data = make_case(rng, seeds, extras)
        by_container[container] = by_container.get(container, 0) + 1
        path = write_case(container, data, work / f"case{n % 8}", rng)
        started = time.perf_counter()
        outcome, exc = check(path, lambda p: analyze(p, db))
        slowest = max(slowest, (time.perf_counter() - started, case_seed))
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if exc is not None:
            crashes += 1
            name = type(exc).__name__
            kinds[name] = kinds.get(name, 0) + 1
            if crashes <= 5 or replay:
                print(f"crash in case {case_seed} ({container}):", file=sys.stderr)
                traceback.print_exception(exc, file=sys.stderr)
        if n % 1000 == 0:
            print(f"  {n} cases, {crashes} crashes", flush=True)
    took = time.perf_counter() - start
    total = len(names)
    print(
        f"cases: {total}, crashes: {crashes} ({kinds or 'none'}), "
        f"{took:.1f} s ({total / took:.0f} cases/s)"
    )
    print("per container: " + ", ".join(f"{k} {v}" for k, v in sorted(by_container.items())))
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    print(f"slowest case: {slowest[0] * 1000:.0f} ms ({slowest[1]})")
    return 1 if crashes else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
