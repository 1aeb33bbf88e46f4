"""Online sources for a model file a workflow names without a URL: Hugging Face and CivitAI.

``search_huggingface`` asks the Hub for repositories named like the file's stem (one request,
``full=true`` so each result lists its files), then reads the files' metadata (size, LFS
sha256, commit) of at most ``max_repos`` repositories that hold a file of that name. The search
request goes through huggingface_hub's own session with our timeout and no retries:
``HfApi.list_models`` in the installed huggingface_hub (2.x) takes no timeout and retries a
refused connection five times with back-off (about 24 s for a dead endpoint).

``search_civitai`` looks the sha256 up first (``/api/v1/model-versions/by-hash/{sha256}``) and
then the name (``/api/v1/models?query=...``) unless the hash already found the file under the
same name. The API key goes as an ``Authorization: Bearer`` header to the CivitAI base URL only.

Both return hits best first (exact file name first) and raise ``SearchFailed`` when the host
cannot be asked; the caller turns that into a warning. Nothing here picks a hit for the user.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import requests

from comfymanager.core.errors import ComfyManagerError
from comfymanager.core.models.folders import url_for_log
from comfymanager.core.models.hosts import HfFile
from comfymanager.core.secrets import redact

log = logging.getLogger(__name__)

HF_TIMEOUT = 15.0  # seconds, per request to the Hub
CIVITAI_TIMEOUT = (5.0, 15.0)  # connect, read
HF_ORIGIN = "Hugging Face"
CIVITAI_ORIGIN = "CivitAI"

# CivitAI model types whose ComfyUI folder is obvious; anything else stays "" (unknown)
CIVITAI_FOLDERS = {
    "Checkpoint": "checkpoints",
    "LORA": "loras",
    "LoCon": "loras",
    "TextualInversion": "embeddings",
    "VAE": "vae",
    "Controlnet": "controlnet",
    "Upscaler": "upscale_models",
}

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class Found:
    """One file a host offers under the wanted name (or, by hash, under another name)."""

    url: str
    filename: str  # the file's name on the host (no folders)
    origin: str  # "Hugging Face" or "CivitAI"
    size: int | None
    sha256: str | None  # lower case
    source: str  # Hugging Face repo id, or CivitAI "model name (version)"
    directory: str = ""  # the folder the host's model type implies; "" when not obvious
    exact: bool = True  # the file name equals the wanted one, case included


class SearchFailed(ComfyManagerError):
    """A host could not be searched (network, HTTP error, refused key, odd answer)."""


def basename(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def stem(name: str) -> str:
    base = basename(name)
    return base.rsplit(".", 1)[0] if "." in base[1:] else base


def _rank(found: list[Found], wanted: str) -> tuple[Found, ...]:
    """Exact name first, then other case, then other names; each URL once; order kept."""
    unique: dict[str, Found] = {}
    for f in found:
        unique.setdefault(f.url, f)

    def key(f: Found) -> int:
        return 0 if f.filename == wanted else 1 if f.filename.lower() == wanted.lower() else 2

    return tuple(sorted(unique.values(), key=key))


# --- Hugging Face -----------------------------------------------------------------------


def _hf_status(exc: BaseException) -> int | None:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def _hf_failed(exc: BaseException, endpoint: str) -> SearchFailed:
    status = _hf_status(exc)
    endpoint = url_for_log(endpoint)
    if status is not None:
        cause = f"{endpoint} answered {status}"
    elif isinstance(exc, ValueError):
        cause = f"{endpoint} did not answer like the Hub ({type(exc).__name__})"
    else:
        cause = f"could not reach {endpoint} ({type(exc).__name__})"
    return SearchFailed(
        f"Hugging Face search failed: {cause}.",
        "Check the connection, or the Hugging Face endpoint in Settings > Mirrors.",
    )


def _hf_search_terms(file_stem: str) -> list[str]:
    # repo names use hyphens where file names often use underscores
    return list(dict.fromkeys([file_stem, file_stem.replace("_", "-")]))


def _hf_repos(
    endpoint: str, token: str | None, wanted: str, limit: int, max_repos: int
) -> list[str]:
    from huggingface_hub import get_session, hf_raise_for_status

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    for term in _hf_search_terms(stem(wanted)):
        params: dict[str, str | int] = {
            "search": term,
            "limit": limit,
            "full": "true",
            "sort": "downloads",
        }
        try:
            resp = get_session().get(
                f"{endpoint}/api/models", params=params, headers=headers, timeout=HF_TIMEOUT
            )
            hf_raise_for_status(resp)
            items = resp.json()
        except Exception as exc:  # huggingface_hub/httpx raise many kinds; all mean "failed"
            raise _hf_failed(exc, endpoint) from None
        repos: list[str] = []
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            siblings = item.get("siblings")
            if isinstance(siblings, list):  # the listing names the files: skip repos without it
                names = {
                    basename(str(s.get("rfilename", ""))).lower()
                    for s in siblings
                    if isinstance(s, dict)
                }
                if wanted.lower() not in names:
                    continue
            repos.append(item["id"])
            if len(repos) >= max_repos:
                break
        if repos:
            return repos
    return []


def search_huggingface(
    name: str,
    *,
    endpoint: str,
    token: str | None,
    known_repos: tuple[str, ...] = (),
    limit: int = 20,
    max_repos: int = 3,
) -> tuple[Found, ...]:
    """Files called ``basename(name)`` (any case) in Hub repos named like its stem, and in
    ``known_repos`` (repos another source already names, e.g. the model list: read first, so
    their files get a size and sha256).

    At most two searches (the stem, then with ``_`` as ``-``) and ``max_repos`` metadata
    requests besides the known repos. Raises ``SearchFailed`` when the Hub cannot be asked."""
    from huggingface_hub import HfApi

    wanted = basename(name)
    if not stem(wanted):
        return ()
    endpoint = endpoint.rstrip("/")
    api = HfApi(endpoint=endpoint, token=token or False)
    searched = _hf_repos(endpoint, token, wanted, limit, max_repos)
    found: list[Found] = []
    for repo_id in dict.fromkeys((*known_repos, *searched)):
        try:
            info = api.model_info(repo_id, files_metadata=True, timeout=HF_TIMEOUT)
        except Exception as exc:
            if _hf_status(exc) in (401, 403, 404):  # private, gated-and-hidden or gone: skip it
                log.info("Hugging Face: no file list for %s (%s)", repo_id, _hf_status(exc))
                continue
            raise _hf_failed(exc, endpoint) from None
        revision = info.sha or "main"
        for sib in info.siblings or []:
            filename = basename(sib.rfilename)
            if filename.lower() != wanted.lower():
                continue
            sha = sib.lfs.sha256.lower() if sib.lfs and _SHA256.match(sib.lfs.sha256) else None
            size = sib.size if sib.size is not None else (sib.lfs.size if sib.lfs else None)
            url = HfFile(repo_id, revision, sib.rfilename).resolve_url(endpoint)
            found.append(
                Found(url, filename, HF_ORIGIN, size, sha, repo_id, "", filename == wanted)
            )
    return _rank(found, wanted)


# --- CivitAI ----------------------------------------------------------------------------


def _civitai_get(
    session: requests.Session,
    url: str,
    params: dict[str, str | int] | None,
    api_key: str | None,
    *,
    missing_ok: bool = False,
) -> Any:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        resp = session.get(url, params=params, headers=headers, timeout=CIVITAI_TIMEOUT)
    except requests.RequestException as exc:
        raise SearchFailed(
            f"CivitAI search failed: could not reach {url_for_log(url.split('/api/')[0])} "
            f"({type(exc).__name__}).",
            "Check the connection, or the CivitAI URL in Settings > Mirrors.",
        ) from None
    if resp.status_code == 404 and missing_ok:
        return None
    if resp.status_code in (401, 403):
        why = "the API key was refused" if api_key else "it needs an API key"
        raise SearchFailed(
            f"CivitAI search failed ({resp.status_code}): {why}.",
            "Set a valid CivitAI API key in Settings > Tokens "
            "(civitai.com > Account settings > API keys).",
        )
    if resp.status_code != 200:
        raise SearchFailed(
            f"CivitAI search failed: {redact(url.split('?')[0])} answered {resp.status_code}.",
            "Try again later.",
        )
    try:
        return resp.json()
    except ValueError:
        raise SearchFailed(
            "CivitAI search failed: the answer was not JSON.",
            "Check the CivitAI URL in Settings > Mirrors.",
        ) from None


def _size(file: dict[str, Any]) -> int | None:
    kb = file.get("sizeKB")
    return int(float(kb) * 1024) if isinstance(kb, (int, float)) else None


def _version_files(
    version: dict[str, Any], model: dict[str, Any], wanted: str, sha256: str | None
) -> list[Found]:
    """Files of one model version named ``wanted`` (any case) or hashing to ``sha256``."""
    out: list[Found] = []
    files = version.get("files")
    folder = CIVITAI_FOLDERS.get(str(model.get("type", "")), "")
    source = f"{model.get('name') or '?'} ({version.get('name') or version.get('id')})"
    for f in files if isinstance(files, list) else []:
        if not isinstance(f, dict) or not isinstance(f.get("name"), str):
            continue
        url = f.get("downloadUrl") or version.get("downloadUrl")
        if not isinstance(url, str) or not url:
            continue
        hashes = f.get("hashes")
        sha = hashes.get("SHA256") if isinstance(hashes, dict) else None
        sha = sha.lower() if isinstance(sha, str) and _SHA256.match(sha) else None
        filename = basename(f["name"])
        by_hash = sha is not None and sha256 is not None and sha == sha256.lower()
        if filename.lower() != wanted.lower() and not by_hash:
            continue
        out.append(
            Found(url, filename, CIVITAI_ORIGIN, _size(f), sha, source, folder, filename == wanted)
        )
    return out


def _civitai_query(file_stem: str) -> str:
    """Model names on CivitAI use words: ``detail_tweaker-v1`` -> ``detail tweaker v1``."""
    return " ".join(re.split(r"[\s_\-.]+", file_stem)).strip()


def search_civitai(
    name: str,
    sha256: str | None,
    *,
    base_url: str,
    api_key: str | None,
    session: requests.Session,
    limit: int = 10,
) -> tuple[Found, ...]:
    """CivitAI files with this sha256 (any name) or this file name (any case).

    At most two requests. Raises ``SearchFailed`` when CivitAI cannot be asked, with the fix
    for a missing or refused key (401/403)."""
    wanted = basename(name)
    base = base_url.rstrip("/")
    sha = sha256.lower() if sha256 and _SHA256.match(sha256) else None
    found: list[Found] = []
    if sha:
        version = _civitai_get(
            session, f"{base}/api/v1/model-versions/by-hash/{sha}", None, api_key, missing_ok=True
        )
        if isinstance(version, dict):
            model = version.get("model")
            found += _version_files(version, model if isinstance(model, dict) else {}, wanted, sha)
    if any(f.exact and f.sha256 == sha for f in found):
        return _rank(found, wanted)  # the exact file: a name search adds nothing
    query = _civitai_query(stem(wanted))
    if query:
        params: dict[str, str | int] = {"query": query, "limit": limit}
        data = _civitai_get(session, f"{base}/api/v1/models", params, api_key)
        items = data.get("items") if isinstance(data, dict) else None
        for model in items if isinstance(items, list) else []:
            if not isinstance(model, dict):
                continue
            versions = model.get("modelVersions")
            for version in versions if isinstance(versions, list) else []:
                if isinstance(version, dict):
                    found += _version_files(version, model, wanted, sha)
    return _rank(found, wanted)
