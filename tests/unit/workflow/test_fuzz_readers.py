"""Property-based fuzzing of every workflow reader (hypothesis): the only exceptions allowed out
of ``load_workflow`` / ``analyze`` are the typed errors, each naming the file.

Two sources of cases: the ~640 official templates (and the fixture API prompt, manifest and
launcher file) mutated, and graphs generated from scratch; each is read as JSON and embedded
in every container ComfyUI writes (PNG tEXt/iTXt, WebP EXIF, FLAC, Opus, MP3, MP4, WebM), the
media damaged at the byte level. The mutation engine is ``scripts/fuzz_readers.py``, which runs
10,000+ cases on demand (figures in docs/RELIABILITY.md).

Budget: the "readers" profile below (200-300 examples per reader, no deadline: a busy 2-core
machine must not flake); about 30 s in all.
"""

from __future__ import annotations

import contextlib
import json
import random
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from comfymanager.core.errors import ComfyManagerError
from comfymanager.core.workflow.analyze import analysis_to_json, analyze
from comfymanager.core.workflow.formats import load_workflow
from comfymanager.core.workflow.nodedb import NodeDatabase
from scripts import fuzz_readers as fuzz

settings.register_profile(
    "readers",
    max_examples=300,
    deadline=None,
    database=None,  # nothing written beside the tests
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
READERS = settings.get_profile("readers")

SEEDS: list[Any] = fuzz.templates()
EXTRA: dict[str, Any] = {
    p.stem: json.loads(p.read_text(encoding="utf-8"))
    for p in (fuzz.ROOT / "tests" / "fixtures" / "workflows").glob("*.json")
}


@pytest.fixture(scope="module")
def work() -> Any:
    with tempfile.TemporaryDirectory(prefix="fuzz-") as folder:
        yield Path(folder)


def _only_typed(path: Path, db: NodeDatabase | None) -> None:
    """The property: analyze either succeeds (and its JSON shape serialises) or raises a typed
    error naming the file that is not the safety net catching a stray exception."""
    try:
        result = analyze(path, db)
    except ComfyManagerError as exc:
        cause = exc.__cause__
        if cause is not None and not isinstance(cause, ComfyManagerError):
            raise AssertionError(f"a reader crashed (caught by guard_reader): {cause!r}") from cause
        assert str(path) in exc.message, exc.message
        assert exc.message.isprintable(), exc.message  # outside text in it is escaped
        return
    json.dumps(analysis_to_json(result, str(path)))


# --- JSON ------------------------------------------------------------------------------------


def test_mutated_official_templates(work: Path, node_db: NodeDatabase) -> None:
    @settings(READERS, max_examples=500)
    @given(seed=st.sampled_from(SEEDS), rng=st.randoms(use_true_random=False))
    def check(seed: Any, rng: random.Random) -> None:
        path = fuzz.write_case("json", fuzz.mutate_json(seed, rng), work / "t")
        _only_typed(path, node_db)

    check()


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["model.safetensors", "workflow>g", "a/../b.ckpt", "x" * 300 + ".pt"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(fuzz.KEYS_OF_INTEREST), inner)
    ),
    max_leaves=5,
)
SMALL = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.sampled_from(fuzz.KEYS_OF_INTEREST), SCALARS, max_size=3),
)
"""Cheaper than VALUES (recursive strategies dominate the run time); used inside graphs."""
LINK_IDS = st.one_of(
    st.integers(-1, 2**40), st.lists(st.one_of(st.integers(0, 5), SMALL), max_size=4), SMALL
)
SUB_ID = "00000000-0000-4000-8000-000000000001"
MODELS = st.lists(
    st.fixed_dictionaries(
        {},
        optional={k: SCALARS for k in ("name", "url", "directory", "hash", "hash_type")},
    ),
    max_size=3,
)
INPUT = st.dictionaries(st.sampled_from(["name", "widget", "link"]), SMALL)


