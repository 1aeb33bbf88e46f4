"""The download's side on disk: ``<target>.part``, its sidecar, and the pipe that fills it.

``PartFile`` owns the ``.part`` file, its sha256 state and its sidecar ``.part.json`` (written
through ``persist``, never holding a token or a URL query) recording the URL, the expected size
and hash, the server's validator (ETag or Last-Modified) and how many bytes are safely on disk.
The sidecar is rewritten after an fsync of the data at most every ``SIDECAR_INTERVAL`` seconds
(writeback is started every ``WRITEBACK_STEP`` bytes, so that fsync finds little left), and once
more when the transfer stops. Without a known sha256 a resume trusts only those fsynced bytes;
with one it resumes from the part's full length, since the final hash check would catch bytes a
power cut damaged. ``hashlib`` cannot serialise its state, so a resume with a sha256 to verify
re-hashes the existing prefix once; that is the only re-read of downloaded data. Without a known
sha256 nothing is hashed while downloading: the store index computes it when something asks.

``BlockWriter`` with ``receive_body`` (HTTP) or ``receive_chunks`` (any ordered byte stream,
such as Xet's) moves the data into the part (see their docstrings); ``transfer.py`` drives them.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import logging
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from comfymanager.core import persist
from comfymanager.core.errors import ComfyManagerError, CorruptFile
from comfymanager.core.models.folders import url_for_log
from comfymanager.core.models.hashing import hash_file
from comfymanager.core.models.safe_path import full_fsync, open_nofollow
from comfymanager.core.models.writeback import start_writeback
from comfymanager.core.models.xet import XetSource
from comfymanager.core.progress import CancelToken, Reporter, format_bytes

log = logging.getLogger(__name__)

SIDECAR_KIND = "comfymanager.download-part"
SIDECAR_VERSION = 1
SIDECAR_INTERVAL = 2.0
CHUNK = 256 * 1024  # fits the caches the three threads share; 1 MiB measured slower
WRITEBACK_STEP = 8 * 1024 * 1024  # start writing to disk every 8 MiB (writeback.py)


class DownloadFailed(ComfyManagerError):
    """A download failed; ``transient`` failures are worth retrying later or on a mirror."""

    def __init__(self, message: str, fix: str | None = None, *, transient: bool = False) -> None:
        super().__init__(message, fix)
        self.transient = transient


class DiskFull(DownloadFailed):
    """No space left for the download; the partial file is kept for resume."""


class TooLargeForDrive(DownloadFailed):
    """The store's file system cannot hold a file this large (FAT32: 4 GB)."""


class ConnectionLost(DownloadFailed):
    """The connection kept failing through every retry: the download pauses (part kept)."""


class BrokenBody(Exception):
    """The connection broke while the body was being received (worth a retry)."""


DeniedFn = Callable[[int], ComfyManagerError]


def _default_denied(status: int) -> ComfyManagerError:
    return DownloadFailed(
        f"The server refused the download ({status}).", "The file may need a login or a token."
    )


@dataclass(frozen=True)
class TransferSpec:
    url: str
    part: Path
    name: str  # the file name, for content checks and messages
    expected_size: int | None = None
    expected_sha256: str | None = None
    identity: str = ""  # what the bytes must belong to (HF commit + sha...); change = restart
    authorization: str | None = None  # header value; sent to the URL's own host only
    key: str = ""
    denied: DeniedFn = _default_denied
    xet: XetSource | None = None  # a Hugging Face file stored in Xet: streamed by hf_xet first


def sidecar_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def free_space(path: Path) -> int | None:
    """Free bytes on the volume holding ``path`` (its nearest existing parent); None when the
    system cannot say. The one free-space probe (plan, first run, downloads; tests patch it)."""
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free
    except OSError:
        return None


def disk_margin(size: int) -> int:
    return 16 * 1024 * 1024 + size // 100


def check_free_space(folder: Path, need: int) -> None:
    free = free_space(folder)
    if free is not None and need + disk_margin(need) > free:
        raise DiskFull(
            f"Not enough disk space: need {format_bytes(need)}, {format_bytes(free)} free on "
            f"{folder}.",
            "Free space or choose another store folder in Settings.",
        )


