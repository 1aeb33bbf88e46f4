"""Can Qt open a window here? Checked before Qt is imported, because a Qt that cannot load its
platform plugin aborts the whole process (exit code 134) with the reason only in its own log.

Linux only, and only for the ``xcb`` (X11) plugin, the one Qt falls back to: no display, or
system libraries the plugin links against missing (``ldd`` on PySide6's ``libqxcb.so`` lists
them as "not found"). The answer is one line with the cause and the fix; ``SONAME_PACKAGES``
names the Debian/Ubuntu package of each library (``scripts/run.sh`` installs them from
``python -m comfymanager.platform_check --packages``). Nothing here imports Qt.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

#: what PySide6 6.8-6.11's xcb plugin loads from the system (ldd on libqxcb.so, Debian 12)
SONAME_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
}
Ldd = Callable[[Path], str]


def xcb_plugin() -> Path | None:
    """PySide6's xcb platform plugin, found without importing PySide6 (or None)."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        plugin = Path(folder) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
        if plugin.is_file():
            return plugin
    return None


def _ldd(path: Path) -> str:
    tool = shutil.which("ldd")
    if tool is None:
        return ""
    try:
        out = subprocess.run(
            [tool, str(path)], capture_output=True, text=True, timeout=15, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout


def missing_libraries(plugin: Path | None = None, ldd: Ldd = _ldd) -> list[str]:
    """Sonames the xcb plugin needs and the system lacks ([] when unknown)."""
    plugin = plugin or xcb_plugin()
    if plugin is None:
        return []
    missing = []
    for line in ldd(plugin).splitlines():
        name, _, where = line.strip().partition("=>")
        if "not found" in where and name.strip() not in missing:
            missing.append(name.strip())
    return missing


def packages_for(sonames: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(SONAME_PACKAGES[s] for s in sonames if s in SONAME_PACKAGES))


def _uses_xcb(env: Mapping[str, str]) -> bool:
    wanted = env.get("QT_QPA_PLATFORM", "").strip()
    if wanted:
        return wanted.split(";")[0].split(":")[0] == "xcb"
    # Qt 6 takes wayland in a Wayland session and falls back to xcb
    return not env.get("WAYLAND_DISPLAY")


def qt_platform_problem(
    env: Mapping[str, str] | None = None,
    *,
    plugin: Path | None = None,
    ldd: Ldd = _ldd,
    platform: str = sys.platform,
    debian: bool | None = None,
) -> str | None:
    """One line saying why Qt cannot open a window here and how to fix it, or None."""
    env = os.environ if env is None else env
    if not platform.startswith("linux") or not _uses_xcb(env):
        return None
    missing = missing_libraries(plugin, ldd)
    if missing:
        debian = (
            Path("/etc/debian_version").exists() or shutil.which("apt-get") is not None
            if debian is None
            else debian
        )
        packages = packages_for(missing)
        unknown = [s for s in missing if s not in SONAME_PACKAGES]
        if debian and packages and not unknown:
            fix = f"sudo apt-get install -y {' '.join(packages)}"
        else:
            fix = "install your distribution's packages that provide " + ", ".join(missing)
        return (
            "comfymanager: cannot open its window: Qt's xcb platform plugin needs "
            f"{', '.join(missing)}, missing on this system. Fix: {fix} "
            "(or use the command line: comfymanager --help)."
        )
    display = env.get("DISPLAY", "")
    if not display:
        return (
            "comfymanager: cannot open its window: there is no display (DISPLAY is not set). "
            "Fix: run it in a desktop session (or ssh -X), or use the command line: "
            "comfymanager --help."
        )
    if not local_display_answers(display):
        return (
            f"comfymanager: cannot open its window: no X server answers on display {display}. "
            "Fix: start the desktop session (or Xvfb) for that display, or set DISPLAY to one "
            "that runs, or use the command line: comfymanager --help."
        )
    return None


def local_display_answers(display: str) -> bool:
    """False only when ``display`` is local (``:N``) and nothing listens on its X socket
    (the file ``/tmp/.X11-unix/XN`` or the abstract one); remote displays are not probed."""
    m = re.match(r"^(?:unix)?:(\d+)(?:\.\d+)?$", display)
    if m is None or not hasattr(socket, "AF_UNIX"):
        return True
    path = f"/tmp/.X11-unix/X{m.group(1)}"
    for address in (path, "\0" + path):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                s.connect(address)
                return True
        except OSError:
            continue
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """``--packages``: the Debian packages to install (one line, empty when none are missing);
    otherwise the problem line, exit code 1 when there is one."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--packages"]:
        missing = missing_libraries()
        unknown = [s for s in missing if s not in SONAME_PACKAGES]
        if unknown:
            print(f"no known package for: {', '.join(unknown)}", file=sys.stderr)
        print(" ".join(packages_for(missing)))
        return 0
    problem = qt_platform_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