@st.composite
def ui_graphs(draw: st.DrawFn) -> dict[str, Any]:
    node_types = st.one_of(
        st.sampled_from(["CheckpointLoaderSimple", "LoraLoader", "KSampler", SUB_ID, "workflow>g"]),
        SMALL,
    )
    node = st.fixed_dictionaries(
        {"id": st.one_of(st.integers(0, 6), SMALL), "type": node_types},
        optional={
            "mode": st.one_of(st.sampled_from([0, 2, 4]), SMALL),
            "widgets_values": SMALL,
            "widgets_values_named": SMALL,
            "properties": st.one_of(
                st.fixed_dictionaries({}, optional={"cnr_id": SMALL, "models": MODELS}), SMALL
            ),
            "inputs": st.lists(st.dictionaries(st.sampled_from(["name", "widget", "link"]), SMALL)),
        },
    )
    link = st.one_of(
        st.lists(st.one_of(st.integers(0, 6), SMALL), min_size=5, max_size=6),
        st.fixed_dictionaries(
            {"id": LINK_IDS, "target_id": SMALL, "target_slot": st.one_of(st.integers(-1, 3))}
        ),
        SMALL,
    )
    sub = st.fixed_dictionaries(
        {
            "id": st.sampled_from([SUB_ID, SUB_ID, SUB_ID, 7]),
            "nodes": st.lists(node, max_size=4),
            "links": st.lists(link, max_size=4),
            "inputs": st.lists(
                st.fixed_dictionaries(
                    {"name": st.sampled_from(["lora_name", "ckpt_name"]), "linkIds": LINK_IDS}
                )
                | st.fixed_dictionaries({"name": SMALL}),
                max_size=3,
            ),
        },
        optional={"definitions": SMALL},
    )
    subs = st.lists(sub, min_size=1, max_size=3)
    instance = st.fixed_dictionaries(
        {"id": st.integers(0, 9), "type": st.just(SUB_ID)},
        optional={"widgets_values": SMALL, "mode": st.sampled_from([0, 2, 4])},
    )
    return draw(
        st.fixed_dictionaries(
            {
                "nodes": st.tuples(st.lists(node, max_size=5), instance).map(
                    lambda pair: [*pair[0], pair[1]]
                ),
                # subgraph definitions most of the time: the tracebacks were all there
                "definitions": st.fixed_dictionaries({"subgraphs": subs}),
            },
            optional={
                "extra": st.one_of(
                    st.fixed_dictionaries({"groupNodes": st.dictionaries(st.just("g"), SMALL)}),
                    SMALL,
                ),
                "models": st.one_of(MODELS, SMALL),
                "links": st.lists(link, max_size=3),
            },
        )
    )


def test_generated_ui_graphs(work: Path, node_db: NodeDatabase) -> None:
    @READERS
    @given(graph=ui_graphs())
    def check(graph: dict[str, Any]) -> None:
        _only_typed(fuzz.write_case("json", graph, work / "g"), node_db)

    check()


API_PROMPTS = st.dictionaries(
    st.text(max_size=5),
    st.one_of(
        st.fixed_dictionaries(
            {"class_type": st.one_of(st.just("CheckpointLoaderSimple"), VALUES)},
            optional={"inputs": st.one_of(st.dictionaries(st.text(max_size=10), SMALL), VALUES)},
        ),
        VALUES,
    ),
    min_size=1,
    max_size=6,
)


def test_generated_api_prompts(work: Path, node_db: NodeDatabase) -> None:
    @READERS
    @given(prompt=API_PROMPTS)
    def check(prompt: dict[str, Any]) -> None:
        _only_typed(fuzz.write_case("json", prompt, work / "a"), node_db)

    check()


def test_mutated_manifests_launchers_and_prompts(work: Path, node_db: NodeDatabase) -> None:
    @READERS
    @given(
        kind=st.sampled_from(["manifest", "launcher", "api_prompt"]),
        rng=st.randoms(use_true_random=False),
    )
    def check(kind: str, rng: random.Random) -> None:
        data = fuzz.mutate_json(EXTRA[kind], rng)
        _only_typed(fuzz.write_case("json", data, work / "m"), node_db)

    check()


# --- media -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "containers",
    [("png", "png-itxt"), ("webp",), ("flac", "opus", "mp3"), ("mp4", "mp4-itunes", "webm")],
    ids=["png", "webp", "audio", "video"],
)
def test_media_damaged_and_mutated(work: Path, containers: tuple[str, ...]) -> None:
    @READERS
    @given(
        container=st.sampled_from(containers),
        seed=st.sampled_from(SEEDS[::8]),
        rng=st.randoms(use_true_random=False),
    )
    def check(container: str, seed: Any, rng: random.Random) -> None:
        data = fuzz.mutate_json(seed, rng) if rng.random() < 0.5 else seed
        path = fuzz.write_case(container, data, work / f"m-{container}", rng)
        _only_typed(path, None)
        with contextlib.suppress(ComfyManagerError):  # load_workflow alone: the same promise
            load_workflow(path)

    check()


def test_arbitrary_bytes_under_every_name(work: Path) -> None:
    """Any bytes at all, behind a real magic number or none, under every suffix we read."""
    magics = [b"", b"\x89PNG\r\n\x1a\n", b"RIFF\0\0\0\0WEBP", b"fLaC", b"OggS", b"ID3\x04\0\0"]
    magics += [b"\0\0\0\x18ftypisom", b"\x1a\x45\xdf\xa3", b"{", b"\xef\xbb\xbf["]

    @READERS
    @given(
        magic=st.sampled_from(magics),
        body=st.binary(max_size=512),
        suffix=st.sampled_from([*sorted(set(fuzz.SUFFIX.values())), ".txt", ".mkv", ""]),
    )
    def check(magic: bytes, body: bytes, suffix: str) -> None:
        path = work / f"raw{suffix}"
        path.write_bytes(magic + body)
        _only_typed(path, None)

    check()
