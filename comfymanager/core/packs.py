"""Install a custom node pack into a project: git clone at the pinned commit (or the registry's
zip for a registry version), its ``requirements.txt`` under the project's torch constraint, and its
``install.py`` run with the project's Python. Nothing is written outside ``custom_nodes``.
"""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
import stat
import zipfile
from pathlib import Path
from urllib.parse import quote, urlparse

import requests

from comfymanager.core import envs, process, sources
from comfymanager.core.errors import ExternalToolError, InvalidInput
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import PackRecord, ProjectDirs, remove_tree

log = logging.getLogger(__name__)

_FOLDER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_DRIVE = re.compile(r"^[A-Za-z]:")
ZIP_MAX = 512 * 1024 * 1024
UNZIPPED_MAX = 2 * 1024 * 1024 * 1024
ZIP_MARKER = ".comfymanager-registry.json"


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


def _member_problem(name: str) -> str | None:
    """Why an archive member cannot be extracted inside the pack folder (None: it can)."""
    text = name.replace("\\", "/")
    if text.startswith("/") or _DRIVE.match(text):
        return "an absolute path"
    if any(part == ".." for part in text.split("/")):
        return "a path that leaves the pack folder"
    return None


def _download(url: str, cancel: CancelToken) -> io.BytesIO:
    buf = io.BytesIO()
    try:
        with requests.get(url, timeout=60, stream=True) as r:
            if r.status_code != 200:
                raise ExternalToolError(f"Downloading {url} failed (HTTP {r.status_code}).")
            for chunk in r.iter_content(1 << 20):
                cancel.check()
                buf.write(chunk)
                if buf.tell() > ZIP_MAX:
                    raise ExternalToolError(f"{url} is larger than {ZIP_MAX >> 20} MB.")
    except requests.RequestException as exc:
        raise ExternalToolError(
            f"Downloading {url} failed ({type(exc).__name__}).",
            "Check the network connection, then run repair.",
        ) from None
    buf.seek(0)
    return buf


def _extract(data: io.BytesIO, url: str, dest: Path, cancel: CancelToken) -> None:
    """Extract every member under ``dest``; a single top folder holding everything is the
    pack itself. Unsafe names are refused before anything is written."""
    try:
        zf = zipfile.ZipFile(data)
    except zipfile.BadZipFile:
        raise ExternalToolError(f"The pack archive {url} is not a zip file.") from None
    with zf:
        infos = zf.infolist()
        for info in infos:
            why = _member_problem(info.filename)
            if why is None and stat.S_ISLNK(info.external_attr >> 16):
                why = "a symbolic link"
            if why:
                raise InvalidInput(
                    f"The pack archive {url} holds {why}: {info.filename!r}; nothing was "
                    "installed from it.",
                    "Install this pack from its git repository instead.",
                )
        if sum(i.file_size for i in infos) > UNZIPPED_MAX:
            raise InvalidInput(f"The pack archive {url} unpacks to more than 2 GB.")
        names = [i.filename.replace("\\", "/").strip("/") for i in infos]
        tops = {n.split("/", 1)[0] for n in names if n}
        strip = len(tops) == 1 and any("/" in n for n in names)
        dest.mkdir(parents=True)
        for info, name in zip(infos, names, strict=True):
            cancel.check()
            if strip:
                name = name.split("/", 1)[1] if "/" in name else ""
            if not name:
                continue
            out = dest / name
            if info.is_dir():
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)


def installed_zip(target: Path) -> tuple[str, str] | None:
    """``(registry id, version)`` of a pack folder installed from a registry zip, else None."""
    try:
        data = json.loads((target / ZIP_MARKER).read_text(encoding="utf-8"))
        return str(data["registry_id"]), str(data["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _install_zip(
    url: str, target: Path, registry_id: str, version: str, cancel: CancelToken
) -> None:
    """Unpack beside ``target`` (a ``.disabled`` name ComfyUI skips), then swap it in."""
    data = _download(url, cancel)
    tmp = target.with_name(target.name + ".partial.disabled")
    old = target.with_name(target.name + ".old.disabled")
    for leftover in (tmp, old):
        if leftover.exists():
            remove_tree(leftover)
    try:
        _extract(data, url, tmp, cancel)
        marker = {"registry_id": registry_id, "version": version, "url": url}
        (tmp / ZIP_MARKER).write_text(json.dumps(marker), encoding="utf-8")
        if target.exists():
            target.rename(old)
        tmp.rename(target)
    finally:
        if tmp.exists():
            remove_tree(tmp)
    if old.exists():
        remove_tree(old)


def registry_zip_url(registry: str, pack_id: str, version: str) -> tuple[str, str]:
    """``(download URL, version)`` of a registry pack (``version`` "" asks for the latest)."""
    what = f"{pack_id!r} version {version}" if version else f"{pack_id!r}"
    url = f"{registry.rstrip('/')}/nodes/{quote(pack_id, safe='')}/install"
    try:
        r = requests.get(url, params={"version": version} if version else None, timeout=30)
    except requests.RequestException as exc:
        raise ExternalToolError(
            f"The Comfy Registry ({registry}) cannot be reached ({type(exc).__name__}) to "
            f"install {what}.",
            "Check the network connection (or the registry address in Settings), then run repair.",
        ) from None
    if r.status_code == 404:
        raise InvalidInput(
            f"The Comfy Registry has no node pack {what}.",
            "Check the pack id and version the workflow names (cnr_id, ver), or give the "
            "pack's git URL instead.",
        )
    if r.status_code != 200:
        raise ExternalToolError(f"The Comfy Registry answered HTTP {r.status_code} for {what}.")
    try:
        data = r.json()
    except ValueError:
        data = None
    download = data.get("downloadUrl") if isinstance(data, dict) else None
    if not isinstance(download, str) or not download:
        raise ExternalToolError(f"The Comfy Registry gave no download address for {what}.")
    got = data.get("version") if isinstance(data, dict) else None
    return download, version or (got if isinstance(got, str) else "")


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


def _install_registry_pack(
    pack: PackRecord, target: Path, registry: str, report: Reporter, cancel: CancelToken
) -> str:
    """The registry's zip of ``pack`` in ``target``; returns the version in place. A folder
    already holding that version is kept; another version is replaced; a folder that did not
    come from a registry zip is never overwritten."""
    have = installed_zip(target)
    if (
        have is not None
        and have[0] == pack.registry_id
        and (have[1] == pack.version or not pack.version)
    ):
        return have[1]
    if target.exists() and have is None:
        raise InvalidInput(
            f"{target} already exists and was not installed from the Comfy Registry.",
            "Move that folder away, then run repair.",
        )
    url, version = registry_zip_url(registry, pack.registry_id, pack.version)
    if not pack.version:
        report.log(f"{pack.registry_id}: no version pinned; installing the latest ({version})")
    report.log(f"Downloading {pack.registry_id} {version} from the Comfy Registry")
    _install_zip(url, target, pack.registry_id, version, cancel)
    return version


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
    elif pack.registry_id and registry:
        installed = _install_registry_pack(pack, target, registry, report, cancel)
    else:
        raise InvalidInput(f"Pack {folder} has neither a git URL nor a registry id.")
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
