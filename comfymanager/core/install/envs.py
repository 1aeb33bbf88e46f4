"""Project environments with uv: venv, torch for this machine, requirements under a constraint.

Order matters: torch/torchvision/torchaudio come first from the index of the chosen backend, then
their exact versions are written to ``constraints.txt`` and every later install (ComfyUI's
requirements, node packs' requirements, and even ``pip`` run by custom nodes later, through
``PIP_CONSTRAINT``) is held to them, so nothing can swap a CUDA torch for a CPU one.

All installs share uv's cache inside the data root; on one volume uv hard-links files from it,
which is what makes a second environment take seconds and a few MB.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from comfymanager.core import persist, process
from comfymanager.core.errors import ExternalToolError, InvalidInput, NotFound
from comfymanager.core.install import hardware
from comfymanager.core.paths import DataPaths
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.settings import Settings

log = logging.getLogger(__name__)

TORCH_PACKAGES = ("torch", "torchvision", "torchaudio")
MARKER = ".comfymanager-venv"
ENV_UV = "COMFYMANAGER_UV"
ENV_UV_CACHE = "COMFYMANAGER_UV_CACHE_DIR"
UV_HINT = "Reinstall comfymanager (it ships uv), or set COMFYMANAGER_UV to a uv binary."


def find_uv() -> str:
    """The uv binary: $COMFYMANAGER_UV, the frozen bundle's copy, the uv package, then PATH."""
    override = os.environ.get(ENV_UV)
    if override:
        return process.resolve_executable(override, UV_HINT)
    exe = "uv.exe" if os.name == "nt" else "uv"
    if getattr(sys, "frozen", False):
        bundled = Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent)) / "uv" / exe
        if bundled.exists():
            return str(bundled)
    try:
        import uv

        return str(uv.find_uv_bin())
    except (ImportError, FileNotFoundError):
        return process.resolve_executable("uv", UV_HINT)


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def default_python() -> str:
    """The interpreter new venvs are built from: ours when running from source."""
    if getattr(sys, "frozen", False):
        return managed_python_request()  # uv installs a managed CPython (``python_preference``)
    return getattr(sys, "_base_executable", sys.executable) or sys.executable


def managed_python_request(
    os_name: str | None = None,
    machine: str | None = None,
    sysctl: Callable[[str], str | None] | None = None,
) -> str:
    """What a frozen build asks uv for. On Apple silicon it names the arm64 build explicitly,
    so an x86_64 app under Rosetta still gives projects native Python and MPS torch."""
    system = os_name or sys.platform
    arch = machine or platform.machine()
    if system == "darwin" and hardware.apple_silicon(arch, sysctl or hardware._sysctl):
        return "cpython-3.12-macos-aarch64-none"
    return "3.12"


def python_preference(frozen: bool | None = None) -> str:
    """uv's ``--python-preference``: a frozen build uses uv-managed CPython only, never a
    Microsoft Store Python (redirected writes), python.org's or Homebrew's (breaks on upgrade).
    From source the developer's own interpreter is used, uv's default applies ("")."""
    is_frozen = getattr(sys, "frozen", False) if frozen is None else frozen
    return "only-managed" if is_frozen else ""


def git_packages() -> list[str]:
    """What a project's environment needs so ComfyUI-Manager can work without a system git:
    pygit2 when no working git is found (ComfyUI-Manager then runs with ``CM_USE_PYGIT2=1``)."""
    from comfymanager.core.install import sources

    return ["pygit2"] if sources.backend() == sources.PYGIT2 else []


def has_package(venv: Path, module: str) -> bool:
    """True when ``module`` is installed in ``venv`` (looked up on disk, no Python started)."""
    if os.name == "nt":
        return (venv / "Lib" / "site-packages" / module).is_dir()
    return any(p.is_dir() for p in venv.glob(f"lib/python3*/site-packages/{module}"))


def comfyui_git_env(venv: Path) -> dict[str, str]:
    """Environment for ComfyUI: ``CM_USE_PYGIT2=1`` when the project's environment has pygit2
    (installed because this machine has no working git), so ComfyUI-Manager uses it."""
    return {"CM_USE_PYGIT2": "1"} if has_package(venv, "pygit2") else {}


