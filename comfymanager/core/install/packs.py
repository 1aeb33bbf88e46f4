"""Install a custom node pack into a project: git clone at the pinned commit (or the registry's
zip for a registry version), its ``requirements.txt`` under the project's torch constraint, and its
``install.py`` run with the project's Python. Nothing is written outside ``custom_nodes``: the
pack folder and the names written beside it are checked without following links
(``models/safe_path.py``) before anything is written.

Registry archives come over https only (http only to this machine), at most ``ZIP_MAX`` bytes
and ``ARCHIVE_REDIRECTS`` redirects. When the registry's answer publishes a sha256 (one of
``SHA_KEYS``; the public registry's NodeVersion has no documented checksum field today) the
archive must match it; either way the archive's sha256 goes into the pack record
(``PackRecord.archive_sha256``), and a later install of that same version must match it, so an
export pins exactly what ran. Member names that leave the folder, links, names Windows cannot
store (``<>:"|?*``, a trailing dot or space, ``CON``..., NTFS streams ``a:b``) and names that
differ only in case are refused before anything is extracted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urljoin, urlparse, urlsplit

import requests

from comfymanager.core import fileops, process
from comfymanager.core.errors import ExternalToolError, InvalidInput
from comfymanager.core.install import envs, sources
from comfymanager.core.models.folders import is_loopback_host, url_for_log
from comfymanager.core.models.safe_path import (
    check_files,
    fold_key,
    open_nofollow,
    windows_name_problem,
)
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import PackRecord, ProjectDirs, remove_tree

log = logging.getLogger(__name__)

_FOLDER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_DRIVE = re.compile(r"^[A-Za-z]:")
ZIP_MAX = 512 * 1024 * 1024  # a pack archive larger than this is refused (named in the error)
ARCHIVE_REDIRECTS = 5
SPOOL_IN_MEMORY = 16 * 1024 * 1024  # larger archives spool to a temporary file
SHA_KEYS = ("sha256", "checksum", "hash", "archive_sha256")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_REDIRECTS = (301, 302, 303, 307, 308)
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
    for part in text.split("/"):
        why = windows_name_problem(part) if part else None
        if why:
            return f"a name Windows cannot store ({why})"
    return None


@dataclass(frozen=True)
class RegistryArchive:
    """Where the registry says a pack version's zip is, and its sha256 when it publishes one."""

    url: str
    version: str
    sha256: str | None = None


@dataclass(frozen=True)
class FetchedArchive:
    data: IO[bytes]
    sha256: str
    size: int


