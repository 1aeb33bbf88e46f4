"""The persistent download queue (``<data root>/downloads.json``).

One item per target file (folder + name): asking for the same file twice (two projects, two
mirrors) merges URLs and requesters into the existing item. The file is rewritten atomically on
every state change, so the queue survives a quit, a crash or a reboot; on load, items that were
``downloading`` or ``verifying`` go back to ``queued`` and resume from their ``.part`` file.
Not thread-safe by design: the manager changes it from the Qt thread only.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from comfymanager.core import persist
from comfymanager.core.errors import Conflict, NotFound
from comfymanager.core.models.request import DownloadRequest

log = logging.getLogger(__name__)

KIND = "comfymanager.downloads"
VERSION = 1

QUEUED = "queued"
DOWNLOADING = "downloading"
VERIFYING = "verifying"
DONE = "done"
FAILED = "failed"
PAUSED = "paused"
CANCELLED = "cancelled"
STATES = (QUEUED, DOWNLOADING, VERIFYING, DONE, FAILED, PAUSED, CANCELLED)
ACTIVE = (DOWNLOADING, VERIFYING)


@dataclass(frozen=True)
class QueueItem:
    id: str
    request: DownloadRequest
    state: str = QUEUED
    requesters: tuple[str, ...] = ()
    done: int = 0
    total: int | None = None
    error: str = ""  # the failure sentence when state is failed
    path: str = ""  # where the file is, once done
    added: float = field(default_factory=time.time)

    @property
    def key(self) -> str:
        return self.request.target_key

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "request": self.request.to_dict(),
            "state": self.state,
            "requesters": list(self.requesters),
            "done": self.done,
            "total": self.total,
            "error": self.error,
            "path": self.path,
            "added": self.added,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QueueItem:
        state = str(data.get("state", QUEUED))
        return cls(
            id=str(data["id"]),
            request=DownloadRequest.from_dict(data["request"]),
            state=state if state in STATES else QUEUED,
            requesters=tuple(data.get("requesters", ())),
            done=int(data.get("done", 0)),
            total=data.get("total"),
            error=str(data.get("error", "")),
            path=str(data.get("path", "")),
            added=float(data.get("added", 0.0)),
        )


def _merge_urls(old: tuple[str, ...], new: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*old, *new)))


class DownloadQueue:
    """Items in the order they were added; ``save()`` after each change that matters."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer = persist.DeferredWriter(path, KIND, VERSION)
        self._items: dict[str, QueueItem] = {}

    @classmethod
    def load(cls, path: Path) -> DownloadQueue:
        queue = cls(path)
        try:
            data = persist.read_json(path, KIND, VERSION)
        except FileNotFoundError:
            return queue
        for raw in data.get("items", []):
            try:
                item = QueueItem.from_dict(raw)
            except (KeyError, TypeError, ValueError, Conflict) as exc:
                log.warning("dropping an unreadable download entry: %s", exc)
                continue
            except Exception as exc:  # an invalid folder/name in a hand-edited file
                log.warning("dropping an invalid download entry: %s", exc)
                continue
            if item.state in ACTIVE:
                item = replace(item, state=QUEUED)
            queue._items[item.id] = item
        return queue

    def _payload(self) -> dict[str, Any]:
        return {"items": [i.to_dict() for i in self._items.values()]}

    def save(self) -> None:
        """Write the queue now (waits for any save still in the background first)."""
        self._writer.flush()
        persist.write_json(self.path, KIND, VERSION, self._payload())

    def save_later(self) -> None:
        """Write the queue on a background thread (the UI thread must not wait for fsync)."""
        self._writer.submit(self._payload())

    def flush(self) -> None:
        self._writer.flush()

    def items(self) -> list[QueueItem]:
        return list(self._items.values())

    def get(self, item_id: str) -> QueueItem:
        try:
            return self._items[item_id]
        except KeyError:
            raise NotFound(f"No download with id {item_id}.") from None

    def find(self, folder: str, name: str) -> QueueItem | None:
        key = f"{folder}/{name}"
        return next((i for i in self._items.values() if i.key == key), None)

    def add(self, request: DownloadRequest, requester: str = "") -> tuple[QueueItem, bool]:
        """Add or merge; returns the item and whether a transfer must be (re)started."""
        existing = self.find(request.folder, request.name)
        requesters = (requester,) if requester else ()
        if existing is None:
            item = QueueItem(id=uuid.uuid4().hex[:12], request=request, requesters=requesters)
            self._items[item.id] = item
            return item, True
        old = existing.request
        if old.sha256 and request.sha256 and old.sha256 != request.sha256:
            raise Conflict(
                f"{request.target_key} is already queued with sha256 {old.sha256}, but "
                f"{request.sha256} was asked now.",
                "Two sources disagree about this file: save one of them under another name.",
            )
        merged = DownloadRequest(
            urls=_merge_urls(old.urls, request.urls),
            folder=old.folder,
            name=old.name,
            sha256=old.sha256 or request.sha256,
            size=old.size if old.size is not None else request.size,
        )
        restart = existing.state in (FAILED, CANCELLED)
        item = replace(
            existing,
            request=merged,
            requesters=tuple(dict.fromkeys((*existing.requesters, *requesters))),
            state=QUEUED if restart else existing.state,
            error="" if restart else existing.error,
        )
        self._items[item.id] = item
        return item, restart

    def update(self, item_id: str, **changes: Any) -> QueueItem:
        item = replace(self.get(item_id), **changes)
        self._items[item_id] = item
        return item

    def remove(self, item_id: str) -> None:
        self._items.pop(item_id, None)

    def queued(self) -> list[QueueItem]:
        return [i for i in self._items.values() if i.state == QUEUED]
