"""Bad input through the real command line: each bad file named on its own line, the batch
carries on, hostile names are escaped, over-long names refused with the limit, a cp1252 pipe
never raises, and ``import`` stops before doing anything when one file is bad."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from tests.fixtures.nodedb import snapshot_dir

GOOD = {
    "nodes": [
        {"id": 1, "type": "CheckpointLoaderSimple", "widgets_values": ["sd15.safetensors"]},
    ]
}
HOSTILE_NAMES = {
    "bidi": "evil\u202egnp.safetensors",
    "newline": "two\nlines.safetensors",
    "escape": "\x1b[31mred.safetensors",
    "isolate": "a\u2066b.safetensors",
}


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "COMFYMANAGER_NODE_DB": str(snapshot_dir()),
        "COMFYMANAGER_DATA_DIR": str(tmp_path / "data"),
        "COMFYMANAGER_STORE_DIR": str(tmp_path / "store"),
        **extra,
    }


def _cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "comfymanager", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="strict",
        env=_env(tmp_path, **env),
        timeout=120,
        check=False,
    )


def _chunk(ctype: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data))


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    """One file of each kind of damage the issue found, with the cause each must name."""
    files = {}
    sub = {
        "id": "00000000-0000-4000-8000-000000000001",
        "nodes": [{"id": 1, "type": "LoraLoader", "inputs": [{"name": "x"}]}],
        "links": [[[1], 0, 0, 1, 0, "MODEL"], {"id": [2], "target_id": 1}],
        "inputs": [{"name": "lora_name", "linkIds": [[1], 5]}, {"name": "b", "linkIds": 7}],
    }
    shapes = {
        "nodes": [{"id": 9, "type": sub["id"], "widgets_values": ["x.safetensors"]}],
        "definitions": {"subgraphs": [sub]},
    }
    files["shapes.json"] = tmp_path / "shapes.json"  # analyses: odd link ids are skipped
    files["shapes.json"].write_text(json.dumps(shapes))
    files["not-workflow.json"] = tmp_path / "not-workflow.json"
    files["not-workflow.json"].write_text('{"hello": "world"}')
    png = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    files["cut.png"] = tmp_path / "cut.png"
    files["cut.png"].write_bytes(png + struct.pack(">I", 0x7FFFFFFF) + b"tEXtworkflow\0{")
    files["empty.json"] = tmp_path / "empty.json"
    files["empty.json"].write_bytes(b"")
    return files


def test_analyze_reports_each_bad_file_and_carries_on(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(GOOD))
    bad = _bad_files(tmp_path)
    order = [good, bad["not-workflow.json"], bad["shapes.json"], bad["cut.png"], bad["empty.json"]]
    order.append(good)
    proc = _cli(tmp_path, "analyze", "--json", *map(str, order))
    assert proc.returncode == 1, proc.stderr  # some failed: documented in `analyze --help`
    assert "Traceback" not in proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [entry["file"] for entry in lines] == [str(p) for p in order]
    errors = {Path(e["file"]).name: e["error"] for e in lines if "error" in e}
    assert set(errors) == {"not-workflow.json", "cut.png", "empty.json"}
    assert "not a ComfyUI workflow" in errors["not-workflow.json"]
    assert "has length 2147483647, which exceeds the file (truncated at byte" in errors["cut.png"]
    assert "the file is empty" in errors["empty.json"]
    assert all(name in message for name, message in errors.items())  # each names its file
    assert "models" in lines[2]  # the odd link ids of shapes.json no longer crash

    text = _cli(tmp_path, "analyze", *map(str, order))
    assert text.returncode == 1 and "Traceback" not in text.stderr
    error_lines = [line for line in text.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 3  # one line per bad file
    assert text.stdout.count("good.json (ui workflow)") == 2  # the batch carried on


def _hostile_workflow(tmp_path: Path) -> Path:
    nodes = [
        {"id": i, "type": "LoraLoader", "widgets_values": [name, 1.0, 1.0]}
        for i, name in enumerate(HOSTILE_NAMES.values(), start=1)
    ]
    nodes.append(
        {"id": 50, "type": "CheckpointLoaderSimple", "widgets_values": ["é" * 5000 + ".ckpt"]}
    )
    nodes.append({"id": 51, "type": "CheckpointLoaderSimple", "widgets_values": ["ok.ckpt"]})
    p = tmp_path / "hostile.json"
    p.write_text(json.dumps({"nodes": nodes}))
    return p


def test_hostile_names_are_escaped_and_long_ones_refused_with_the_limit(tmp_path: Path) -> None:
    proc = _cli(tmp_path, "analyze", str(_hostile_workflow(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for raw in HOSTILE_NAMES.values():
        assert raw not in out
    assert "loras/evil\\u202egnp.safetensors" in out
    assert "loras/two\\nlines.safetensors" in out
    assert "loras/\\x1b[31mred.safetensors" in out
    assert "\x1b" not in out and "\u202e" not in out and "\u2066" not in out
    assert all(line.isprintable() for line in out.splitlines())
    # the 5,000-character name: left out with the limit named; the rest still analysed
    assert "checkpoints/ok.ckpt" in out
    assert "10005 bytes long, above the 255-byte limit" in out
    assert "(5005 characters)" in out


def test_cp1252_pipe_never_raises(tmp_path: Path) -> None:
    wf = _hostile_workflow(tmp_path)
    cjk = tmp_path / "cjk.json"
    cjk.write_text(
        json.dumps(
            {
                "nodes": [
                    {"id": 1, "type": "VAELoader", "widgets_values": ["模型\u2603.safetensors"]}
                ]
            }
        ),
        encoding="utf-8",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "comfymanager", "analyze", str(wf), str(cjk), str(tmp_path / "no")],
        capture_output=True,
        env=_env(tmp_path, PYTHONIOENCODING="cp1252", PYTHONUTF8="0"),
        timeout=120,
        check=False,
    )
    assert b"UnicodeEncodeError" not in proc.stderr and b"Traceback" not in proc.stderr
    assert proc.returncode == 1  # the missing file; everything else printed
    out = proc.stdout.decode("cp1252")
    assert "vae/\\u6a21\\u578b\\u2603.safetensors" in out  # what cp1252 cannot hold, escaped
    assert "does not exist" in proc.stderr.decode("cp1252")


def test_download_name_over_255_bytes_is_refused_before_anything(tmp_path: Path) -> None:
    name = "a" * 300 + ".safetensors"
    proc = _cli(
        tmp_path,
        "download",
        "http://127.0.0.1:9/x.safetensors",
        "--folder",
        "checkpoints",
        "--name",
        name,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "part is 312 bytes long, above the 255-byte limit" in proc.stderr
    assert "File name too long" not in proc.stderr
    store = tmp_path / "store"
    assert not store.exists() or not any(p.is_file() for p in store.rglob("*"))


@pytest.mark.parametrize(
    ("name", "cause"),
    [
        ("a\0b.safetensors", "NUL"),
        ("/etc/x.safetensors", "absolute path"),
        ("../x.safetensors", "contains '..'"),
        ("a//x.safetensors", "empty path part"),
        ("d/" * 300 + ".ckpt", "605 bytes long, above the 512-byte limit for a path"),
        ("d/" + "b" * 300 + ".ckpt", "305 bytes long, above the 255-byte limit"),
    ],
)
def test_download_name_validator(name: str, cause: str) -> None:
    from comfymanager.core.errors import InvalidInput
    from comfymanager.core.workflow.names import check_model_name

    with pytest.raises(InvalidInput) as info:
        check_model_name(name)
    assert cause in info.value.message
    assert "\0" not in info.value.message


def test_import_with_a_bad_file_stops_before_doing_anything(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(GOOD))
    bad = _bad_files(tmp_path)
    cut, empty = bad["cut.png"], bad["empty.json"]
    proc = _cli(tmp_path, "import", str(good), str(cut), str(empty), "--name", "imp", "--yes")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert any(str(cut) in line and "truncated at byte" in line for line in lines)
    assert any(str(empty) in line and "the file is empty" in line for line in lines)
    assert "2 of 3 files cannot be imported (named above); nothing was done." in proc.stderr
    assert not (tmp_path / "data" / "projects" / "imp").exists()
    store = tmp_path / "store"
    assert not store.exists() or not any(p.is_file() for p in store.rglob("*"))


def test_progress_lines_escape_names(capsys: pytest.CaptureFixture[str]) -> None:
    from comfymanager.cli.common import StderrProgress
    from comfymanager.core.progress import Progress

    out = StderrProgress()
    out.progress(Progress("download", key="evil\u202egnp.safetensors"))
    out.progress(Progress("fetch", message="two\nlines.ckpt is ready"))
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "== evil\\u202egnp.safetensors: download",
        "== two\\nlines.ckpt is ready",
    ]
