"""Install a custom node pack into a project: git clone at the pinned commit (or the registry's
zip for a registry version), its ``requirements.txt`` under the project's torch constraint, and its
``install.py`` run with the project's Python. Nothing is written outside ``custom_nodes``.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import requests

from comfymanager.core import envs, process, sources
from comfymanager.core.errors import ExternalToolError, InvalidInput
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import PackRecord, ProjectDirs, remove_tree

log = logging.getLogger(__name__)

_FOLDER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
ZIP_MAX = 512 * 1024 * 1024


def folder_for_url(url: str) -> str:
    """``https://github.com/o/ComfyUI-Foo.git`` -> ``ComfyUI-Foo`` (validated)."""
    name = url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    return validate_folder(name)


def validate_folder(name: str) -> str:
    if not _FOLDER_RE.match(name) or name in (".", "..") or name.endswith(".disabled"):
        raise InvalidInput(
            f"{name!r} cannot be a custom node folder name.",
            "Use the repository name: letters, digits, '.', '_' or '-'.",
        )
    return name


def validate_git_url(url: str) -> str:
    u = url.strip()
    parsed = urlparse(u)
    if parsed.scheme in ("https", "http", "ssh", "git", "file") and (
        parsed.netloc or parsed.scheme == "file"
    ):
        return u
    if Path(u).is_absolute() and Path(u).exists():
        return u
    raise InvalidInput(
        f"{url!r} is not a git URL.",
        "Give the pack's repository address, e.g. https://github.com/owner/repo",
    )


def _install_zip(url: str, target: Path, cancel: CancelToken) -> None:
    r = requests.get(url, timeout=60, stream=True)
    if r.status_code != 200:
        raise ExternalToolError(f"Downloading {url} failed (HTTP {r.status_code}).")
    buf = io.BytesIO()
    for chunk in r.iter_content(1 << 20):
        cancel.check()
        buf.write(chunk)
        if buf.tell() > ZIP_MAX:
            raise ExternalToolError(f"{url} is larger than {ZIP_MAX >> 20} MB.")
    tmp = target.with_name(target.name + ".partial")
    if tmp.exists():
        remove_tree(tmp)
    with zipfile.ZipFile(buf) as zf:
        for info in zf.infolist():
            dest = (tmp / info.filename).resolve()
            if not dest.is_relative_to(tmp.resolve()):
                raise InvalidInput(f"The pack archive {url} has an unsafe path {info.filename!r}.")
        zf.extractall(tmp)
    tmp.rename(target)


def registry_zip_url(registry: str, pack_id: str, version: str) -> str:
    r = requests.get(
        f"{registry.rstrip('/')}/nodes/{pack_id}/install", params={"version": version}, timeout=30
    )
    if r.status_code == 404:
        raise InvalidInput(f"The registry has no pack {pack_id!r} version {version}.")
    r.raise_for_status()
    url = r.json().get("downloadUrl")
    if not isinstance(url, str):
        raise ExternalToolError(f"The registry gave no download for {pack_id} {version}.")
    return url


def _ref_for_version(url: str, version: str, report: Reporter, cancel: CancelToken) -> str:
    """The git ref for a pack pinned by version: its tag when the repository has one
    (``1.2.3`` or ``v1.2.3``), else the default branch, said in the log."""
    refs = sources.list_remote(url, cancel)
    if version:
        for tag in (version, f"v{version}"):
            if tag in refs.tags:
                return tag
        report.log(f"{url} has no tag for version {version}; using its default branch")
    return refs.head_branch or "main"


def install_pack(
    pack: PackRecord,
    dirs: ProjectDirs,
    uv: envs.UvRunner,
    *,
    report: Reporter,
    cancel: CancelToken,
    registry: str = "",
) -> str:
    """Install one pack; returns the commit (or registry version) now in place."""
    folder = validate_folder(pack.folder or folder_for_url(pack.url))
    target = dirs.custom_nodes / folder
    dirs.custom_nodes.mkdir(parents=True, exist_ok=True)
    if pack.url:
        url = validate_git_url(pack.url)
        ref = pack.commit or _ref_for_version(url, pack.version, report, cancel)
        installed = sources.checkout(url, ref, target, stage="packs", report=report, cancel=cancel)
    elif pack.registry_id and pack.version and registry:
        if not target.exists():
            _install_zip(registry_zip_url(registry, pack.registry_id, pack.version), target, cancel)
        installed = pack.version
    else:
        raise InvalidInput(f"Pack {folder} has neither a git URL nor a registry version.")
    req = target / "requirements.txt"
    if req.exists():
        envs.install_requirements(
            uv,
            dirs.venv,
            [req],
            dirs.constraints,
            what=f"Installing requirements of {folder}",
            report=report,
            cancel=cancel,
        )
    script = target / "install.py"
    if script.exists():
        outcome = process.run_tool(
            [envs.venv_python(dirs.venv), "install.py"],
            cwd=target,
            on_line=report.log,
            cancel=cancel,
            env=uv.env(),
            timeout=1800,
        )
        process.check(outcome, f"{folder}/install.py")
    return installed
