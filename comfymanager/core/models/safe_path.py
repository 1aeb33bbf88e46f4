"""Writing inside a folder we own without following links out of it.

Every place that writes into the model store, a project's ``custom_nodes`` or its workflow
folder checks the path first with ``check_dirs`` / ``check_files``: each component below the
root is looked at with ``lstat`` (never followed). A folder component may be a link only when it
resolves inside the root (an adopted ComfyUI ``models`` folder may alias ``unet`` to
``diffusion_models``); the files we write (a download's ``.part``, its sidecar and ``.bak``, the
target, a lock file, a workflow) may not be links at all. A refusal happens before a byte is
written and names the link. Files are then opened with ``O_NOFOLLOW`` where the OS has it
(``open_nofollow``), so a link planted between the check and the open is refused too.

Also here: ``fold_key`` (how names compare on case-insensitive file systems, for lock keys) and
``full_fsync`` (``F_FULLFSYNC`` on macOS, where plain ``fsync`` does not reach the disk).
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import unicodedata
from pathlib import Path

from comfymanager.core.errors import InvalidInput

NOFOLLOW: int = getattr(os, "O_NOFOLLOW", 0)
MOUNT_POINT_TAG: int = getattr(stat, "IO_REPARSE_TAG_MOUNT_POINT", 0xA0000003)  # a junction


class LinkRefused(InvalidInput):
    """A path we were about to write through is (or passes through) a link; ``link`` names it."""

    def __init__(self, message: str, fix: str, link: Path) -> None:
        super().__init__(message, fix)
        self.link = link


def is_link(path: Path) -> bool:
    """True for a symbolic link or a Windows junction (``lstat``: the link is not followed)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if stat.S_ISLNK(st.st_mode):
        return True
    # a Windows junction (a mount point reparse point) is a link too; st_reparse_tag exists
    # on Windows only
    return bool(getattr(st, "st_reparse_tag", 0) == MOUNT_POINT_TAG)


def _target_of(link: Path) -> str:
    try:
        return os.readlink(link)
    except OSError:
        return "?"


def _relative(root: Path, path: Path) -> tuple[Path, Path]:
    """``(root as given or resolved, path below it)``; the path must be lexically inside."""
    for base in (root, root.resolve()):
        try:
            return base, path.relative_to(base)
        except ValueError:
            continue
    raise InvalidInput(
        f"{path} is not inside {root}.",
        "This is a bug in comfymanager: the path was built outside its folder.",
    )


def _inside(real_root: Path, path: Path) -> bool:
    real = path.resolve()
    return real == real_root or real_root in real.parents


def check_dirs(root: Path, folder: Path, *, area: str) -> None:
    """Refuse when a component of ``folder`` below ``root`` is a link that leaves ``root``.

    Components that do not exist yet are fine (we create them as real folders). ``area`` names
    the place for the message ("the model store", "the project's custom_nodes").
    """
    base, rel = _relative(root, folder)
    real_root = root.resolve()
    current = base
    for part in rel.parts:
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return
        except NotADirectoryError:
            return
        if stat.S_ISLNK(st.st_mode) or is_link(current):
            if not _inside(real_root, current):
                raise LinkRefused(
                    f"{current} is a link to {_target_of(current)}, outside {area} ({root}); "
                    "nothing was written.",
                    f"Replace the link with a real folder inside {area} (move the files "
                    "there), then retry.",
                    current,
                )
        elif not stat.S_ISDIR(st.st_mode):
            raise InvalidInput(
                f"{current} is a file where {area} needs a folder.",
                "Rename or remove that file, then retry.",
            )


def check_files(root: Path, *paths: Path, area: str) -> None:
    """Refuse when any of ``paths`` is a link, or its folder passes through a link out of
    ``root``. Checked in order, before anything is written."""
    for path in paths:
        check_dirs(root, path.parent, area=area)
        if is_link(path):
            raise LinkRefused(
                f"{path} is a link (to {_target_of(path)}); comfymanager never writes through "
                f"links in {area}, so nothing was written.",
                "Delete the link (the file it points to is not touched), then retry.",
                path,
            )


def open_nofollow(path: Path, flags: int, mode: int = 0o644) -> int:
    """``os.open`` that refuses a link as the last component (``O_NOFOLLOW``)."""
    try:
        return os.open(path, flags | NOFOLLOW | getattr(os, "O_BINARY", 0), mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP or (NOFOLLOW == 0 and is_link(path)):
            raise LinkRefused(
                f"{path} became a link while comfymanager was writing it; nothing was written "
                "through it.",
                "Delete the link, then retry.",
                path,
            ) from None
        raise


_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"} | {
    f"{p}{i}" for p in ("COM", "LPT") for i in (*range(1, 10), "\u00b9", "\u00b2", "\u00b3")
}
_WINDOWS_BAD = set('<>:"|?*')


def windows_name_problem(part: str) -> str | None:
    """Why Windows cannot store a file or folder named ``part`` (one path component), or None:
    ``<>:"|?*`` (a ``:`` would also open an NTFS stream, ``a:b``), control characters, a
    trailing dot or space, a reserved device name (``CON``, ``nul.txt``, ``COM1``...)."""
    if part in (".", ".."):
        return None
    bad = sorted(_WINDOWS_BAD.intersection(part))
    if ":" in bad:
        return f"{part!r} holds ':' (an NTFS stream or a drive)"
    if bad:
        return f"{part!r} holds {''.join(bad)!r}"
    if any(ord(c) < 32 or ord(c) == 127 for c in part):
        return f"{part!r} holds a control character"
    if part.endswith((".", " ")):
        return f"{part!r} ends with a dot or a space"
    if part.split(".")[0].rstrip(" ").upper() in _WINDOWS_RESERVED:
        return f"{part!r} is a reserved device name"
    return None


def fold_key(name: str) -> str:
    """How a file name compares on a case-insensitive file system (Windows, macOS): Unicode
    normalised (macOS stores NFD) and case-folded. Keys built from it (download locks, the
    ``.part`` a download uses) are the same for names such a file system takes as one file."""
    return unicodedata.normalize("NFC", name).casefold()


def full_fsync(fd: int) -> None:
    """Flush ``fd`` to the disk itself: ``F_FULLFSYNC`` on macOS (plain ``fsync`` there only
    reaches the drive's cache), ``fsync`` elsewhere and when the file system refuses it."""
    if sys.platform == "darwin":
        import fcntl

        full = getattr(fcntl, "F_FULLFSYNC", None)
        if full is not None:
            try:
                fcntl.fcntl(fd, full)
                return
            except OSError:
                pass  # some file systems (network, FAT) do not support it
    os.fsync(fd)
