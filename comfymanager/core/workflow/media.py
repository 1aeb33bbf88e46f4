"""Workflows embedded in media files: find the ``workflow`` / ``prompt`` metadata texts.

PNG and WebP chunks are read here, streaming, each size checked against the file and the
limit before anything is read (Pillow reads a whole text chunk, or a whole decompression bomb,
into memory first); Pillow only decodes the EXIF block of a WebP. FLAC/Opus/MP3 go through
mutagen, after a check of the ID3 tag size. MP4 and WebM/MKV are walked
here (a few dozen lines each): ComfyUI writes MP4 metadata as QuickTime ``mdta`` keys, which
mutagen does not read, and mutagen has no Matroska support at all.
"""

from __future__ import annotations

import logging
import os
import struct
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

log = logging.getLogger(__name__)

LABELS = {
    "png": "PNG",
    "webp": "WebP",
    "flac": "FLAC",
    "ogg": "Ogg/Opus",
    "mp3": "MP3",
    "mp4": "MP4",
    "mkv": "WebM/MKV",
}
KEYS = ("workflow", "prompt")


class MediaError(Exception):
    """The container could not be read; ``str()`` is the cause, ``fix`` the advice."""

    def __init__(self, cause: str, fix: str | None = None) -> None:
        super().__init__(cause)
        self.fix = fix


def sniff(head: bytes, suffix: str) -> str:
    """The container kind from the first bytes (the suffix only breaks ties)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"OggS"):
        return "ogg"
    if suffix == ".json":
        return "json"
    if head.startswith(b"ID3") or (
        suffix == ".mp3" and len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0
    ):
        return "mp3"
    if head[4:8] == b"ftyp":
        return "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "mkv"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped[:1] in (b"{", b"[") or suffix == ".json":
        return "json"
    if suffix in (".png", ".webp", ".flac", ".opus", ".ogg", ".mp3", ".mp4", ".webm", ".mkv"):
        return suffix.lstrip(".")  # wrong magic for its name: reported as damaged below
    return "unknown"


def read_embedded(path: Path, kind: str, max_bytes: int) -> dict[str, str]:
    """The ``workflow``/``prompt`` texts found in ``path`` (either may be missing)."""
    readers = {
        "png": _read_png,
        "webp": _read_webp,
        "flac": _read_mutagen,
        "ogg": _read_mutagen,
        "opus": _read_mutagen,
        "mp3": _read_mp3,
        "mp4": _read_mp4,
        "mkv": _read_mkv,
        "webm": _read_mkv,
    }
    reader = readers.get(kind)
    if reader is None:
        raise MediaError(f"{kind} files are not supported")
    try:
        found = reader(path, max_bytes)
    except MediaError:
        raise
    except Exception as exc:  # third-party parsers on untrusted bytes raise anything
        log.debug("reading %s as %s failed", path, kind, exc_info=True)
        label = LABELS.get(kind, kind.upper())
        raise MediaError(
            f"the {label} data is damaged or truncated ({type(exc).__name__}: {exc})",
            "Use the original file saved by ComfyUI, or the workflow's .json export.",
        ) from None
    texts: dict[str, str] = {}
    for key, value in found.items():
        k = key.strip().lower()
        if k in KEYS and k not in texts and isinstance(value, str):
            if len(value) > max_bytes:
                raise MediaError(
                    f"the embedded {k} is {len(value) / 1e6:.0f} MB, above the "
                    f"{max_bytes // (1024 * 1024)} MiB limit"
                )
            texts[k] = value
    return texts


# --- PNG and WebP: chunks read here, streaming, every size checked before it is read ----------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_TEXT = (b"tEXt", b"zTXt", b"iTXt")


def _mb(n: int) -> str:
    return f"{n // (1024 * 1024)} MB"


def _chunk_name(ctype: bytes) -> str:
    return ctype.decode("latin-1") if ctype.isalpha() else ctype.hex()


def _inflate(data: bytes, ctype: bytes, max_bytes: int) -> bytes:
    """zlib data of a compressed text chunk, refused as soon as it passes ``max_bytes``."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, max_bytes + 1)
    except zlib.error as exc:
        name = _chunk_name(ctype)
        raise MediaError(f"the compressed data of chunk '{name}' is damaged ({exc})") from None
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise MediaError(
            f"chunk '{_chunk_name(ctype)}' decompresses past the {_mb(max_bytes)} limit "
            "(a decompression bomb, or not a workflow)"
        )
    if not inflater.eof:
        raise MediaError(f"the compressed data of chunk '{_chunk_name(ctype)}' is truncated")
    return out


