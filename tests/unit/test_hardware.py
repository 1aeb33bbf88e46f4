"""GPU detection per platform, from captured outputs and injected platform facts.

Windows and macOS cannot run here: the decision functions take what the OS would say (the CIM
JSON of ``Get-CimInstance Win32_VideoController``, the ``sysctl`` answers under Rosetta) and the
tests feed them outputs captured on such machines.
"""

from __future__ import annotations

import pytest

from comfymanager.core.errors import InvalidInput
from comfymanager.core.install import envs, hardware
from comfymanager.core.settings import TORCH_BACKENDS, Settings, backends_for

# Laptop with Intel UHD + RTX 4070 (a list; PowerShell 5.1 output, CRLF line ends)
CIM_NVIDIA_LAPTOP = (
    "[\r\n"
    "    {\r\n"
    '        "Name":  "Intel(R) UHD Graphics",\r\n'
    '        "AdapterCompatibility":  "Intel Corporation",\r\n'
    '        "DriverVersion":  "31.0.101.2125",\r\n'
    '        "PNPDeviceID":  '
    '"PCI\\\\VEN_8086&DEV_A788&SUBSYS_3C0317AA&REV_04\\\\3&11583659&0&10"\r\n'
    "    },\r\n"
    "    {\r\n"
    '        "Name":  "NVIDIA GeForce RTX 4070 Laptop GPU",\r\n'
    '        "AdapterCompatibility":  "NVIDIA",\r\n'
    '        "DriverVersion":  "32.0.15.6094",\r\n'
    '        "PNPDeviceID":  '
    '"PCI\\\\VEN_10DE&DEV_2860&SUBSYS_3C0317AA&REV_A1\\\\4&2C4E2D1&0&0008"\r\n'
    "    }\r\n"
    "]\r\n"
)
# Desktop with one Radeon RX 7900 XTX: a single object, not a list
CIM_AMD_7900 = """{
    "Name":  "AMD Radeon RX 7900 XTX",
    "AdapterCompatibility":  "Advanced Micro Devices, Inc.",
    "DriverVersion":  "32.0.12011.1036",
    "PNPDeviceID":  "PCI\\\\VEN_1002&DEV_744C&SUBSYS_471E1458&REV_C8\\\\6&1B2A7E7&0&00000019"
}"""
CIM_INTEL_ARC = """[
    {"Name": "Intel(R) Arc(TM) A770 Graphics", "AdapterCompatibility": "Intel Corporation",
     "DriverVersion": "32.0.101.6129",
     "PNPDeviceID": "PCI\\\\VEN_8086&DEV_56A0&SUBSYS_10208086&REV_08\\\\6&2C9BBC4F&0&00080008"},
    {"Name": "Microsoft Basic Display Adapter", "AdapterCompatibility": "(Standard display types)",
     "DriverVersion": "10.0.22621.1", "PNPDeviceID": "ROOT\\\\BASICDISPLAY\\\\0000"}
]"""
CIM_OLD_RADEON = """{"Name": "AMD Radeon RX 580 2048SP", "AdapterCompatibility":
 "Advanced Micro Devices, Inc.", "DriverVersion": "31.0.21921.1000", "PNPDeviceID": ""}"""
CIM_VM = """{"Name": "Microsoft Hyper-V Video", "AdapterCompatibility": "Microsoft Corporation",
 "DriverVersion": "10.0.19041.1", "PNPDeviceID": "VMBUS\\\\{02780ADA}"}"""


def test_windows_nvidia_from_cim_gets_the_cuda_its_driver_runs() -> None:
    adapters = hardware.parse_video_controllers(CIM_NVIDIA_LAPTOP)
    assert [a.vendor_id for a in adapters] == ["8086", "10de"]
    hw = hardware.from_windows_adapters(adapters)
    assert hw is not None and hw.vendor == "nvidia"
    assert hw.name == "NVIDIA GeForce RTX 4070 Laptop GPU"
    assert hw.driver == "560.94"  # 32.0.15.6094 in NVIDIA's numbering
    assert hw.suggested_backend == "cu126"
    assert hardware.nvidia_driver_from_windows("32.0.15.8115") == "581.15"
    assert hardware.nvidia_driver_from_windows("garbage") == ""


