"""Application settings the core needs (endpoints, folders, limits), in ``settings.json``.

Window geometry and other pure UI preferences live in QSettings instead. Every remote endpoint is
a setting, and each can be overridden for one run by an environment variable (tests and mirrors):

===========================  =====================================
setting                      environment override
===========================  =====================================
comfyui_source               COMFYMANAGER_COMFYUI_SOURCE
registry_url                 COMFYMANAGER_REGISTRY
node_db_source               COMFYMANAGER_NODE_DB
hf_endpoint                  HF_ENDPOINT
civitai_url                  COMFYMANAGER_CIVITAI
torch_index_url              COMFYMANAGER_TORCH_INDEX
rocm_windows_index_url       COMFYMANAGER_ROCM_WINDOWS_INDEX
package_index_url            COMFYMANAGER_PACKAGE_INDEX
store_dir                    COMFYMANAGER_STORE_DIR
manager_source               COMFYMANAGER_MANAGER_SOURCE
===========================  =====================================

Overrides apply to the loaded object only; ``save`` writes what the user chose.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from comfymanager.core import persist
from comfymanager.core.errors import InvalidInput
from comfymanager.core.paths import DataPaths

KIND = "comfymanager.settings"
VERSION = 1

TORCH_BACKENDS = ("auto", "cpu", "cu126", "cu128", "cu130", "rocm", "xpu", "pypi", "none")


def backends_for(os_name: str | None = None, arch: str | None = None) -> tuple[str, ...]:
    """The torch backends that can resolve on ``os_name`` (``sys.platform``) and ``arch``
    (``platform.machine()``): PyTorch publishes no CUDA/XPU wheels for macOS and no ROCm wheels
    for ARM; on Windows ``rocm`` means AMD's own Windows wheels (``rocm_windows_index_url``).
    Unknown systems get everything (the resolver has the last word)."""
    import platform as _platform
    import sys as _sys

    system = os_name or _sys.platform
    machine = (arch or _platform.machine()).lower()
    arm = machine in ("arm64", "aarch64", "armv8", "arm64e")
    if system == "darwin":
        allowed: tuple[str, ...] = ("auto", "pypi", "cpu", "none")
    elif system == "win32":
        allowed = (
            ("auto", "cpu", "pypi", "none")
            if arm
            else ("auto", "cpu", "cu126", "cu128", "cu130", "rocm", "xpu", "pypi", "none")
        )
    elif system.startswith("linux"):
        allowed = (
            ("auto", "cpu", "cu128", "cu130", "pypi", "none")  # CUDA aarch64 (sbsa) wheels only
            if arm
            else TORCH_BACKENDS
        )
    else:
        allowed = TORCH_BACKENDS
    return tuple(b for b in TORCH_BACKENDS if b in allowed)


ENV_OVERRIDES = {
    "comfyui_source": "COMFYMANAGER_COMFYUI_SOURCE",
    "registry_url": "COMFYMANAGER_REGISTRY",
    "node_db_source": "COMFYMANAGER_NODE_DB",
    "hf_endpoint": "HF_ENDPOINT",
    "civitai_url": "COMFYMANAGER_CIVITAI",
    "torch_index_url": "COMFYMANAGER_TORCH_INDEX",
    "rocm_windows_index_url": "COMFYMANAGER_ROCM_WINDOWS_INDEX",
    "package_index_url": "COMFYMANAGER_PACKAGE_INDEX",
    "store_dir": "COMFYMANAGER_STORE_DIR",
    "manager_source": "COMFYMANAGER_MANAGER_SOURCE",
}


@dataclass
class Settings:
    comfyui_source: str = "https://github.com/comfyanonymous/ComfyUI.git"
    default_comfyui_ref: str = ""  # "" = latest release tag
    default_torch_backend: str = "auto"
    default_launch_args: list[str] = field(default_factory=list)
    port_min: int = 4001
    port_max: int = 4100
    store_dir: str = ""  # "" = <data root>/models
    parallel_downloads: int = 3
    snapshots_keep: int = 20  # snapshots kept per project; older ones are pruned
    update_check_hours: int = 6  # the window checks for updates this often (0: only when asked)
    package_index_url: str = ""  # "" = PyPI
    extra_index_urls: list[str] = field(default_factory=list)
    torch_index_url: str = "https://download.pytorch.org/whl"
    # AMD's PyTorch wheels for Windows, one index per GPU family ({family}: gfx110X-all...)
    rocm_windows_index_url: str = "https://rocm.nightlies.amd.com/v2/{family}"
    hf_endpoint: str = "https://huggingface.co"
    civitai_url: str = "https://civitai.com"
    registry_url: str = "https://api.comfy.org"
    node_db_source: str = "https://raw.githubusercontent.com/Comfy-Org/ComfyUI-Manager/main"
    manager_source: str = "https://github.com/Comfy-Org/ComfyUI-Manager.git"  # older ComfyUI
    open_browser_on_start: bool = True
    close_to_tray: bool = True
    tray_hint_shown: bool = False
    start_with_system: bool = False
    first_run_done: bool = False

    def validate(self) -> None:
        from comfymanager.core.run.ports import validate_port  # one port check everywhere

        validate_port(self.port_min, "The pool's first port")
        validate_port(self.port_max, "The pool's last port")
        if self.port_min > self.port_max:
            raise InvalidInput(
                f"Port range {self.port_min}-{self.port_max} is not valid.",
                "Use two numbers between 1024 and 65535, the first not above the second.",
            )
        if not 1 <= self.parallel_downloads <= 16:
            raise InvalidInput(
                f"Parallel downloads must be between 1 and 16, not {self.parallel_downloads}."
            )
        if not 1 <= self.snapshots_keep <= 1000:
            raise InvalidInput(
                f"Snapshots kept must be between 1 and 1000, not {self.snapshots_keep}.",
                "Keep at least one: the snapshot taken before a change is the way back.",
            )
        if not 0 <= self.update_check_hours <= 24 * 30:
            raise InvalidInput(
                f"The update check interval must be 0 to 720 hours, not {self.update_check_hours}.",
                "Use 0 to check only when asked.",
            )
        if self.default_torch_backend not in TORCH_BACKENDS:
            raise InvalidInput(
                f"Unknown torch backend {self.default_torch_backend!r}.",
                f"Choose one of: {', '.join(TORCH_BACKENDS)}.",
            )

    def store_path(self, paths: DataPaths) -> Path:
        return Path(self.store_dir).expanduser() if self.store_dir else paths.default_store

    def with_env_overrides(self, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        changes: dict[str, Any] = {
            name: env[var] for name, var in ENV_OVERRIDES.items() if env.get(var)
        }
        return dataclasses.replace(self, **changes)


def _from_dict(data: dict[str, Any]) -> Settings:
    known = {f.name for f in fields(Settings)}
    values = {k: v for k, v in data.items() if k in known}
    s = Settings(**values)
    defaults = Settings()
    for f in fields(Settings):  # a wrong type in the file falls back to the default, not a crash
        if not isinstance(getattr(s, f.name), type(getattr(defaults, f.name))):
            setattr(s, f.name, getattr(defaults, f.name))
    return s


def load(paths: DataPaths, *, apply_env: bool = True) -> Settings:
    try:
        data = persist.read_json(paths.settings_file, KIND, VERSION)
        settings = _from_dict(data)
    except FileNotFoundError:
        settings = Settings()
    return settings.with_env_overrides() if apply_env else settings


def save(paths: DataPaths, settings: Settings) -> None:
    settings.validate()
    payload = dataclasses.asdict(settings)
    persist.write_json(paths.settings_file, KIND, VERSION, payload)
