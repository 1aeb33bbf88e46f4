"""Write real media files carrying a workflow, the way ComfyUI (or ffmpeg under it) does."""

from __future__ import annotations

import struct
from pathlib import Path

from PIL import Image, PngImagePlugin


def png(path: Path, texts: dict[str, str], itxt: bool = False) -> Path:
    info = PngImagePlugin.PngInfo()
    for k, v in texts.items():
        if itxt:
            info.add_itxt(k, v, zip=True)
        else:
            info.add_text(k, v)
    Image.new("RGB", (8, 8), "red").save(path, pnginfo=info)
    return path


def webp(path: Path, workflow: str | None, prompt: str | None) -> Path:
    im = Image.new("RGB", (8, 8), "blue")
    exif = im.getexif()
    if workflow is not None:
        exif[0x010F] = "workflow:" + workflow
    if prompt is not None:
        exif[0x0110] = "prompt:" + prompt
    im.save(path, exif=exif)
    return path


def flac(path: Path, tags: dict[str, str]) -> Path:
    from mutagen.flac import FLAC

    # fLaC + one STREAMINFO block (last): 44.1 kHz, 2 channels, 16 bits, 0 samples
    info = struct.pack(">HH", 4096, 4096) + b"\0\0\0" + b"\0\0\0"
    packed = (44100 << 44) | (1 << 41) | (15 << 36)
    info += packed.to_bytes(8, "big") + b"\0" * 16
    path.write_bytes(b"fLaC" + bytes([0x80, 0, 0, len(info)]) + info)
    audio = FLAC(path)
    audio.add_tags()
    for k, v in tags.items():
        audio[k] = v
    audio.save()
    return path


def opus(path: Path, tags: dict[str, str]) -> Path:
    from mutagen.ogg import OggPage
    from mutagen.oggopus import OggOpus

    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 2, 312, 48000, 0, 0)
    comments = b"OpusTags" + struct.pack("<I", 4) + b"test" + struct.pack("<I", 0)
    pages = []
    for seq, packet in enumerate((head, comments)):
        page = OggPage()
        page.serial = 1
        page.sequence = seq
        page.first = seq == 0
        page.position = 0
        page.packets = [packet]
        pages.append(page.write())
    last = OggPage()
    last.serial, last.sequence, last.last, last.position = 1, 2, True, 960
    last.packets = [b"\xfc\xff\xfe"]  # one tiny opus packet
    pages.append(last.write())
    path.write_bytes(b"".join(pages))
    audio = OggOpus(path)
    for k, v in tags.items():
        audio[k] = v
    audio.save()
    return path


def mp3(path: Path, tags: dict[str, str]) -> Path:
    from mutagen.id3 import ID3, TXXX

    id3 = ID3()
    for k, v in tags.items():
        id3.add(TXXX(encoding=3, desc=k, text=[v]))
    frame = b"\xff\xfb\x90\x00" + b"\0" * 413  # one silent MPEG-1 layer III frame
    path.write_bytes(frame)
    id3.save(path)
    return path


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def mp4_mdta(path: Path, tags: dict[str, str]) -> Path:
    """ffmpeg with ``movflags=use_metadata_tags`` (what ComfyUI's SaveVideo uses): QuickTime
    ``keys`` + indexed ``ilst`` items, inside moov/udta/meta, with mdat first."""
    keys = b"".join(_box(b"mdta", k.encode()) for k in tags)
    keys_box = _box(b"keys", b"\0\0\0\0" + struct.pack(">I", len(tags)) + keys)
    items = b""
    for i, v in enumerate(tags.values(), start=1):
        data = _box(b"data", struct.pack(">II", 1, 0) + v.encode())
        items += _box(struct.pack(">I", i), data)
    hdlr = _box(b"hdlr", b"\0" * 8 + b"mdta" + b"\0" * 12 + b"\0")
    meta = _box(b"meta", hdlr + keys_box + _box(b"ilst", items))
    mvhd = _box(b"mvhd", b"\0" * 100)
    moov = _box(b"moov", mvhd + _box(b"udta", meta))
    ftyp = _box(b"ftyp", b"isom\0\0\x02\0isomiso2mp41")
    path.write_bytes(ftyp + _box(b"mdat", b"\0" * 1000) + moov)
    return path


def mp4_itunes(path: Path, tags: dict[str, str]) -> Path:
    """iTunes-style freeform ``----`` atoms (mean/name/data) in an ISO ``meta`` full box."""
    items = b""
    for k, v in tags.items():
        mean = _box(b"mean", b"\0\0\0\0com.apple.iTunes")
        name = _box(b"name", b"\0\0\0\0" + k.encode())
        data = _box(b"data", struct.pack(">II", 1, 0) + v.encode())
        items += _box(b"----", mean + name + data)
    hdlr = _box(b"hdlr", b"\0" * 8 + b"mdir" + b"appl" + b"\0" * 8 + b"\0")
    meta = _box(b"meta", b"\0\0\0\0" + hdlr + _box(b"ilst", items))
    moov = _box(b"moov", _box(b"mvhd", b"\0" * 100) + _box(b"udta", meta))
    ftyp = _box(b"ftyp", b"M4A \0\0\0\0M4A mp42isom")
    path.write_bytes(ftyp + moov + _box(b"mdat", b"\0" * 100))
    return path


def _ebml_size(n: int) -> bytes:
    return (n | (1 << 56)).to_bytes(8, "big")  # 8-byte size vint


def _el(eid: int, payload: bytes) -> bytes:
    return eid.to_bytes((eid.bit_length() + 7) // 8, "big") + _ebml_size(len(payload)) + payload


def webm(path: Path, tags: dict[str, str], cluster_first: bool = True) -> Path:
    header = _el(0x1A45DFA3, _el(0x4282, b"webm"))
    simple = b"".join(
        _el(0x67C8, _el(0x45A3, k.upper().encode()) + _el(0x4487, v.encode()))
        for k, v in tags.items()
    )
    tags_el = _el(0x1254C367, _el(0x7373, _el(0x63C0, b"") + simple))
    cluster = _el(0x1F43B675, _el(0xE7, b"\0") + b"\xa3" + _ebml_size(64) + b"\0" * 64)
    info = _el(0x1549A966, _el(0x2AD7B1, b"\x0f\x42\x40"))
    body = info + (cluster + tags_el if cluster_first else tags_el + cluster)
    path.write_bytes(header + _el(0x18538067, body))
    return path
