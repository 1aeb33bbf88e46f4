"""What ComfyUI is started with: its command line, the device flags, the supervisor command.

``build_argv`` adds the folder flags this ComfyUI version knows (``supported_flags``), then
``device_flags`` (``--cpu`` when the project's torch has no usable accelerator here; the user's
own device flags win), then the user's launch arguments. ``supervisor_argv`` copies the
stdlib-only ``supervise.py`` into the project and runs it with the project's Python.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from pathlib import Path
from typing import Any

from comfymanager.core.context import CoreContext
from comfymanager.core.install.envs import venv_python
from comfymanager.core.projects import Project, ProjectDirs
from comfymanager.core.run import supervise

OPTIONAL_FLAGS = (
    "--database-url",
    "--user-directory",
    "--input-directory",
    "--output-directory",
    "--temp-directory",
    "--extra-model-paths-config",
    "--disable-auto-launch",
)
DEVICE_FLAGS = ("--cpu", "--directml", "--cuda-device", "--oneapi-device-selector", "--mps")


def supported_flags(comfyui: Path) -> list[str]:
    """Which optional launch flags this ComfyUI version knows (read from its source)."""
    text = ""
    for candidate in (comfyui / "comfy" / "cli_args.py", comfyui / "main.py"):
        if candidate.exists():
            text += candidate.read_text(encoding="utf-8", errors="replace")
    return [f for f in OPTIONAL_FLAGS if f'"{f}"' in text or f"'{f}'" in text]


@functools.lru_cache(maxsize=1)
def _hardware() -> Any:
    from comfymanager.core.install import hardware

    return hardware.detect()


def device_flags(project: Project, user_args: list[str], hw: Any = None) -> tuple[list[str], str]:
    """Flags to add so ComfyUI can start on this machine, and the sentence that says why.

    A CUDA torch without an NVIDIA GPU, a ROCm torch without an AMD GPU, an XPU torch without an
    Intel GPU: ComfyUI would crash at start, so ``--cpu`` is added. The user's own device flags
    win. ``hw`` is a ``hardware.Hardware`` (detected when None).
    """
    if any(a.split("=", 1)[0] in DEVICE_FLAGS for a in user_args):
        return [], ""
    backend = project.torch_backend_resolved or project.torch_backend
    if backend in ("cpu",):
        return ["--cpu"], ""
    version = project.torch_version
    if backend in ("none", "") and not version:
        return [], ""
    if sys.platform == "darwin":
        return [], ""
    if backend.startswith("cu") or "+cu" in version or (backend == "pypi" and os.name != "nt"):
        build, vendor = "a CUDA build of torch", "nvidia"
        need = "no NVIDIA GPU or driver was found"
    elif backend.startswith("rocm") or "+rocm" in version:
        build, vendor, need = "a ROCm build of torch", "amd", "no AMD GPU was found"
    elif backend == "xpu" or "+xpu" in version:
        build, vendor, need = "an Intel XPU build of torch", "intel", "no Intel GPU was found"
    else:
        return [], ""
    hw = hw if hw is not None else _hardware()
    if getattr(hw, "vendor", "cpu") == vendor:
        return [], ""
    return ["--cpu"], (
        f"--cpu added: this project has {build} and {need} on this machine. "
        "Add your own device flag in the project's launch arguments to override."
    )


def build_argv(
    ctx: CoreContext, project: Project, dirs: ProjectDirs, port: int, hw: Any = None
) -> list[str]:
    return build(ctx, project, dirs, port, hw)[0]


def comfyui_dir(project: Project, dirs: ProjectDirs) -> Path:
    """Where ComfyUI runs from: the project's checkout, or an in-place adoption's own folder."""
    return Path(project.external_root) if project.in_place else dirs.comfyui


def build(
    ctx: CoreContext, project: Project, dirs: ProjectDirs, port: int, hw: Any = None
) -> tuple[list[str], str]:
    if project.in_place:  # an adopted install: its own Python, main.py and folders
        from comfymanager.core.adopt.guard import in_place_launch

        python, main = in_place_launch(project)
        argv = [str(python), "-s", str(main), "--listen"]
        argv += ["0.0.0.0" if project.listen_network else "127.0.0.1", "--port", str(port)]
        if "--disable-auto-launch" in project.supported_flags:
            argv.append("--disable-auto-launch")
        user = list(ctx.settings.default_launch_args) + list(project.launch_args)
        added, note = device_flags(project, user, hw)
        return argv + added + user, note
    flags = set(project.supported_flags)
    argv = [
        str(venv_python(dirs.venv)),
        "main.py",
        "--listen",
        "0.0.0.0" if project.listen_network else "127.0.0.1",
        "--port",
        str(port),
    ]
    optional = {
        "--extra-model-paths-config": str(dirs.extra_model_paths),
        "--input-directory": str(dirs.input),
        "--output-directory": str(dirs.output),
        "--user-directory": str(dirs.user),
        "--temp-directory": str(dirs.temp),
        "--database-url": f"sqlite:///{dirs.database.as_posix()}",
    }
    for flag, value in optional.items():
        if flag in flags and (
            flag != "--extra-model-paths-config" or dirs.extra_model_paths.exists()
        ):
            argv += [flag, value]
    if "--disable-auto-launch" in flags:
        argv.append("--disable-auto-launch")
    user = list(ctx.settings.default_launch_args) + list(project.launch_args)
    added, note = device_flags(project, user, hw)
    if not added:  # the chosen GPU (core/configure.py); --cpu wins when there is none
        from comfymanager.core.configure import gpu_flags

        added = gpu_flags(project, user)
    if project.manager and (dirs.comfyui / "manager_requirements.txt").is_file():
        added += [] if "--enable-manager" in user else ["--enable-manager"]  # ComfyUI-Manager
    return argv + added + user, note


def supervisor_argv(dirs: ProjectDirs | None = None) -> list[str]:
    """The supervisor run by the project's Python from a copy in the project; else our own."""
    source = Path(supervise.__file__).with_suffix(".py")
    if dirs is not None and source.exists():
        python = venv_python(dirs.venv)
        if python.exists():
            target = dirs.root / "supervise.py"
            data = source.read_bytes()
            with contextlib.suppress(OSError):
                if not target.exists() or target.read_bytes() != data:
                    tmp = target.with_name(f".supervise.{os.getpid()}.tmp")
                    tmp.write_bytes(data)
                    supervise.retry(lambda: os.replace(tmp, target))
            if target.exists():
                return [str(python), "-I", str(target)]
    if getattr(sys, "frozen", False):
        return [sys.executable, "--supervise"]
    return [sys.executable, "-m", "comfymanager.core.run.supervise"]
