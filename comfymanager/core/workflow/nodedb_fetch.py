"""Keep a cached copy of ComfyUI-Manager's three database files up to date.

``source`` is an http(s) URL prefix (``{source}/extension-node-map.json`` ...), a ``file://``
URL or a folder path. HTTP uses conditional GETs (ETag / Last-Modified; 304 keeps the cache);
the cache is re-checked when older than ``max_age_s``; when the source cannot be reached the
cache is used and the status says so. Nothing here raises for network trouble: the returned
``NodeDbStatus`` says what happened, so the caller can report "node database unavailable".
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import requests

from comfymanager.core import persist
from comfymanager.core.errors import CorruptFile, InvalidInput
from comfymanager.core.progress import NULL_REPORTER, CancelToken, Reporter

log = logging.getLogger(__name__)

MAP_FILE = "extension-node-map.json"
NODES_FILE = "custom-node-list.json"
MODELS_FILE = "model-list.json"
STATS_FILE = "github-stats.json"
DB_FILES = (MAP_FILE, NODES_FILE, MODELS_FILE, STATS_FILE)
OPTIONAL_FILES = frozenset({STATS_FILE})
"""Files whose absence is no warning (older sources and mirrors lack them)."""
META_FILE = "meta.json"
META_KIND = "comfymanager.node-db-cache"
META_VERSION = 1
MAX_DB_BYTES = 256 * 1024 * 1024

State = Literal["updated", "not-modified", "cached", "offline", "unavailable"]


@dataclass(frozen=True)
class NodeDbStatus:
    """Outcome of a refresh. ``available`` is False only when there is no database at all."""

    state: State
    message: str
    source: str
    fetched_at: float | None = None
    warnings: tuple[str, ...] = ()

    @property
    def available(self) -> bool:
        return self.state != "unavailable"


def read_meta(cache_dir: Path) -> dict[str, Any]:
    try:
        return persist.read_json(cache_dir / META_FILE, META_KIND, META_VERSION)
    except (FileNotFoundError, CorruptFile):
        return {}


def _date(ts: float | None) -> str:
    if ts is None:
        return "an unknown date"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def _folder_of(source: str) -> Path | None:
    """The folder for a folder path or file:// URL; None for http(s)."""
    parts = urlsplit(source)
    if parts.scheme in ("http", "https"):
        return None
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if parts.scheme and len(parts.scheme) > 1:  # not a Windows drive letter
        raise InvalidInput(
            f"Node database source {source!r} uses an unsupported scheme {parts.scheme!r}.",
            "Use an http(s) URL, a file:// URL or a folder path.",
        )
    return Path(source).expanduser()


def _store(cache_dir: Path, name: str, raw: bytes) -> None:
    text = raw.decode("utf-8-sig")
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    with persist.atomic_open(cache_dir / name, keep_backup=False) as fh:
        fh.write(text)


def refresh_node_db(
    source: str,
    cache_dir: Path,
    *,
    max_age_s: float = 86400,
    force: bool = False,
    report: Reporter = NULL_REPORTER,
    cancel: CancelToken | None = None,
    session: requests.Session | None = None,
    timeout: float = 20.0,
) -> NodeDbStatus:
    """Bring the cache in ``cache_dir`` up to date from ``source`` (see module docstring)."""
    cancel = cancel or CancelToken()
    cache_dir.mkdir(parents=True, exist_ok=True)
    meta = read_meta(cache_dir)
    have = (cache_dir / MAP_FILE).is_file()
    fetched_at = meta.get("fetched_at") if isinstance(meta.get("fetched_at"), float) else None
    if fetched_at is None and have:
        fetched_at = (cache_dir / MAP_FILE).stat().st_mtime
    checked = meta.get("checked_at")
    now = time.time()
    if (
        have
        and not force
        and meta.get("source") == source
        and isinstance(checked, (int, float))
        and 0 <= now - checked < max_age_s
    ):
        return NodeDbStatus("cached", f"node database from {_date(fetched_at)}", source, fetched_at)
    folder = _folder_of(source)
    if folder is not None:
        result = _copy_folder(folder, cache_dir, report, cancel)
    else:
        result = _fetch_http(source, cache_dir, meta, report, cancel, session, timeout)
    ok, changed, file_meta, warnings, problem = result
    if not ok:
        log.info("node database refresh from %s failed: %s", source, problem)
        if have:
            msg = f"offline, using cache from {_date(fetched_at)} ({problem})"
            return NodeDbStatus("offline", msg, source, fetched_at, tuple(warnings))
        msg = f"node database unavailable: {problem}"
        return NodeDbStatus("unavailable", msg, source, None, tuple(warnings))
    payload = {
        "source": source,
        "checked_at": now,
        "fetched_at": now,
        "files": file_meta,
    }
    persist.write_json(cache_dir / META_FILE, META_KIND, META_VERSION, payload)
    if changed:
        return NodeDbStatus(
            "updated", f"node database updated from {source}", source, now, tuple(warnings)
        )
    return NodeDbStatus("not-modified", "node database is up to date", source, now, tuple(warnings))