def _png_text(ctype: bytes, data: bytes, max_bytes: int) -> tuple[str, str] | None:
    """(keyword, text) of a tEXt/zTXt/iTXt chunk body; None when it has no keyword."""
    key, sep, rest = data.partition(b"\0")
    if not sep or not key:
        return None
    keyword = key.decode("latin-1")
    if ctype == b"tEXt":
        return keyword, rest.decode("latin-1")
    if ctype == b"zTXt":
        if rest[:1] != b"\0":
            return None  # only method 0 (zlib) exists
        return keyword, _inflate(rest[1:], ctype, max_bytes).decode("latin-1")
    if len(rest) < 2:
        return None
    compressed, method, rest = rest[0], rest[1], rest[2:]
    _lang, _, rest = rest.partition(b"\0")
    _translated, _, text = rest.partition(b"\0")
    if compressed:
        if method != 0:
            return None
        text = _inflate(text, ctype, max_bytes)
    return keyword, text.decode("utf-8", "replace")


def _read_png(path: Path, max_bytes: int) -> dict[str, str]:
    """Text chunks of a PNG. Only text chunks are read into memory; the image data is skipped.
    A text chunk found before damage later in the file still counts (ComfyUI writes its texts
    before the image data)."""
    texts: dict[str, str] = {}
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if fh.read(8) != _PNG_SIGNATURE:
            raise MediaError("the file does not start with the PNG signature")
        pos = 8
        while True:
            head = fh.read(8)
            if not head and texts:
                break  # no IEND: a cut file, but the texts came before the cut
            if len(head) < 8:
                raise MediaError(f"the PNG file is truncated at byte {size} (no end chunk)")
            length, ctype = struct.unpack(">I4s", head)
            name = _chunk_name(ctype)
            if length > 0x7FFFFFFF:
                raise MediaError(
                    f"chunk '{name}' at byte {pos} has length {length}, above the PNG "
                    "maximum of 2147483647"
                )
            if pos + 12 + length > size:
                if texts and ctype not in _PNG_TEXT:
                    break
                raise MediaError(
                    f"chunk '{name}' at byte {pos} has length {length}, which exceeds the file "
                    f"(truncated at byte {size})"
                )
            if ctype in _PNG_TEXT:
                if length > max_bytes:
                    raise MediaError(
                        f"chunk '{name}' at byte {pos} is {length / 1e6:.0f} MB, above the "
                        f"{_mb(max_bytes)} limit for an embedded workflow"
                    )
                data = fh.read(length)
                (crc,) = struct.unpack(">I", fh.read(4))
                if zlib.crc32(ctype + data) != crc:
                    raise MediaError(
                        f"chunk '{name}' at byte {pos} fails its CRC check (the file is damaged)"
                    )
                found = _png_text(ctype, data, max_bytes)
                del data
                if found is not None:
                    texts.setdefault(found[0], found[1])
            else:
                fh.seek(length + 4, os.SEEK_CUR)
            pos += 12 + length
            if ctype == b"IEND":
                break
    return texts


def _read_webp(path: Path, max_bytes: int) -> dict[str, str]:
    """The EXIF chunk of a WebP (ComfyUI writes ``workflow:{...}`` into EXIF text tags)."""
    from PIL import Image

    exif_data: bytes | None = None
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WEBP":
            raise MediaError("the file does not start with a RIFF/WEBP header")
        pos = 12
        while pos + 8 <= size:
            fh.seek(pos)
            ctype, length = struct.unpack("<4sI", fh.read(8))
            name = _chunk_name(ctype)
            if pos + 8 + length > size:
                raise MediaError(
                    f"chunk '{name}' at byte {pos} has length {length}, which exceeds the file "
                    f"(truncated at byte {size})"
                )
            if ctype == b"EXIF":
                if length > max_bytes:
                    raise MediaError(
                        f"chunk 'EXIF' at byte {pos} is {length / 1e6:.0f} MB, above the "
                        f"{_mb(max_bytes)} limit for an embedded workflow"
                    )
                exif_data = fh.read(length)
                break
            pos += 8 + length + (length & 1)
    if exif_data is None:
        return {}
    if exif_data.startswith(b"Exif\0\0"):
        exif_data = exif_data[6:]
    exif = Image.Exif()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns about truncated tags; we refuse or skip
        exif.load(exif_data)
        values = [exif.get(tag) for tag in exif]
    texts: dict[str, str] = {}
    for value in values:
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if not isinstance(value, str):
            continue
        key, sep, rest = value.partition(":")
        if sep and key.strip().lower() in KEYS:
            texts.setdefault(key.strip().lower(), rest)
    return texts


