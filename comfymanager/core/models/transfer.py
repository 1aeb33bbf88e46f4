"""Resumable transfer of one file into ``<target>.part`` (``part.py``), hashed while
streaming: from Xet first for a Hugging Face file stored there (``xet.py``), then over HTTP.

Resuming sends ``Range: bytes=N-`` and ``If-Range``; a 200 answer (Range ignored, or the file
changed) truncates the part and starts over. Transient failures (connection lost, 429, 5xx) are
retried with backoff; the part is kept for the next try. Redirects are followed by hand (at most
``MAX_REDIRECTS``); the Authorization header is sent to the original host only, never to a host
a redirect leads to.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests

from comfymanager import __version__
from comfymanager.core.errors import Cancelled, NotFound
from comfymanager.core.models.checks import check_response
from comfymanager.core.models.folders import check_url, host_for_log, url_for_log
from comfymanager.core.models.part import (
    CHUNK,
    BlockWriter,
    BrokenBody,
    ConnectionLost,
    DownloadFailed,
    PartFile,
    TransferSpec,
    check_free_space,
    receive_body,
    receive_chunks,
)
from comfymanager.core.models.xet import XetSource, XetUnavailable, open_stream, xet_usable
from comfymanager.core.progress import (
    CancelToken,
    Progress,
    RateMeter,
    Reporter,
    format_bytes,
)

log = logging.getLogger(__name__)

MAX_REDIRECTS = 10
RETRIES = 5
BACKOFF = 1.0
TIMEOUT = (15.0, 60.0)
PROGRESS_INTERVAL = 0.1
_REDIRECTS = (301, 302, 303, 307, 308)
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class _Retry(Exception):
    """Try again after a pause; ``lost`` when the connection itself failed (not the server)."""

    def __init__(self, reason: str, wait: float | None = None, *, lost: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait
        self.lost = lost


class _Restart(Exception):
    """Throw away the partial data and fetch from byte 0."""


@dataclass(frozen=True)
class TransferOutcome:
    size: int
    sha256: str | None  # None when no sha256 was known: the store index hashes it lazily
    url: str  # the URL that served the data, without its query
    bytes_fetched: int
    resumed_from: int


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
            raise _Retry(
                f"could not reach {host_for_log(url)} ({type(exc).__name__})", lost=True
            ) from None
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


def transfer(
    spec: TransferSpec, session: requests.Session, report: Reporter, cancel: CancelToken
) -> TransferOutcome:
    """Fetch ``spec.url`` into ``spec.part`` (resuming), verify size and sha256.

    On success the part is complete and verified (the caller moves it into place and removes
    the sidecar). Cancelled or failed transfers keep the part and sidecar for resume, except a
    hash mismatch, which discards them.
    """
    part = PartFile(spec, report, cancel)
    resumed_from = part.done
    fetched = 0
    failures = 0
    ticker = _Ticker(spec, report)
    total: int | None = spec.expected_size
    try:
        if spec.xet is not None and total is not None and part.done < total and xet_usable():
            fetched += _via_xet(spec, spec.xet, part, total, ticker, report, cancel)
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
                    with BlockWriter(part) as writer:
                        for n in receive_body(resp, writer, cancel):
                            if first:
                                check_response(spec.name, ctype, writer.head(n))
                                first = False
                            writer.submit(n)
                            received += n
                            fetched += n
                            if received - start >= CHUNK:
                                failures = 0  # real progress since the last failure
                            ticker.tick(received, total)
                if total is None:
                    break
                if part.done < total:
                    raise _Retry(
                        f"the connection closed at {format_bytes(part.done)} of "
                        f"{format_bytes(total)}",
                        lost=True,
                    )
                if part.done > total:
                    raise _Restart()
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as exc:
                lost = _Retry(type(exc).__name__, lost=True)
                failures = _backoff(failures, lost, spec, cancel, part)
            except BrokenBody as exc:
                failures = _backoff(failures, _Retry(str(exc), lost=True), spec, cancel, part)
            except _Retry as exc:
                failures = _backoff(failures, exc, spec, cancel, part)
            except _Restart:
                part.restart()
                resumed_from = 0
        part.save_state(force=True)
        part.close()
    except BaseException:
        part.save_state(force=True)
        part.close()
        raise
    digest: str | None = part.hasher.hexdigest() if part.hasher is not None else None
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


class _Ticker:
    """Progress reports for one transfer, at most every ``PROGRESS_INTERVAL`` seconds."""

    def __init__(self, spec: TransferSpec, report: Reporter) -> None:
        self._spec = spec
        self._report = report
        self._meter = RateMeter()
        self._last = 0.0

    def tick(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - self._last < PROGRESS_INTERVAL:
            return
        self._last = now
        self._meter.add(done)
        self._report.progress(
            Progress(
                stage="downloading",
                done=done,
                total=total,
                unit="bytes",
                speed=self._meter.speed(),
                eta=self._meter.eta(total),
                message=f"Downloading {self._spec.name}",
                key=self._spec.key,
            )
        )


def _via_xet(
    spec: TransferSpec,
    source: XetSource,
    part: PartFile,
    total: int,
    ticker: _Ticker,
    report: Reporter,
    cancel: CancelToken,
) -> int:
    """Stream the rest of the file from Xet into the part; returns the bytes received. When
    Xet cannot go on, the part keeps what arrived (the stream is in order) and the caller
    continues over HTTP from there."""
    start = part.done
    check_free_space(spec.part.parent, total - start)
    try:
        chunks = open_stream(
            source,
            size=total,
            start=start,
            hub_url=spec.url,
            authorization=spec.authorization,
            cancel=cancel,
        )
        part.save_state(force=True)
        first = start == 0
        with BlockWriter(part) as writer:
            for n in receive_chunks(chunks, writer, cancel):
                if first:
                    check_response(spec.name, "", writer.head(n))
                    first = False
                writer.submit(n)
                if part.done > total:
                    break
                ticker.tick(part.done, total)
        why = f"the stream ended at {format_bytes(part.done)} of {format_bytes(total)}"
    except XetUnavailable as exc:
        why = str(exc)
    if part.done > total:  # never from an ordered stream of the right file; start clean
        log.info("%s: Xet sent more than the file's size; starting over HTTP", spec.name)
        part.restart()
        return 0
    if part.done < total:
        log.info("%s: Xet transfer stopped (%s); continuing over HTTP", spec.name, why)
        report.log(f"{spec.name}: Xet stopped at {format_bytes(part.done)}; continuing over HTTP")
    return part.done - start


def _backoff(
    failures: int, why: _Retry, spec: TransferSpec, cancel: CancelToken, part: PartFile
) -> int:
    failures += 1
    part.save_state(force=True)
    reason = why.reason
    if failures > RETRIES and why.lost:
        raise ConnectionLost(
            f"The connection was lost while downloading {spec.name} ({reason}); "
            f"{RETRIES} retries did not bring it back. Paused at {format_bytes(part.done)}.",
            "Resume it when the connection is back: it continues where it stopped.",
            transient=True,
        )
    if failures > RETRIES:
        raise DownloadFailed(
            f"Downloading {spec.name} failed after {RETRIES} retries: {reason}.",
            "Retry later: the download resumes where it stopped.",
            transient=True,
        )
    delay = why.wait if why.wait is not None else BACKOFF * (2 ** (failures - 1))
    log.info("%s: %s; retrying in %.0f s (%d/%d)", spec.name, reason, delay, failures, RETRIES)
    if cancel.wait(delay):
        raise Cancelled()
    return failures
