"""The last "Update available" answer per project, kept in ``<data>/cache/update-checks.json``.

``check_updates`` asks the ComfyUI source (``git ls-remote``) and the packs' remotes or the
registry, so the window asks it in the background every few hours (``Settings
.update_check_hours``), not at every poll; the answers are kept here (versioned JSON, written
atomically) so a restart shows the last one at once, with its age. A check that failed
(offline, a source that does not answer) is retried sooner, but backing off: 10 min, 20, 40...
up to the normal interval, so an offline machine is not asked over and over.

``check_project`` is the one check the window runs (a project it cannot check, an in-place
install or one still installing, gives None and is not kept).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from comfymanager.core import persist
from comfymanager.core.context import CoreContext
from comfymanager.core.errors import ComfyManagerError
from comfymanager.core.lifecycle.update import PackChange, UpdateCheck, check_updates
from comfymanager.core.paths import DataPaths
from comfymanager.core.projects import ProjectStore

log = logging.getLogger(__name__)

KIND = "comfymanager.update-checks"
VERSION = 1
RETRY_FIRST = 600.0  # seconds before the first retry of a failed check (then doubled)


@dataclass(frozen=True)
class CachedCheck:
    """One project's last answer: ``checked_at`` is wall-clock time (``time.time()``),
    ``failures`` how many checks in a row ended in an error."""

    check: UpdateCheck
    checked_at: float
    failures: int = 0

    def due_at(self, every: float) -> float:
        """When the next automatic check is due (``every``: seconds between checks)."""
        if self.failures <= 0:
            return self.checked_at + every
        backoff = RETRY_FIRST * float(2 ** min(self.failures - 1, 20))
        return self.checked_at + min(every, backoff)

    def age(self, now: float | None = None) -> float:
        return max(0.0, (time.time() if now is None else now) - self.checked_at)


def cache_file(paths: DataPaths) -> Path:
    return paths.cache / "update-checks.json"


def _check_to_json(check: UpdateCheck) -> dict[str, Any]:
    data = asdict(check)
    data["packs"] = [asdict(p) for p in check.packs]
    data["unchecked"] = [list(u) for u in check.unchecked]
    return data


def _check_from_json(data: dict[str, Any]) -> UpdateCheck:
    packs = tuple(
        PackChange(
            folder=str(p["folder"]),
            kind=str(p["kind"]),
            old=str(p["old"]),
            new=str(p["new"]),
            new_commit=str(p.get("new_commit", "")),
            requirements_diff=tuple(str(x) for x in p.get("requirements_diff", ())),
            release=bool(p.get("release", False)),
        )
        for p in data.get("packs", ())
    )
    return UpdateCheck(
        project=str(data["project"]),
        comfyui_current=str(data.get("comfyui_current", "")),
        comfyui_latest=str(data.get("comfyui_latest", "")),
        comfyui_available=bool(data.get("comfyui_available", False)),
        packs=packs,
        error=str(data.get("error", "")),
        unchecked=tuple((str(a), str(b)) for a, b in data.get("unchecked", ())),
    )


def load(paths: DataPaths) -> dict[str, CachedCheck]:
    """Every kept answer; an absent, damaged or newer-format file gives none (it is a cache)."""
    try:
        data = persist.read_json(cache_file(paths), KIND, VERSION)
    except FileNotFoundError:
        return {}
    except ComfyManagerError as exc:
        log.info("update checks not read (%s); checking again", exc.message)
        return {}
    out: dict[str, CachedCheck] = {}
    for pid, entry in dict(data.get("projects", {})).items():
        try:
            out[str(pid)] = CachedCheck(
                _check_from_json(entry["check"]),
                float(entry["checked_at"]),
                int(entry.get("failures", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:  # one bad entry: check that one again
            log.info("update check of %s not read: %r", pid, exc)
    return out


def save(paths: DataPaths, entries: dict[str, CachedCheck]) -> None:
    """Write every answer atomically (the caller is the one writer: the window's watch)."""
    payload = {
        "projects": {
            pid: {
                "check": _check_to_json(e.check),
                "checked_at": e.checked_at,
                "failures": e.failures,
            }
            for pid, e in sorted(entries.items())
        }
    }
    cache_file(paths).parent.mkdir(parents=True, exist_ok=True)
    persist.write_json(cache_file(paths), KIND, VERSION, payload)


def record(previous: CachedCheck | None, check: UpdateCheck, now: float) -> CachedCheck:
    """The new entry for ``check``: failures counted in a row, reset by an answer."""
    failures = (previous.failures + 1 if previous is not None else 1) if check.error else 0
    return CachedCheck(check, now, failures)


def check_project(ctx: CoreContext, project_id: str) -> UpdateCheck | None:
    """``check_updates`` for a project that can be updated; None for one that cannot (an
    in-place install, one not installed yet, one that is gone or unreadable)."""
    try:
        project = ProjectStore(ctx.paths).load(project_id)
    except (ComfyManagerError, OSError) as exc:
        log.info("update check of %s skipped: %s", project_id, exc)
        return None
    if project.in_place or project.install.status != "ready" or not project.comfyui_commit:
        return None
    return check_updates(ctx, project_id)
