"""What an in-place project (an adopted install run where it is) can and cannot do.

Imports nothing of install/launch, so both can ask it. An in-place project runs the install's own
Python and ``main.py``; start/stop/status/logs work, while whatever would change the install
(repair, update, rollback, pack changes) needs a rebuild: ``require_managed`` says so.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from comfymanager.core.adopt.scan import find_python
from comfymanager.core.errors import ComfyManagerError, InvalidInput, NotFound
from comfymanager.core.progress import Reporter
from comfymanager.core.projects import DamagedProject, Project, ProjectStore

if TYPE_CHECKING:
    from comfymanager.core.install.install import InstallResult

log = logging.getLogger(__name__)


def require_managed(project: Project, action: str) -> None:
    """Raise InvalidInput when ``project`` is an in-place adoption (``action``: "repair"...)."""
    if not project.in_place:
        return
    raise InvalidInput(
        f"Project '{project.id}' runs the existing install at {project.external_root} in "
        f"place: {action} needs a project comfymanager built.",
        f'Adopt it as a rebuild: \'comfymanager adopt "{project.external_root}" --name '
        f"{project.id}-rebuilt' (the folder is read, never changed).",
    )


def in_place_launch(project: Project) -> tuple[Path, Path]:
    """(python, main.py) of an in-place project, checked to exist now."""
    comfyui = Path(project.external_root)
    main = comfyui / "main.py"
    if not main.is_file():
        raise NotFound(
            f"The adopted ComfyUI at {comfyui} is gone (no main.py).",
            f"Put the folder back, or delete the project '{project.id}' (only its record goes).",
        )
    python = find_python(comfyui)
    if python is None:
        raise NotFound(
            f"The adopted install at {comfyui} has no Python environment any more.",
            "Put its venv (or python_embeded) back, or adopt it as a rebuild.",
        )
    return python, main


def restore_in_place(
    store: ProjectStore, damaged: DamagedProject, report: Reporter
) -> InstallResult | None:
    """Rewrite a damaged in-place project's ``project.json`` from its ``adopted.json`` and a new
    read-only scan (a repair must never turn it into a project that installs its own ComfyUI).
    None when the project was not adopted in place (the caller rebuilds it as usual)."""
    from comfymanager.core.adopt.adopt import IN_PLACE, in_place_project, read_record
    from comfymanager.core.adopt.scan import scan
    from comfymanager.core.install.install import InstallResult

    dirs = store.dirs(damaged.project_id)
    record = read_record(dirs)
    if not record or record.get("mode") != IN_PLACE:
        return None
    try:
        found = scan(str(record.get("comfyui_dir") or record.get("source") or ""))
    except ComfyManagerError as exc:
        raise NotFound(
            f"Project '{damaged.project_id}' ran an install in place that cannot be read any "
            f"more: {exc.message}",
            f"Put the folder back and repair again, or delete '{damaged.project_id}' (only "
            "comfymanager's record goes).",
        ) from None
    project = in_place_project(dirs.root.name, found, str(record.get("torch_backend") or "none"))
    store.save(project)
    line = (
        f"Project '{project.id}' was damaged ({damaged.cause}); project.json rebuilt from "
        f"adopted.json: it runs {project.external_root} in place again."
    )
    log.warning("%s", line)
    report.log(line)
    return InstallResult(
        project.id,
        project.comfyui_ref,
        project.comfyui_commit,
        project.python_version,
        project.torch_backend_resolved,
        project.torch_version,
        0.0,
    )
