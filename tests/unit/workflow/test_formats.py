"""load_workflow: every format, and every way a file can be unusable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from comfymanager.core.workflow.formats import MAX_FILE_BYTES, WorkflowError, load_workflow
from tests.unit.workflow import media_builders as mb

UI = {
    "last_node_id": 1,
    "version": 0.4,
    "links": [],
    "nodes": [{"id": 1, "type": "CheckpointLoaderSimple", "widgets_values": ["a.safetensors"]}],
}
API = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "b.safetensors"}}}
WF, PR = json.dumps(UI), json.dumps(API)


def _error(path: Path) -> WorkflowError:
    with pytest.raises(WorkflowError) as info:
        load_workflow(path)
    assert str(path) in info.value.message  # every message names the file
    assert info.value.fix
    return info.value


def test_ui_and_api_json(workflows_dir: Path) -> None:
    ui = load_workflow(workflows_dir / "ui_everything.json")
    assert ui.format == "ui" and ui.ui is not None and ui.api is None
    api = load_workflow(workflows_dir / "api_prompt.json")
    assert api.format == "api" and api.api is not None and "12:5" in api.api


def test_manifest_and_launcher_are_recognised(workflows_dir: Path) -> None:
    assert load_workflow(workflows_dir / "manifest.json").format == "manifest"
    launcher = load_workflow(workflows_dir / "launcher.json")
    assert launcher.format == "launcher" and launcher.ui is not None


def test_nan_is_accepted(tmp_path: Path) -> None:
    p = tmp_path / "nan.json"
    p.write_text('{"nodes": [{"id": 1, "type": "KSampler", "widgets_values": [NaN, Infinity]}]}')
    assert load_workflow(p).format == "ui"


@pytest.mark.parametrize(
    ("content", "cause"),
    [
        ('{"foo": 1}', "not a ComfyUI workflow"),
        ("[1, 2, 3]", "JSON list"),
        ('{"nodes": [{"id": 1', "truncated"),
        ('{"nodes": {"1": 2}}', '"nodes" is a dict'),
        ("\u00ff\u00fe garbage", "not UTF-8"),
        ("", "empty"),
    ],
)
def test_unusable_json_says_why(tmp_path: Path, content: str, cause: str) -> None:
    p = tmp_path / "w.json"
    p.write_text(content, encoding="latin-1")
    assert cause in _error(p).message


def test_non_utf8_json(tmp_path: Path) -> None:
    p = tmp_path / "w.json"
    p.write_bytes(b'{"nodes": ["\xff"]}')
    assert "not UTF-8" in _error(p).message


def test_deep_nesting_does_not_escape(tmp_path: Path) -> None:
    p = tmp_path / "deep.json"
    p.write_text('{"nodes": ' + "[" * 200_000 + "]" * 200_000 + "}")
    assert "nested too deeply" in _error(p).message


def test_huge_file_is_refused_with_the_cap(tmp_path: Path) -> None:
    p = tmp_path / "huge.json"
    with open(p, "wb") as fh:
        fh.write(b'{"nodes": []')
        fh.truncate(MAX_FILE_BYTES + 10)  # sparse: no 16 MiB written
    assert "16 MiB" in _error(p).message


def test_unknown_file_type(tmp_path: Path) -> None:
    p = tmp_path / "w.bin"
    p.write_bytes(b"\xff\xfe garbage")
    assert "not recognised" in _error(p).message


def test_missing_file_and_folder(tmp_path: Path) -> None:
    assert "does not exist" in _error(tmp_path / "nope.json").message
    assert "folder" in _error(tmp_path).message


def test_png_prefers_workflow_over_prompt(tmp_path: Path) -> None:
    loaded = load_workflow(mb.png(tmp_path / "a.png", {"prompt": PR, "workflow": WF}))
    assert loaded.format == "ui" and loaded.ui == UI


def test_png_itxt_prompt_only(tmp_path: Path) -> None:
    loaded = load_workflow(mb.png(tmp_path / "a.png", {"prompt": PR}, itxt=True))
    assert loaded.format == "api" and loaded.api == API


def test_png_with_broken_workflow_falls_back_to_prompt(tmp_path: Path) -> None:
    loaded = load_workflow(mb.png(tmp_path / "a.png", {"workflow": "{broken", "prompt": PR}))
    assert loaded.format == "api" and any("workflow" in w for w in loaded.warnings)


def test_png_without_chunk(tmp_path: Path) -> None:
    err = _error(mb.png(tmp_path / "plain.png", {"Software": "paint"}))
    assert "no embedded workflow" in err.message


def test_truncated_png(tmp_path: Path) -> None:
    src = mb.png(tmp_path / "a.png", {"workflow": WF})
    cut = tmp_path / "cut.png"
    cut.write_bytes(src.read_bytes()[:40])
    _error(cut)


def test_webp_exif(tmp_path: Path) -> None:
    assert load_workflow(mb.webp(tmp_path / "a.webp", WF, PR)).format == "ui"
    assert load_workflow(mb.webp(tmp_path / "b.webp", None, PR)).format == "api"


@pytest.mark.parametrize(
    ("name", "build"),
    [
        ("a.flac", mb.flac),
        ("a.opus", mb.opus),
        ("a.mp3", mb.mp3),
        ("a.mp4", mb.mp4_mdta),
        ("a.m4a", mb.mp4_itunes),
        ("a.webm", mb.webm),
    ],
)
def test_audio_video_containers(tmp_path: Path, name: str, build: object) -> None:
    loaded = load_workflow(build(tmp_path / name, {"workflow": WF, "prompt": PR}))  # type: ignore[operator]
    assert loaded.format == "ui" and loaded.ui == UI
    only_prompt = build(tmp_path / ("p" + name), {"prompt": PR})  # type: ignore[operator]
    assert load_workflow(only_prompt).api == API


def test_webm_tags_after_clusters(tmp_path: Path) -> None:
    loaded = load_workflow(mb.webm(tmp_path / "a.webm", {"workflow": WF}, cluster_first=False))
    assert loaded.format == "ui"


def test_media_without_workflow(tmp_path: Path) -> None:
    err = _error(mb.flac(tmp_path / "a.flac", {"title": "song"}))
    assert "FLAC" in err.message and "no embedded workflow" in err.message


def test_damaged_media(tmp_path: Path) -> None:
    p = tmp_path / "bad.mp4"
    p.write_bytes(b"\0\0\0\x20ftypisom" + b"\xff" * 30)
    assert "MP4" in _error(p).message
