"""What the user decided about an import plan, and whether it can be used.

``ImportDecision`` holds the choices from the plan dialog or the command line options;
``validate_decision`` checks them against the plan (raising ``InvalidInput`` naming the first
one that cannot be used); ``unresolved`` lists the rows still open under a decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from comfymanager.core.errors import InvalidInput
from comfymanager.core.importer.plan import ImportPlan, PlanModel, PlanPack
from comfymanager.core.install.install import ProjectSpec
from comfymanager.core.install.packs import validate_git_url
from comfymanager.core.models.folders import FOLDER_KEYS, canonical_folder, check_url


@dataclass(frozen=True)
class ImportDecision:
    """What the user chose in the plan dialog (or on the command line).

    ``target`` is a ``ProjectSpec`` for a new project or an existing project's id.
    ``pack_choices``: row key of a "several candidates" row -> the chosen candidate's identity.
    ``pack_urls``: row key of an "unknown" (or any) row -> a git URL the user pasted.
    ``model_urls``: model key -> the URL to download it from (pasted or a picked suggestion).
    ``model_folders``: key of a model whose folder is unknown (``?/name``) -> the folder key
    (``FOLDER_KEYS``) to download it into.
    ``skip_models``: model keys not to download.
    ``skip_packs``: pack row keys not to install (their node types stay missing).
    """

    target: ProjectSpec | str
    pack_choices: Mapping[str, str] = field(default_factory=dict)
    pack_urls: Mapping[str, str] = field(default_factory=dict)
    model_urls: Mapping[str, str] = field(default_factory=dict)
    skip_models: frozenset[str] = frozenset()
    model_folders: Mapping[str, str] = field(default_factory=dict)
    skip_packs: frozenset[str] = frozenset()

    def folder_of(self, model: PlanModel) -> str | None:
        """The model's folder key: its own, else the one chosen (canonical), else None."""
        if model.directory is not None:
            return model.directory
        chosen = self.model_folders.get(model.key)
        return canonical_folder(chosen) if chosen else None


def validate_decision(plan: ImportPlan, decision: ImportDecision) -> None:
    """Raise ``InvalidInput`` naming the first choice that cannot be used."""
    for key, chosen in decision.pack_choices.items():
        row = plan.pack(key)
        if chosen not in {c.identity for c in row.candidates}:
            raise InvalidInput(
                f"{chosen!r} is not one of the packs that provide {row.title}.",
                "Pick one of the listed candidates.",
            )
    for key, url in decision.pack_urls.items():
        row = plan.pack(key)
        try:
            validate_git_url(url)
        except InvalidInput as exc:
            raise InvalidInput(f"Node pack for {row.title}: {exc.message}", exc.fix) from None
    for key in decision.skip_models:
        plan.model(key)
    for key in decision.skip_packs:
        plan.pack(key)
    for key, folder in decision.model_folders.items():
        model = plan.model(key)
        try:
            chosen = canonical_folder(folder)
        except InvalidInput as exc:
            raise InvalidInput(f"{model.name}: {exc.message}", exc.fix) from None
        if model.directory is not None and model.directory != chosen:
            raise InvalidInput(
                f"{model.name} goes into {model.directory}; its folder cannot be changed.",
                "Give a folder only for a model whose folder is unknown.",
            )
    for key, url in decision.model_urls.items():
        model = plan.model(key)
        if decision.folder_of(model) is None:
            raise InvalidInput(
                f"The folder of {model.name} is unknown, so it cannot be downloaded.",
                f"Choose the models folder it belongs in: one of {', '.join(FOLDER_KEYS)}.",
            )
        try:
            check_url(url)
        except InvalidInput as exc:
            raise InvalidInput(f"{model.name}: {exc.message}", exc.fix) from None


@dataclass(frozen=True)
class Unresolved:
    """What a decision leaves open: packs without a choice or URL, models that will not be
    downloaded because their source (``needs_url``) and/or folder (``needs_folder``) is missing."""

    packs: tuple[PlanPack, ...]
    models: tuple[tuple[PlanModel, bool, bool], ...]  # (row, needs_url, needs_folder)

    def __bool__(self) -> bool:
        return bool(self.packs or self.models)


def open_packs(packs: Iterable[PlanPack], decision: ImportDecision) -> tuple[PlanPack, ...]:
    """Pack rows without a usable choice: several candidates and none chosen, or unknown, and
    neither a pasted URL nor skipped."""
    return tuple(
        p
        for p in packs
        if p.key not in decision.pack_urls
        and p.key not in decision.skip_packs
        and (
            (p.status == "candidates" and p.key not in decision.pack_choices)
            or p.status == "unknown"
        )
    )


def open_models(
    models: Iterable[PlanModel], decision: ImportDecision
) -> tuple[tuple[PlanModel, bool, bool], ...]:
    """Unknown, not skipped model rows still lacking a source and/or a folder:
    ``(row, needs_url, needs_folder)``."""
    out: list[tuple[PlanModel, bool, bool]] = []
    for m in models:
        if m.status != "unknown" or m.key in decision.skip_models:
            continue
        needs_url = not m.urls and m.key not in decision.model_urls
        needs_folder = m.directory is None and m.key not in decision.model_folders
        if needs_url or needs_folder:
            out.append((m, needs_url, needs_folder))
    return tuple(out)


def unresolved(plan: ImportPlan, decision: ImportDecision) -> Unresolved:
    """The rows that still need the user under ``decision`` (nothing is validated here)."""
    return Unresolved(open_packs(plan.packs, decision), open_models(plan.models, decision))
