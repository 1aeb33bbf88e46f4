"""The one check of settings the user types: the Settings dialog shows its answers next to the
fields, and the rules are the ones the rest of the app applies later.

``field_errors(settings)`` returns ``{field: sentence}`` for every field that is wrong (empty when
all are right). Ports, parallel downloads and the torch backend go through ``Settings.validate``;
addresses we download models from (the Hugging Face endpoint, CivitAI) follow the download
check itself (``models.folders.check_url``: https, or http only to this machine), so an address
accepted here is never refused at download time; package indexes and the other sources take
http, https or file (uv and the fetchers handle those), the node database a local folder too.
"""

from __future__ import annotations

import dataclasses

from comfymanager.core.errors import ComfyManagerError
from comfymanager.core.models.folders import check_url
from comfymanager.core.settings import Settings

URL_FIELDS = {  # name -> (label, required, downloads from it)
    "package_index_url": ("Package index (PyPI mirror)", False, False),
    "torch_index_url": ("PyTorch index", True, False),
    "hf_endpoint": ("Hugging Face endpoint", True, True),
    "civitai_url": ("CivitAI URL", True, True),
    "node_db_source": ("Node database source", True, False),
    "registry_url": ("Comfy Registry URL", True, False),
}
URL_SCHEMES = ("http://", "https://", "file://")
GROUPS = {  # the error's key -> the fields ``Settings.validate`` checks together
    "ports": ("port_min", "port_max"),
    "parallel_downloads": ("parallel_downloads",),
    "snapshots_keep": ("snapshots_keep",),
    "update_check_hours": ("update_check_hours",),
    "default_torch_backend": ("default_torch_backend",),
}


def url_error(name: str, value: str) -> str:
    """The sentence for a wrong address in field ``name`` ("" when it is right)."""
    label, required, downloads = URL_FIELDS.get(name, ("Each extra index", True, False))
    if not value:
        return f"{label} cannot be empty." if required else ""
    if name == "node_db_source" and "://" not in value:
        return ""  # a local folder
    if downloads:
        try:
            check_url(value)
        except ComfyManagerError as exc:
            return f"{label}: {exc}"
        return ""
    if not value.startswith(URL_SCHEMES):
        return f"{label} must start with http://, https:// or file://."
    return ""


def field_errors(settings: Settings) -> dict[str, str]:
    """Every wrong field of ``settings`` with its sentence; see the module docstring."""
    errors: dict[str, str] = {}
    for name in URL_FIELDS:
        if text := url_error(name, str(getattr(settings, name))):
            errors[name] = text
    for url in settings.extra_index_urls:
        if text := url_error("extra_index_urls", url):
            errors["extra_index_urls"] = text
    for key, names in GROUPS.items():  # one group at a time, so each error is shown once
        try:
            values = {n: getattr(settings, n) for n in names}
            dataclasses.replace(Settings(), **values).validate()
        except ComfyManagerError as exc:
            errors[key] = str(exc)
    return errors
