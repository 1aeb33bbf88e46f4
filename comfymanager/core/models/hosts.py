"""Which host a model URL belongs to (Hugging Face, CivitAI or plain https) and what it means.

Hugging Face links (``/resolve/`` and ``/blob/``, with or without ``?download=true``) are parsed
into repo, revision and path, and re-pointed at the configured endpoint (a mirror); CivitAI
download links give a model-version id. Everything else is a plain https download.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from comfymanager.core.models.folders import check_url
from comfymanager.core.settings import Settings

log = logging.getLogger(__name__)

HF_HOSTS = ("huggingface.co", "www.huggingface.co", "hf.co")
CIVITAI_HOSTS = ("civitai.com", "www.civitai.com")


@dataclass(frozen=True)
class Endpoints:
    """The remote endpoints downloads use (settings, overridable for tests and mirrors)."""

    hf_endpoint: str = "https://huggingface.co"
    civitai_url: str = "https://civitai.com"

    @classmethod
    def from_settings(cls, settings: Settings) -> Endpoints:
        return cls(
            hf_endpoint=settings.hf_endpoint.rstrip("/"),
            civitai_url=settings.civitai_url.rstrip("/"),
        )


@dataclass(frozen=True)
class HfFile:
    repo_id: str
    revision: str
    filename: str
    repo_type: str = "model"  # model, dataset or space

    def resolve_url(self, endpoint: str) -> str:
        prefix = "" if self.repo_type == "model" else f"{self.repo_type}s/"
        return (
            f"{endpoint.rstrip('/')}/{prefix}{self.repo_id}/resolve/"
            f"{quote(self.revision, safe='')}/{quote(self.filename)}"
        )

    def page_url(self, endpoint: str) -> str:
        prefix = "" if self.repo_type == "model" else f"{self.repo_type}s/"
        return f"{endpoint.rstrip('/')}/{prefix}{self.repo_id}"


@dataclass(frozen=True)
class Source:
    """A classified URL. ``url`` is what to download (rewritten to the configured endpoint)."""

    kind: str  # "hf", "civitai" or "http"
    url: str
    hf: HfFile | None = None
    civitai_version: str | None = None

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc


def _netloc(url: str) -> str:
    return urlsplit(url).netloc.lower()


def parse_hf_path(path: str) -> HfFile | None:
    """``[datasets/|spaces/]<repo>/(resolve|blob)/<rev>/<file>`` -> HfFile, else None."""
    parts = [p for p in path.split("/") if p]
    repo_type = "model"
    if parts and parts[0] in ("datasets", "spaces"):
        repo_type = parts[0][:-1]
        parts = parts[1:]
    for i in (1, 2):
        if len(parts) > i + 2 and parts[i] in ("resolve", "blob"):
            repo = "/".join(parts[:i])
            rev = unquote(parts[i + 1])
            filename = unquote("/".join(parts[i + 2 :]))
            return HfFile(repo_id=repo, revision=rev, filename=filename, repo_type=repo_type)
    return None


def classify(url: str, endpoints: Endpoints) -> Source:
    """Classify ``url``; raises ``InvalidInput`` for non-https (non-loopback http) URLs."""
    url = url.strip()
    parts = urlsplit(url)
    host = parts.netloc.lower()
    hf_hosts = {*HF_HOSTS, _netloc(endpoints.hf_endpoint)}
    if host in hf_hosts or parts.hostname in HF_HOSTS:
        hf = parse_hf_path(parts.path)
        if hf is not None:
            new_url = hf.resolve_url(endpoints.hf_endpoint)
            check_url(new_url)
            return Source(kind="hf", url=new_url, hf=hf)
    civitai_hosts = {*CIVITAI_HOSTS, _netloc(endpoints.civitai_url)}
    if host in civitai_hosts or parts.hostname in CIVITAI_HOSTS:
        segs = [p for p in parts.path.split("/") if p]
        if len(segs) >= 4 and segs[:3] == ["api", "download", "models"] and segs[3].isdigit():
            base = endpoints.civitai_url.rstrip("/")
            new_url = f"{base}/api/download/models/{segs[3]}"
            if parts.query:
                new_url += f"?{parts.query}"
            check_url(new_url)
            return Source(kind="civitai", url=new_url, civitai_version=segs[3])
    check_url(url)
    return Source(kind="http", url=url)


@dataclass(frozen=True)
class CivitaiFile:
    sha256: str | None
    approx_size: int | None
    name: str | None


def pick_civitai_file(meta: dict[str, Any]) -> CivitaiFile | None:
    """The primary file of a ``/api/v1/model-versions/{id}`` answer."""
    files = meta.get("files")
    if not isinstance(files, list) or not files:
        return None
    chosen = next((f for f in files if isinstance(f, dict) and f.get("primary")), files[0])
    if not isinstance(chosen, dict):
        return None
    hashes = chosen.get("hashes") or {}
    sha = hashes.get("SHA256") if isinstance(hashes, dict) else None
    size_kb = chosen.get("sizeKB")
    approx = int(float(size_kb) * 1024) if isinstance(size_kb, (int, float)) else None
    return CivitaiFile(
        sha256=str(sha).lower() if sha else None,
        approx_size=approx,
        name=str(chosen.get("name")) if chosen.get("name") else None,
    )
