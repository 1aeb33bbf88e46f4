"""Download one model file into the store: ``download_file``.

The file only ever appears in the store complete and verified: bytes go to ``<target>.part``
(see ``transfer.py``), the size, the sha256 (when known) and the format header are checked,
then ``os.replace`` moves it into place. Several URLs for one file are mirrors, tried in order.
A lock per target file (across threads and processes) means two requests for the same file
cause one transfer: the second waits and then finds the file in place.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import requests
from filelock import FileLock
from filelock import Timeout as LockTimeout

from comfymanager.core import fileops
from comfymanager.core.errors import Cancelled, ComfyManagerError, Conflict, InvalidInput
from comfymanager.core.killpoint import kill_point
from comfymanager.core.models import hf as hf_mod
from comfymanager.core.models.checks import check_file
from comfymanager.core.models.folders import (
    safe_store_path,
    url_for_log,
)
from comfymanager.core.models.hashing import sha256_file
from comfymanager.core.models.hosts import Endpoints, Source, classify, pick_civitai_file
from comfymanager.core.models.index import ModelIndex, index_files
from comfymanager.core.models.part import (
    DiskFull,
    DownloadFailed,
    TooLargeForDrive,
    TransferSpec,
    check_free_space,
    sidecar_path,
)
from comfymanager.core.models.request import DownloadRequest as DownloadRequest  # re-export
from comfymanager.core.models.safe_path import LinkRefused, check_files, fold_key
from comfymanager.core.models.transfer import transfer
from comfymanager.core.progress import CancelToken, Progress, Reporter
from comfymanager.core.secrets import Secrets

log = logging.getLogger(__name__)

LOCK_DIR = ".comfymanager/locks"


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    folder: str
    name: str
    size: int
    sha256: str | None
    url: str = ""  # the source that served it (no query string)
    bytes_fetched: int = 0
    resumed_from: int = 0
    already_present: bool = False
    sources: tuple[str, ...] = field(default=())


def default_name(url: str) -> str:
    """The file name a URL points to (its last path part)."""
    from urllib.parse import unquote, urlsplit

    tail = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    if not tail:
        raise InvalidInput(
            f"Cannot tell a file name from {url_for_log(url)}.",
            "Give the name to save it under (--name).",
        )
    return tail


def lock_key(store: Path, target: Path) -> str:
    """The lock file name for ``target``: a hash of its path inside the store, folded with
    ``fold_key`` so that names a case-insensitive file system takes as one file (and so share
    one ``.part``) share one lock on every system."""
    try:
        rel = target.relative_to(store.resolve()).as_posix()
    except ValueError:
        rel = target.relative_to(store).as_posix() if target.is_relative_to(store) else str(target)
    return hashlib.sha1(fold_key(rel).encode("utf-8")).hexdigest()[:20] + ".lock"


def lock_path(store: Path, target: Path) -> Path:
    return store / LOCK_DIR / lock_key(store, target)


def _lock_for(store: Path, target: Path) -> FileLock:
    path = lock_path(store, target)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path))


def check_store_paths(store: Path, target: Path) -> None:
    """Refuse, before anything is written, a link on the way to ``target``, its ``.part``,
    the part's sidecar (and its ``.bak``), the lock file or the store index (``safe_path``)."""
    part = target.with_name(target.name + ".part")
    side = sidecar_path(part)
    check_files(
        store,
        lock_path(store, target),
        target,
        part,
        side,
        side.with_name(side.name + ".bak"),
        *index_files(store),
        area="the model store",
    )


def _acquire(lock: FileLock, cancel: CancelToken, report: Reporter, key: str) -> None:
    waiting = False
    while True:
        cancel.check()
        try:
            lock.acquire(timeout=0.2)
            return
        except LockTimeout:
            if not waiting:
                waiting = True
                report.progress(
                    Progress(
                        stage="waiting",
                        key=key,
                        message="Waiting for another download of this file",
                    )
                )


def _existing(
    req: DownloadRequest,
    target: Path,
    index: ModelIndex | None,
    report: Reporter,
    cancel: CancelToken,
    key: str,
) -> DownloadResult | None:
    if not target.is_file():
        return None
    size = target.stat().st_size
    if req.size is not None and size != req.size:
        raise Conflict(
            f"{req.target_key} already exists in the store with another size "
            f"({size} bytes, expected {req.size}).",
            "Delete or rename the existing file, or save the download under another name.",
        )
    sha = None
    if req.sha256:
        sha = index.cached_sha256(req.folder, req.name) if index else None
        if sha is None:
            sha = sha256_file(target, report, cancel, key=key)
            if index is not None:
                index.record(req.folder, req.name, sha256=sha)
        if sha != req.sha256:
            raise Conflict(
                f"{req.target_key} already exists in the store but is a different file "
                f"(sha256 {sha}, expected {req.sha256}).",
                "Delete or rename the existing file, or save the download under another name.",
            )
    return DownloadResult(
        path=target, folder=req.folder, name=req.name, size=size, sha256=sha, already_present=True
    )


def _bearer(token: str | None) -> str | None:
    return f"Bearer {token}" if token else None


def _civitai_denied(status: int) -> ComfyManagerError:
    return DownloadFailed(
        f"CivitAI refused the download ({status}): this file needs an API key, or it is "
        "early access.",
        "Add a CivitAI API key in Settings (civitai.com > Account settings > API keys); "
        "early-access files also need access on the site.",
    )


