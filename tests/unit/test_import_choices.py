"""Matching command-line import choices to plan rows, and the hints for open rows (no install)."""

from __future__ import annotations

from pathlib import Path

import pytest

from comfymanager.cli.import_choices import Choices, build_decision, hints
from comfymanager.core.errors import InvalidInput
from comfymanager.core.importer.plan import ImportPlan, PlanModel, PlanPack, Suggestion
from comfymanager.core.workflow.nodes import PackRef

A = PackRef("https://github.com/o/pack-a", "pack-a", "https://github.com/o/pack-a", "Pack A")
B = PackRef("https://github.com/o/pack-b", None, "https://github.com/o/pack-b", "Pack B")
SUGG = Suggestion("https://example.com/x/up.pth", "upscale_models", "up.pth", "model list")


def _plan() -> ImportPlan:
    packs = (
        PlanPack("class:Twin", "Twin", ("Twin",), "candidates", candidates=(A, B)),
        PlanPack("class:Lost", "Lost", ("Lost",), "unknown"),
        PlanPack("https://github.com/o/one", "Shared", ("One", "Both"), "install"),
        PlanPack("https://github.com/o/two", "Shared", ("Two", "Both"), "install"),
        PlanPack("comfy-core", "ComfyUI (built in)", ("KSampler",), "built-in"),
    )
    models = (
        PlanModel("loras", "same.safetensors", (), None, None, "unknown"),
        PlanModel("vae", "same.safetensors", (), None, None, "unknown"),
        PlanModel(None, "sub/up.pth", (), None, None, "unknown", (SUGG,)),
    )
    return ImportPlan((Path("w.json"),), (), packs, models, None, None, (), True)


def _decide(**kw: object) -> object:
    return build_decision(_plan(), "p", Choices(**kw))  # type: ignore[arg-type]


def test_rows_by_key_class_title_or_name() -> None:
    d = build_decision(
        _plan(),
        "p",
        Choices(
            packs=(("twin", "Pack B"), ("Lost", "https://github.com/o/lost"), ("One", A.url or "")),
            models=(("up.pth", SUGG.url), ("loras/same.safetensors", "https://e.com/s.pt")),
            skips=("vae/same.safetensors",),
        ),
    )
    assert d.pack_choices == {"class:Twin": B.identity}  # a candidate by its title
    assert d.pack_urls == {
        "class:Lost": "https://github.com/o/lost",
        "https://github.com/o/one": A.url,
    }
    assert d.model_urls == {
        "?/sub/up.pth": SUGG.url,
        "loras/same.safetensors": "https://e.com/s.pt",
    }
    assert d.model_folders == {"?/sub/up.pth": "upscale_models"}  # the picked suggestion's folder
    assert d.skip_models == frozenset({"vae/same.safetensors"})
    assert hints(_plan(), d) == []
    by_id = build_decision(_plan(), "p", Choices(packs=(("Twin", "pack-a"),)))
    assert by_id.pack_choices == {"class:Twin": A.identity}  # ...or its registry id


@pytest.mark.parametrize(
    ("choices", "message"),
    [
        (
            {"packs": (("Both", "https://x/y"),)},
            "https://github.com/o/one, https://github.com/o/two",
        ),
        ({"packs": (("Shared", "https://x/y"),)}, "matches several node packs"),
        ({"packs": (("KSampler", "https://x/y"),)}, "No node pack of the plan matches 'KSampler'"),
        ({"skips": ("same.safetensors",)}, "loras/same.safetensors, vae/same.safetensors"),
        ({"packs": (("Twin", "Pack C"),)}, B.identity),
        ({"folders": (("up.pth", "upscalers"),)}, "Unknown model folder 'upscalers'"),
        ({"folders": (("loras/same.safetensors", "vae"),)}, "goes into loras"),
        ({"models": (("up.pth", "https://e.com/up.pth"),)}, "folder of sub/up.pth is unknown"),
    ],
)
def test_mistakes_name_what_to_use(choices: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        _decide(**choices)
    assert message in str(info.value)


def test_hints_give_the_exact_options() -> None:
    lines = hints(_plan(), build_decision(_plan(), "p", Choices()))
    text = "\n".join(lines)
    assert f"--pack Twin={A.identity}" in text and f"--pack Twin={B.identity}" in text
    assert "--pack Lost=<git URL>" in text
    assert "--model loras/same.safetensors=<URL>" in text  # the name alone is ambiguous
    assert f"--model up.pth={SUGG.url}" not in text  # hints use the row's full name...
    assert f"--model sub/up.pth={SUGG.url}" in text and "into upscale_models" in text
    assert "--model-folder sub/up.pth=<folder> --model sub/up.pth=<URL>" in text
    assert any(line.startswith("folders: checkpoints") for line in lines)


def test_pack_for_any_row_from_a_url_a_file_url_or_a_local_folder(tmp_path: Path) -> None:
    folder = tmp_path / "my-pack"
    folder.mkdir()
    for given, expected in (
        (str(folder), str(folder)),
        (folder.as_uri(), folder.as_uri()),
        ("https://github.com/o/fork", "https://github.com/o/fork"),
    ):
        for row in ("Twin", "Lost", "One"):  # a candidates row, an unknown row, an install row
            d = build_decision(_plan(), "p", Choices(packs=((row, given),)))
            assert list(d.pack_urls.values()) == [expected], (row, given)


def test_relative_local_folder_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pack").mkdir()
    monkeypatch.chdir(tmp_path)
    d = build_decision(_plan(), "p", Choices(packs=(("Twin", "pack"),)))
    assert d.pack_urls == {"class:Twin": str(tmp_path / "pack")}


def test_recommended_is_marked_but_not_taken() -> None:
    plan = _plan()
    twin = PlanPack(
        "class:Twin", "Twin", ("Twin",), "candidates", candidates=(A, B), recommended=A.identity
    )
    plan = ImportPlan(plan.files, (), (twin, *plan.packs[1:]), plan.models, None, None, (), True)
    d = build_decision(plan, "p", Choices())
    assert "class:Twin" not in d.pack_choices  # --yes alone does not take it
    lines = hints(plan, d)
    assert f"    --pack Twin={A.identity}    (Pack A, recommended)" in lines
    assert f"    --pack Twin={B.identity}    (Pack B)" in lines
