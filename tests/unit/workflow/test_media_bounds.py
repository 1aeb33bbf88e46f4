"""Hostile and damaged media: each refusal names the real cause, and memory stays bounded.

The PNG cases are the ones of issue 10 (a 1 GiB zTXt bomb, a 256 MiB iTXt bomb, a 100 MB tEXt
chunk, a chunk length of 0x7fffffff, a file cut at byte N, a bad CRC); peak memory is measured
with ``resource.getrusage`` in a fresh interpreter, so the figure is the real process peak.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import pytest

from comfymanager.core.workflow.analyze import analyze
from comfymanager.core.workflow.formats import (
    MAX_FILE_BYTES,
    MAX_NODES,
    WorkflowError,
    load_workflow,
)
from tests.unit.workflow import media_builders as mb

UI = {"nodes": [{"id": 1, "type": "CheckpointLoaderSimple", "widgets_values": ["a.safetensors"]}]}
WF = json.dumps(UI)
LIMIT_MB = f"{MAX_FILE_BYTES // (1024 * 1024)} MB"


def _chunk(ctype: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data))


def _png(*chunks: bytes) -> bytes:
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    idat = _chunk(b"IDAT", zlib.compress(b"\0\0"))
    return b"\x89PNG\r\n\x1a\n" + ihdr + b"".join(chunks) + idat + _chunk(b"IEND", b"")


def _zeros_bomb(size: int) -> bytes:
    """A valid zlib stream of ``size`` zero bytes (size a multiple of 1 MiB), built in
    milliseconds: after a full flush every 1 MiB block compresses to the same bytes."""
    comp = zlib.compressobj(9)
    block = b"\0" * (1 << 20)
    first = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    again = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    end = comp.flush()[:-4]  # the final empty block; the Adler-32 of `size` zeros follows
    blocks = size >> 20
    return first + again * (blocks - 1) + end + (((size % 65521) << 16) | 1).to_bytes(4, "big")


def _error(path: Path) -> str:
    with pytest.raises(WorkflowError) as info:
        load_workflow(path)
    assert str(path) in info.value.message
    return info.value.message


def _peak_mb(path: Path, call: str = "load_workflow") -> tuple[float, float, str]:
    """(seconds, MB the process peak grew while reading, outcome) in a fresh interpreter."""
    code = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from comfymanager.core.workflow.formats import load_workflow
        from comfymanager.core.workflow.analyze import analyze
        try:
            import resource
        except ImportError:  # Windows: Python allocations only
            resource = None
            import tracemalloc
            tracemalloc.start()
        def peak():
            try:  # Linux: this process image's own high-water mark (ru_maxrss is inherited
                # across exec from the forking parent, which would hide the growth)
                with open("/proc/self/status") as fh:
                    for line in fh:
                        if line.startswith("VmHWM:"):
                            return int(line.split()[1]) / 1024
            except OSError:
                pass
            if resource is None:
                return tracemalloc.get_traced_memory()[1] / 1e6
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            return rss / 1e6 if sys.platform == "darwin" else rss / 1024
        before = peak()
        t = time.perf_counter()
        try:
            {
            "load_workflow(Path(sys.argv[1]))"
            if call == "load_workflow"
            else "analyze(Path(sys.argv[1]), None)"
        }
            outcome = "ok"
        except Exception as exc:
            outcome = type(exc).__name__ + ": " + str(exc)
        took = time.perf_counter() - t
        print(took, peak() - before, outcome.replace(chr(10), " "))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    took, grew, outcome = out.strip().split(" ", 2)
    return float(took), float(grew), outcome


# --- PNG ---------------------------------------------------------------------------------------


def test_ztxt_bomb_of_1_gib_stops_at_the_limit(tmp_path: Path) -> None:
    bomb = _zeros_bomb(1 << 30)
    p = tmp_path / "bomb.png"
    p.write_bytes(_png(_chunk(b"zTXt", b"workflow\0\0" + bomb)))
    assert p.stat().st_size < 2_000_000
    took, grew, outcome = _peak_mb(p)
    assert f"chunk 'zTXt' decompresses past the {LIMIT_MB} limit" in outcome
    assert grew < 3 * MAX_FILE_BYTES / 1e6  # the 1 GiB is never held: at most the limit
    assert took < 10


def test_itxt_compressed_bomb_of_256_mib(tmp_path: Path) -> None:
    bomb = _zeros_bomb(256 << 20)
    p = tmp_path / "bomb.png"
    p.write_bytes(_png(_chunk(b"iTXt", b"workflow\0\x01\x00\0\0" + bomb)))
    assert f"chunk 'iTXt' decompresses past the {LIMIT_MB} limit" in _error(p)


def test_100_mb_text_chunk_is_refused_without_reading_it(tmp_path: Path) -> None:
    p = tmp_path / "big.png"
    with open(p, "wb") as fh:
        fh.write(_png()[:33])  # signature + IHDR
        fh.write(struct.pack(">I", 100_000_000) + b"tEXt" + b"workflow\0")
        block = b"x" * (1 << 20)
        left = 100_000_000 - 9
        while left > 0:
            fh.write(block[: min(left, len(block))])
            left -= len(block)
        fh.write(b"\0\0\0\0" + _chunk(b"IEND", b""))
    took, grew, outcome = _peak_mb(p)
    assert f"chunk 'tEXt' at byte 33 is 100 MB, above the {LIMIT_MB} limit" in outcome
    assert grew < 20  # Pillow used ~400 MB here; the chunk is now skipped, never read
    assert took < 5


def test_chunk_length_0x7fffffff_names_the_truncation(tmp_path: Path) -> None:
    p = tmp_path / "len.png"
    good = _png(_chunk(b"tEXt", b"workflow\0" + WF.encode()))
    header_end = 33
    p.write_bytes(good[:header_end] + struct.pack(">I", 0x7FFFFFFF) + good[header_end + 4 :])
    size = p.stat().st_size
    message = _error(p)
    assert (
        f"chunk 'tEXt' at byte 33 has length 2147483647, which exceeds the file "
        f"(truncated at byte {size})" in message
    )


def test_chunk_length_above_the_png_maximum(tmp_path: Path) -> None:
    p = tmp_path / "len.png"
    good = _png(_chunk(b"tEXt", b"workflow\0" + WF.encode()))
    p.write_bytes(good[:33] + b"\xff\xff\xff\xff" + good[37:])
    assert "has length 4294967295, above the PNG maximum of 2147483647" in _error(p)


@pytest.mark.parametrize("cut", [20, 40, 60])
def test_file_cut_inside_the_text_chunk(tmp_path: Path, cut: int) -> None:
    p = tmp_path / "cut.png"
    p.write_bytes(_png(_chunk(b"tEXt", b"workflow\0" + WF.encode()))[:cut])
    message = _error(p)
    assert f"truncated at byte {cut}" in message


def test_file_cut_after_the_text_keeps_the_workflow(tmp_path: Path) -> None:
    whole = _png(_chunk(b"tEXt", b"workflow\0" + WF.encode()))
    p = tmp_path / "cut.png"
    p.write_bytes(whole[: len(whole) - 20])  # the image data is cut, the workflow is whole
    assert load_workflow(p).ui == UI


def test_bad_crc_is_named(tmp_path: Path) -> None:
    data = bytearray(_png(_chunk(b"tEXt", b"workflow\0" + WF.encode())))
    data[33 + 8 + 12] ^= 0x01  # one bit of the JSON text
    p = tmp_path / "crc.png"
    p.write_bytes(bytes(data))
    assert "chunk 'tEXt' at byte 33 fails its CRC check" in _error(p)


def test_text_after_the_image_data_and_ztxt_are_read(tmp_path: Path) -> None:
    p = tmp_path / "late.png"
    whole = _png()
    iend = whole.rindex(b"IEND") - 4
    late = _chunk(b"zTXt", b"workflow\0\0" + zlib.compress(WF.encode()))
    p.write_bytes(whole[:iend] + late + whole[iend:])
    assert load_workflow(p).ui == UI


def test_a_png_without_signature_is_named(tmp_path: Path) -> None:
    p = tmp_path / "fake.png"
    p.write_bytes(b"\x89PNX" + b"\0" * 100)
    assert "PNG" in _error(p)


# --- WebP and the rest ---------------------------------------------------------------------


def test_webp_chunk_size_past_the_end(tmp_path: Path) -> None:
    p = mb.webp(tmp_path / "w.webp", WF, None)
    data = bytearray(p.read_bytes())
    data[16:20] = struct.pack("<I", 0x7FFFFFF0)  # the first chunk's size
    p.write_bytes(bytes(data))
    assert "which exceeds the file (truncated at byte" in _error(p)


def test_webp_huge_exif_is_refused(tmp_path: Path) -> None:
    size = MAX_FILE_BYTES + 1024
    p = tmp_path / "exif.webp"
    body = b"WEBP" + b"EXIF" + struct.pack("<I", size)
    with open(p, "wb") as fh:
        fh.write(b"RIFF" + struct.pack("<I", len(body) - 4 + size) + body)
        fh.truncate(12 + 8 + size)  # sparse: nothing that size is written
    assert f"chunk 'EXIF' at byte 12 is {size / 1e6:.0f} MB, above the {LIMIT_MB} limit" in (
        _error(p)
    )


def test_webp_damaged_exif_is_named(tmp_path: Path) -> None:
    p = tmp_path / "x.webp"
    exif = b"Exif\0\0II*\0" + b"\xff" * 40
    body = b"WEBP" + b"EXIF" + struct.pack("<I", len(exif)) + exif
    p.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    message = _error(p)
    assert "WebP" in message


def test_mp3_id3_length_past_the_end(tmp_path: Path) -> None:
    p = mb.mp3(tmp_path / "a.mp3", {"workflow": WF})
    data = bytearray(p.read_bytes())
    data[6:10] = bytes([0x7F, 0x7F, 0x7F, 0x7F])  # syncsafe 268435455
    p.write_bytes(bytes(data))
    assert "the ID3 tag's length 268435455 exceeds the file" in _error(p)


@pytest.mark.parametrize(("name", "build"), [("a.flac", mb.flac), ("a.opus", mb.opus)])
def test_damaged_audio_names_the_parser_error(tmp_path: Path, name: str, build: object) -> None:
    p = build(tmp_path / name, {"workflow": WF})  # type: ignore[operator]
    data = p.read_bytes()
    p.write_bytes(data[:4] + b"\xff" * 60 + data[64:])
    message = _error(p)
    assert "damaged or truncated (" in message


def test_mp4_box_size_past_the_end(tmp_path: Path) -> None:
    p = mb.mp4_mdta(tmp_path / "v.mp4", {"workflow": WF})
    data = bytearray(p.read_bytes())
    at = data.index(b"moov") - 4
    data[at : at + 4] = struct.pack(">I", 0x7FFFFFFF)
    p.write_bytes(bytes(data))
    assert f"MP4 box 'moov' at byte {at} has size 2147483647, which exceeds" in _error(p)


def test_mp4_deep_nesting_is_bounded(tmp_path: Path) -> None:
    inner = b""
    for _ in range(5000):
        inner = struct.pack(">I4s", 8 + len(inner), b"udta") + inner
    ftyp = struct.pack(">I4s", 16, b"ftyp") + b"isom\0\0\0\0"
    p = tmp_path / "deep.mp4"
    p.write_bytes(ftyp + struct.pack(">I4s", 8 + len(inner), b"moov") + inner)
    assert "no embedded workflow" in _error(p)


def test_webm_element_size_past_the_end(tmp_path: Path) -> None:
    p = mb.webm(tmp_path / "v.webm", {"workflow": WF}, cluster_first=False)
    data = p.read_bytes()
    p.write_bytes(data[: data.index(b"CheckpointLoaderSimple")])  # cut inside the tag value
    _error(p)  # any typed refusal naming the file, never a traceback


# --- the 61 MB / 400,000-node workflow -----------------------------------------------------


def _nodes(count: int) -> dict[str, object]:
    types = ("KSampler", "CheckpointLoaderSimple", "CLIPTextEncode", "VAEDecode", "SaveImage")
    return {
        "nodes": [
            {
                "id": i,
                "type": types[i % 5],
                "properties": {"cnr_id": "x"},
                "widgets_values": [f"m{i % 50}.safetensors"] if i % 5 == 1 else [i, "euler", 20],
            }
            for i in range(count)
        ],
        "links": [],
    }


@pytest.mark.slow
def test_61_mb_400k_node_workflow_is_refused_at_once(tmp_path: Path) -> None:
    p = tmp_path / "huge.json"
    text = json.dumps(_nodes(400_000))
    p.write_text(text + " " * max(0, 61_000_000 - len(text)))
    assert p.stat().st_size >= 61_000_000
    took, grew, outcome = _peak_mb(p, "analyze")
    assert "the file is 61 MB, above the 16 MiB limit for workflow JSON" in outcome
    assert took < 1 and grew < 20


@pytest.mark.slow
def test_node_cap_and_a_large_workflow_in_bounds(tmp_path: Path) -> None:
    over = tmp_path / "over.json"
    over.write_text(json.dumps({"nodes": [{"id": i, "type": "A"} for i in range(MAX_NODES + 1)]}))
    message = _error(over)
    assert f"the workflow has {MAX_NODES + 1:,} nodes, above the {MAX_NODES:,}-node limit" in (
        message
    )
    big = tmp_path / "big.json"
    big.write_text(json.dumps(_nodes(MAX_NODES - 1_000)))
    size_mb = big.stat().st_size / 1e6
    took, grew, outcome = _peak_mb(big, "analyze")
    assert outcome == "ok"
    assert took < 15  # ~1.8 s alone on the 2-core VM; room for a busy machine
    assert grew < 1024 and grew < 16 * size_mb


def test_analyze_of_a_refused_file_is_fast(tmp_path: Path) -> None:
    p = tmp_path / "nodes.json"
    p.write_text(json.dumps({"nodes": [{"id": i, "type": "A"} for i in range(MAX_NODES + 5)]}))
    t = time.perf_counter()
    with pytest.raises(WorkflowError, match="node limit"):
        analyze(p, None)
    assert time.perf_counter() - t < 5