_Result = tuple[bool, bool, dict[str, Any], list[str], str]


def _copy_folder(folder: Path, cache_dir: Path, report: Reporter, cancel: CancelToken) -> _Result:
    warnings: list[str] = []
    for name in DB_FILES:
        cancel.check()
        report.stage("node database", f"copying {name}")
        src = folder / name
        try:
            if src.stat().st_size > MAX_DB_BYTES:
                raise ValueError(f"above the {MAX_DB_BYTES // 2**20} MiB limit")
            _store(cache_dir, name, src.read_bytes())
        except FileNotFoundError:
            if name == MAP_FILE:
                return False, False, {}, warnings, f"{src} does not exist"
            if name not in OPTIONAL_FILES:
                warnings.append(f"{src} does not exist")
        except (OSError, ValueError, RecursionError) as exc:
            if name == MAP_FILE:
                return False, False, {}, warnings, f"{src} is unreadable ({exc})"
            warnings.append(f"{src} is unreadable ({exc})")
    return True, True, {}, warnings, ""


def _fetch_http(
    source: str,
    cache_dir: Path,
    meta: dict[str, Any],
    report: Reporter,
    cancel: CancelToken,
    session: requests.Session | None,
    timeout: float,
) -> _Result:
    http = session or requests.Session()
    old_files = meta.get("files") if isinstance(meta.get("files"), dict) else {}
    same_source = meta.get("source") == source
    files_meta: dict[str, Any] = {}
    warnings: list[str] = []
    changed = False
    try:
        for name in DB_FILES:
            cancel.check()
            report.stage("node database", f"checking {name}")
            url = f"{source.rstrip('/')}/{name}"
            old = old_files.get(name) if same_source and isinstance(old_files, dict) else None
            headers: dict[str, str] = {}
            if isinstance(old, dict) and (cache_dir / name).is_file():
                if isinstance(old.get("etag"), str):
                    headers["If-None-Match"] = old["etag"]
                if isinstance(old.get("last_modified"), str):
                    headers["If-Modified-Since"] = old["last_modified"]
            try:
                resp = http.get(url, headers=headers, timeout=timeout, stream=True)
            except requests.RequestException as exc:
                return False, False, {}, warnings, f"{url} could not be reached ({exc})"
            with resp:
                if resp.status_code == 304:
                    files_meta[name] = old
                    continue
                if resp.status_code != 200:
                    problem = f"{url} answered HTTP {resp.status_code}"
                    if name == MAP_FILE:
                        return False, False, {}, warnings, problem
                    if not (name in OPTIONAL_FILES and resp.status_code == 404):
                        warnings.append(problem)
                    continue
                chunks: list[bytes] = []
                size = 0
                for chunk in resp.iter_content(256 * 1024):
                    cancel.check()
                    size += len(chunk)
                    if size > MAX_DB_BYTES:
                        raise ValueError(f"{url} is above the {MAX_DB_BYTES // 2**20} MiB limit")
                    chunks.append(chunk)
                try:
                    _store(cache_dir, name, b"".join(chunks))
                except (ValueError, RecursionError) as exc:
                    problem = f"{url} is not valid JSON ({exc})"
                    if name == MAP_FILE:
                        return False, False, {}, warnings, problem
                    warnings.append(problem)
                    continue
                changed = True
                files_meta[name] = {
                    "etag": resp.headers.get("ETag"),
                    "last_modified": resp.headers.get("Last-Modified"),
                }
    except requests.RequestException as exc:
        return False, False, {}, warnings, f"the download from {source} failed ({exc})"
    except ValueError as exc:
        return False, False, {}, warnings, str(exc)
    finally:
        if session is None:
            http.close()
    return True, changed, files_meta, warnings, ""
