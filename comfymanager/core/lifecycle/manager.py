"""ComfyUI-Manager inside a project, opt in (``Project.manager``), installed the way that
ComfyUI version expects:

- a checkout with ``manager_requirements.txt`` (ComfyUI 0.3.6x and later) gets those
  requirements (the pip package ``comfyui-manager``) resolved with every enabled pack's and
  installed under the torch constraint; ComfyUI is then started with ``--enable-manager``
  (``launch.build``);
- an older checkout gets ComfyUI-Manager cloned as a custom node from ``manager_source``
  (setting, or ``COMFYMANAGER_MANAGER_SOURCE``), recorded as one of the project's packs.

Turning it off removes what turning it on installed, after a snapshot: the packages
``manager_requirements.txt`` names are uninstalled with uv (and the launch flag dropped), or the
custom node comfymanager cloned is removed (one put there by hand is only moved into
``custom_nodes/.disabled``); so ``packs`` and the environment's freeze reflect it, and turning it
on again installs it again. Packs Manager adds or removes from
inside ComfyUI show in ``pack_list.list_packs``; ``changed_since_last_snapshot`` tells start to
take a snapshot.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from comfymanager.core import fileops
from comfymanager.core.context import CoreContext
from comfymanager.core.errors import Conflict
from comfymanager.core.install import envs
from comfymanager.core.lifecycle import packs
from comfymanager.core.lifecycle.pack_list import DISABLED_DIR, _snapshot, record_state, scan
from comfymanager.core.lifecycle.pack_reqs import check_requirements, enabled_requirements
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import Project, ProjectDirs, ProjectStore
from comfymanager.core.run import runs

MANAGER_FOLDER = "ComfyUI-Manager"
MANAGER_REQUIREMENTS = "manager_requirements.txt"
MANAGER_FLAG = "--enable-manager"
_REQ_NAME = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True)
class ManagerChange:
    """``how``: pip (the package and ComfyUI's flag) | custom-node (the cloned pack)."""

    project: str
    enabled: bool
    how: str
    seconds: float


def manager_mode(dirs: ProjectDirs) -> str:
    """How this project's ComfyUI version takes ComfyUI-Manager."""
    return "pip" if (dirs.comfyui / MANAGER_REQUIREMENTS).is_file() else "custom-node"


def wants_flag(project: Project, dirs: ProjectDirs) -> bool:
    """Should ComfyUI be started with ``--enable-manager``?"""
    return bool(getattr(project, "manager", False)) and manager_mode(dirs) == "pip"


def set_manager(
    ctx: CoreContext, project_id: str, enabled: bool, *, report: Reporter, cancel: CancelToken
) -> ManagerChange:
    """Turn ComfyUI-Manager on or off for a project (a snapshot first; resumable: turning it
    on again finishes an interrupted install)."""
    started = time.monotonic()
    with runs.project_lock(ctx, project_id):
        store = ProjectStore(ctx.paths)
        _, project, dirs = packs._open(ctx, project_id)
        how = manager_mode(dirs)
        if how == "pip":
            _snapshot(ctx, project_id, f"manager {'on' if enabled else 'off'}")
            if enabled:
                install_pip_manager(ctx, dirs, report=report, cancel=cancel)
            else:
                uninstall_pip_manager(ctx, dirs, report=report, cancel=cancel)
        elif enabled:
            _enable_custom_node(ctx, project, dirs, report=report, cancel=cancel)
        else:
            _remove_custom_node(ctx, project, dirs, report=report, cancel=cancel)
        project = store.load(project_id)  # the pack operations saved their own changes
        project.manager = enabled
        store.save(project)
        record_state(ctx, project_id)
        report.log(f"ComfyUI-Manager {'on' if enabled else 'off'} ({how})")
        return ManagerChange(project_id, enabled, how, time.monotonic() - started)


def install_pip_manager(
    ctx: CoreContext, dirs: ProjectDirs, *, report: Reporter, cancel: CancelToken
) -> None:
    """``manager_requirements.txt`` resolved with the enabled packs', then installed under the
    torch constraint (for set_manager and for a repair of a project with Manager on)."""
    reqs = dirs.comfyui / MANAGER_REQUIREMENTS
    files = enabled_requirements(dirs)
    files[MANAGER_FOLDER] = reqs
    check_requirements(ctx, dirs, files, report=report, cancel=cancel)
    uv = envs.UvRunner(ctx.paths, ctx.settings)
    envs.install_requirements(
        uv,
        dirs.venv,
        [reqs],
        dirs.constraints,
        what="Installing ComfyUI-Manager",
        report=report,
        cancel=cancel,
    )


def manager_packages(reqs: Path) -> list[str]:
    """The distribution names a requirements file installs (``name==1.0``, ``name @ url``,
    ``name[extra]>=1``); options and comments are skipped."""
    names: list[str] = []
    for raw in reqs.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.split("#", 1)[0].strip()
        match = _REQ_NAME.match(line)
        if match and not line.startswith("-"):
            names.append(match.group(1))
    return names


def uninstall_pip_manager(
    ctx: CoreContext, dirs: ProjectDirs, *, report: Reporter, cancel: CancelToken
) -> None:
    """Uninstall what ``install_pip_manager`` installed (the packages ``manager_requirements.txt``
    names; their own dependencies stay, as pip leaves them). The caller took the snapshot."""
    reqs = dirs.comfyui / MANAGER_REQUIREMENTS
    names = manager_packages(reqs) if reqs.is_file() else []
    if not names:
        return
    uv = envs.UvRunner(ctx.paths, ctx.settings)
    python = str(envs.venv_python(dirs.venv))
    uv.run(
        ["pip", "uninstall", "--python", python, *names],
        what="Removing ComfyUI-Manager",
        report=report,
        cancel=cancel,
    )


def _remove_custom_node(
    ctx: CoreContext,
    project: Project,
    dirs: ProjectDirs,
    *,
    report: Reporter,
    cancel: CancelToken,
) -> None:
    """The custom node comfymanager installed is removed (a snapshot first, by ``remove_pack``);
    one put there by hand is only disabled, so nothing of the user's is deleted."""
    seen = scan(dirs.custom_nodes).get(MANAGER_FOLDER)
    recorded = any(p.folder == MANAGER_FOLDER for p in project.packs)
    if recorded:
        packs.remove_pack(ctx, project.id, MANAGER_FOLDER, report=report, cancel=cancel)
    elif seen is not None and seen.enabled:
        packs.set_enabled(ctx, project.id, MANAGER_FOLDER, False, report=report, cancel=cancel)


def after_comfyui_change(
    ctx: CoreContext,
    project: Project,
    dirs: ProjectDirs,
    *,
    report: Reporter,
    cancel: CancelToken,
) -> None:
    """For ``update`` (the caller holds the lock and took the snapshot): a project with Manager
    on whose new ComfyUI takes the pip package gets it, and its custom-node copy of
    ComfyUI-Manager is disabled (two Managers in one ComfyUI fight over the same routes)."""
    if not getattr(project, "manager", False) or manager_mode(dirs) != "pip":
        return
    retire_custom_node(dirs, report)
    install_pip_manager(ctx, dirs, report=report, cancel=cancel)


def retire_custom_node(dirs: ProjectDirs, report: Reporter) -> bool:
    """Move an enabled ``custom_nodes/ComfyUI-Manager`` into ``.disabled/``; True if moved."""
    seen = scan(dirs.custom_nodes).get(MANAGER_FOLDER)
    if seen is None or not seen.enabled:
        return False
    target = dirs.custom_nodes / DISABLED_DIR / MANAGER_FOLDER
    if target.exists():
        raise Conflict(
            f"{target} already exists, so the custom-node ComfyUI-Manager cannot be disabled.",
            "Move that folder away, then update again.",
        )
    target.parent.mkdir(exist_ok=True)
    fileops.rename(seen.path, target)
    report.log(
        "ComfyUI-Manager now comes as ComfyUI's pip package: its custom-node copy is disabled"
    )
    return True


def _enable_custom_node(
    ctx: CoreContext,
    project: Project,
    dirs: ProjectDirs,
    *,
    report: Reporter,
    cancel: CancelToken,
) -> None:
    seen = scan(dirs.custom_nodes).get(MANAGER_FOLDER)
    recorded = any(p.folder == MANAGER_FOLDER and p.status == "installed" for p in project.packs)
    if seen is not None and not seen.enabled:
        packs.set_enabled(ctx, project.id, MANAGER_FOLDER, True, report=report, cancel=cancel)
    elif seen is None or not recorded:
        if seen is not None:  # ComfyUI-Manager put there by hand: keep it, record nothing new
            report.log(f"{MANAGER_FOLDER} is already in custom_nodes; kept as it is")
            return
        source = ctx.settings.manager_source
        report.log(f"Installing ComfyUI-Manager as a custom node from {source}")
        packs.add_pack(
            ctx, project.id, f"{source}", folder=MANAGER_FOLDER, report=report, cancel=cancel
        )