def _read_mutagen(path: Path, max_bytes: int) -> dict[str, str]:
    import mutagen

    audio = mutagen.File(path)
    if audio is None:
        raise MediaError("the audio data is damaged or truncated (mutagen recognises no format)")
    texts: dict[str, str] = {}
    tags = audio.tags
    if tags is None:
        return texts
    for key, value in tags.items():
        if isinstance(value, list):
            value = value[0] if value else ""
        texts.setdefault(str(key), str(value))
    return texts


def _read_mp3(path: Path, max_bytes: int) -> dict[str, str]:
    from mutagen.id3 import ID3, ID3NoHeaderError

    with open(path, "rb") as fh:
        head = fh.read(10)
        size = os.fstat(fh.fileno()).st_size
    if len(head) == 10 and head.startswith(b"ID3"):
        b = head[6:10]
        tag_size = (b[0] & 0x7F) << 21 | (b[1] & 0x7F) << 14 | (b[2] & 0x7F) << 7 | (b[3] & 0x7F)
        if 10 + tag_size > size:
            raise MediaError(
                f"the ID3 tag's length {tag_size} exceeds the file (truncated at byte {size})"
            )
    try:
        tags: Any = ID3(path)  # type: ignore[no-untyped-call]
    except ID3NoHeaderError:
        return {}
    texts: dict[str, str] = {}
    for frame in tags.getall("TXXX"):
        texts.setdefault(str(frame.desc), str(frame.text[0]) if frame.text else "")
    for frame in tags.getall("COMM"):
        texts.setdefault(str(frame.desc), str(frame.text[0]) if frame.text else "")
    return texts


# --- MP4 / QuickTime -------------------------------------------------------------------

_MP4_CONTAINERS = {b"moov", b"udta", b"meta", b"ilst", b"----"}


