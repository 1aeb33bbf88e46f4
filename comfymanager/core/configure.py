"""A project's settings after creation: port, listen, launch arguments, GPUs, extra environment.

``configure`` checks every value before anything is written (``validate``, no I/O but reading
the project's ComfyUI flags), then saves the project under its lock, atomically. The launch
applies them: ``gpu_env`` (``CUDA_VISIBLE_DEVICES`` for a CUDA torch, ``HIP_VISIBLE_DEVICES`` for
ROCm) and ``gpu_flags`` (``--cuda-device N`` when one GPU is chosen), then the project's ``env``.

Launch arguments are split as a POSIX shell would (``shlex``). Flags we set ourselves (port,
listen, the project's folders) are refused with the option that sets them; other flags are
checked against those the project's ComfyUI declares in ``comfy/cli_args.py`` when it is there.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from comfymanager.core.context import CoreContext
from comfymanager.core.errors import Conflict, InvalidInput
from comfymanager.core.process import KEPT_NAMES, LEAKY_NAMES, LEAKY_PREFIXES
from comfymanager.core.projects import Project, ProjectStore
from comfymanager.core.run import ports

AUTO = "auto"
_ENV_KEY = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_GPU_IDS = re.compile(r"^\d{1,2}(,\d{1,2})*$")
_FLAG_RE = re.compile(r"""["'](--[A-Za-z0-9][A-Za-z0-9-]*)["']""")
MAX_ENV_VALUE = 4096
#: flags comfymanager sets itself, and the option a user has instead
OWNED_FLAGS = {
    "--port": "the port setting (--port N|auto)",
    "--listen": "the listen setting (--listen / --no-listen)",
    "--input-directory": "the project's own input folder",
    "--output-directory": "the project's own output folder",
    "--user-directory": "the project's own user folder",
    "--temp-directory": "the project's own temp folder",
    "--database-url": "the project's own database",
    "--extra-model-paths-config": "the shared model store (Settings)",
    "--base-directory": "the project's own folders",
    "--cuda-device": "the GPU setting (--gpu IDS)",
}
#: environment variables comfymanager sets or keeps out, and why
OWNED_ENV = {
    "CUDA_VISIBLE_DEVICES": "it is set from the GPU setting (--gpu IDS)",
    "HIP_VISIBLE_DEVICES": "it is set from the GPU setting (--gpu IDS)",
    "CM_USE_PYGIT2": "comfymanager sets it when the project needs pygit2",
    "HF_TOKEN": "tokens are never written to a project: set it in your environment or Settings",
    "HUGGING_FACE_HUB_TOKEN": "tokens are never written to a project: use Settings > Tokens",
    "CIVITAI_API_TOKEN": "tokens are never written to a project: use Settings > Tokens",
    "CIVITAI_TOKEN": "tokens are never written to a project: use Settings > Tokens",
}


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


@dataclass(frozen=True)
class ProjectSettings:
    """What ``config NAME`` prints: the values a launch uses."""

    project: str
    port: int | None
    last_port: int | None
    listen: bool
    launch_args: tuple[str, ...]
    gpu: str
    env: Mapping[str, str]

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "port": self.port if self.port is not None else AUTO,
            "last_port": self.last_port,
            "listen": self.listen,
            "launch_args": list(self.launch_args),
            "launch_args_text": shlex.join(self.launch_args),
            "gpu": self.gpu,
            "env": dict(self.env),
        }


def settings_of(project: Project) -> ProjectSettings:
    return ProjectSettings(
        project=project.id,
        port=project.port,
        last_port=project.last_port,
        listen=project.listen_network,
        launch_args=tuple(project.launch_args),
        gpu=project.gpu,
        env=dict(project.env),
    )


# --- checks --------------------------------------------------------------------------------


def parse_port(value: object) -> int | None:
    """``"auto"`` or None: the pool (a remembered port is reused while free); else a port."""
    if value is None or (isinstance(value, str) and value.strip().lower() in (AUTO, "")):
        return None
    return ports.validate_port(value)


def known_flags(comfyui: Path) -> frozenset[str] | None:
    """The flags this ComfyUI declares (from ``comfy/cli_args.py``), or None when unknown."""
    source = comfyui / "comfy" / "cli_args.py"
    try:
        text = source.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    found = frozenset(_FLAG_RE.findall(text))
    return found or None


def parse_launch_args(value: str | Iterable[str], known: frozenset[str] | None) -> list[str]:
    """Split and check launch arguments; InvalidInput names the first bad one."""
    if isinstance(value, str):
        try:
            args = shlex.split(value)
        except ValueError as exc:
            raise InvalidInput(
                f"The launch arguments {value!r} cannot be split: {exc}.",
                "Close the quote, or escape it with a backslash.",
            ) from None
    else:
        args = [str(a) for a in value]
    for arg in args:
        if "\0" in arg or "\n" in arg:
            raise InvalidInput(
                f"The launch argument {arg!r} holds a line break or NUL.",
                "Give each argument on one line.",
            )
        if not arg.startswith("--"):
            continue
        flag = arg.split("=", 1)[0]
        if flag in OWNED_FLAGS:
            raise InvalidInput(
                f"{flag} is set by comfymanager.", f"Use {OWNED_FLAGS[flag]} instead."
            )
        if known is not None and flag not in known:
            raise InvalidInput(
                f"This project's ComfyUI does not know the flag {flag}.",
                "Check the spelling against 'python main.py --help' of this ComfyUI version.",
            )
    return args


