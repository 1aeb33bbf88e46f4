"""Is this really the model file? Checks on the first bytes and on the finished file.

Servers answer failed downloads with a web page or a JSON error and status 200 often enough
(login walls, expired links): those are refused before anything reaches the store. Formats
with a recognisable header are checked too: safetensors (8-byte little-endian length, then a
JSON object of that length), GGUF (``GGUF`` magic) and torch files (a zip, ``PK``, or a legacy
pickle starting with the protocol byte 0x80). ``.bin`` and ``.pkl`` have no fixed header.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

from comfymanager.core.errors import ComfyManagerError

MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024
MODEL_SUFFIXES = frozenset(
    {".safetensors", ".sft", ".ckpt", ".pt", ".pt2", ".pth", ".bin", ".pkl", ".gguf", ".onnx"}
)
_TORCH = frozenset({".ckpt", ".pt", ".pth", ".pt2"})


class BadContent(ComfyManagerError):
    """The server sent something that is not the expected file (a page, an error, a bad header)."""


def _suffix(name: str) -> str:
    return PurePosixPath(name).suffix.lower()


def check_response(name: str, content_type: str, head: bytes) -> None:
    """Refuse an error page or a body whose header does not match the file type.

    ``head`` is the first chunk of the body (from offset 0).
    """
    suffix = _suffix(name)
    ctype = content_type.split(";")[0].strip().lower()
    start = head[:64].lstrip().lower()
    if ctype == "text/html" or start.startswith((b"<!doctype", b"<html")):
        raise BadContent(
            f"The server sent a web page instead of {name}.",
            "The link may need a login or an accepted licence, or it points to a page rather "
            "than the file: open it in a browser to check.",
        )
    if suffix in MODEL_SUFFIXES and (ctype == "application/json" or start.startswith(b'{"error')):
        raise BadContent(
            f"The server sent an error message instead of {name}: "
            f"{head[:200].decode('utf-8', 'replace')!r}.",
            "Check the link, and whether the site needs a token or a login for this file.",
        )
    if suffix in (".safetensors", ".sft") and len(head) >= 8:
        n = int.from_bytes(head[:8], "little")
        if n < 2 or n > MAX_SAFETENSORS_HEADER or (len(head) > 8 and head[8:9] != b"{"):
            raise BadContent(
                f"{name} is not a valid safetensors file (its header is wrong).",
                "The link probably points to another file; check it.",
            )
    elif suffix == ".gguf" and len(head) >= 4 and head[:4] != b"GGUF":
        raise BadContent(f"{name} is not a GGUF file (no GGUF magic).", "Check the link.")
    elif suffix in _TORCH and head and not (head[:2] == b"PK" or head[0] == 0x80):
        raise BadContent(
            f"{name} is neither a zip-based torch file nor a pickle.", "Check the link."
        )


def check_file(path: Path, name: str) -> None:
    """Final check of a complete file: the full safetensors JSON header parses as an object."""
    if _suffix(name) not in (".safetensors", ".sft"):
        return
    size = path.stat().st_size
    with open(path, "rb") as fh:
        raw = fh.read(8)
        n = int.from_bytes(raw, "little") if len(raw) == 8 else 0
        ok = 2 <= n <= min(MAX_SAFETENSORS_HEADER, size - 8)
        if ok:
            try:
                header = json.loads(fh.read(n).decode("utf-8"))
                ok = isinstance(header, dict)
            except (UnicodeDecodeError, ValueError):
                ok = False
    if not ok:
        raise BadContent(
            f"{name} is not a valid safetensors file (its JSON header is damaged).",
            "The file was not placed in the store; retry, or check the link.",
        )
