"""Resumable HTTP transfer of one file into ``<target>.part``, hashed while streaming.

The ``.part`` file has a sidecar ``.part.json`` (written through ``persist``, never holding a
token or a URL query) recording the URL, the expected size and hash, the server's validator
(ETag or Last-Modified) and how many bytes are safely on disk. The sidecar is rewritten after an
fsync of the data at most every ``SIDECAR_INTERVAL`` seconds, and once more when the transfer
stops for any reason. Without a known sha256 a resume trusts only those fsynced bytes; with one
it resumes from the part's full length (after a kill nothing is lost), since the final hash
check would catch bytes a power cut damaged.

Resuming sends ``Range: bytes=N-`` and ``If-Range``; a 200 answer (Range ignored, or the file
changed) truncates the part and starts over. ``hashlib`` cannot serialise its state, so a resume
re-hashes the existing prefix once; that is the only re-read of downloaded data.
Redirects are followed by hand (at most ``MAX_REDIRECTS``); the Authorization header is sent to
the original host only, never to a host a redirect leads to.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import logging
import os
import queue
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from comfymanager import __version__
from comfymanager.core import persist
from comfymanager.core.errors import Cancelled, ComfyManagerError, CorruptFile, NotFound
from comfymanager.core.models.checks import check_response
from comfymanager.core.models.folders import check_url, url_for_log
from comfymanager.core.models.hashing import hash_file
from comfymanager.core.progress import (
    CancelToken,
    Progress,
    RateMeter,
    Reporter,
    format_bytes,
)

log = logging.getLogger(__name__)

SIDECAR_KIND = "comfymanager.download-part"
SIDECAR_VERSION = 1
SIDECAR_INTERVAL = 2.0
CHUNK = 256 * 1024  # fits the caches the three threads share; 1 MiB measured slower
MAX_REDIRECTS = 10
RETRIES = 5
BACKOFF = 1.0
TIMEOUT = (15.0, 60.0)
PROGRESS_INTERVAL = 0.1
_REDIRECTS = (301, 302, 303, 307, 308)
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class DownloadFailed(ComfyManagerError):
    """A download failed; ``transient`` failures are worth retrying later or on a mirror."""

    def __init__(self, message: str, fix: str | None = None, *, transient: bool = False) -> None:
        super().__init__(message, fix)
        self.transient = transient


class DiskFull(DownloadFailed):
    """No space left for the download; the partial file is kept for resume."""


class _Retry(Exception):
    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


class _Restart(Exception):
    """Throw away the partial data and fetch from byte 0."""


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


@dataclass(frozen=True)
class TransferOutcome:
    size: int
    sha256: str
    url: str  # the URL that served the data, without its query
    bytes_fetched: int
    resumed_from: int


def sidecar_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def free_space(path: Path) -> int:
    """Free bytes on the volume holding ``path`` (tests monkeypatch this)."""
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def disk_margin(size: int) -> int:
    return 16 * 1024 * 1024 + size // 100


def check_free_space(folder: Path, need: int) -> None:
    free = free_space(folder)
    if need + disk_margin(need) > free:
        raise DiskFull(
            f"Not enough disk space: need {format_bytes(need)}, {format_bytes(free)} free on "
            f"{folder}.",
            "Free space or choose another store folder in Settings.",
        )


class _Part:
    """The .part file, its hash state and its sidecar."""

    def __init__(self, spec: TransferSpec, report: Reporter, cancel: CancelToken) -> None:
        self.spec = spec
        self.path = spec.part
        self.sidecar = sidecar_path(spec.part)
        self.validator: str | None = None  # strong ETag or Last-Modified of the data
        self.final_url = url_for_log(spec.url)
        self.done = 0
        self.hasher: Any = hashlib.sha256()
        self._fd: int | None = None  # unbuffered: blocks are large, a buffer only copies
        self._last_saved = time.monotonic()
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
        with open(self.path, "ab") as fh:
            fh.truncate(keep)
        self.done = keep
        if keep:
            report.log(f"Resuming {self.spec.name} from {format_bytes(keep)}")
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
        with open(self.path, "wb"):
            pass
        self.done = 0
        self.validator = None
        self.hasher = hashlib.sha256()
        self.save_state(force=True)

    def write(self, block: bytes | memoryview, *, update_hash: bool = True) -> None:
        """Append ``block``; ``update_hash=False`` when the caller feeds ``hasher`` itself."""
        if self._fd is None:
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
            self._fd = os.open(self.path, flags, 0o644)
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
            raise
        if update_hash:
            self.hasher.update(block)
        self.done += len(block)
        if time.monotonic() - self._last_saved >= SIDECAR_INTERVAL:
            self.save_state()

    def save_state(self, force: bool = False) -> None:
        """fsync the data, then record how much of it is safe."""
        if self._fd is not None:
            try:
                os.fsync(self._fd)
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


def _open(
    session: requests.Session, spec: TransferSpec, start: int, validator: str | None
) -> tuple[requests.Response, str]:
    """GET with manual redirects; the token never leaves the original host."""
    url = spec.url
    origin = urlsplit(url).netloc.lower()
    for _ in range(MAX_REDIRECTS + 1):
        check_url(url)
        headers = {"User-Agent": f"comfymanager/{__version__}", "Accept-Encoding": "identity"}
        if start:
            headers["Range"] = f"bytes={start}-"
            if validator:
                headers["If-Range"] = validator
        if spec.authorization and urlsplit(url).netloc.lower() == origin:
            headers["Authorization"] = spec.authorization
        try:
            resp = session.get(
                url, headers=headers, stream=True, allow_redirects=False, timeout=TIMEOUT
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _Retry(f"could not reach {urlsplit(url).netloc} ({type(exc).__name__})") from None
        if resp.status_code in _REDIRECTS and resp.headers.get("Location"):
            url = urljoin(url, resp.headers["Location"])
            resp.close()
            continue
        return resp, url
    raise DownloadFailed(
        f"Too many redirects for {url_for_log(spec.url)}.",
        "The link loops between servers; check it in a browser.",
    )


def _retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After", "")
    return min(60.0, float(value)) if value.isdigit() else None


def _check_status(resp: requests.Response, spec: TransferSpec, start: int) -> int | None:
    """Validate the answer; returns the total size if known. Raises for every failure."""
    status = resp.status_code
    if status == 206:
        m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
        if not m or int(m.group(1)) != start:
            raise _Restart()
        return int(m.group(3)) if m.group(3) != "*" else None
    if status == 200:
        if start:
            raise _Restart()
        length = resp.headers.get("Content-Length", "")
        return int(length) if length.isdigit() else None
    if status == 416 and start:
        m = re.match(r"bytes \*/(\d+)", resp.headers.get("Content-Range", ""))
        if m and int(m.group(1)) == start:
            return start  # the part already holds the whole file
        raise _Restart()
    if status == 404 or status == 410:
        raise NotFound(
            f"{spec.name}: not found ({status}): the file was removed or the URL is "
            f"wrong ({url_for_log(spec.url)}).",
            "Check the link or use another source.",
        )
    if status in (401, 403):
        raise spec.denied(status)
    if status == 429 or status >= 500:
        raise _Retry(f"the server answered {status}", _retry_after(resp))
    raise DownloadFailed(
        f"The server answered {status} for {url_for_log(spec.url)}.",
        "Check the link or try again later.",
    )


class _Writer:
    """Writes and hashes received blocks on two threads while the caller receives the next.

    Receiving (``recv_into``), writing and sha256 all release the GIL, so the three overlap
    instead of taking turns. A few fixed buffers go round: the caller fills one (``buffer`` /
    ``submit``), the write thread and the hash thread each take it in order, and it is free
    again when both are done. An error on either (disk full) is raised to the caller at its
    next step.
    """

    BUFFERS = 16

    def __init__(self, part: _Part) -> None:
        self._part = part
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._to_write: queue.SimpleQueue[tuple[bytearray, int] | None] = queue.SimpleQueue()
        self._to_hash: queue.SimpleQueue[tuple[bytearray, int] | None] = queue.SimpleQueue()
        for _ in range(self.BUFFERS):
            self._free.put(bytearray(CHUNK))
        self._users: dict[int, int] = {}  # id(buffer) -> threads still using it
        self._lock = threading.Lock()
        self._current: bytearray | None = None
        self._error: BaseException | None = None
        self._threads = (
            threading.Thread(target=self._run, args=(self._to_write, self._write), daemon=True),
            threading.Thread(target=self._run, args=(self._to_hash, self._hash), daemon=True),
        )

    def __enter__(self) -> _Writer:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        self._to_write.put(None)
        self._to_hash.put(None)
        for t in self._threads:
            t.join()
        if self._error is not None and kind is None:
            raise self._error

    def buffer(self) -> memoryview:
        """An empty buffer to receive into (waits while all are in use)."""
        self._current = self._free.get()
        if self._error is not None:
            raise self._error
        return memoryview(self._current)

    def head(self, n: int) -> bytes:
        assert self._current is not None
        return bytes(self._current[: min(n, 64 * 1024)])

    def submit(self, n: int) -> None:
        """Queue the first ``n`` bytes of the current buffer for writing and hashing."""
        buf = self._current
        assert buf is not None
        with self._lock:
            self._users[id(buf)] = 2
        self._to_write.put((buf, n))
        self._to_hash.put((buf, n))
        self._current = None

    def _write(self, view: memoryview) -> None:
        self._part.write(view, update_hash=False)

    def _hash(self, view: memoryview) -> None:
        self._part.hasher.update(view)

    def _run(
        self,
        jobs: queue.SimpleQueue[tuple[bytearray, int] | None],
        work: Callable[[memoryview], None],
    ) -> None:
        while (item := jobs.get()) is not None:
            buf, n = item
            if self._error is None:
                try:
                    work(memoryview(buf)[:n])
                except BaseException as exc:  # raised to the receiving thread
                    self._error = exc
            with self._lock:
                self._users[id(buf)] -= 1
                free = self._users[id(buf)] == 0
            if free:
                self._free.put(buf)


def _receive(resp: requests.Response, writer: _Writer, cancel: CancelToken) -> Iterator[int]:
    """Receive the body into the writer's buffers; yields each block's length.

    The body is read with ``readinto`` straight from the connection into a reused buffer (no
    per-block allocation or copy); a compressed or otherwise wrapped body falls back to
    ``iter_content``. Connection errors become ``_Retry``.
    """
    encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
    raw_fp = getattr(resp.raw, "_fp", None)
    readinto = getattr(raw_fp, "readinto", None)
    if encoding not in ("", "identity") or not callable(readinto):
        for block in resp.iter_content(CHUNK):
            for at in range(0, len(block), CHUNK):
                cancel.check()
                piece = block[at : at + CHUNK]
                writer.buffer()[: len(piece)] = piece
                yield len(piece)
        return
    while True:
        cancel.check()
        view = writer.buffer()
        try:
            n = readinto(view)
        except (OSError, http.client.HTTPException) as exc:
            raise _Retry(f"the connection broke ({type(exc).__name__})") from None
        if not n:
            return
        yield n


def transfer(
    spec: TransferSpec, session: requests.Session, report: Reporter, cancel: CancelToken
) -> TransferOutcome:
    """Fetch ``spec.url`` into ``spec.part`` (resuming), verify size and sha256.

    On success the part is complete and verified (the caller moves it into place and removes
    the sidecar). Cancelled or failed transfers keep the part and sidecar for resume, except a
    hash mismatch, which discards them.
    """
    part = _Part(spec, report, cancel)
    resumed_from = part.done
    fetched = 0
    failures = 0
    meter = RateMeter()
    last_report = 0.0
    total: int | None = spec.expected_size
    try:
        while True:
            cancel.check()
            if total is not None and part.done == total and part.done:
                break
            start = part.done
            try:
                resp, final = _open(session, spec, start, part.validator)
                with resp:
                    try:
                        total = _check_status(resp, spec, start)
                    except _Restart:
                        log.info(
                            "%s: the server sent the whole file (Range ignored or file "
                            "changed); starting over",
                            spec.name,
                        )
                        if resp.status_code == 200:
                            part.restart()
                            resumed_from = 0
                            total = _check_status(resp, spec, 0)
                        else:
                            part.restart()
                            resumed_from = 0
                            continue
                    if resp.status_code == 416:
                        break
                    if (
                        spec.expected_size is not None
                        and total is not None
                        and total != spec.expected_size
                    ):
                        raise DownloadFailed(
                            f"{spec.name} on the server is {format_bytes(total)}, expected "
                            f"{format_bytes(spec.expected_size)}.",
                            "The file changed at its source; check the link or the model's "
                            "expected size.",
                        )
                    if total is not None:
                        check_free_space(spec.part.parent, total - part.done)
                    validator = resp.headers.get("ETag")
                    if not validator or validator.startswith("W/"):
                        validator = resp.headers.get("Last-Modified")
                    if resp.status_code == 200 or validator:
                        part.validator = validator
                    part.final_url = url_for_log(final)
                    part.save_state(force=True)  # a kill from here on can resume
                    ctype = resp.headers.get("Content-Type", "")
                    first = part.done == 0
                    received = part.done
                    with _Writer(part) as writer:
                        for n in _receive(resp, writer, cancel):
                            if first:
                                check_response(spec.name, ctype, writer.head(n))
                                first = False
                            writer.submit(n)
                            received += n
                            fetched += n
                            if received - start >= CHUNK:
                                failures = 0  # real progress since the last failure
                            now = time.monotonic()
                            if now - last_report >= PROGRESS_INTERVAL:
                                last_report = now
                                meter.add(received)
                                report.progress(
                                    Progress(
                                        stage="downloading",
                                        done=received,
                                        total=total,
                                        unit="bytes",
                                        speed=meter.speed(),
                                        eta=meter.eta(total),
                                        message=f"Downloading {spec.name}",
                                        key=spec.key,
                                    )
                                )
                if total is None:
                    break
                if part.done < total:
                    raise _Retry(
                        f"the connection closed at {format_bytes(part.done)} of "
                        f"{format_bytes(total)}"
                    )
                if part.done > total:
                    raise _Restart()
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as exc:
                failures = _backoff(failures, f"{type(exc).__name__}", None, spec, cancel, part)
            except _Retry as exc:
                failures = _backoff(failures, exc.reason, exc.wait, spec, cancel, part)
            except _Restart:
                part.restart()
                resumed_from = 0
        part.save_state(force=True)
        part.close()
    except BaseException:
        part.save_state(force=True)
        part.close()
        raise
    digest: str = part.hasher.hexdigest()
    report.progress(
        Progress(
            stage="verifying",
            done=part.done,
            total=part.done,
            unit="bytes",
            message=f"Verifying {spec.name}",
            key=spec.key,
        )
    )
    if spec.expected_sha256 and digest != spec.expected_sha256.lower():
        part.discard()
        raise DownloadFailed(
            f"{spec.name} is damaged or not the expected file: sha256 {digest}, expected "
            f"{spec.expected_sha256.lower()}. It was not placed in the store.",
            "Retry the download; if it fails again the source serves a different file.",
            transient=True,
        )
    return TransferOutcome(
        size=part.done,
        sha256=digest,
        url=part.final_url,
        bytes_fetched=fetched,
        resumed_from=resumed_from,
    )


def _backoff(
    failures: int,
    reason: str,
    wait: float | None,
    spec: TransferSpec,
    cancel: CancelToken,
    part: _Part,
) -> int:
    failures += 1
    part.save_state(force=True)
    if failures > RETRIES:
        raise DownloadFailed(
            f"Downloading {spec.name} failed after {RETRIES} retries: {reason}.",
            "Check the connection and retry: the download resumes where it stopped.",
            transient=True,
        )
    delay = wait if wait is not None else BACKOFF * (2 ** (failures - 1))
    log.info("%s: %s; retrying in %.0f s (%d/%d)", spec.name, reason, delay, failures, RETRIES)
    if cancel.wait(delay):
        raise Cancelled()
    return failures
