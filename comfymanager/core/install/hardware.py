"""What GPU this machine has, found without importing torch, and the torch backend it implies.

Linux: NVIDIA from ``nvidia-smi`` (driver and CUDA version) or ``/proc/driver/nvidia/version``;
AMD from ``/dev/kfd`` or PCI vendor 0x1002 display devices; Intel discrete GPUs (Arc) from PCI
vendor 0x8086 with a ``card`` DRM node and a ``xe``/``i915`` driver and a discrete device id.
Windows: ``nvidia-smi`` on PATH or or in ``NVSMI`` (older drivers), then the display adapters
from CIM (``Get-CimInstance Win32_VideoController``): NVIDIA (driver from the adapter's version),
AMD Radeon RX 7000/9000 and Strix Halo (AMD's Windows wheels, per GPU family), Intel Arc (xpu).
macOS: Apple silicon uses PyPI's wheels (MPS), also when this app runs under Rosetta.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from comfymanager.core import process

log = logging.getLogger(__name__)

# Newest CUDA wheel index each NVIDIA driver can run (driver minimums from NVIDIA's tables).
_CUDA_BY_DRIVER = ((580.0, "cu130"), (570.0, "cu128"), (525.0, "cu126"))
ROCM_INDEX = "rocm6.4"


@dataclass(frozen=True)
class Hardware:
    vendor: str  # nvidia | amd | intel | apple | cpu
    name: str
    driver: str
    suggested_backend: str  # cpu | cu126 | cu128 | cu130 | rocm | xpu | pypi
    note: str = ""
    gpu_family: str = ""  # AMD on Windows: the wheel family (gfx110X-all, gfx120X-all, gfx1151)

    @property
    def summary(self) -> str:
        base = self.name if self.vendor != "cpu" else "No supported GPU found (CPU only)"
        extra = f", driver {self.driver}" if self.driver else ""
        return f"{base}{extra} -> torch backend {self.suggested_backend}"


def cuda_backend_for_driver(driver: str) -> str:
    try:
        major = float(".".join(driver.split(".")[:2]))
    except ValueError:
        return "cu126"
    for minimum, backend in _CUDA_BY_DRIVER:
        if major >= minimum:
            return backend
    return "cpu"


def nvidia_smi_candidates(
    os_name: str | None = None,
    environ: dict[str, str] | None = None,
    which: Callable[[str], str | None] = shutil.which,
) -> list[str]:
    """Where ``nvidia-smi`` may be: PATH, and on Windows the NVSMI folder older drivers use."""
    found = [p for p in (which("nvidia-smi"),) if p]
    if (os_name or sys.platform) == "win32":
        env = dict(os.environ) if environ is None else environ
        base = env.get("ProgramW6432") or env.get("ProgramFiles") or r"C:\Program Files"
        found.append(base.rstrip("\\") + r"\NVIDIA Corporation\NVSMI\nvidia-smi.exe")
    return found


def _nvidia() -> Hardware | None:
    smi = next((p for p in nvidia_smi_candidates() if Path(p).is_file()), None)
    if smi:
        try:
            out = process.run_tool(
                [smi, "--query-gpu=name,driver_version", "--format=csv,noheader"], timeout=10
            )
            if out.ok and out.tail:
                name, _, driver = out.tail[0].partition(",")
                driver = driver.strip()
                return Hardware("nvidia", name.strip(), driver, cuda_backend_for_driver(driver))
        except Exception as exc:  # a broken driver must not break detection
            log.info("nvidia-smi failed: %s", exc)
    version_file = Path("/proc/driver/nvidia/version")
    if version_file.exists():
        text = version_file.read_text(errors="replace")
        m = re.search(r"Kernel Module\s+(?:for \S+\s+)?([0-9.]+)", text)
        driver = m.group(1) if m else ""
        return Hardware("nvidia", "NVIDIA GPU", driver, cuda_backend_for_driver(driver))
    return None


def _pci_display_vendors() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    root = Path("/sys/bus/pci/devices")
    if not root.exists():
        return found
    for dev in root.iterdir():
        try:
            cls = (dev / "class").read_text().strip()
            if not cls.startswith("0x03"):  # display controllers
                continue
            found.append(
                ((dev / "vendor").read_text().strip(), (dev / "device").read_text().strip())
            )
        except OSError:
            continue
    return found


def _sysctl(name: str) -> str | None:
    try:
        done = subprocess.run(
            ["/usr/sbin/sysctl", "-n", name], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def apple_silicon(machine: str, sysctl: Callable[[str], str | None] = _sysctl) -> bool:
    """True on Apple silicon, also for an x86_64 build running under Rosetta (which reports
    ``x86_64``): ``sysctl.proc_translated`` is 1 there, and ``hw.optional.arm64`` is 1."""
    if machine == "arm64":
        return True
    return sysctl("sysctl.proc_translated") == "1" or sysctl("hw.optional.arm64") == "1"


def _mac(machine: str, sysctl: Callable[[str], str | None] = _sysctl) -> Hardware:
    if apple_silicon(machine, sysctl):
        rosetta = machine != "arm64"
        return Hardware(
            "apple",
            "Apple silicon" + (" (this app runs under Rosetta)" if rosetta else ""),
            "",
            "pypi",
            "macOS uses PyPI's torch wheels (MPS on Apple silicon); projects get an arm64 "
            "Python even when this app runs under Rosetta.",
        )
    return Hardware("cpu", "Intel Mac", "", "pypi", "macOS uses PyPI's torch wheels.")


# --- Windows: display adapters from CIM ------------------------------------------------------

CIM_COMMAND = [
    "powershell.exe",
    "-NoProfile",
    "-NonInteractive",
    "-Command",
    "Get-CimInstance Win32_VideoController | "
    "Select-Object Name,AdapterCompatibility,DriverVersion,PNPDeviceID | ConvertTo-Json",
]


@dataclass(frozen=True)
class Adapter:
    name: str
    vendor_id: str  # 10de NVIDIA, 1002 AMD, 8086 Intel ("" unknown)
    driver: str


def parse_video_controllers(text: str) -> list[Adapter]:
    """Adapters from ``Get-CimInstance Win32_VideoController | ... | ConvertTo-Json`` output
    (one object, or a list of them); anything unreadable is skipped."""
    try:
        data: Any = json.loads(text) if text.strip() else []
    except ValueError:
        return []
    items = data if isinstance(data, list) else [data]
    out: list[Adapter] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        name = str(item.get("Name") or "").strip()
        pnp = str(item.get("PNPDeviceID") or "")
        m = re.search(r"VEN_([0-9A-Fa-f]{4})", pnp)
        vendor = m.group(1).lower() if m else ""
        if not vendor:
            company = str(item.get("AdapterCompatibility") or "").lower()
            vendor = next(
                (
                    v
                    for key, v in (
                        ("nvidia", "10de"),
                        ("amd", "1002"),
                        ("advanced micro", "1002"),
                        ("intel", "8086"),
                    )
                    if key in company
                ),
                "",
            )
        if name:
            out.append(Adapter(name, vendor, str(item.get("DriverVersion") or "").strip()))
    return out


def nvidia_driver_from_windows(version: str) -> str:
    """Windows driver version ``32.0.15.6094`` -> NVIDIA's ``560.94`` (its last five digits)."""
    digits = "".join(version.split(".")[-2:])
    if len(digits) < 5 or not digits.isdigit():
        return ""
    tail = digits[-5:]
    return f"{int(tail[:3])}.{tail[3:]}"


