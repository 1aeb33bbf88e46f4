"""Online suggestions for the plan's models of unknown source (Hugging Face and CivitAI).

``lookup_model_sources`` runs only when the user asks for an online look-up. For each model
row with status "unknown" and no URL it searches both hosts by file name (and CivitAI by the
workflow's sha256), appends the hits to the row's suggestions after the model-list ones, and
rebuilds the row with ``importer.make_model``: a hit is taken only when its file name and
sha256 both equal the workflow's; everything else stays a suggestion. A folder is never made
up: a CivitAI hit carries the folder of its model type when that is obvious
(``search.CIVITAI_FOLDERS``), a Hugging Face hit the row's folder or none. A host that fails is
asked no more for this plan and its failure becomes one plan warning.
"""

from __future__ import annotations

import dataclasses
import logging

import requests

from comfymanager.core.context import CoreContext
from comfymanager.core.errors import InvalidInput
from comfymanager.core.importer.plan import (
    ImportPlan,
    PlanModel,
    Suggestion,
    fill_sizes,
    make_model,
)
from comfymanager.core.models.hosts import Endpoints, classify
from comfymanager.core.models.search import (
    Found,
    SearchFailed,
    search_civitai,
    search_huggingface,
)
from comfymanager.core.progress import CancelToken, Reporter, format_bytes
from comfymanager.core.secrets import Secrets

log = logging.getLogger(__name__)


def _token(secrets: Secrets | None, name: str) -> str | None:
    if secrets is None:
        return None
    try:
        return secrets.get(name)
    except Exception as exc:  # a broken keyring backend means "no token", not a failed look-up
        log.info("no %s token: keyring unavailable (%s)", name, type(exc).__name__)
        return None


def _same_file_key(url: str, endpoints: Endpoints) -> str:
    """Hugging Face links to one file at another revision or host are the same suggestion."""
    try:
        src = classify(url, endpoints)
    except InvalidInput:
        return url
    if src.hf is not None:
        return f"hf:{src.hf.repo_type}:{src.hf.repo_id}:{src.hf.filename}"
    return src.url


def merge_suggestions(
    model: PlanModel, found: tuple[Found, ...], endpoints: Endpoints
) -> tuple[Suggestion, ...]:
    """``model``'s suggestions, then the hits; one entry per file (an earlier entry for the
    same file takes the size the host measured and gains its sha256)."""
    out: dict[str, Suggestion] = {}
    for s in model.suggestions:
        out.setdefault(_same_file_key(s.url, endpoints), s)
    for f in found:
        key = _same_file_key(f.url, endpoints)
        size = format_bytes(f.size) if f.size is not None else ""
        old = out.get(key)
        if old is not None:
            out[key] = dataclasses.replace(
                old, size=size or old.size, sha256=old.sha256 or f.sha256
            )
            continue
        directory = f.directory or model.directory or ""
        out[key] = Suggestion(f.url, directory, f.filename, f.origin, size, f.sha256)
    return tuple(out.values())


class _Hosts:
    """Searches both hosts for one plan; a host that failed once is not asked again."""

    def __init__(
        self, ctx: CoreContext, session: requests.Session, secrets: Secrets | None
    ) -> None:
        self.endpoints = Endpoints.from_settings(ctx.settings)
        self.session = session
        self.hf_token = _token(secrets, "huggingface")
        self.civitai_key = _token(secrets, "civitai")
        self.failures: dict[str, str] = {}

    def _known_repos(self, model: PlanModel) -> tuple[str, ...]:
        repos: list[str] = []
        for s in model.suggestions:
            try:
                src = classify(s.url, self.endpoints)
            except InvalidInput:
                continue
            if src.hf is not None and src.hf.repo_type == "model":
                repos.append(src.hf.repo_id)
        return tuple(dict.fromkeys(repos))

    def search(self, model: PlanModel) -> tuple[Found, ...]:
        found: list[Found] = []
        if "hf" not in self.failures:
            try:
                found += search_huggingface(
                    model.name,
                    endpoint=self.endpoints.hf_endpoint,
                    token=self.hf_token,
                    known_repos=self._known_repos(model),
                )
            except SearchFailed as exc:
                self.failures["hf"] = str(exc)
        if "civitai" not in self.failures:
            try:
                found += search_civitai(
                    model.name,
                    model.sha256,
                    base_url=self.endpoints.civitai_url,
                    api_key=self.civitai_key,
                    session=self.session,
                )
            except SearchFailed as exc:
                self.failures["civitai"] = str(exc)
        return tuple(found)


def lookup_model_sources(
    plan: ImportPlan,
    ctx: CoreContext,
    session: requests.Session,
    secrets: Secrets | None,
    cancel: CancelToken | None = None,
) -> ImportPlan:
    """``plan`` with Hugging Face and CivitAI suggestions for its models of unknown source.

    Never raises for a host's failure: it becomes a warning in ``plan.warnings``."""
    hosts = _Hosts(ctx, session, secrets)
    models: list[PlanModel] = []
    for m in plan.models:
        if m.status != "unknown" or m.urls:
            models.append(m)  # a row with a URL but no folder needs a folder, not a source
            continue
        if cancel is not None:
            cancel.check()
        found = hosts.search(m)
        suggestions = merge_suggestions(m, found, hosts.endpoints)
        # "unknown" means active and not in the store, so the row is rebuilt as such
        row = make_model(ctx.store, m.directory, m.name, (), m.sha256, True, m.size, suggestions)
        if row.auto_picked:
            log.info("%s: taken from %s (same name and sha256)", m.name, row.urls[0])
        models.append(row)
    warnings = list(plan.warnings) + list(hosts.failures.values())
    for text in hosts.failures.values():
        log.warning("%s", text)
    return dataclasses.replace(plan, models=tuple(models), warnings=tuple(dict.fromkeys(warnings)))


def look_up_online(
    plan: ImportPlan,
    ctx: CoreContext,
    session: requests.Session,
    secrets: Secrets | None,
    report: Reporter | None = None,
    cancel: CancelToken | None = None,
) -> ImportPlan:
    """The online part of a look-up after planning: model sources, then model sizes (HEAD).
    The window's look-up and ``--lookup`` on the command line both go through here."""
    if report is not None:
        report.stage("lookup", "Searching Hugging Face and CivitAI for unknown models")
    plan = lookup_model_sources(plan, ctx, session, secrets, cancel)
    if cancel is not None:
        cancel.check()
    if report is not None:
        report.stage("lookup", "Asking model sizes")
    return fill_sizes(plan, session, Endpoints.from_settings(ctx.settings))