def check_archive_url(url: str, what: str = "pack archive") -> str:
    """https only; http only to this machine (a local registry or mirror)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host, parts = None, None
    if parts is not None and host and parts.scheme == "https":
        return url
    if parts is not None and parts.scheme == "http" and is_loopback_host(host):
        return url
    raise InvalidInput(
        f"Refusing the {what} address {url_for_log(url)}: node pack code is fetched over "
        "https only.",
        "Use the registry's https address (Settings > Mirrors), or install the pack from its "
        "git repository.",
    )


def _published_sha256(data: dict[str, Any]) -> str | None:
    """The archive checksum a registry answer publishes, if any (``sha256``, ``checksum``,
    ``hash`` or ``archive_sha256``; only 64-hex-digit sha256 values count)."""
    for key in SHA_KEYS:
        value = data.get(key)
        if isinstance(value, str):
            value = value.strip().lower().removeprefix("sha256:")
            if _SHA256.match(value):
                return value
    return None


def _get_checked(
    url: str,
    *,
    timeout: float,
    what: str,
    params: dict[str, str] | None = None,
    stream: bool = False,
) -> requests.Response:
    """GET following at most ``ARCHIVE_REDIRECTS`` redirects by hand, each hop checked with
    ``check_archive_url`` before it is asked; the caller closes the answer."""
    current = url
    for _ in range(ARCHIVE_REDIRECTS + 1):
        check_archive_url(current, what)
        r = requests.get(
            current, params=params, timeout=timeout, stream=stream, allow_redirects=False
        )
        if r.status_code in _REDIRECTS and r.headers.get("Location"):
            current = urljoin(r.url, r.headers["Location"])
            params = None  # the Location holds the whole address
            r.close()
            continue
        return r
    raise ExternalToolError(
        f"The {what} at {url_for_log(url)} redirects more than {ARCHIVE_REDIRECTS} times.",
        "The link loops between servers; try again later.",
    )


def _download(url: str, cancel: CancelToken, expected_sha256: str | None = None) -> FetchedArchive:
    """Fetch a pack archive (at most ``ZIP_MAX`` bytes, ``ARCHIVE_REDIRECTS`` redirects, each
    hop https or loopback) into a spooled temporary file, hashing it on the way."""
    shown = url_for_log(url)
    buf = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
    digest = hashlib.sha256()
    try:
        with _get_checked(url, timeout=60, stream=True, what="pack archive") as r:
            if r.status_code != 200:
                raise ExternalToolError(
                    f"Downloading the pack archive {shown} failed (HTTP {r.status_code}).",
                    "Check the registry address in Settings, or try again later.",
                )
            length = r.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > ZIP_MAX:
                raise InvalidInput(
                    f"The pack archive {shown} is {int(length) >> 20} MB, over the "
                    f"{ZIP_MAX >> 20} MB limit for node pack archives; nothing was installed.",
                    "Install this pack from its git repository instead.",
                )
            size = 0
            for chunk in r.iter_content(1 << 20):
                cancel.check()
                size += len(chunk)
                if size > ZIP_MAX:
                    raise InvalidInput(
                        f"The pack archive {shown} is larger than the {ZIP_MAX >> 20} MB "
                        "limit for node pack archives; nothing was installed.",
                        "Install this pack from its git repository instead.",
                    )
                digest.update(chunk)
                buf.write(chunk)
    except requests.RequestException as exc:
        buf.close()
        raise ExternalToolError(
            f"Downloading the pack archive {shown} failed ({type(exc).__name__}).",
            "Check the network connection, then run repair.",
        ) from None
    except BaseException:
        buf.close()
        raise
    got = digest.hexdigest()
    if expected_sha256 and got != expected_sha256:
        buf.close()
        raise ExternalToolError(
            f"The pack archive {shown} does not match its published checksum (sha256 {got}, "
            f"expected {expected_sha256}); nothing was installed.",
            "The archive was damaged or replaced on the way; run repair to fetch it again, "
            "or install the pack from its git repository.",
        )
    buf.seek(0)
    return FetchedArchive(buf, got, size)


def _extract(data: IO[bytes], url: str, dest: Path, cancel: CancelToken) -> None:
    """Extract every member under ``dest``; a single top folder holding everything is the
    pack itself. Unsafe names are refused before anything is written."""
    shown = url_for_log(url)
    try:
        zf = zipfile.ZipFile(data)
    except zipfile.BadZipFile:
        raise ExternalToolError(f"The pack archive {shown} is not a zip file.") from None
    with zf:
        infos = zf.infolist()
        seen: dict[str, str] = {}
        for info in infos:
            why = _member_problem(info.filename)
            if why is None and stat.S_ISLNK(info.external_attr >> 16):
                why = "a symbolic link"
            folded = fold_key(info.filename.replace("\\", "/").strip("/"))
            if why is None and folded in seen and seen[folded] != info.filename:
                why = f"two names that differ only in case ({seen[folded]!r} and)"
            seen.setdefault(folded, info.filename)
            if why:
                raise InvalidInput(
                    f"The pack archive {shown} holds {why}: {info.filename!r}; nothing was "
                    "installed from it.",
                    "Install this pack from its git repository instead.",
                )
        if sum(i.file_size for i in infos) > UNZIPPED_MAX:
            raise InvalidInput(f"The pack archive {shown} unpacks to more than 2 GB.")
        names = [i.filename.replace("\\", "/").strip("/") for i in infos]
        tops = {n.split("/", 1)[0] for n in names if n}
        strip = len(tops) == 1 and any("/" in n for n in names)
        dest.mkdir(parents=True)
        for info, name in zip(infos, names, strict=True):
            cancel.check()
            if strip:
                name = name.split("/", 1)[1] if "/" in name else ""
            if name:
                _extract_one(zf, info, dest / name, shown)


def _extract_one(zf: zipfile.ZipFile, info: zipfile.ZipInfo, out: Path, shown: str) -> None:
    """One member; a damaged member or a name both file and folder is a typed error."""
    try:
        if info.is_dir():
            out.mkdir(parents=True, exist_ok=True)
            return
        out.parent.mkdir(parents=True, exist_ok=True)
        fd = open_nofollow(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        with zf.open(info) as src, os.fdopen(fd, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise ExternalToolError(
            f"The pack archive {shown} is damaged at {info.filename!r} ({exc}); nothing was "
            "installed from it.",
            "Run repair to fetch it again, or install the pack from its git repository.",
        ) from None
    except (FileExistsError, NotADirectoryError, IsADirectoryError):
        raise InvalidInput(
            f"The pack archive {shown} uses {info.filename!r} both as a file and as a folder; "
            "nothing was installed from it.",
            "Install this pack from its git repository instead.",
        ) from None


def installed_zip(target: Path) -> tuple[str, str] | None:
    """``(registry id, version)`` of a pack folder installed from a registry zip, else None."""
    try:
        data = json.loads((target / ZIP_MARKER).read_text(encoding="utf-8"))
        return str(data["registry_id"]), str(data["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _install_zip(
    archive: RegistryArchive,
    target: Path,
    registry_id: str,
    cancel: CancelToken,
    pinned_sha256: str | None = None,
) -> str:
    """Unpack beside ``target`` (a ``.disabled`` name ComfyUI skips), then swap it in; returns
    the archive's sha256. The registry's published checksum, else the one the project pinned
    for this version, must match."""
    fetched = _download(archive.url, cancel, archive.sha256 or pinned_sha256)
    tmp = target.with_name(target.name + ".partial.disabled")
    old = target.with_name(target.name + ".old.disabled")
    for leftover in (tmp, old):
        if leftover.exists():
            remove_tree(leftover)
    try:
        with fetched.data:
            _extract(fetched.data, archive.url, tmp, cancel)
        marker = {
            "registry_id": registry_id,
            "version": archive.version,
            "url": url_for_log(archive.url),
            "sha256": fetched.sha256,
        }
        (tmp / ZIP_MARKER).write_text(json.dumps(marker), encoding="utf-8")
        # an antivirus scanning the fresh files, or the indexer, holds them for a moment on
        # Windows: the swap waits that out (fileops) instead of failing the install
        if target.exists():
            fileops.rename(target, old)
        try:
            fileops.rename(tmp, target)
        except OSError:
            if old.exists() and not target.exists():
                fileops.rename(old, target)  # the installed version stays in place
            raise
    finally:
        if tmp.exists():
            remove_tree(tmp)
    if old.exists():
        remove_tree(old)
    return fetched.sha256


def registry_zip_url(registry: str, pack_id: str, version: str) -> RegistryArchive:
    """Where the zip of a registry pack is (``version`` "" asks for the latest), with the
    registry's checksum when it publishes one."""
    what = f"{pack_id!r} version {version}" if version else f"{pack_id!r}"
    shown = url_for_log(registry)
    check_archive_url(registry, "Comfy Registry")
    url = f"{registry.rstrip('/')}/nodes/{quote(pack_id, safe='')}/install"
    try:
        params = {"version": version} if version else None
        with _get_checked(url, params=params, timeout=30, what="Comfy Registry") as r:
            status = r.status_code
            try:
                data = r.json() if status == 200 else None
            except ValueError:
                data = None
    except requests.RequestException as exc:
        raise ExternalToolError(
            f"The Comfy Registry ({shown}) cannot be reached ({type(exc).__name__}) to "
            f"install {what}.",
            "Check the network connection (or the registry address in Settings), then run repair.",
        ) from None
    if status == 404:
        raise InvalidInput(
            f"The Comfy Registry has no node pack {what}.",
            "Check the pack id and version the workflow names (cnr_id, ver), or give the "
            "pack's git URL instead.",
        )
    if status != 200:
        raise ExternalToolError(
            f"The Comfy Registry ({shown}) answered HTTP {status} for {what}.",
            "Check the registry address in Settings, or try again later.",
        )
    download = data.get("downloadUrl") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(download, str) or not download:
        raise ExternalToolError(f"The Comfy Registry gave no download address for {what}.")
    check_archive_url(download)
    got = data.get("version")
    return RegistryArchive(
        url=download,
        version=version or (got if isinstance(got, str) else ""),
        sha256=_published_sha256(data),
    )


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
    archive = registry_zip_url(registry, pack.registry_id, pack.version)
    if not pack.version:
        report.log(
            f"{pack.registry_id}: no version pinned; installing the latest ({archive.version})"
        )
    # an archive pinned for this very version (an earlier install, an export) must match; a
    # folder holding another version means the record's sha256 is that version's (an update)
    same = pack.version == archive.version and (have is None or have[1] == archive.version)
    pinned = pack.archive_sha256 if pack.version and same else None
    report.log(f"Downloading {pack.registry_id} {archive.version} from the Comfy Registry")
    if archive.sha256 is None and pinned is None:
        report.log(
            f"{pack.registry_id}: the registry publishes no checksum; recording the "
            "archive's sha256 in the project"
        )
    pack.archive_sha256 = _install_zip(archive, target, pack.registry_id, cancel, pinned)
    return archive.version