def amd_family(name: str) -> str:
    """AMD's Windows wheel family for a Radeon name, "" when AMD publishes none for it."""
    n = name.lower()
    if re.search(r"\brx\s*9\d{3}", n) or "ai pro r9" in n:
        return "gfx120X-all"
    if re.search(r"\brx\s*7\d{3}", n) or "pro w7" in n:
        return "gfx110X-all"
    if re.search(r"radeon\(tm\)\s*80[56]0s|radeon\s*80[56]0s", n) or "ai max" in n:
        return "gfx1151"
    return ""


def from_windows_adapters(adapters: list[Adapter]) -> Hardware | None:
    """The best accelerator among Windows display adapters: NVIDIA, then AMD, then Intel Arc."""
    for a in adapters:
        if a.vendor_id == "10de":
            driver = nvidia_driver_from_windows(a.driver)
            return Hardware(
                "nvidia", a.name, driver, cuda_backend_for_driver(driver) if driver else "cu126"
            )
    for a in adapters:
        if a.vendor_id == "1002" and "radeon" in a.name.lower():
            family = amd_family(a.name)
            if family:
                return Hardware(
                    "amd",
                    a.name,
                    a.driver,
                    "rocm",
                    "AMD's PyTorch wheels for Windows (preview).",
                    family,
                )
    for a in adapters:
        if a.vendor_id == "8086" and "arc" in a.name.lower():
            return Hardware("intel", a.name, a.driver, "xpu")
    for a in adapters:  # an AMD GPU without Windows wheels: say why it gets CPU torch
        if a.vendor_id == "1002" and "radeon" in a.name.lower():
            return Hardware(
                "cpu",
                a.name,
                a.driver,
                "cpu",
                "AMD publishes Windows PyTorch wheels only for Radeon RX 7000/9000 "
                "and Ryzen AI Max GPUs; this one gets CPU torch.",
            )
    return None


def _windows_adapters() -> list[Adapter]:
    lines: list[str] = []
    try:
        out = process.run_tool(CIM_COMMAND, timeout=20, on_line=lines.append)
    except Exception as exc:  # PowerShell missing or blocked by policy: detection is advisory
        log.info("Get-CimInstance failed: %s", exc)
        return []
    return parse_video_controllers("\n".join(lines)) if out.ok else []


def detect() -> Hardware:
    """Best guess at this machine's accelerator; never raises."""
    try:
        if sys.platform == "darwin":
            return _mac(platform.machine())
        nv = _nvidia()
        if nv:
            return nv
        if sys.platform == "win32":
            found = from_windows_adapters(_windows_adapters())
            if found:
                return found
        if sys.platform.startswith("linux"):
            vendors = _pci_display_vendors()
            if Path("/dev/kfd").exists() or any(v == "0x1002" for v, _ in vendors):
                return Hardware(
                    "amd",
                    "AMD GPU",
                    "",
                    "rocm",
                    "ROCm wheels need a supported AMD GPU and the ROCm driver.",
                )
            if any(
                v == "0x8086" and d.lower().startswith(("0x56", "0xe2", "0x7d")) for v, d in vendors
            ):
                return Hardware("intel", "Intel Arc GPU", "", "xpu")
    except Exception as exc:  # detection is advisory
        log.info("hardware detection failed: %s", exc)
    return Hardware("cpu", "CPU", "", "cpu")


def resolve_backend(choice: str, hw: Hardware | None = None) -> str:
    """Turn the user's choice (maybe ``auto``) into a concrete backend."""
    if choice != "auto":
        return choice
    return (hw or detect()).suggested_backend
