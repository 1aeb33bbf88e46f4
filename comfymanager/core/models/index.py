"""The store index: what files the store holds, their hashes, sources and users.

The index lives in the store itself (``<store>/.comfymanager-index.json``), not under the data
root: it describes that folder's content, so it stays right when the store is moved, adopted by
another data root or shared by two installs, and switching stores in Settings switches indexes.
ComfyUI never sees it (it only lists files inside folder keys).

Hashes are computed lazily and cached against (size, mtime): a file changed behind our back
loses its cached hash and is rehashed when next asked.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from comfymanager.core import fileops, persist
from comfymanager.core.errors import NotFound
from comfymanager.core.models.folders import (
    FOLDER_KEYS,
    LEGACY_FOLDERS,
    aliases_of,
    can_run_code,
    safe_relative_name,
    safe_store_path,
)
from comfymanager.core.models.hashing import sha256_file
from comfymanager.core.models.safe_path import check_files
from comfymanager.core.progress import NULL_REPORTER, CancelToken, Reporter

log = logging.getLogger(__name__)

INDEX_NAME = ".comfymanager-index.json"


def index_files(store: Path) -> tuple[Path, Path]:
    """The index file and the backup ``persist`` keeps beside it."""
    path = store / INDEX_NAME
    return path, path.with_name(path.name + ".bak")


KIND = "comfymanager.model-index"
VERSION = 1
#: suffixes of in-progress downloads and our own bookkeeping: never listed as models
_SKIP_SUFFIXES = (".part", ".part.json", ".part.json.bak", ".tmp", ".lock")


@dataclass(frozen=True)
class ModelFile:
    """One file in the store. ``folder`` is the on-disk folder (maybe a legacy alias)."""

    folder: str
    name: str
    size: int
    mtime_ns: int
    sha256: str | None = None  # only when cached for this size+mtime
    sources: tuple[str, ...] = ()
    can_run_code: bool = False
    used_by: tuple[str, ...] = ()
    path: Path = field(default=Path(), compare=False)

    @property
    def key(self) -> str:
        return f"{self.folder}/{self.name}"


def _entry_key(folder: str, name: str) -> str:
    return f"{folder}/{name}"


class ModelIndex:
    """The index of one store; thread-safe. ``save()`` writes it atomically."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self._lock = threading.RLock()
        self._entries: dict[str, dict[str, Any]] = {}

    @property
    def path(self) -> Path:
        return self.store / INDEX_NAME

    @classmethod
    def load(cls, store: Path) -> ModelIndex:
        index = cls(store)
        try:
            data = persist.read_json(index.path, KIND, VERSION)
        except FileNotFoundError:
            return index
        raw = data.get("files", {})
        if isinstance(raw, dict):
            index._entries = {k: v for k, v in raw.items() if isinstance(v, dict)}
        return index

    def save(self) -> None:
        """Write the index; refused (``LinkRefused``) when it or its ``.bak`` is a link: the
        backup copy would write through it."""
        check_files(self.store, *index_files(self.store), area="the model store")
        with self._lock:
            payload = {"store": str(self.store), "files": dict(sorted(self._entries.items()))}
            persist.write_json(self.path, KIND, VERSION, payload)

    # ---- reading -------------------------------------------------------------------------

    def _to_file(self, entry: dict[str, Any]) -> ModelFile:
        folder, name = str(entry["folder"]), str(entry["name"])
        size, mtime = int(entry.get("size", 0)), int(entry.get("mtime_ns", 0))
        sha = entry.get("sha256")
        valid = sha and entry.get("hashed_size") == size and entry.get("hashed_mtime_ns") == mtime
        return ModelFile(
            folder=folder,
            name=name,
            size=size,
            mtime_ns=mtime,
            sha256=str(sha) if valid else None,
            sources=tuple(entry.get("sources", ())),
            can_run_code=can_run_code(name),
            used_by=tuple(entry.get("used_by", ())),
            path=self.store / folder / name,
        )

    def files(self) -> list[ModelFile]:
        with self._lock:
            return [self._to_file(e) for _, e in sorted(self._entries.items())]

    def find(self, folder: str, name: str) -> ModelFile | None:
        """The entry for ``folder``/``name``, looking in the key's legacy aliases too."""
        rel = safe_relative_name(name)
        with self._lock:
            for alias in aliases_of(folder):
                entry = self._entries.get(_entry_key(alias, rel))
                if entry is not None:
                    return self._to_file(entry)
        return None

    def find_by_sha256(self, sha256: str) -> list[ModelFile]:
        """Files whose cached hash is ``sha256`` (the same file, maybe under another name)."""
        want = sha256.lower()
        return [f for f in self.files() if f.sha256 == want]

    def cached_sha256(self, folder: str, name: str) -> str | None:
        """The cached hash if the file on disk still has the size and mtime it was hashed at."""
        found = self.find(folder, name)
        if found is None:
            return None
        try:
            st = found.path.stat()
        except OSError:
            return None
        if st.st_size != found.size or st.st_mtime_ns != found.mtime_ns:
            return None
        return found.sha256

    # ---- writing -------------------------------------------------------------------------

    def _stat_entry(self, folder: str, rel: str, path: Path) -> dict[str, Any]:
        st = path.stat()
        key = _entry_key(folder, rel)
        old = self._entries.get(key, {})
        entry = {
            **old,
            "folder": folder,
            "name": rel,
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
        }
        self._entries[key] = entry
        return entry

    def record(
        self, folder: str, name: str, *, sha256: str | None = None, source: str | None = None
    ) -> ModelFile:
        """Add or refresh one file (after a download). ``sha256`` is cached for its stat."""
        path = safe_store_path(self.store, folder, name)
        disk_folder = path.parent.relative_to(self.store).parts[0]
        rel = path.relative_to(self.store / disk_folder).as_posix()
        with self._lock:
            entry = self._stat_entry(disk_folder, rel, path)
            if sha256:
                entry.update(
                    sha256=sha256.lower(),
                    hashed_size=entry["size"],
                    hashed_mtime_ns=entry["mtime_ns"],
                )
            if source:
                sources = list(entry.get("sources", []))
                if source not in sources:
                    sources.append(source)
                entry["sources"] = sources
            return self._to_file(entry)

    def scan(
        self, report: Reporter = NULL_REPORTER, cancel: CancelToken | None = None
    ) -> list[ModelFile]:
        """Walk every known folder (stat only, no hashing); drop entries whose file is gone."""
        cancel = cancel or CancelToken()
        seen: dict[str, tuple[str, str, Path]] = {}
        for folder in (*FOLDER_KEYS, *LEGACY_FOLDERS):
            base = self.store / folder
            if not base.is_dir():
                continue
            for root, dirs, files in os.walk(base, followlinks=True):
                cancel.check()
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                for fname in files:
                    if fname.startswith(".") or fname.endswith(_SKIP_SUFFIXES):
                        continue
                    path = Path(root) / fname
                    rel = path.relative_to(base).as_posix()
                    seen[_entry_key(folder, rel)] = (folder, rel, path)
        with self._lock:
            for key in list(self._entries):
                if key not in seen:
                    del self._entries[key]
            for folder, rel, path in seen.values():
                try:
                    self._stat_entry(folder, rel, path)
                except OSError:
                    self._entries.pop(_entry_key(folder, rel), None)
        report.log(f"{len(seen)} model files in {self.store}")
        return self.files()

    def sha256(
        self,
        folder: str,
        name: str,
        report: Reporter = NULL_REPORTER,
        cancel: CancelToken | None = None,
    ) -> str:
        """The file's sha256, from the cache when still valid, else computed and cached."""
        cached = self.cached_sha256(folder, name)
        if cached:
            return cached
        return self._rehash(folder, name, report, cancel or CancelToken())

    def _rehash(self, folder: str, name: str, report: Reporter, cancel: CancelToken) -> str:
        found = self.find(folder, name)
        if found is None or not found.path.is_file():
            raise NotFound(
                f"{folder}/{name} is not in the model store.",
                "Download it first, or rescan the store.",
            )
        digest = sha256_file(found.path, report, cancel)
        with self._lock:
            entry = self._stat_entry(found.folder, found.name, found.path)
            entry.update(
                sha256=digest, hashed_size=entry["size"], hashed_mtime_ns=entry["mtime_ns"]
            )
        return digest

    def verify(
        self,
        folder: str,
        name: str,
        report: Reporter = NULL_REPORTER,
        cancel: CancelToken | None = None,
    ) -> bool:
        """Rehash the file; True when it matches the hash recorded when it was stored.

        A file with no recorded hash gets one and counts as verified.
        """
        found = self.find(folder, name)
        if found is None:
            raise NotFound(f"{folder}/{name} is not in the model store.", "Rescan the store.")
        with self._lock:
            expected = self._entries[found.key].get("sha256")
        digest = self._rehash(folder, name, report, cancel or CancelToken())
        if expected and expected != digest:
            log.warning("%s changed on disk: sha256 %s, recorded %s", found.key, digest, expected)
            return False
        return True

    def set_used_by(self, folder: str, name: str, project_ids: list[str]) -> None:
        found = self.find(folder, name)
        if found is None:
            raise NotFound(f"{folder}/{name} is not in the model store.", "Rescan the store.")
        with self._lock:
            self._entries[found.key]["used_by"] = sorted(set(project_ids))

    def delete(self, folder: str, name: str) -> None:
        """Delete the file from disk and the index."""
        found = self.find(folder, name)
        if found is None:
            raise NotFound(f"{folder}/{name} is not in the model store.", "Rescan the store.")
        fileops.remove_file(  # a model ComfyUI has loaded is memory-mapped: locked on Windows
            found.path, holder="a running ComfyUI", fix="Stop it and try again."
        )
        with self._lock:
            self._entries.pop(found.key, None)
        log.info("deleted %s from the store", found.key)


def scan(
    store: Path, report: Reporter = NULL_REPORTER, cancel: CancelToken | None = None
) -> ModelIndex:
    """Load the store's index, refresh it from disk (no hashing) and save it."""
    index = ModelIndex.load(store)
    index.scan(report, cancel)
    if store.is_dir():
        index.save()
    return index
