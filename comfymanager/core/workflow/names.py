"""Model file names that come from outside (a workflow, a manifest, a command line): one
validator, used by the analysis, manifests and ``download --name``.

Limits: each path component at most ``MAX_COMPONENT_BYTES`` (255) bytes of UTF-8, the
name as a whole at most ``MAX_NAME_BYTES`` (512, what manifests allowed before). 255 is what
ext4, APFS and NTFS (in UTF-16 units, which 255 UTF-8 bytes never exceed) allow for one file
name; 512 leaves room for ``<store>/<folder>/`` under macOS's 1024-byte PATH_MAX. A store path
that is itself very long can still make the OS refuse a name within these limits; the store's
own errors name that case.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol, TypeVar

from comfymanager.core.errors import InvalidInput
from comfymanager.core.text import visible

MAX_COMPONENT_BYTES = 255
MAX_NAME_BYTES = 512
_DRIVE = re.compile(r"^[A-Za-z]:")
_SHOWN = 60


def short(text: str, limit: int = _SHOWN) -> str:
    """``text`` cut to ``limit`` characters (with the full length said), escaped for display."""
    shown = visible(text)
    if len(shown) <= limit:
        return shown
    return f"{shown[: limit - 3]}... ({len(text)} characters)"


def model_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a model file name (relative, ``/`` separated), or None."""
    if not name or not name.strip():
        return "the name is empty"
    if "\0" in name:
        return "the name contains a NUL character"
    text = name.replace("\\", "/")
    if text.startswith("/") or _DRIVE.match(text):
        return "the name is an absolute path; it must be relative to its model folder"
    for part in text.split("/"):
        if part == "":
            return "the name has an empty path part (a doubled or trailing '/')"
        if part in (".", ".."):
            return f"the name contains {part!r}; it must stay inside its folder"
        length = len(part.encode("utf-8", "surrogatepass"))
        if length > MAX_COMPONENT_BYTES:
            return (
                f"the file name part is {length} bytes long, above the {MAX_COMPONENT_BYTES}-byte "
                "limit of file systems"
            )
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_NAME_BYTES:
        return f"the name is {size} bytes long, above the {MAX_NAME_BYTES}-byte limit for a path"
    return None


def check_model_name(name: str, what: str = "model file name") -> str:
    """``name`` with ``/`` separators, or ``InvalidInput`` naming the limit it breaks."""
    problem = model_name_problem(name)
    if problem is not None:
        raise InvalidInput(
            f"The {what} {short(name)} is refused: {problem}.",
            f"Give a name relative to the model folder: each part at most {MAX_COMPONENT_BYTES} "
            f"bytes, the whole at most {MAX_NAME_BYTES} bytes, no NUL and no '..'.",
        )
    return name.replace("\\", "/")


class _Named(Protocol):
    @property
    def name(self) -> str: ...


N = TypeVar("N", bound=_Named)


def refuse_bad_names(rows: Sequence[N], warnings: list[str]) -> list[N]:
    """The rows whose ``name`` is a usable model file name; one warning per refused row, so the
    rest of a workflow still analyses and nothing downstream tries to write a refused name."""
    kept: list[N] = []
    for row in rows:
        problem = model_name_problem(row.name)
        if problem is None:
            kept.append(row)
        else:
            warnings.append(f"model {short(row.name)} left out: {problem}")
    return kept
