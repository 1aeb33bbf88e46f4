"""Where everything lives: one data root holds projects, caches (uv's too), logs and settings.

Resolution order: ``--data-dir``, ``COMFYMANAGER_DATA_DIR``, portable mode (a file named
``portable.txt`` next to the executable, or next to the ``.app`` on macOS, puts the data in
``data/`` beside it), then the OS's
app-data location (QStandardPaths.AppLocalDataLocation). Keeping uv's cache on the same volume as
the projects is what lets environments share files through hard links.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QStandardPaths

APP_NAME = "comfymanager"
PORTABLE_MARKER = "portable.txt"
ENV_DATA_DIR = "COMFYMANAGER_DATA_DIR"


@dataclass(frozen=True)
class DataPaths:
    """Every folder and file under the data root; nothing is created until ``ensure``."""

    root: Path

    @property
    def projects(self) -> Path:
        return self.root / "projects"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def uv_cache(self) -> Path:
        return self.cache / "uv"

    @property
    def uv_python(self) -> Path:
        return self.cache / "python"

    @property
    def node_db(self) -> Path:
        return self.cache / "node-db"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def settings_file(self) -> Path:
        return self.root / "settings.json"

    @property
    def default_store(self) -> Path:
        return self.root / "models"

    @property
    def downloads_file(self) -> Path:
        return self.root / "downloads.json"

    @property
    def ports_file(self) -> Path:
        return self.root / "ports.json"

    @property
    def locks(self) -> Path:
        return self.root / "locks"

    def ensure(self) -> DataPaths:
        for folder in (self.root, self.projects, self.cache, self.logs, self.locks):
            folder.mkdir(parents=True, exist_ok=True)
        return self


def portable_base(executable: Path) -> Path:
    """The folder a portable install keeps ``portable.txt`` and ``data/`` in: beside the
    executable, or for a macOS app bundle (``X.app/Contents/MacOS/exe``) beside ``X.app``,
    never inside the signed bundle."""
    folder = executable.parent
    if (
        folder.name == "MacOS"
        and folder.parent.name == "Contents"
        and folder.parent.parent.suffix == ".app"
    ):
        return folder.parent.parent.parent
    return folder


def executable_dir() -> Path:
    """The folder of the running program (the frozen executable, or the package's parent); for
    a macOS ``.app`` the folder that holds the bundle."""
    if getattr(sys, "frozen", False):
        return portable_base(Path(sys.executable).resolve())
    return Path(__file__).resolve().parents[2]


# --- platform facts about folders -------------------------------------------------------------

LONG_PATHS_KEY = r"SYSTEM\CurrentControlSet\Control\FileSystem"
LONG_PATHS_HELP = (
    "Windows limits paths to 260 characters unless long paths are enabled, and ComfyUI's "
    "environments and custom nodes go deeper than that. To enable them, run in an "
    "administrator PowerShell: New-ItemProperty -Path "
    '"HKLM:\\SYSTEM\\CurrentControlSet\\Control\\FileSystem" -Name LongPathsEnabled '
    '-Value 1 -PropertyType DWORD -Force (or set the group policy "Enable Win32 long paths"), '
    "then sign out and in again."
)


def _read_long_paths_value() -> int | None:
    try:
        import winreg  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    try:
        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, LONG_PATHS_KEY) as key:  # type: ignore[attr-defined, unused-ignore]
            value, _ = winreg.QueryValueEx(key, "LongPathsEnabled")  # type: ignore[attr-defined, unused-ignore]
    except OSError:
        return None  # absent: the default, off
    return int(value) if isinstance(value, int) else None


def long_paths_problem(
    os_name: str | None = None, read_value: Callable[[], int | None] = _read_long_paths_value
) -> str:
    """ "" when paths may be long here; on Windows without ``LongPathsEnabled`` = 1, the
    explanation and how to enable it (shown at first run)."""
    if (os_name or sys.platform) != "win32":
        return ""
    return "" if read_value() == 1 else LONG_PATHS_HELP


def default_case_insensitive(os_name: str | None = None) -> bool:
    """What file systems usually are on ``os_name``: NTFS and APFS ignore case by default."""
    return (os_name or sys.platform) in ("win32", "darwin")


def folder_is_case_insensitive(folder: Path) -> bool:
    """Probe the file system that holds ``folder`` (or its nearest existing parent): create a
    lower-case temp file and look for its upper-case name. Falls back to the OS default."""
    probe_dir = folder
    while not probe_dir.is_dir() and probe_dir.parent != probe_dir:
        probe_dir = probe_dir.parent
    try:
        fd, name = tempfile.mkstemp(prefix=".cm-case-probe-", suffix=".tmp", dir=probe_dir)
    except OSError:
        return default_case_insensitive()
    os.close(fd)
    lower = Path(name)
    try:
        return (lower.parent / lower.name.upper()).exists()
    finally:
        lower.unlink(missing_ok=True)


def folder_key(name: str, case_insensitive: bool | None = None) -> str:
    """The key under which a folder name is unique: case-folded where the file system ignores
    case (``comfyui-kjnodes`` and ``ComfyUI-KJNodes`` are then one folder)."""
    ci = default_case_insensitive() if case_insensitive is None else case_insensitive
    return name.casefold() if ci else name


def same_folder_name(a: str, b: str, case_insensitive: bool | None = None) -> bool:
    return folder_key(a, case_insensitive) == folder_key(b, case_insensitive)


def default_data_root() -> Path:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation)
    if not base:
        base = str(Path.home() / ".local" / "share")
    return Path(base) / APP_NAME


def resolve_data_root(cli_value: str | None = None) -> Path:
    if cli_value:
        return Path(cli_value).expanduser().resolve()
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        return Path(env).expanduser().resolve()
    exe_dir = executable_dir()
    if (exe_dir / PORTABLE_MARKER).exists():
        return exe_dir / "data"
    return default_data_root()
