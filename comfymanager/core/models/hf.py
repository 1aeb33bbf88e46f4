"""Hugging Face: file metadata and clear errors through ``huggingface_hub``.

``huggingface_hub.get_hf_file_metadata`` resolves a ``/resolve/<rev>/<path>`` link against the
configured endpoint: the commit it belongs to, the size (``X-Linked-Size``) and, for LFS files,
the sha256 (``X-Linked-Etag``). It also turns gated, missing and private repos into typed errors
that are mapped here to sentences a user can act on.

The bytes go into our resumable ``.part`` (``transfer.py``): for a file stored in Xet through
``hf_xet``'s ordered stream (``xet.py``), otherwise (or when Xet fails) over HTTP from the
resolve URL pinned to that commit. ``hf_hub_download`` itself is not used: in huggingface_hub
2.x it downloads into a process-unique temporary file and deletes it on any failure, so it
cannot resume after a kill or a reboot, which multi-GB model files need. The token is sent to
the Hugging Face endpoint only; the redirect to the CDN never carries it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from comfymanager.core.errors import ComfyManagerError, NotFound
from comfymanager.core.models.folders import url_for_log
from comfymanager.core.models.hosts import HfFile
from comfymanager.core.models.part import DownloadFailed
from comfymanager.core.models.xet import XetSource
from comfymanager.core.secrets import redact

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class HfMeta:
    commit: str | None
    size: int | None
    sha256: str | None
    etag: str | None
    xet: XetSource | None = None  # set when the file is stored in Xet (xet.py)


def gated_error(hf: HfFile, endpoint: str, status: int | None = None) -> ComfyManagerError:
    page = url_for_log(hf.page_url(endpoint))
    code = f" ({status})" if status else ""
    return DownloadFailed(
        f"{hf.filename} is in a gated or private Hugging Face repository ({hf.repo_id}){code}.",
        f"Accept the licence on {page} and add a Hugging Face token in Settings.",
    )


def _status_of(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return int(status) if isinstance(status, int) else None


def map_hf_error(exc: BaseException, hf: HfFile, endpoint: str) -> ComfyManagerError:
    """Turn a huggingface_hub exception into our error (its text never carries the token)."""
    from huggingface_hub import errors as hf_errors  # imported on use: ~0.4 s at start-up

    page = url_for_log(hf.page_url(endpoint))
    status = _status_of(exc)
    if isinstance(exc, hf_errors.GatedRepoError):
        return gated_error(hf, endpoint, status)
    if isinstance(exc, hf_errors.RepositoryNotFoundError):
        if status in (401, 403):
            return gated_error(hf, endpoint, status)
        return NotFound(
            f"The Hugging Face repository {hf.repo_id} was not found ({status or 404}).",
            f"Check the link; if the repository is private, add a Hugging Face token in "
            f"Settings. ({page})",
        )
    if isinstance(exc, hf_errors.RevisionNotFoundError):
        return NotFound(
            f"The revision {hf.revision!r} of {hf.repo_id} was not found (404).",
            "The link may be outdated; use the model page's current link.",
        )
    if isinstance(exc, (hf_errors.RemoteEntryNotFoundError, hf_errors.EntryNotFoundError)):
        return NotFound(
            f"{hf.filename}: not found (404): the file was removed or the URL is wrong "
            f"(in {hf.repo_id}@{hf.revision}).",
            f"Check the file list on {page}.",
        )
    if isinstance(exc, hf_errors.HfHubHTTPError):
        if status in (401, 403):
            return gated_error(hf, endpoint, status)
        transient = status is None or status == 429 or status >= 500
        return DownloadFailed(
            f"Hugging Face answered {status or 'an error'} for {hf.filename}: "
            f"{redact(str(exc)).splitlines()[0] if str(exc) else ''}",
            "Try again later.",
            transient=transient,
        )
    return DownloadFailed(
        f"Could not reach Hugging Face at {url_for_log(endpoint)} ({type(exc).__name__}).",
        "Check the connection, or the Hugging Face endpoint in Settings.",
        transient=True,
    )


def fetch_metadata(hf: HfFile, endpoint: str, token: str | None) -> HfMeta:
    """HEAD the resolve URL through huggingface_hub; raises our errors."""
    from huggingface_hub import get_hf_file_metadata

    url = hf.resolve_url(endpoint)
    try:
        meta = get_hf_file_metadata(url=url, token=token or False, endpoint=endpoint, timeout=15)
    except Exception as exc:  # huggingface_hub/httpx raise many kinds; all are mapped
        raise map_hf_error(exc, hf, endpoint) from None
    etag = (meta.etag or "").lower() or None
    sha = etag if etag and _SHA256.match(etag) else None
    xet_data = getattr(meta, "xet_file_data", None)  # huggingface_hub >= 0.30
    xet = XetSource(xet_data.file_hash, xet_data.refresh_route) if xet_data else None
    return HfMeta(commit=meta.commit_hash, size=meta.size, sha256=sha, etag=etag, xet=xet)
