"""Where everything lives: one data root holds projects, caches (uv's too), logs and settings.

Resolution order: ``--data-dir``, ``COMFYMANAGER_DATA_DIR``, portable mode (a file named
``portable.txt`` next to the executable puts the data in ``data/`` beside it), then the OS's
app-data location (QStandardPaths.AppLocalDataLocation). Keeping uv's cache on the same volume as
the projects is what lets environments share files through hard links.
"""

from __future__ import annotations

import os
import sys
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


def executable_dir() -> Path:
    """The folder of the running program (the frozen executable, or the package's parent)."""
    if getattr(sys, "frozen", False):
        return Path(sys.executable).resolve().parent
    return Path(__file__).resolve().parents[2]


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
