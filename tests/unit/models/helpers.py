"""Small helpers shared by the model tests."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from comfymanager.core.models.download import DownloadRequest, DownloadResult, download_file
from comfymanager.core.models.hosts import Endpoints
from comfymanager.core.models.index import ModelIndex
from comfymanager.core.progress import CancelToken, Progress, Reporter
from comfymanager.core.secrets import Secrets

DEAD = "http://127.0.0.1:9/unset"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(
    url: str | list[str],
    store: Path,
    *,
    folder: str = "checkpoints",
    name: str = "model.safetensors",
    sha256: str | None = None,
    size: int | None = None,
    secrets: Secrets | None = None,
    hf: str = DEAD,
    civitai: str = DEAD,
    cancel: CancelToken | None = None,
    progress: list[Progress] | None = None,
    index: ModelIndex | None = None,
    **kw: Any,
) -> DownloadResult:
    urls = (url,) if isinstance(url, str) else tuple(url)
    sink = progress if progress is not None else []
    return download_file(
        DownloadRequest(urls=urls, folder=folder, name=name, sha256=sha256, size=size),
        store=store,
        secrets=secrets,
        endpoints=Endpoints(hf_endpoint=hf, civitai_url=civitai),
        report=Reporter(progress=sink.append),
        cancel=cancel or CancelToken(),
        index=index,
        **kw,
    )