@dataclass(frozen=True)
class UvRunner:
    """uv with the data root's cache and the user's indexes."""

    paths: DataPaths
    settings: Settings

    def env(self) -> dict[str, str]:
        extra = {
            # one shared cache for a test session or a CI job (symlinks need rights on Windows)
            "UV_CACHE_DIR": os.environ.get(ENV_UV_CACHE) or str(self.paths.uv_cache),
            "UV_PYTHON_INSTALL_DIR": str(self.paths.uv_python),
            "UV_NO_PROGRESS": "1",
        }
        if python_preference():
            extra["UV_PYTHON_PREFERENCE"] = python_preference()
        return process.clean_env(extra)

    def index_args(self) -> list[str]:
        args: list[str] = []
        if self.settings.package_index_url:
            args += ["--default-index", self.settings.package_index_url]
        for url in self.settings.extra_index_urls:
            args += ["--index", url]
        return args

    def run(
        self,
        args: list[str],
        *,
        what: str,
        report: Reporter,
        cancel: CancelToken,
        fix: str | None = None,
    ) -> process.ProcessOutcome:
        outcome = process.run_tool(
            [find_uv(), *args], on_line=report.log, cancel=cancel, env=self.env()
        )
        return process.check(outcome, what, fix)


def python_version(venv: Path) -> str | None:
    py = venv_python(venv)
    if not py.exists():
        return None
    try:
        out = process.run_tool(
            [py, "-c", "import sys;print('%d.%d.%d' % sys.version_info[:3])"], timeout=30
        )
    except (ExternalToolError, NotFound, OSError):
        return None
    return out.tail[-1].strip() if out.ok and out.tail else None


def ensure_venv(
    uv: UvRunner, venv: Path, python: str, *, report: Reporter, cancel: CancelToken
) -> str:
    """Create the venv unless a complete one is there; return its Python version.

    A venv counts as complete only with our marker and a Python that runs, so a half-made one
    from an interrupted attempt is removed and made again instead of failing every retry.
    """
    version = python_version(venv) if (venv / MARKER).exists() else None
    if version:
        report.log(f"Environment exists (Python {version})")
        return version
    if venv.exists():
        report.log("Removing an incomplete environment from an earlier attempt")
        shutil.rmtree(venv, ignore_errors=True)
    uv.run(
        ["venv", "--no-project", "--python", python or default_python(), str(venv)],
        what="Creating the Python environment",
        report=report,
        cancel=cancel,
        fix="Check that the chosen Python exists, or pick another in the project settings.",
    )
    version = python_version(venv)
    if not version:
        raise ExternalToolError(
            "The new environment's Python does not start.",
            "Repair the project; if it persists choose another Python.",
        )
    persist.atomic_write_bytes(venv / MARKER, (version + "\n").encode("utf-8"))
    return version


def torch_index_url(
    settings: Settings, backend: str, *, os_name: str | None = None, family: str | None = None
) -> str | None:
    """The index that serves torch for ``backend``; None means the default (PyPI) index.

    ``rocm`` on Windows is AMD's own wheel index for the GPU's family (``family``, detected
    when not given); PyTorch's ROCm index has Linux wheels only."""
    if backend in ("pypi", "none"):
        return None
    if backend == "rocm" and (os_name or sys.platform) == "win32":
        fam = family if family is not None else hardware.detect().gpu_family
        if not fam:
            raise InvalidInput(
                "AMD publishes Windows PyTorch wheels only for Radeon RX 7000/9000 and Ryzen AI "
                "Max GPUs, and none was found.",
                "Choose the cpu backend, or set the AMD index (rocm_windows_index_url) to your "
                "GPU family's index.",
            )
        return settings.rocm_windows_index_url.replace("{family}", fam).rstrip("/")
    name = hardware.ROCM_INDEX if backend == "rocm" else backend
    return f"{settings.torch_index_url.rstrip('/')}/{name}"