def _civitai_sha(
    session: requests.Session, src: Source, endpoints: Endpoints, token: str | None
) -> str | None:
    url = f"{endpoints.civitai_url}/api/v1/model-versions/{src.civitai_version}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        resp = session.get(url, headers=headers, timeout=(10, 30), allow_redirects=False)
        if resp.status_code != 200:
            log.info(
                "no CivitAI metadata for version %s (%s)", src.civitai_version, resp.status_code
            )
            return None
        picked = pick_civitai_file(resp.json())
    except (requests.RequestException, ValueError) as exc:
        log.info("no CivitAI metadata for version %s (%s)", src.civitai_version, type(exc).__name__)
        return None
    return picked.sha256 if picked else None


def _spec_for(
    src: Source,
    req: DownloadRequest,
    part: Path,
    session: requests.Session,
    secrets: Secrets | None,
    endpoints: Endpoints,
    key: str,
) -> TransferSpec:
    sha, size = req.sha256, req.size
    if src.kind == "hf" and src.hf is not None:
        token = secrets.get("huggingface") if secrets else None
        meta = hf_mod.fetch_metadata(src.hf, endpoints.hf_endpoint, token)
        if sha and meta.sha256 and sha != meta.sha256:
            raise DownloadFailed(
                f"{src.hf.filename} on Hugging Face has sha256 {meta.sha256}, but "
                f"{sha} was expected.",
                "The repository changed; check the workflow's link or expected hash.",
            )
        hf = src.hf
        pinned = type(hf)(hf.repo_id, meta.commit or hf.revision, hf.filename, hf.repo_type)
        page = endpoints.hf_endpoint
        return TransferSpec(
            url=pinned.resolve_url(endpoints.hf_endpoint),
            part=part,
            name=req.name,
            expected_size=meta.size if meta.size is not None else size,
            expected_sha256=sha or meta.sha256,
            identity=f"hf:{meta.commit or meta.etag}",
            authorization=_bearer(token),
            key=key,
            denied=lambda status: hf_mod.gated_error(hf, page, status),
            xet=meta.xet if meta.xet and meta.size is not None else None,
        )
    if src.kind == "civitai":
        token = secrets.get("civitai") if secrets else None
        sha = sha or _civitai_sha(session, src, endpoints, token)
        return TransferSpec(
            url=src.url,
            part=part,
            name=req.name,
            expected_size=size,
            expected_sha256=sha,
            authorization=_bearer(token),
            key=key,
            denied=_civitai_denied,
        )
    return TransferSpec(
        url=src.url, part=part, name=req.name, expected_size=size, expected_sha256=sha, key=key
    )


def download_file(
    req: DownloadRequest,
    *,
    store: Path,
    secrets: Secrets | None,
    endpoints: Endpoints,
    report: Reporter,
    cancel: CancelToken,
    index: ModelIndex | None = None,
    session: requests.Session | None = None,
    key: str = "",
) -> DownloadResult:
    """Put ``req`` into the store, complete and verified, and return where it is."""
    target = safe_store_path(store, req.folder, req.name)
    part = target.with_name(target.name + ".part")
    sources: list[Source] = []
    problems: list[str] = []
    for url in req.urls:
        try:
            sources.append(classify(url, endpoints))
        except InvalidInput as exc:
            problems.append(str(exc))
    if not sources:
        raise InvalidInput(
            f"No usable download address for {req.name}: {' '.join(problems)}",
            "Give an https:// link to the file.",
        )
    check_store_paths(store, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = _lock_for(store, target)
    _acquire(lock, cancel, report, key)
    own_session = session is None
    http = session or requests.Session()
    try:
        check_store_paths(store, target)  # again: another process may have planted a link
        found = _existing(req, target, index, report, cancel, key)
        if found is not None:
            report.log(f"{req.target_key} is already in the store")
            return found
        if req.size is not None:
            done = part.stat().st_size if part.exists() else 0
            check_free_space(target.parent, max(0, req.size - done))
        last: ComfyManagerError | None = None
        for src in sources:
            cancel.check()
            try:
                spec = _spec_for(src, req, part, http, secrets, endpoints, key)
                outcome = transfer(spec, http, report, cancel)
                check_file(part, req.name)
            except (Cancelled, DiskFull, TooLargeForDrive, LinkRefused):
                raise
            except ComfyManagerError as exc:
                last = exc
                if len(sources) > 1:
                    report.log(f"{url_for_log(src.url)} failed: {exc.message}")
                    log.info(
                        "%s: %s failed (%s); trying the next source",
                        req.target_key,
                        url_for_log(src.url),
                        exc.message,
                    )
                continue
            kill_point("download-before-rename")
            fileops.replace(part, target)  # retried while an antivirus scans the new file
            side = sidecar_path(part)
            for p in (side, side.with_name(side.name + ".bak")):
                fileops.remove_file(p)
            sha: str | None = outcome.sha256
            if index is not None:
                index.record(req.folder, req.name, sha256=sha, source=url_for_log(src.url))
                index.save()
            report.progress(
                Progress(
                    stage="done",
                    done=outcome.size,
                    total=outcome.size,
                    unit="bytes",
                    message=f"{req.name} is ready",
                    key=key,
                )
            )
            log.info(
                "downloaded %s (%d bytes, %d fetched, resumed from %d)",
                req.target_key,
                outcome.size,
                outcome.bytes_fetched,
                outcome.resumed_from,
            )
            return DownloadResult(
                path=target,
                folder=req.folder,
                name=req.name,
                size=outcome.size,
                sha256=sha,
                url=outcome.url,
                bytes_fetched=outcome.bytes_fetched,
                resumed_from=outcome.resumed_from,
                sources=tuple(url_for_log(s.url) for s in sources),
            )
        assert last is not None
        raise last
    finally:
        if own_session:
            http.close()
        lock.release()