class PartFile:
    """The .part file, its hash state and its sidecar."""

    def __init__(self, spec: TransferSpec, report: Reporter, cancel: CancelToken) -> None:
        self.spec = spec
        self.path = spec.part
        self.sidecar = sidecar_path(spec.part)
        self.validator: str | None = None  # strong ETag or Last-Modified of the data
        self.final_url = url_for_log(spec.url)
        self.done = 0
        # sha256 only when there is one to verify; the store index hashes the rest lazily
        self.hasher: Any = hashlib.sha256() if spec.expected_sha256 else None
        self._fd: int | None = None  # unbuffered: blocks are large, a buffer only copies
        self._last_saved = time.monotonic()
        self._flushed_to = 0  # writeback was started for the bytes before this offset
        self._open_existing(report, cancel)

    def _open_existing(self, report: Reporter, cancel: CancelToken) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keep = 0
        try:
            state = persist.read_json(self.sidecar, SIDECAR_KIND, SIDECAR_VERSION)
        except (FileNotFoundError, CorruptFile):
            state = None
        if state and self.path.exists():
            same_url = state.get("url") == url_for_log(self.spec.url)
            same_file = (
                state.get("expected_sha256") == self.spec.expected_sha256
                and state.get("expected_size") == self.spec.expected_size
            )
            # with a known sha256 any mirror may continue the part (the hash proves the
            # result); without one, only the same URL and source identity may
            same = same_file and (
                bool(self.spec.expected_sha256)
                or (same_url and state.get("identity") == self.spec.identity)
            )
            if same:
                size = self.path.stat().st_size
                # with a known hash every byte on disk can be trusted for now (the final check
                # catches what a power cut may have damaged); without one, only what was
                # fsynced before the sidecar was written
                keep = (
                    size
                    if self.spec.expected_sha256
                    else min(int(state.get("bytes_done", 0)), size)
                )
                # a validator only means something to the server that issued it
                self.validator = (state.get("validator") or None) if same_url else None
            else:
                log.info(
                    "%s: the partial file belongs to another source; starting over", self.spec.name
                )
        fd = open_nofollow(self.path, os.O_WRONLY | os.O_CREAT)
        try:
            os.ftruncate(fd, keep)
        finally:
            os.close(fd)
        self.done = self._flushed_to = keep
        if keep:
            report.log(f"Resuming {self.spec.name} from {format_bytes(keep)}")
        if keep and self.hasher is not None:
            self.hasher = hash_file(
                self.path,
                report,
                cancel,
                limit=keep,
                key=self.spec.key,
                stage="checking partial file",
            )

    def restart(self) -> None:
        self.close()
        os.close(open_nofollow(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC))
        self.done = self._flushed_to = 0
        self.validator = None
        self.hasher = hashlib.sha256() if self.spec.expected_sha256 else None
        self.save_state(force=True)

    def write(self, block: bytes | memoryview, *, update_hash: bool = True) -> None:
        """Append ``block``; ``update_hash=False`` when the caller feeds ``hasher`` itself."""
        if self._fd is None:
            self._fd = open_nofollow(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            view = memoryview(block)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
                raise DiskFull(
                    f"The disk is full: {self.spec.name} stopped at {format_bytes(self.done)}.",
                    "Free space or choose another store folder in Settings, then retry: "
                    "the download resumes where it stopped.",
                ) from None
            if exc.errno == errno.EFBIG:
                raise TooLargeForDrive(
                    f"The target drive's file system cannot hold files over 4 GB (FAT32): "
                    f"{self.spec.name} stopped at {format_bytes(self.done)} in "
                    f"{self.path.parent}.",
                    "Choose another store folder in Settings (on an NTFS, exFAT, APFS or ext4 "
                    "drive), then download again.",
                ) from None
            raise
        if update_hash and self.hasher is not None:
            self.hasher.update(block)
        self.done += len(block)
        if self.done - self._flushed_to >= WRITEBACK_STEP:
            start_writeback(self._fd, self._flushed_to, self.done - self._flushed_to)
            self._flushed_to = self.done
        if time.monotonic() - self._last_saved >= SIDECAR_INTERVAL:
            self.save_state()

    def save_state(self, force: bool = False) -> None:
        """fsync the data, then record how much of it is safe."""
        if self._fd is not None:
            try:
                full_fsync(self._fd)
            except OSError as exc:
                log.warning("could not flush %s: %s", self.path.name, exc.strerror)
                if not force:
                    return
        payload = {
            "url": url_for_log(self.spec.url),
            "final_url": self.final_url,
            "identity": self.spec.identity,
            "expected_size": self.spec.expected_size,
            "expected_sha256": self.spec.expected_sha256,
            "validator": self.validator,
            "bytes_done": self.done,
        }
        try:
            persist.write_json(self.sidecar, SIDECAR_KIND, SIDECAR_VERSION, payload)
        except OSError as exc:
            log.warning("could not save download state of %s: %s", self.path.name, exc.strerror)
        self._last_saved = time.monotonic()

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def discard(self) -> None:
        self.close()
        for p in (self.path, self.sidecar, self.sidecar.with_name(self.sidecar.name + ".bak")):
            p.unlink(missing_ok=True)


def discard_part(part: Path) -> None:
    """Delete a partial download and its sidecar (cancel keeps nothing)."""
    side = sidecar_path(part)
    for p in (part, side, side.with_name(side.name + ".bak")):
        p.unlink(missing_ok=True)


class BlockWriter:
    """Writes received blocks in the receiving thread and, when a sha256 is to be verified,
    hashes them on a second one.

    Receiving (``recv_into``), writing and sha256 all release the GIL, so hashing overlaps the
    next receive. A ring of fixed buffers goes round: the caller fills one (``buffer``), hands
    it over (``submit``: written at once, then queued for the hash thread), and gets it back
    once it is hashed. Without a sha256 to verify there is no hash thread and a buffer is
    reused as soon as it is written.
    """

    BUFFERS = 16

    def __init__(self, part: PartFile) -> None:
        self._part = part
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._to_hash: queue.SimpleQueue[tuple[bytearray, int] | None] = queue.SimpleQueue()
        for _ in range(self.BUFFERS):
            self._free.put(bytearray(CHUNK))
        self._current: bytearray | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if part.hasher is not None:
            self._thread = threading.Thread(target=self._run, name="download-hash", daemon=True)

    def __enter__(self) -> BlockWriter:
        if self._thread is not None:
            self._thread.start()
        return self

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        if self._thread is not None:
            self._to_hash.put(None)
            self._thread.join()
        if self._error is not None and kind is None:
            raise self._error

    def buffer(self) -> memoryview:
        """An empty buffer to receive into (waits while all are being hashed)."""
        self._current = self._free.get()
        if self._error is not None:
            raise self._error
        return memoryview(self._current)

    def head(self, n: int) -> bytes:
        assert self._current is not None
        return bytes(self._current[: min(n, 64 * 1024)])

    def submit(self, n: int) -> None:
        """Write the first ``n`` bytes of the current buffer, then queue them for hashing."""
        buf = self._current
        assert buf is not None
        self._current = None
        try:
            self._part.write(memoryview(buf)[:n], update_hash=False)
        finally:
            if self._thread is None:
                self._free.put(buf)
            else:
                self._to_hash.put((buf, n))

    def _run(self) -> None:
        while (item := self._to_hash.get()) is not None:
            buf, n = item
            if self._error is None:
                try:
                    self._part.hasher.update(memoryview(buf)[:n])
                except BaseException as exc:  # raised to the receiving thread
                    self._error = exc
            self._free.put(buf)


def receive_body(
    resp: requests.Response, writer: BlockWriter, cancel: CancelToken
) -> Iterator[int]:
    """Receive the body into the writer's buffers; yields each block's length.

    The body is read with ``readinto`` straight from the connection into a reused buffer (no
    per-block allocation or copy); a compressed or otherwise wrapped body falls back to
    ``iter_content``. Connection errors become ``BrokenBody``.
    """
    encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
    raw_fp = getattr(resp.raw, "_fp", None)
    readinto = getattr(raw_fp, "readinto", None)
    if encoding not in ("", "identity") or not callable(readinto):
        yield from receive_chunks(resp.iter_content(CHUNK), writer, cancel)
        return
    while True:
        cancel.check()
        view = writer.buffer()
        try:
            n = readinto(view)
        except (OSError, http.client.HTTPException) as exc:
            raise BrokenBody(f"the connection broke ({type(exc).__name__})") from None
        if not n:
            return
        yield n


def receive_chunks(
    chunks: Iterable[bytes], writer: BlockWriter, cancel: CancelToken
) -> Iterator[int]:
    """Copy an ordered stream of byte chunks of any size into the writer's buffers, block by
    block; yields each block's length."""
    for chunk in chunks:
        view = memoryview(chunk)
        for at in range(0, len(view), CHUNK):
            cancel.check()
            piece = view[at : at + CHUNK]
            writer.buffer()[: len(piece)] = piece
            yield len(piece)