def install_torch(
    uv: UvRunner, venv: Path, backend: str, *, report: Reporter, cancel: CancelToken
) -> str:
    """Install torch, torchvision and torchaudio from the backend's index; return the version."""
    if backend == "none":
        report.log("Torch backend 'none': torch is not installed")
        return ""
    args = ["pip", "install", "--python", str(venv_python(venv)), *TORCH_PACKAGES]
    index = torch_index_url(uv.settings, backend)
    if index:
        # explicit index first: torch and its CUDA/ROCm libraries must come from it
        args += ["--index", index, "--index-strategy", "first-index"]
    args += uv.index_args()
    try:
        uv.run(
            args,
            what=f"Installing torch ({backend})",
            report=report,
            cancel=cancel,
            fix="Check the network and the PyTorch index in Settings > Mirrors.",
        )
    except ExternalToolError as exc:
        import re
        import urllib.parse

        if index and re.search(_UNREACHABLE, f"{exc.message}\n{exc.details}", re.I):
            host = urllib.parse.urlsplit(index).netloc or index
            raise ExternalToolError(
                f"The PyTorch index ({host}) could not be reached, so torch ({backend}) "
                "was not installed.",
                "Set a mirror of the PyTorch index in Settings > Mirrors, or create the "
                "project with --torch-backend pypi (torch from the package index) or "
                "--torch-backend none (no torch).",
                exc.details,
            ) from None
        raise
    return installed_versions(uv, venv).get("torch", "")


_UNREACHABLE = (  # uv's words for "the index did not answer"
    r"failed to lookup address|dns error|error sending request|connection refused|"
    r"could not connect|tcp connect error|timed out|network is unreachable|"
    r"failed to fetch|no route to host"
)


def installed_versions(uv: UvRunner, venv: Path) -> dict[str, str]:
    lines: list[str] = []
    uv.run(
        ["pip", "freeze", "--python", str(venv_python(venv))],
        what="Listing packages",
        report=Reporter(log=lines.append),
        cancel=CancelToken(),
    )
    versions: dict[str, str] = {}
    for line in lines:
        if "==" in line:
            name, _, ver = line.partition("==")
            versions[name.strip().lower()] = ver.strip()
    return versions


def write_constraints(uv: UvRunner, venv: Path, target: Path) -> list[str]:
    """Pin whatever torch packages are installed; an empty file when there is no torch."""
    versions = installed_versions(uv, venv)
    pins = [f"{name}=={versions[name]}" for name in TORCH_PACKAGES if name in versions]
    persist.atomic_write_bytes(target, "".join(p + "\n" for p in pins).encode("utf-8"))
    return pins


def install_requirements(
    uv: UvRunner,
    venv: Path,
    requirement_files: list[Path],
    constraints: Path,
    *,
    extra: list[str] | None = None,
    what: str = "Installing requirements",
    report: Reporter,
    cancel: CancelToken,
    prefer_cache: bool = True,
) -> None:
    """Install requirements under the torch constraint.

    With ``prefer_cache`` uv first resolves from its cache alone (no index requests): a second
    project with the same requirements then takes about a second instead of three, and gets the
    versions its siblings already use. Anything not cached makes that attempt fail before it
    installs anything, and the install runs again against the index.
    """
    args = ["pip", "install", "--python", str(venv_python(venv))]
    for req in requirement_files:
        args += ["-r", str(req)]
    args += list(extra or [])
    if constraints.exists():
        args += ["--constraint", str(constraints)]
    args += uv.index_args()
    if prefer_cache:
        quiet: list[str] = []
        outcome = process.run_tool(
            [find_uv(), *args, "--offline"], on_line=quiet.append, cancel=cancel, env=uv.env()
        )
        if outcome.ok:
            for line in quiet:
                report.log(line)
            return
        report.log("Not everything is in the cache yet; using the package index")
    uv.run(
        args,
        what=what,
        report=report,
        cancel=cancel,
        fix="See the install log; a package may not exist for this Python or platform.",
    )


def install_comfyui_requirements(
    uv: UvRunner,
    comfyui: Path,
    venv: Path,
    constraints: Path,
    *,
    report: Reporter,
    cancel: CancelToken,
    prefer_cache: bool = True,
) -> None:
    """ComfyUI's ``requirements.txt`` under the torch constraint, with pip (custom nodes run
    ``python -m pip``), requests (older ComfyUI imports it undeclared) and pygit2 when there is
    no working git: the same set at install, repair and update."""
    reqs = [p for p in (comfyui / "requirements.txt",) if p.exists()]
    install_requirements(
        uv,
        venv,
        reqs,
        constraints,
        extra=["pip", "requests", *git_packages()],
        what="Installing ComfyUI's requirements",
        report=report,
        cancel=cancel,
        prefer_cache=prefer_cache,
    )