def parse_gpu(value: str) -> str:
    """``"0,1"``-style GPU ids (order kept, repeats dropped); "" means every GPU."""
    text = value.replace(" ", "").strip(",")
    if not text or text.lower() in ("all", AUTO):
        return ""
    if not _GPU_IDS.match(text):
        raise InvalidInput(
            f"{value!r} is not a list of GPU numbers.",
            "Give GPU numbers separated by commas, e.g. 0 or 0,1 (as nvidia-smi numbers them).",
        )
    return ",".join(dict.fromkeys(text.split(",")))


def check_env(env: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in env.items():
        if not _ENV_KEY.match(key):
            raise InvalidInput(
                f"{key!r} is not an environment variable name comfymanager accepts.",
                "Use capital letters, digits and '_', not starting with a digit.",
            )
        why = OWNED_ENV.get(key)
        if (
            why is None
            and key not in KEPT_NAMES
            and (key in LEAKY_NAMES or key.startswith(LEAKY_PREFIXES))
        ):
            why = "it would make ComfyUI use another Python or packages than its project's"
        if why:
            raise InvalidInput(f"{key} cannot be set for a project: {why}.")
        value = str(value)
        if "\0" in value or len(value) > MAX_ENV_VALUE:
            raise InvalidInput(
                f"The value of {key} holds a NUL or is longer than {MAX_ENV_VALUE} characters."
            )
        out[key] = value
    return out


def parse_env_pairs(pairs: Iterable[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings (the CLI's ``--env``) as a dict; InvalidInput for one without '='."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InvalidInput(f"{pair!r} is not KEY=VALUE.", "Write it as --env KEY=VALUE.")
        out[key.strip()] = value
    return out


# --- the launch side -----------------------------------------------------------------------


def _vendor(project: Project) -> str:
    backend = project.torch_backend_resolved or project.torch_backend
    version = project.torch_version
    if backend.startswith("rocm") or "+rocm" in version:
        return "rocm"
    if backend.startswith("cu") or "+cu" in version or backend == "pypi":
        return "cuda"
    return ""


def gpu_env(project: Project) -> dict[str, str]:
    """The variable that limits ComfyUI to the chosen GPUs, for this project's torch build."""
    if not project.gpu:
        return {}
    vendor = _vendor(project)
    if vendor == "rocm":
        return {"HIP_VISIBLE_DEVICES": project.gpu}
    if vendor == "cuda":
        return {"CUDA_VISIBLE_DEVICES": project.gpu}
    return {}


def gpu_flags(project: Project, user_args: Iterable[str]) -> list[str]:
    """``--cuda-device N`` when exactly one GPU is chosen (CUDA or ROCm torch), unless the
    launch arguments pick a device already."""
    ids = [i for i in project.gpu.split(",") if i]
    if len(ids) != 1 or not _vendor(project):
        return []
    if any(a.split("=", 1)[0] in ("--cuda-device", "--cpu", "--directml") for a in user_args):
        return []
    return ["--cuda-device", ids[0]]


# --- the change ----------------------------------------------------------------------------


def _check_port_unshared(store: ProjectStore, project_id: str, port: int) -> None:
    others, _ = store.list()
    owner = next((p.id for p in others if p.id != project_id and p.port == port), None)
    if owner is not None:
        raise Conflict(
            f"Port {port} is already the fixed port of project '{owner}'.",
            "Give this project another port, or leave it automatic.",
        )


def configure(
    ctx: CoreContext,
    project_id: str,
    *,
    port: int | str | None = UNSET,
    listen: bool | None = None,
    launch_args: str | Iterable[str] | None = None,
    gpu: str | None = None,
    env: Mapping[str, str] | None = None,
    unset_env: Iterable[str] = (),
    lock_timeout: float = 10.0,
) -> Project:
    """Change the given settings (None/UNSET: keep). ``port``: a number, or "auto"/None for the
    pool. ``env`` adds or replaces variables, ``unset_env`` removes them. Applies at the next
    launch; nothing is written when any value is refused."""
    from comfymanager.core.run.runstate import project_lock

    store = ProjectStore(ctx.paths)
    store.load(project_id)  # NotFound / DamagedProject before the lock
    with project_lock(
        ctx,
        project_id,
        timeout=lock_timeout,
        busy=f"Project '{project_id}' is busy (installing, starting or stopping).",
    ):
        project = store.load(project_id)
        dirs = store.dirs(project.id)
        if port is not UNSET:
            project.port = parse_port(port)
            if project.port is not None:
                _check_port_unshared(store, project.id, project.port)
        if listen is not None:
            project.listen_network = bool(listen)
        if launch_args is not None:
            project.launch_args = parse_launch_args(launch_args, known_flags(dirs.comfyui))
        if gpu is not None:
            project.gpu = parse_gpu(gpu)
        merged = dict(project.env)
        for key in unset_env:
            merged.pop(key.strip(), None)
        merged.update(check_env(dict(env or {})))
        project.env = merged
        store.save(project)
        return project
