"""Xet transfer for Hugging Face files stored in Xet, through ``hf_xet`` (huggingface_hub's own
Xet client).

A Xet-backed file's metadata carries ``X-Xet-Hash`` and a token route on the Hub
(``get_hf_file_metadata`` parses both). huggingface_hub exchanges the Hub token for a short-lived
Xet token there (``refresh_xet_connection_info``); the Hub token itself never goes to the Xet
storage host. ``hf_xet`` then streams the file *in order* from any byte offset
(``download_stream(start=...)``), so the bytes go into the same ``.part`` as an HTTP transfer:
hashed while streaming, resumable from the exact byte after a kill, and continued over HTTP
when Xet fails. ``HF_HUB_DISABLE_XET=1`` (huggingface_hub's switch) turns it off.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from comfymanager import __version__
from comfymanager.core.log import redact
from comfymanager.core.progress import CancelToken

log = logging.getLogger(__name__)


class XetUnavailable(Exception):
    """Xet cannot serve this file now; the caller continues over HTTP."""


@dataclass(frozen=True)
class XetSource:
    file_hash: str
    refresh_route: str  # the Hub URL that hands out Xet read tokens for the repo revision


def xet_disabled_by_env() -> bool:
    """``HF_HUB_DISABLE_XET`` as huggingface_hub reads it."""
    return os.environ.get("HF_HUB_DISABLE_XET", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def _session() -> Any | None:
    """The process-wide Xet session, or None when hf_xet cannot stream (missing or too old)."""
    try:
        from huggingface_hub.utils._xet import get_xet_session

        session = get_xet_session()  # type: ignore[no-untyped-call]
    except ImportError:
        return None
    return session if hasattr(session, "new_download_stream_group") else None


def xet_usable() -> bool:
    return not xet_disabled_by_env() and _session() is not None


def _hub_headers(source: XetSource, hub_url: str, authorization: str | None) -> dict[str, str]:
    headers = {"User-Agent": f"comfymanager/{__version__}; hf_xet"}
    hub_host = urlsplit(hub_url).netloc.lower()
    if authorization and urlsplit(source.refresh_route).netloc.lower() == hub_host:
        headers["Authorization"] = authorization  # the Hub token goes to the Hub only
    return headers


def open_stream(
    source: XetSource,
    *,
    size: int,
    start: int,
    hub_url: str,
    authorization: str | None,
    cancel: CancelToken,
) -> Iterator[bytes]:
    """The file's bytes from ``start`` to the end, in order. Raises ``XetUnavailable`` when
    Xet cannot serve them (the caller falls back to HTTP); a cancel stops the stream."""
    session = _session()
    if session is None or xet_disabled_by_env():
        raise XetUnavailable("hf_xet is not available")
    from hf_xet import XetFileInfo
    from huggingface_hub.utils._xet import XetFileData, refresh_xet_connection_info

    headers = _hub_headers(source, hub_url, authorization)
    try:
        info = refresh_xet_connection_info(
            file_data=XetFileData(file_hash=source.file_hash, refresh_route=source.refresh_route),
            headers=headers,
        )
        group = session.new_download_stream_group(
            endpoint=info.endpoint,
            token=info.access_token,
            token_expiry_unix_secs=info.expiration_unix_epoch,
            token_refresh_url=source.refresh_route,
            token_refresh_headers=headers,
        )
        stream = group.download_stream(XetFileInfo(source.file_hash, size), start=start)
    except Exception as exc:  # hf_xet and huggingface_hub raise many kinds; all mean "use HTTP"
        raise XetUnavailable(_describe(exc)) from None
    return _guarded(stream, cancel)


def _describe(exc: BaseException) -> str:
    first = (str(exc).splitlines() or [""])[0][:200]
    return redact(f"{type(exc).__name__}: {first}")


def _guarded(stream: Any, cancel: CancelToken) -> Iterator[bytes]:
    """Iterate ``stream``; a cancel from another thread stops it even while it waits."""
    finished = threading.Event()

    def watch() -> None:
        while not finished.is_set():
            if cancel.wait(0.1):
                stream.cancel()
                return

    watcher = threading.Thread(target=watch, name="xet-cancel", daemon=True)
    watcher.start()
    try:
        while True:
            try:
                chunk = next(stream)
            except StopIteration:
                return
            except Exception as exc:
                cancel.check()
                raise XetUnavailable(_describe(exc)) from None
            cancel.check()
            yield chunk
    finally:
        finished.set()
        watcher.join()
