"""Projects: the model, name validation and the on-disk store (one folder per project).

A project has a display name (free text: unicode, spaces, up to ``MAX_DISPLAY`` characters, kept
in ``project.json``) and an id, the name of its folder: a short ASCII slug made from the display
name (``slug_for``: at most ``SLUG_MAX`` characters, no Windows-reserved names or trailing dots,
de-duplicated case-insensitively), so the deep ``venv``/``custom_nodes`` paths stay short on
Windows. A name that already is a short valid folder name is its own slug; a project made before
slugs existed has its folder name as both id and name. ``ProjectStore.resolve`` takes either.

A project folder holds ``project.json`` (versioned, atomic), the ComfyUI source clone, its
virtual environment, its own input/output/user/temp folders, logs and the run record. Nothing of a
project lives outside its folder except the shared model store and caches.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from comfymanager.core import fileops, persist
from comfymanager.core.cleanup import trash_name
from comfymanager.core.errors import (
    ComfyManagerError,
    Conflict,
    CorruptFile,
    InvalidInput,
    NotFound,
)
from comfymanager.core.killpoint import kill_point
from comfymanager.core.paths import DataPaths

log = logging.getLogger(__name__)

KIND = "comfymanager.project"
VERSION = 2  # 2: display_name (a project of version 1 is named by its folder)
MAX_NAME = 64  # a folder name (project id) typed or made by hand before slugs existed
MAX_DISPLAY = 120  # a display name
SLUG_MAX = 24  # a folder made from a display name
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")
_WINDOWS_RESERVED = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"COM{i}" for i in range(1, 10)),
    *(f"LPT{i}" for i in range(1, 10)),
}

# install stages, in order; each is idempotent and recorded when done
STAGES = ("clone", "venv", "torch", "requirements", "packs", "finish")


def validate_id(name: str) -> str:
    """Return the folder name (project id) ``name`` or raise InvalidInput saying what is wrong."""
    fix = (
        "Use letters, digits, spaces, '.', '_' or '-', starting with a letter or digit, "
        f"at most {MAX_NAME} characters."
    )
    stripped = name.strip()
    if not stripped:
        raise InvalidInput("A project needs a name.", fix)
    if len(stripped) > MAX_NAME:
        raise InvalidInput(f"The name is {len(stripped)} characters long.", fix)
    if "/" in stripped or "\\" in stripped or ".." in stripped:
        raise InvalidInput(f"The name {stripped!r} contains a path separator or '..'.", fix)
    if not _NAME_RE.match(stripped) or stripped.endswith((".", " ")):
        raise InvalidInput(f"The name {stripped!r} has characters that cannot be a folder.", fix)
    if stripped.split(".")[0].upper().rstrip() in _WINDOWS_RESERVED:
        raise InvalidInput(f"{stripped!r} is a reserved name on Windows.", fix)
    return stripped


def validate_name(name: str) -> str:
    """Return the display name for ``name`` (stripped) or raise InvalidInput saying what is wrong.

    Free text: any letters (unicode), digits, spaces and punctuation; no control or invisible
    formatting characters (they would hide in lists and terminals), at most ``MAX_DISPLAY``.
    """
    fix = f"Use a name of at most {MAX_DISPLAY} visible characters, on one line."
    stripped = unicodedata.normalize("NFC", name).strip()
    if not stripped:
        raise InvalidInput("A project needs a name.", fix)
    if len(stripped) > MAX_DISPLAY:
        raise InvalidInput(f"The name is {len(stripped)} characters long.", fix)
    bad = [c for c in stripped if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp")]
    if bad:
        raise InvalidInput(
            f"The name contains a control or invisible character (U+{ord(bad[0]):04X}).", fix
        )
    return stripped


def _is_own_slug(name: str) -> bool:
    """A name that can be its own folder: a valid id of at most ``SLUG_MAX`` characters."""
    try:
        return validate_id(name) == name and len(name) <= SLUG_MAX
    except InvalidInput:
        return False


# letters NFKD does not split into a base letter and an accent
_SPELLED = str.maketrans(
    {"ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O", "đ": "d"}
    | {"Đ": "D", "ł": "l", "Ł": "L", "þ": "th", "Þ": "Th", "ð": "d", "Ð": "D"}
)


def base_slug(name: str) -> str:
    """The folder name a display name asks for, before de-duplication.

    Accents are dropped (``Über`` -> ``Uber``, ``Straße`` -> ``Strasse``), everything else
    that is not a letter, digit, ``.``, ``_`` or ``-`` becomes one ``-``; cut to ``SLUG_MAX``
    without a trailing ``.``/``-`` (Windows drops trailing dots); a Windows-reserved name
    (``CON``, ``lpt1``) gets a ``-p``.
    """
    if _is_own_slug(name):
        return name
    spelled = name.translate(_SPELLED)
    ascii_name = unicodedata.normalize("NFKD", spelled).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^A-Za-z0-9._]+", "-", ascii_name)
    slug = re.sub(r"\.{2,}", ".", slug)
    slug = slug.strip("-._")[:SLUG_MAX].rstrip("-._ ")
    if not slug:
        slug = "project"
    if slug.split(".")[0].upper() in _WINDOWS_RESERVED:
        slug = f"{slug[: SLUG_MAX - 2]}-p"
    return slug


def slug_for(name: str, taken: set[str]) -> str:
    """A folder name for display name ``name`` not in ``taken`` (compared case-insensitively,
    as Windows and macOS do): the base slug, else ``<slug>-2``, ``-3``... within ``SLUG_MAX``."""
    folded = {t.casefold() for t in taken}
    slug = base_slug(name)
    n = 1
    candidate = slug
    while candidate.casefold() in folded:
        n += 1
        suffix = f"-{n}"
        candidate = slug[: SLUG_MAX - len(suffix)].rstrip("-._ ") + suffix
    return candidate


@dataclass
class InstallState:
    status: str = "new"  # new | installing | ready | failed | cancelled
    stages_done: list[str] = field(default_factory=list)
    error: str = ""
    error_fix: str = ""
    updated_at: float = 0.0


@dataclass
class PackRecord:
    """A custom node pack installed (or to install) in the project."""

    url: str
    folder: str
    commit: str = ""
    version: str = ""
    registry_id: str = ""
    status: str = "pending"  # pending | installed | failed
    error: str = ""
    archive_sha256: str = ""  # sha256 of the registry zip installed (pins what ran)


@dataclass
class Project:
    id: str  # the folder name (a slug, or the name of a project made before slugs)
    display_name: str = ""  # what the user named it; "" = the folder name
    created_at: float = field(default_factory=time.time)
    comfyui_source: str = ""
    comfyui_ref: str = ""
    comfyui_commit: str = ""
    torch_backend: str = "auto"  # as chosen
    torch_backend_resolved: str = ""  # what auto became
    torch_version: str = ""
    python: str = ""  # interpreter request for uv ("" = the running one)
    python_version: str = ""
    port: int | None = None  # fixed port, or None for the pool
    listen_network: bool = False
    launch_args: list[str] = field(default_factory=list)
    install: InstallState = field(default_factory=InstallState)
    packs: list[PackRecord] = field(default_factory=list)
    workflows: list[str] = field(default_factory=list)
    models: list[dict[str, str]] = field(default_factory=list)  # {"directory", "name"} in use
    supported_flags: list[str] = field(default_factory=list)
    manager: bool = False  # ComfyUI-Manager on (core/lifecycle/manager.py)
    # an adopted install run where it is (core/adopt): its main.py folder, never written to
    in_place: bool = False
    external_root: str = ""
    gpu: str = ""  # GPU ids to use ("0,1"); "" = all (core/configure.py)
    env: dict[str, str] = field(default_factory=dict)  # extra environment for ComfyUI
    last_port: int | None = None  # the automatic port of the last launch, reused while free

    @property
    def name(self) -> str:
        """The name shown to the user (and accepted by every command, like the id)."""
        return self.display_name or self.id


@dataclass(frozen=True)
class ProjectDirs:
    """The folders of one project."""

    root: Path

    @property
    def file(self) -> Path:
        return self.root / "project.json"

    @property
    def comfyui(self) -> Path:
        return self.root / "ComfyUI"

    @property
    def custom_nodes(self) -> Path:
        return self.comfyui / "custom_nodes"

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    @property
    def user(self) -> Path:
        return self.root / "user"

    @property
    def workflows(self) -> Path:
        return self.user / "default" / "workflows"

    @property
    def input(self) -> Path:
        return self.root / "input"

    @property
    def output(self) -> Path:
        return self.root / "output"

    @property
    def temp(self) -> Path:
        return self.root / "temp"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def install_log(self) -> Path:
        return self.logs / "install.log"

    @property
    def comfyui_log(self) -> Path:
        return self.logs / "comfyui.log"

    @property
    def run_file(self) -> Path:
        return self.root / "run.json"

    @property
    def child_file(self) -> Path:
        return self.root / "child.json"

    @property
    def exit_file(self) -> Path:
        return self.root / "exit.json"

    @property
    def constraints(self) -> Path:
        return self.root / "constraints.txt"

    @property
    def extra_model_paths(self) -> Path:
        return self.root / "extra_model_paths.yaml"

    @property
    def database(self) -> Path:
        return self.user / "comfyui.db"


def _project_from_dict(data: dict[str, Any]) -> Project:
    known = {f.name for f in dataclasses.fields(Project)}
    values = {k: v for k, v in data.items() if k in known}
    inst = values.pop("install", {}) or {}
    packs = values.pop("packs", []) or []
    p = Project(**values)
    p.install = InstallState(
        **{k: v for k, v in inst.items() if k in {f.name for f in dataclasses.fields(InstallState)}}
    )
    pack_fields = {f.name for f in dataclasses.fields(PackRecord)}
    p.packs = [PackRecord(**{k: v for k, v in pk.items() if k in pack_fields}) for pk in packs]
    return p


class DamagedProject(CorruptFile):
    """A project folder exists but its ``project.json`` is missing or unparsable.

    ``repair`` rebuilds the file (from what is on disk, else defaults), ``delete`` removes the
    folder; ``cause`` is the short reason shown in lists.
    """

    def __init__(self, project_id: str, cause: str) -> None:
        super().__init__(
            f"Project {project_id!r} is damaged: {cause}.",
            f"Run 'comfymanager repair {project_id}' to rebuild it, or "
            f"'comfymanager delete {project_id} --yes' to remove it.",
        )
        self.project_id = project_id
        self.cause = cause


@dataclass(frozen=True)
class BrokenProject:
    """A project folder whose file could not be read: listed, never crashes the list.

    ``damaged`` ones (file missing or unparsable) can be repaired or deleted; others (a file from
    a newer version, a read error, a folder name that is not a valid project name) say why.
    """

    id: str
    reason: str
    fix: str = ""
    damaged: bool = False


def _corrupt_copies(root: Path) -> list[Path]:
    return sorted(root.glob("project.json.corrupt-*"), key=lambda p: p.stat().st_mtime)


def missing_cause(root: Path) -> str:
    """Why a project folder has no readable ``project.json``, in a few words."""
    corrupt = _corrupt_copies(root)
    if corrupt:
        return f"project.json could not be parsed and was set aside as {corrupt[-1].name}"
    if list(root.glob(".project.json.*.tmp")):
        return "project.json is missing: the program was stopped while saving it"
    return "project.json is missing: the program was stopped while creating the project"


def recover_saved(root: Path) -> dict[str, Any] | None:
    """The newest parsable project document left on disk by an interrupted save, if any.

    An interrupted first save leaves the complete, fsynced temp file that was about to replace
    ``project.json``; an earlier damaged file may still parse after a torn tail was set aside.
    """
    candidates = [*root.glob(".project.json.*.tmp"), *_corrupt_copies(root)]
    candidates.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for candidate in candidates:
        try:
            data = json.loads(candidate.read_bytes().decode("utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or data.get("kind") != KIND:
            continue
        doc: dict[str, Any] = _v1_to_v2(data) if data.get("version") == 1 else data
        if doc.get("version") == VERSION:
            return doc
    return None


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 had no display name: the folder name is the name, as before."""
    return {**data, "display_name": "", "version": 2}