def check_pack_paths(dirs: ProjectDirs, target: Path) -> None:
    """Refuse, before anything is written, a link on the way to the pack folder, the pack
    folder itself as a link, or a link at one of the names an install writes beside it."""
    check_files(
        dirs.root,
        target,
        target.with_name(target.name + ".partial"),
        target.with_name(target.name + ".partial.disabled"),
        target.with_name(target.name + ".old.disabled"),
        area="the project's custom_nodes folder",
    )


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
    check_pack_paths(dirs, target)
    dirs.custom_nodes.mkdir(parents=True, exist_ok=True)
    if pack.url:
        url = validate_git_url(pack.url)
        ref = pack.commit or _ref_for_version(url, pack.version, report, cancel)
        installed = sources.checkout(url, ref, target, stage="packs", report=report, cancel=cancel)
    elif pack.registry_id and registry:
        installed = _install_registry_pack(pack, target, registry, report, cancel)
    else:
        raise InvalidInput(f"Pack {folder} has neither a git URL nor a registry id.")
    install_pack_requirements(target, dirs, uv, report=report, cancel=cancel, run_script=True)
    return installed


def install_pack_requirements(
    target: Path,
    dirs: ProjectDirs,
    uv: envs.UvRunner,
    *,
    report: Reporter,
    cancel: CancelToken,
    run_script: bool = False,
) -> None:
    """A pack folder's ``requirements.txt`` under the project's torch constraint and, with
    ``run_script``, its ``install.py`` run once by the project's Python (as ComfyUI-Manager
    does)."""
    req = target / "requirements.txt"
    if req.is_file():
        envs.install_requirements(
            uv,
            dirs.venv,
            [req],
            dirs.constraints,
            what=f"Installing requirements of {target.name}",
            report=report,
            cancel=cancel,
        )
    if run_script and (target / "install.py").exists():
        outcome = process.run_tool(
            [envs.venv_python(dirs.venv), "install.py"],
            cwd=target,
            on_line=report.log,
            cancel=cancel,
            env=uv.env(),
            timeout=1800,
        )
        process.check(outcome, f"{target.name}/install.py")