def test_windows_amd_gets_amd_wheels_for_its_family() -> None:
    hw = hardware.from_windows_adapters(hardware.parse_video_controllers(CIM_AMD_7900))
    assert hw is not None and (hw.vendor, hw.suggested_backend) == ("amd", "rocm")
    assert hw.gpu_family == "gfx110X-all"
    s = Settings()
    url = envs.torch_index_url(s, "rocm", os_name="win32", family=hw.gpu_family)
    assert url == "https://rocm.nightlies.amd.com/v2/gfx110X-all"
    assert hardware.amd_family("AMD Radeon RX 9070 XT") == "gfx120X-all"
    assert hardware.amd_family("AMD Radeon(TM) 8060S Graphics") == "gfx1151"
    # Linux keeps PyTorch's own ROCm index
    assert envs.torch_index_url(s, "rocm", os_name="linux") == (
        f"https://download.pytorch.org/whl/{hardware.ROCM_INDEX}"
    )


def test_windows_amd_without_wheels_says_why_it_gets_cpu() -> None:
    hw = hardware.from_windows_adapters(hardware.parse_video_controllers(CIM_OLD_RADEON))
    assert hw is not None and hw.suggested_backend == "cpu"
    assert "RX 7000/9000" in hw.note
    with pytest.raises(InvalidInput, match="only for Radeon RX 7000/9000"):
        envs.torch_index_url(Settings(), "rocm", os_name="win32", family="")


def test_windows_intel_arc_gets_xpu_and_a_vm_gets_nothing() -> None:
    hw = hardware.from_windows_adapters(hardware.parse_video_controllers(CIM_INTEL_ARC))
    assert hw is not None and (hw.vendor, hw.suggested_backend) == ("intel", "xpu")
    assert hardware.from_windows_adapters(hardware.parse_video_controllers(CIM_VM)) is None
    assert hardware.parse_video_controllers("") == []
    assert hardware.parse_video_controllers("Get-CimInstance : Access denied") == []


def test_nvidia_smi_is_also_looked_for_in_the_nvsmi_folder() -> None:
    env = {"ProgramFiles": "D:\\Apps"}
    got = hardware.nvidia_smi_candidates("win32", env, which=lambda _: None)
    assert got == ["D:\\Apps\\NVIDIA Corporation\\NVSMI\\nvidia-smi.exe"]
    on_path = hardware.nvidia_smi_candidates("linux", {}, which=lambda _: "/usr/bin/nvidia-smi")
    assert on_path == ["/usr/bin/nvidia-smi"]


def test_apple_silicon_is_seen_under_rosetta() -> None:
    rosetta = {"sysctl.proc_translated": "1", "hw.optional.arm64": "1"}
    intel = {"sysctl.proc_translated": None, "hw.optional.arm64": None}
    assert hardware.apple_silicon("x86_64", rosetta.get)
    assert not hardware.apple_silicon("x86_64", intel.get)
    assert hardware.apple_silicon("arm64", intel.get)
    mac = hardware._mac("x86_64", rosetta.get)
    assert mac.vendor == "apple" and "Rosetta" in mac.name and mac.suggested_backend == "pypi"
    assert hardware._mac("x86_64", intel.get).name == "Intel Mac"
    # a frozen x86_64 build under Rosetta still asks uv for an arm64 Python
    assert envs.managed_python_request("darwin", "x86_64", rosetta.get) == (
        "cpython-3.12-macos-aarch64-none"
    )
    assert envs.managed_python_request("darwin", "x86_64", intel.get) == "3.12"
    assert envs.managed_python_request("win32", "AMD64") == "3.12"


def test_backends_are_filtered_by_os() -> None:
    mac = backends_for("darwin", "arm64")
    assert "pypi" in mac and not any(b.startswith("cu") or b in ("xpu", "rocm") for b in mac)
    win = backends_for("win32", "AMD64")
    assert {"cu128", "xpu", "rocm"} <= set(win)
    assert backends_for("linux", "x86_64") == TORCH_BACKENDS
    assert "rocm" not in backends_for("linux", "aarch64")
    assert "cu128" in backends_for("linux", "aarch64")
    assert backends_for("win32", "ARM64") == ("auto", "cpu", "pypi", "none")
    for system in ("darwin", "win32", "linux"):
        assert backends_for(system, "x86_64")[0] == "auto"