def _mp4_boxes(fh: BinaryIO, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each box between ``start`` and ``end``."""
    pos = start
    while pos + 8 <= end:
        fh.seek(pos)
        header = fh.read(8)
        if len(header) < 8:
            return
        size, kind = struct.unpack(">I4s", header)
        body = pos + 8
        if size == 1:
            large = fh.read(8)
            if len(large) < 8:
                return
            size = struct.unpack(">Q", large)[0]
            body = pos + 16
        elif size == 0:
            size = end - pos
        if size < body - pos:
            name = _chunk_name(kind)
            raise MediaError(f"MP4 box '{name}' at byte {pos} has an invalid size {size}")
        if pos + size > end:
            raise MediaError(
                f"MP4 box '{_chunk_name(kind)}' at byte {pos} has size {size}, which exceeds "
                f"its container (ends at byte {end}; the file may be truncated)"
            )
        yield kind, body, pos + size
        pos += size


def _mp4_data_value(fh: BinaryIO, start: int, end: int, max_bytes: int) -> str | None:
    for kind, body, stop in _mp4_boxes(fh, start, end):
        if kind == b"data" and stop - body >= 8:
            if stop - body > max_bytes:
                raise MediaError(f"an MP4 metadata value is above the {max_bytes} byte limit")
            fh.seek(body + 8)  # type indicator (4) + locale (4)
            return fh.read(stop - body - 8).decode("utf-8", "replace")
    return None


def _read_mp4(path: Path, max_bytes: int) -> dict[str, str]:
    texts: dict[str, str] = {}
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()

        def walk(start: int, end: int, depth: int) -> None:
            keys: list[str] = []
            for kind, body, stop in _mp4_boxes(fh, start, end):
                if kind == b"keys":  # QuickTime mdta: key table, ilst items are 1-based indexes
                    keys = _mp4_keys(fh, body, stop)
                elif kind == b"meta" and depth < 6:
                    fh.seek(body)
                    # ISO meta is a full box (4 bytes version/flags); QuickTime meta is not
                    probe = fh.read(8)
                    skip = 0 if probe[4:8] in (b"hdlr", b"keys", b"ilst") else 4
                    walk(body + skip, stop, depth + 1)
                elif kind == b"ilst":
                    _read_ilst(fh, body, stop, keys, texts, max_bytes)
                elif kind in _MP4_CONTAINERS and depth < 6:
                    walk(body, stop, depth + 1)

        walk(0, size, 0)
    return texts


def _mp4_keys(fh: BinaryIO, body: int, stop: int) -> list[str]:
    """The key names of a QuickTime ``keys`` box (each entry must fit inside the box)."""
    keys: list[str] = []
    fh.seek(body + 4)
    raw = fh.read(4)
    if len(raw) < 4:
        raise MediaError(f"the MP4 'keys' box at byte {body - 8} is truncated")
    (count,) = struct.unpack(">I", raw)
    pos = body + 8
    for _ in range(min(count, 10_000)):
        if pos + 8 > stop:
            break
        fh.seek(pos)
        ksize, _ns = struct.unpack(">I4s", fh.read(8))
        if ksize < 8 or pos + ksize > stop:
            raise MediaError(
                f"an MP4 key entry at byte {pos} has size {ksize}, which exceeds its 'keys' box"
            )
        keys.append(fh.read(ksize - 8).decode("utf-8", "replace"))
        pos += ksize
    return keys


def _read_ilst(
    fh: BinaryIO, start: int, end: int, keys: list[str], texts: dict[str, str], max_bytes: int
) -> None:
    for kind, body, stop in _mp4_boxes(fh, start, end):
        name: str | None = None
        if kind == b"----":  # iTunes freeform: mean, name, data
            for sub, sbody, sstop in _mp4_boxes(fh, body, stop):
                if sub == b"name":
                    fh.seek(sbody + 4)
                    name = fh.read(sstop - sbody - 4).decode("utf-8", "replace")
        elif keys:
            index = struct.unpack(">I", kind)[0]
            if 1 <= index <= len(keys):
                name = keys[index - 1]
        if name is None:
            name = kind.decode("latin-1")
        value = _mp4_data_value(fh, body, stop, max_bytes)
        if value is not None:
            texts.setdefault(name.rsplit(".", 1)[-1].rsplit(":", 1)[-1], value)


# --- Matroska / WebM -------------------------------------------------------------------

_EBML_SEGMENT, _EBML_TAGS, _EBML_TAG, _EBML_SIMPLE = 0x18538067, 0x1254C367, 0x7373, 0x67C8
_EBML_TAGNAME, _EBML_TAGSTRING, _EBML_CLUSTER = 0x45A3, 0x4487, 0x1F43B675


def _vint(fh: BinaryIO, keep_marker: bool) -> tuple[int, int, bool]:
    """(value, length in bytes, unknown-size) of an EBML variable-size integer."""
    first = fh.read(1)
    if not first:
        raise EOFError
    b = first[0]
    length = 1
    mask = 0x80
    while length <= 8 and not b & mask:
        mask >>= 1
        length += 1
    if length > 8:
        raise MediaError("the WebM/MKV element structure is damaged")
    rest = fh.read(length - 1)
    if len(rest) < length - 1:
        raise EOFError
    value = b if keep_marker else b & (mask - 1)
    all_ones = (b & (mask - 1)) == mask - 1 and all(x == 0xFF for x in rest)
    for x in rest:
        value = (value << 8) | x
    return value, length, all_ones and not keep_marker


def _read_mkv(path: Path, max_bytes: int) -> dict[str, str]:
    texts: dict[str, str] = {}
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()

        def walk(start: int, end: int, depth: int) -> None:
            pos = start
            name: str | None = None
            value: str | None = None
            while pos < end:
                fh.seek(pos)
                try:
                    eid, idlen, _ = _vint(fh, keep_marker=True)
                    esize, slen, unknown = _vint(fh, keep_marker=False)
                except EOFError:
                    return
                body = pos + idlen + slen
                stop = end if unknown else min(body + esize, end)
                if eid in (_EBML_SEGMENT, _EBML_TAGS, _EBML_TAG, _EBML_SIMPLE) and depth < 8:
                    walk(body, stop, depth + 1)
                elif eid in (_EBML_TAGNAME, _EBML_TAGSTRING):
                    if stop - body > max_bytes:
                        raise MediaError(f"a WebM/MKV tag is above the {max_bytes} byte limit")
                    fh.seek(body)
                    text = fh.read(stop - body).rstrip(b"\0").decode("utf-8", "replace")
                    if eid == _EBML_TAGNAME:
                        name = text
                    else:
                        value = text
                elif unknown:  # an unknown-size element (live-written cluster): cannot skip
                    return
                pos = stop
            if name is not None and value is not None:
                texts.setdefault(name, value)

        walk(0, size, 0)
    return texts
