"""What an in-place project (an adopted install run where it is) can and cannot do.

Imports nothing of install/launch, so both can ask it. An in-place project runs the install's own
Python and ``main.py``; start/stop/status/logs work, while whatever would change the install
(repair, update, rollback, pack changes) needs a rebuild: ``require_managed`` says so.
"""

from __future__ import annotations

from pathlib import Path

from comfymanager.core.adopt.scan import find_python
from comfymanager.core.errors import InvalidInput, NotFound
from comfymanager.core.projects import Project


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
