"""Start comfymanager when the user logs in ("Start with the system"; off by default).

- Linux: an XDG autostart entry, ``$XDG_CONFIG_HOME/autostart/comfymanager.desktop``
  (``~/.config`` when the variable is unset);
- macOS: a LaunchAgent, ``~/Library/LaunchAgents/io.github.comfymanager.plist``;
- Windows: the value ``comfymanager`` under ``HKCU\\...\\CurrentVersion\\Run``.

``enable(argv)``, ``disable()`` and ``is_enabled()`` take the base folder (``home``,
``config_home``), the registry key and the platform as keywords, so tests write into a temporary
folder instead of the user's session.
"""

from __future__ import annotations

import logging
import os
import plistlib
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from comfymanager.core import persist
from comfymanager.core.errors import ComfyManagerError, InvalidInput

log = logging.getLogger(__name__)

ENTRY_NAME = "comfymanager"
DESKTOP_FILE = "comfymanager.desktop"
LAUNCH_AGENT_LABEL = "io.github.comfymanager"
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
_FIX = "Check that you can write to {where}, or turn 'Start with the system' off."


def default_argv() -> list[str]:
    """How to start this program at login: the frozen executable, or ``python -m comfymanager``,
    with ``--minimized`` so that it waits in the tray instead of opening its window."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "--minimized"]
    return [sys.executable, "-m", "comfymanager", "--minimized"]


def _platform(platform: str | None) -> str:
    name = platform or sys.platform
    if name.startswith("win"):
        return "windows"
    if name == "darwin":
        return "macos"
    return "linux"


def entry_path(
    *, platform: str | None = None, home: Path | None = None, config_home: Path | None = None
) -> Path | None:
    """The file that makes us start at login (None on Windows, which uses the registry)."""
    kind = _platform(platform)
    if kind == "windows":
        return None
    base_home = home if home is not None else Path.home()
    if kind == "macos":
        return base_home / "Library" / "LaunchAgents" / f"{LAUNCH_AGENT_LABEL}.plist"
    if config_home is None:
        xdg = os.environ.get("XDG_CONFIG_HOME", "")
        config_home = Path(xdg) if xdg else base_home / ".config"
    return config_home / "autostart" / DESKTOP_FILE


def _desktop_quote(arg: str) -> str:
    """Quote one argument for an ``Exec=`` line (Desktop Entry Specification rules)."""
    arg = arg.replace("%", "%%")
    if arg and not any(c in arg for c in " \t\n\"'\\><~|&;$*?#()`="):
        return arg
    escaped = "".join("\\" + c if c in '"`$\\' else c for c in arg)
    return f'"{escaped}"'


def desktop_entry(argv: Sequence[str]) -> str:
    exec_line = " ".join(_desktop_quote(a) for a in argv)
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Name=comfymanager\n"
        "Comment=Build and run isolated ComfyUI projects\n"
        f"Exec={exec_line}\n"
        "Icon=io.github.comfymanager.ComfyManager\n"
        "Terminal=false\n"
        "X-GNOME-Autostart-enabled=true\n"
    )


def launch_agent(argv: Sequence[str]) -> bytes:
    data = {
        "Label": LAUNCH_AGENT_LABEL,
        "ProgramArguments": list(argv),
        "RunAtLoad": True,
        "ProcessType": "Interactive",
    }
    return plistlib.dumps(data)


TRANSLOCATED = "/AppTranslocation/"


def check_not_translocated(argv: Sequence[str]) -> None:
    """Refuse to record a path under macOS App Translocation: an app opened straight from a
    download or a disk image runs from a random read-only copy that is gone after a restart,
    so a LaunchAgent pointing there would start nothing."""
    if any(TRANSLOCATED in a for a in argv):
        raise InvalidInput(
            "comfymanager is running from a temporary copy that macOS made of the downloaded "
            "app (App Translocation), so it cannot start from there at login.",
            "Drag comfymanager.app into Applications, open it from there, then turn "
            "'Start with the system' on again.",
        )


def _write(path: Path, data: bytes) -> None:
    try:
        persist.atomic_write_bytes(path, data)
    except OSError as exc:
        raise ComfyManagerError(
            f"Could not write the start-at-login entry {path}: {exc.strerror or exc}.",
            _FIX.format(where=path.parent),
        ) from exc


def enable(
    argv: Sequence[str] | None = None,
    *,
    platform: str | None = None,
    home: Path | None = None,
    config_home: Path | None = None,
    run_key: str = RUN_KEY,
) -> None:
    """Start ``argv`` (default: this program) when the user logs in."""
    args = list(argv) if argv else default_argv()
    kind = _platform(platform)
    if kind == "macos":
        check_not_translocated(args)
    if kind == "windows":
        _set_run_value(run_key, subprocess.list2cmdline(args))
        return
    path = entry_path(platform=platform, home=home, config_home=config_home)
    assert path is not None
    payload = launch_agent(args) if kind == "macos" else desktop_entry(args).encode("utf-8")
    _write(path, payload)
    log.info("start with the system: enabled (%s)", path)


def disable(
    *,
    platform: str | None = None,
    home: Path | None = None,
    config_home: Path | None = None,
    run_key: str = RUN_KEY,
) -> None:
    """Stop starting at login; nothing happens when it was not enabled."""
    if _platform(platform) == "windows":
        _delete_run_value(run_key)
        return
    path = entry_path(platform=platform, home=home, config_home=config_home)
    assert path is not None
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise ComfyManagerError(
            f"Could not remove the start-at-login entry {path}: {exc.strerror or exc}.",
            _FIX.format(where=path.parent),
        ) from exc
    log.info("start with the system: disabled")


def is_enabled(
    *,
    platform: str | None = None,
    home: Path | None = None,
    config_home: Path | None = None,
    run_key: str = RUN_KEY,
) -> bool:
    if _platform(platform) == "windows":
        return _get_run_value(run_key) is not None
    path = entry_path(platform=platform, home=home, config_home=config_home)
    return path is not None and path.is_file()


# ---- Windows registry (HKEY_CURRENT_USER only: no admin rights needed) ------------------------


def _set_run_value(run_key: str, command: str) -> None:
    import winreg  # type: ignore[import-not-found,unused-ignore]

    try:
        with winreg.CreateKey(winreg.HKEY_CURRENT_USER, run_key) as key:  # type: ignore[attr-defined,unused-ignore]
            winreg.SetValueEx(key, ENTRY_NAME, 0, winreg.REG_SZ, command)  # type: ignore[attr-defined,unused-ignore]
    except OSError as exc:
        raise ComfyManagerError(
            f"Could not add comfymanager to the programs started at login: {exc}.",
            _FIX.format(where=f"HKEY_CURRENT_USER\\{run_key}"),
        ) from exc


def _delete_run_value(run_key: str) -> None:
    import winreg  # type: ignore[import-not-found,unused-ignore]

    try:
        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, run_key, 0, winreg.KEY_SET_VALUE) as key:  # type: ignore[attr-defined,unused-ignore]
            winreg.DeleteValue(key, ENTRY_NAME)  # type: ignore[attr-defined,unused-ignore]
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ComfyManagerError(
            f"Could not remove comfymanager from the programs started at login: {exc}.",
            _FIX.format(where=f"HKEY_CURRENT_USER\\{run_key}"),
        ) from exc


def _get_run_value(run_key: str) -> str | None:
    import winreg  # type: ignore[import-not-found,unused-ignore]

    try:
        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, run_key) as key:  # type: ignore[attr-defined,unused-ignore]
            value, _kind = winreg.QueryValueEx(key, ENTRY_NAME)  # type: ignore[attr-defined,unused-ignore]
    except OSError:
        return None
    return str(value)
