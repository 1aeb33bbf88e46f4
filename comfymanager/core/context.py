"""The explicit context handed to every part: paths and settings (no hidden singletons).

The GUI's ``app.py`` builds a larger context on top (job manager, notifier, secrets); the CLI and
tests build this one directly.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from comfymanager.core import settings as settings_mod
from comfymanager.core.paths import DataPaths, resolve_data_root
from comfymanager.core.settings import Settings

log = logging.getLogger(__name__)


def keep_xet_files_in(folder: Path) -> None:
    """Point hf_xet's own files (its logs, any chunk cache) into ``folder`` in our data root
    instead of ``~/.cache/huggingface/xet``. hf_xet reads ``HF_XET_CACHE`` when it is first
    imported, so this runs when the context is built; a value the user set wins. (Here, not in
    ``models/xet.py``: the context is below the models layer and imports nothing from it.)"""
    if "hf_xet" in sys.modules:
        log.debug("hf_xet already loaded; its files stay where HF_XET_CACHE said")
        return
    os.environ.setdefault("HF_XET_CACHE", str(folder))


@dataclass
class CoreContext:
    paths: DataPaths
    settings: Settings

    @property
    def store(self) -> Path:
        return self.settings.store_path(self.paths)

    def save_settings(self) -> None:
        stored = settings_mod.load(self.paths, apply_env=False)
        # keep env overrides out of the file: only fields the user changed are written
        env_view = stored.with_env_overrides()
        for name in settings_mod.ENV_OVERRIDES:
            if getattr(self.settings, name) == getattr(env_view, name):
                setattr(self.settings, name, getattr(stored, name))
        settings_mod.save(self.paths, self.settings)
        self.settings = self.settings.with_env_overrides()


def build_core_context(data_dir: str | Path | None = None) -> CoreContext:
    paths = DataPaths(resolve_data_root(str(data_dir) if data_dir else None)).ensure()
    keep_xet_files_in(paths.cache / "xet")
    return CoreContext(paths=paths, settings=settings_mod.load(paths))
