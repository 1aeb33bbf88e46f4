"""Where a pack's files come from before they go into a project: ``SOURCE[@VERSION]`` parsed
(a git URL or repository folder, a plain folder, a Comfy Registry id), the git commit a version
means, the files fetched into staging (a clone, the registry's zip, a copy), and the install of
what is in place (requirements under the torch constraint, ``install.py``; ``core/packs.py``)."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from comfymanager.core.context import CoreContext
from comfymanager.core.errors import InvalidInput, NotFound
from comfymanager.core.install import envs, sources
from comfymanager.core.install import packs as pack_install
from comfymanager.core.lifecycle.pack_list import HEX, read_git_head, read_pyproject_version
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import PackRecord, ProjectDirs, remove_tree

_REGISTRY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class PackSource:
    """A parsed ``SOURCE[@VERSION]``: kind git (``location`` a URL or a repository folder),
    registry (an id) or local (a plain folder, copied)."""

    kind: str
    location: str
    version: str
    folder: str


def parse_source(text: str) -> PackSource:
    raw = text.strip()
    if not raw:
        raise InvalidInput(
            "No pack source was given.", "Give a git URL, a folder or a registry id."
        )
    location, version = raw, ""
    head, sep, tail = raw.rpartition("@")
    if sep and head and tail and "/" not in tail and ":" not in tail and "\\" not in tail:
        location, version = head, tail
    path = Path(location).expanduser()
    if path.is_dir():
        path = path.resolve()
        if (path / ".git").exists():
            return PackSource("git", str(path), version, pack_install.validate_folder(path.name))
        if version:
            raise InvalidInput(
                f"{path} is a plain folder; it has no versions.", "Leave out the @VERSION."
            )
        return PackSource("local", str(path), "", pack_install.validate_folder(path.name))
    if "://" in location or location.startswith("git@"):
        url = pack_install.validate_git_url(location)
        return PackSource("git", url, version, pack_install.folder_for_url(url))
    if _REGISTRY_ID.match(location) and "/" not in location:
        return PackSource("registry", location, version, pack_install.validate_folder(location))
    raise InvalidInput(
        f"{text!r} is not a git URL, a folder or a Comfy Registry id.",
        "Give e.g. https://github.com/owner/ComfyUI-Pack, /path/to/pack or comfyui-pack@1.2.0.",
    )


def git_target(
    url: str, version: str, cancel: CancelToken, follow_branch: bool = False
) -> tuple[str, str]:
    """(commit, version label) for ``version`` (a tag, ``v``+tag, a branch or a commit); no
    version: the latest release tag, else the default branch's head (``follow_branch``: the
    branch head even when there are tags, for a pack that was not at a tag)."""
    refs = sources.list_remote(url, cancel)
    if not version:
        tag = None if follow_branch else refs.latest_release()
        if tag:
            return refs.tags[tag], tag
        branch = refs.head_branch or next(iter(refs.branches), "")
        if branch in refs.branches:
            return refs.branches[branch], ""
        raise NotFound(f"{url} has no branches or tags.", "Check the pack's address.")
    for tag in (version, f"v{version}"):
        if tag in refs.tags:
            return refs.tags[tag], tag
    if version in refs.branches:
        return refs.branches[version], ""
    if HEX.match(version.lower()):
        return version.lower(), ""
    shown = ", ".join(sorted(refs.tags)[-8:]) or "none"
    raise NotFound(
        f"{url} has no tag, branch or commit {version!r} (tags: {shown}).",
        "Give one of its tags, a branch or a commit.",
    )


def fetch_to(
    ctx: CoreContext,
    dirs: ProjectDirs,
    src: PackSource,
    dest: Path,
    report: Reporter,
    cancel: CancelToken,
    have: PackRecord | None = None,
) -> PackRecord:
    """Put the pack's files in ``dest`` (staging); returns the record it will have."""
    if dest.exists():
        remove_tree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.kind == "git":
        commit, label = git_target(src.location, src.version, cancel)
        sources.checkout(src.location, commit, dest, stage="packs", report=report, cancel=cancel)
        commit = read_git_head(dest) or commit
        return PackRecord(url=src.location, folder=src.folder, commit=commit, version=label)
    if src.kind == "registry":
        archive = pack_install.registry_zip_url(
            ctx.settings.registry_url, src.location, src.version
        )
        pinned = have.archive_sha256 if have and have.version == archive.version else None
        sha = pack_install._install_zip(archive, dest, src.location, cancel, pinned or None)
        return PackRecord(
            url="",
            folder=src.folder,
            version=archive.version,
            registry_id=src.location,
            archive_sha256=sha,
        )
    try:
        shutil.copytree(
            src.location, dest, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", ".git")
        )
    except (OSError, shutil.Error) as exc:
        raise InvalidInput(
            f"The folder {src.location} could not be copied into the project ({exc}); "
            "nothing was changed.",
            "Check that the folder is readable, or give the pack's git URL.",
        ) from None
    return PackRecord(url="", folder=src.folder, version=read_pyproject_version(dest) or "local")


def finish_install(
    ctx: CoreContext,
    dirs: ProjectDirs,
    rec: PackRecord,
    target: Path,
    report: Reporter,
    cancel: CancelToken,
) -> None:
    """The pack's requirements under the torch constraint and its install.py (as packs.py)."""
    uv = envs.UvRunner(ctx.paths, ctx.settings)
    if rec.url or rec.registry_id:
        pack_install.install_pack(
            rec, dirs, uv, report=report, cancel=cancel, registry=ctx.settings.registry_url
        )
        return
    pack_install.install_pack_requirements(
        target, dirs, uv, report=report, cancel=cancel, run_script=True
    )
