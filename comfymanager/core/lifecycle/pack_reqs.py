"""Resolve the requirements of ComfyUI and every enabled pack together, before anything is
installed: uv's ``pip install --dry-run`` in the project's environment under its torch
constraint (uv's cache first, the index only when the cache lacks something). A conflict is a
``PackConflict`` whose message names the two packs and their requirement lines (uv's resolver
message mapped back to the files that declared each name).
"""

from __future__ import annotations

import re
from pathlib import Path

from comfymanager.core import process
from comfymanager.core.context import CoreContext
from comfymanager.core.errors import Conflict, ExternalToolError
from comfymanager.core.install import envs
from comfymanager.core.lifecycle.pack_list import scan
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import ProjectDirs

COMFYUI_LABEL = "ComfyUI"
TORCH_LABEL = "the project's pinned torch"
_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_OFFLINE_MISS = ("network was disabled", "not found in the cache", "--offline")


class PackConflict(Conflict):
    """The packs' requirements cannot be installed together; ``packs`` names who declared what."""

    def __init__(
        self, message: str, fix: str, packs: tuple[str, ...] = (), details: str = ""
    ) -> None:
        super().__init__(message, fix)
        self.packs = packs
        self.details = details


# --- requirements: resolved together before anything is installed ------------------------------


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_lines(path: Path) -> dict[str, str]:
    """Normalised requirement name -> its line, for one requirements file (options skipped)."""
    out: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return out
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        m = _REQ_NAME.match(line)
        if m:
            out.setdefault(_norm(m.group(1)), line)
    return out


def _mentioned(output: str) -> list[str]:
    mentioned: list[str] = []
    for word in _WORD.findall(output.replace("`", " ")):
        key = _norm(word)
        if key not in mentioned:
            mentioned.append(key)
    return mentioned


def _involved(
    output: str, mentioned: list[str], declared: dict[str, dict[str, str]]
) -> list[tuple[str, str, str]]:
    """(label, requirement name, line) of each declarer uv's message names, in its order: by
    the requirement's name, or by the address of a direct reference (``name @ URL``)."""
    involved: list[tuple[str, str, str]] = []
    for reqs in declared.values():
        for key, line in reqs.items():
            _, at, url = line.partition("@")
            if at and url.strip() and url.strip() in output and key not in mentioned:
                mentioned.append(key)
    for key in mentioned:
        for label, reqs in declared.items():
            if key in reqs and all(label != i[0] for i in involved):
                involved.append((label, key, reqs[key]))
    return involved


def explain_failure(output: str, declared: dict[str, dict[str, str]]) -> ExternalToolError:
    """uv failed without a resolver conflict (a wheel that is not there, a build that fails):
    the pack whose requirement it names, when one is."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    cause = next((ln.removeprefix("error:").strip() for ln in lines if ln.startswith("error:")), "")
    involved = _involved(output, _mentioned(output), declared)
    if involved:
        label, _, line = involved[0]
        message = (
            f"The requirements of {_who(label)} cannot be installed ('{line}': "
            f"{cause or 'uv failed'}); nothing was changed."
        )
        fix = "The pack's requirements.txt names something that cannot be installed here; "
        fix += "choose another version of the pack, or tell its author."
    else:
        message = f"uv could not resolve the packs' requirements ({cause}); nothing was changed."
        fix = "See the details; check the network and the package index in Settings."
    return ExternalToolError(message, fix, "\n".join(lines[-20:]))


def explain_conflict(output: str, declared: dict[str, dict[str, str]]) -> PackConflict:
    """Turn uv's resolver message into a sentence naming the packs (``declared``: label ->
    requirement name -> line) and the requirements that clash."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    cause = next(
        (ln.removeprefix("cause:").strip() for ln in lines if ln.startswith("cause:")), ""
    ) or next((ln.removeprefix("error:").strip() for ln in lines if ln.startswith("error:")), "")
    mentioned = _mentioned(output)
    involved = _involved(output, mentioned, declared)
    shared = next(
        (key for key in mentioned if sum(1 for r in declared.values() if key in r) >= 2), None
    )
    packs: tuple[str, ...]
    if shared is not None:
        pair = [(label, reqs[shared]) for label, reqs in declared.items() if shared in reqs][:2]
        (a, line_a), (b, line_b) = pair
        message = (
            f"The requirements conflict: {_who(a)} needs '{line_a}' and {_who(b)} needs "
            f"'{line_b}'; nothing was changed."
        )
        packs = (a, b)
    elif len(involved) >= 2:
        (a, _, line_a), (b, _, line_b) = involved[:2]
        message = (
            f"The requirements conflict: {_who(a)} needs '{line_a}' and {_who(b)} needs "
            f"'{line_b}', which cannot be installed together ({cause}); nothing was changed."
        )
        packs = (a, b)
    elif involved:
        label, _, line = involved[0]
        message = (
            f"The requirements of {_who(label)} cannot be installed ('{line}': {cause}); "
            "nothing was changed."
        )
        packs = (label,)
    else:
        message = f"The packs' requirements cannot be installed together ({cause}); nothing was "
        message += "changed."
        packs = ()
    fix = (
        "Choose another version of one of these packs (pack add NAME SOURCE@VERSION), or "
        "disable one of them first."
    )
    return PackConflict(message, fix, packs, "\n".join(lines[-20:]))


def _who(label: str) -> str:
    if label in (COMFYUI_LABEL, TORCH_LABEL):
        return label
    return f"pack {label}"


def check_requirements(
    ctx: CoreContext,
    dirs: ProjectDirs,
    files: dict[str, Path],
    *,
    report: Reporter,
    cancel: CancelToken,
) -> None:
    """Resolve ``files`` (label -> requirements.txt) together in the project's environment
    under its torch constraint, without installing; raise ``PackConflict`` when they clash.
    uv's cache is tried first (no index requests); the index only when the cache lacks
    something."""
    files = {label: path for label, path in files.items() if path.is_file()}
    if not files:
        return
    uv = envs.UvRunner(ctx.paths, ctx.settings)
    args = [
        envs.find_uv(),
        "pip",
        "install",
        "--dry-run",
        "--python",
        str(envs.venv_python(dirs.venv)),
    ]
    for path in files.values():
        args += ["-r", str(path)]
    if dirs.constraints.is_file():
        args += ["--constraint", str(dirs.constraints)]
    args += uv.index_args()
    report.log("Resolving the requirements of ComfyUI and every enabled pack together")
    text: list[str] = []
    outcome = process.run_tool(
        [*args, "--offline"], on_line=text.append, cancel=cancel, env=uv.env(), timeout=600
    )
    if not outcome.ok and any(m in "\n".join(text) for m in _OFFLINE_MISS):
        text = []
        outcome = process.run_tool(
            args, on_line=text.append, cancel=cancel, env=uv.env(), timeout=600
        )
    if outcome.ok:
        return
    declared = {label: requirement_lines(path) for label, path in files.items()}
    if dirs.constraints.is_file():
        declared[TORCH_LABEL] = requirement_lines(dirs.constraints)
    output = "\n".join(text) or "\n".join(outcome.tail)
    if "No solution found" not in output and "conflicting" not in output:
        raise explain_failure(output, declared)
    raise explain_conflict(output, declared)


def enabled_requirements(dirs: ProjectDirs, skip: str = "") -> dict[str, Path]:
    files = {COMFYUI_LABEL: dirs.comfyui / "requirements.txt"}
    for name, seen in scan(dirs.custom_nodes).items():
        if seen.enabled and name != skip:
            files[name] = seen.path / "requirements.txt"
    return files