MIGRATIONS: dict[int, persist.Migration] = {1: _v1_to_v2}


class ProjectStore:
    """Reads and writes projects under ``paths.projects``."""

    def __init__(self, paths: DataPaths) -> None:
        self.paths = paths

    def dirs(self, project_id: str) -> ProjectDirs:
        """The folders of the project ``project_id``: its folder name, or the display name of an
        existing project (``resolve``); a new id is used as it is."""
        direct = self.folder(project_id)
        pid = project_id if direct is not None else self.resolve(project_id)
        try:
            pid = validate_id(pid)
        except InvalidInput:
            if direct is not None:
                raise  # a folder made by hand whose name is not a valid project name
            try:
                validate_name(project_id)
            except InvalidInput:
                raise
            raise NotFound(  # a display name no project has
                f"There is no project named {project_id.strip()!r}.",
                "Run 'comfymanager list' to see the projects.",
            ) from None
        root = (self.paths.projects / pid).resolve()
        if root.parent != self.paths.projects.resolve():
            raise InvalidInput(f"{project_id!r} is not a valid project name.")
        return ProjectDirs(root)

    def exists(self, project_id: str) -> bool:
        try:
            return self.dirs(project_id).file.exists()
        except InvalidInput:  # a display name no project has
            return False

    def folder(self, name: str) -> Path | None:
        """The folder of an existing project, also one whose name is not valid (made by hand).

        Only a real folder directly inside ``projects/`` counts; links, hidden leftovers
        (``.deleting-*``) and anything with a path separator never do.
        """
        if not name or name.startswith(".") or "/" in name or "\\" in name or "\0" in name:
            return None
        candidate = self.paths.projects / name
        try:
            if candidate.is_symlink() or not candidate.is_dir():
                return None
        except (OSError, ValueError):
            return None
        return candidate

    def resolve(self, name: str) -> str:
        """The folder name (id) of the project called ``name``: a project folder of exactly
        that name, else the project whose display name is ``name``, else the one whose display
        or folder name matches ignoring case. A name that matches nothing (or, from folders
        made before names were unique, more than one) comes back unchanged, for the caller's
        usual "no project named" error."""
        if self.folder(name) is not None:
            return name
        try:
            wanted = validate_name(name)
        except InvalidInput:
            return name
        if wanted != name and self.folder(wanted) is not None:
            return wanted
        names = self.names()
        exact = [folder for folder, display in names if display == wanted]
        if len(exact) == 1:
            return exact[0]
        key = wanted.casefold()
        folded = {f for f, d in names if key in (f.casefold(), d.casefold())}
        return folded.pop() if len(folded) == 1 else name

    def names(self) -> list[tuple[str, str]]:
        """``(folder, display name)`` of every project folder; the display name is the folder's
        name for a project made before display names, or one that cannot be read."""
        found: list[tuple[str, str]] = []
        try:
            entries = sorted(self.paths.projects.iterdir())
        except OSError:
            return found
        for folder in entries:
            if folder.name.startswith(".") or folder.is_symlink() or not folder.is_dir():
                continue
            display = ""
            try:
                data = persist.read_json(folder / "project.json", KIND, VERSION, MIGRATIONS)
                display = str(data.get("display_name") or "")
            except (OSError, ComfyManagerError):
                pass
            found.append((folder.name, display or folder.name))
        return found

    def load(self, project_id: str) -> Project:
        d = self.dirs(project_id)
        try:
            data = persist.read_json(d.file, KIND, VERSION, MIGRATIONS)
        except FileNotFoundError:
            if d.root.is_dir() and not d.root.is_symlink():
                raise DamagedProject(d.root.name, missing_cause(d.root)) from None
            raise NotFound(
                f"There is no project named {project_id!r}.",
                "Run 'comfymanager list' to see the projects.",
            ) from None
        except persist.UnsupportedFormat:
            raise  # a valid file from another version: never rebuilt over
        except CorruptFile:
            raise DamagedProject(d.root.name, missing_cause(d.root)) from None
        project = _project_from_dict(data)
        project.id = d.root.name
        return project

    def save(self, project: Project) -> None:
        d = self.dirs(project.id)
        payload = dataclasses.asdict(project)
        persist.write_json(d.file, KIND, VERSION, payload)

    def new_id(self, name: str) -> str:
        """The folder a new project called ``name`` gets (what ``create`` will use while the
        projects stay as they are: the window keys the job's row by it)."""
        display = validate_name(name)
        taken = {f for pair in self.names() for f in pair}
        if self.paths.projects.is_dir():
            taken |= {e.name for e in self.paths.projects.iterdir()}  # leftovers, files
        slug = base_slug(display)
        own = self.paths.projects / slug
        if own.is_dir() and not own.is_symlink() and not any(own.iterdir()):
            taken.discard(slug)  # an empty folder (a create stopped early) is reused
        return slug_for(display, taken)

    def check_free(self, project_id: str) -> None:
        """Raise Conflict when ``project_id`` is taken, naming a damaged folder as such.

        Taken means: a project folder of that name, or a project whose display name or folder
        name is that name ignoring case (Windows and macOS folders ignore case; one name must
        mean one project)."""
        name = validate_name(project_id)
        folder = self.folder(name)
        if folder is not None:
            self._check_folder_free(folder)
            return
        key = name.casefold()
        for folder_name, display in self.names():
            if key in (folder_name.casefold(), display.casefold()):
                where = f" (folder {folder_name!r})" if display != folder_name else ""
                raise Conflict(
                    f"A project named {display!r}{where} already exists.",
                    "Choose another name, or delete the existing project first.",
                )

    def _check_folder_free(self, root: Path) -> None:
        if not any(root.iterdir()):
            return  # an empty folder (a create stopped before writing anything) is reused
        try:
            self.load(root.name)
        except DamagedProject as exc:
            raise Conflict(
                f"A project named {root.name!r} exists but is damaged: {exc.cause}.",
                f"Run 'comfymanager repair {root.name}' to rebuild it, or "
                f"'comfymanager delete {root.name} --yes' to remove it.",
            ) from None
        except ComfyManagerError:
            pass
        raise Conflict(
            f"A project named {root.name!r} already exists.",
            "Choose another name, or delete the existing project first.",
        )

    def create(self, project: Project) -> Project:
        """Write a new project: ``project.display_name`` (else ``project.id``) is its name, and
        ``project.id`` becomes the name of its new folder (``slug_for``: never another
        project's folder or display name)."""
        display = validate_name(project.display_name or project.id)
        self.check_free(display)
        project.id = self.new_id(display)
        project.display_name = display
        d = self.dirs(project.id)
        d.root.mkdir(parents=True, exist_ok=True)
        for folder in (d.logs, d.input, d.output, d.user, d.temp):
            folder.mkdir(exist_ok=True)
        kill_point("create-folders")
        self.save(project)
        return project

    def list(self) -> tuple[list[Project], list[BrokenProject]]:
        projects: list[Project] = []
        broken: list[BrokenProject] = []
        if not self.paths.projects.exists():
            return projects, broken
        for folder in sorted(self.paths.projects.iterdir(), key=lambda p: p.name.lower()):
            if not folder.is_dir() or folder.name.startswith("."):
                continue
            try:
                projects.append(self.load(folder.name))
            except DamagedProject as exc:
                broken.append(BrokenProject(folder.name, exc.cause, exc.fix or "", damaged=True))
            except ComfyManagerError as exc:
                broken.append(BrokenProject(folder.name, exc.message, exc.fix or ""))
        return projects, broken

    def update(self, project_id: str, **changes: Any) -> Project:
        project = self.load(project_id)
        for k, v in changes.items():
            setattr(project, k, v)
        self.save(project)
        return project

    def delete_files(self, project_id: str) -> None:
        """Remove the project folder, and only it (never the store or anything outside).

        A folder whose name is not a valid project name (made by hand) can be deleted too.
        """
        projects_root = self.paths.projects.resolve()
        try:
            target = self.dirs(project_id).root
        except InvalidInput:
            found = self.folder(project_id)
            if found is None:
                raise
            target = found
        if target.is_symlink():
            fileops.remove_file(target)
            return
        if not target.exists():
            return
        if target.resolve().parent != projects_root:
            raise InvalidInput(f"Refusing to delete {target}: it is outside {projects_root}.")
        # move aside first so a half-deleted folder is never mistaken for a project; what a
        # kill leaves behind is removed by the clean-up at the next start (core/cleanup.py)
        trash = projects_root / trash_name(target.name)
        fileops.rename(target, trash)
        kill_point("delete-after-rename")
        try:
            remove_tree(trash)
        except OSError as exc:  # the project is gone already; the rest goes at the next start
            log.warning("%s: left for the clean-up at the next start (%s)", trash.name, exc)


def remove_tree(path: Path) -> None:
    """Delete a folder tree (read-only files included, links not followed; see ``fileops``)."""
    fileops.remove_tree(path)
