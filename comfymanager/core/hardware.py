"""What GPU this machine has, found without importing torch, and the torch backend it implies.

Linux: NVIDIA from ``nvidia-smi`` (driver and CUDA version) or ``/proc/driver/nvidia/version``;
AMD from ``/dev/kfd`` or PCI vendor 0x1002 display devices; Intel discrete GPUs (Arc) from PCI
vendor 0x8086 with a ``card`` DRM node and a ``xe``/``i915`` driver and a discrete device id.
Windows: ``nvidia-smi`` on PATH. macOS: Apple silicon uses PyPI's wheels (MPS).
"""

from __future__ import annotations

import logging
import platform
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

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


def _nvidia() -> Hardware | None:
    smi = shutil.which("nvidia-smi")
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


def detect() -> Hardware:
    """Best guess at this machine's accelerator; never raises."""
    try:
        if sys.platform == "darwin":
            arm = platform.machine() == "arm64"
            return Hardware(
                "apple" if arm else "cpu",
                "Apple silicon" if arm else "Intel Mac",
                "",
                "pypi",
                "macOS uses PyPI's torch wheels (MPS on Apple silicon).",
            )
        nv = _nvidia()
        if nv:
            return nv
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
