"""The explicit context handed to every part: paths and settings (no hidden singletons).

The GUI's ``app.py`` builds a larger context on top (job manager, notifier, secrets); the CLI and
tests build this one directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from comfymanager.core import settings as settings_mod
from comfymanager.core.models.xet import keep_files_in
from comfymanager.core.paths import DataPaths, resolve_data_root
from comfymanager.core.settings import Settings


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
    keep_files_in(paths.cache / "xet")
    return CoreContext(paths=paths, settings=settings_mod.load(paths))
