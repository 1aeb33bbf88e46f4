"""Import choices on the command line: ``--pack ROW=CHOICE``, ``--model ROW=URL``,
``--model-folder ROW=FOLDER`` and ``--skip-model ROW`` become an ``ImportDecision``; ``hints``
says, for every row still open, the exact option that settles it.

A ROW is a row's key as the plan shows it, a node class of the row, the pack's title, or a model's
file name (or its last part) when only one row has it. Mistakes are ``InvalidInput`` naming what
the user can write instead.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from comfymanager.core.errors import InvalidInput
from comfymanager.core.importer.decision import (
    ImportDecision,
    unresolved,
    validate_decision,
)
from comfymanager.core.importer.plan import (
    ImportPlan,
    PlanModel,
    PlanPack,
)
from comfymanager.core.install.install import ProjectSpec
from comfymanager.core.models.folders import FOLDER_KEYS
from comfymanager.core.workflow.nodes import PackRef

T = TypeVar("T")


@dataclass(frozen=True)
class Choices:
    packs: tuple[tuple[str, str], ...] = ()
    models: tuple[tuple[str, str], ...] = ()
    folders: tuple[tuple[str, str], ...] = ()
    skips: tuple[str, ...] = ()

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Choices:
        return cls(
            tuple(getattr(args, "pack", None) or ()),
            tuple(getattr(args, "model", None) or ()),
            tuple(getattr(args, "model_folder", None) or ()),
            tuple(getattr(args, "skip_model", None) or ()),
        )


def _one(rows: Sequence[T], tiers: Sequence[Callable[[T], bool]]) -> list[T]:
    """The rows of the first tier that matches any (several means ambiguous)."""
    for test in tiers:
        hits = [r for r in rows if test(r)]
        if hits:
            return hits
    return []


def find_pack(plan: ImportPlan, handle: str) -> PlanPack:
    rows = [p for p in plan.packs if p.status != "built-in"]
    low = handle.lower()
    hits = _one(
        rows,
        (
            lambda p: p.key == handle,
            lambda p: handle == p.title or handle in p.classes,
            lambda p: low == p.title.lower() or low in {c.lower() for c in p.classes},
        ),
    )
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise InvalidInput(
            f"--pack {handle!r} matches several node packs of the plan.",
            f"Name the row by its key: {', '.join(p.key for p in hits)}.",
        )
    keys = ", ".join(p.key for p in rows)
    raise InvalidInput(
        f"No node pack of the plan matches {handle!r}.",
        f"Use a row key ({keys}), a node class or a pack title." if rows else "",
    )


def find_model(plan: ImportPlan, handle: str) -> PlanModel:
    hits = _one(
        plan.models,
        (
            lambda m: m.key == handle,
            lambda m: m.name == handle,
            lambda m: m.name.rsplit("/", 1)[-1] == handle,
        ),
    )
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise InvalidInput(
            f"{handle!r} matches several model files of the plan.",
            f"Name the row by its key: {', '.join(m.key for m in hits)}.",
        )
    keys = ", ".join(m.key for m in plan.models)
    raise InvalidInput(
        f"No model file of the plan matches {handle!r}.",
        f"Use a row key ({keys}) or a file name." if keys else "The plan names no model file.",
    )


def _candidate(row: PlanPack, choice: str) -> PackRef | None:
    low = choice.lower()
    hits = _one(
        row.candidates,
        (
            lambda c: c.identity == choice,
            lambda c: choice in (c.url, c.id, c.key),
            lambda c: c.title.lower() == low,
        ),
    )
    return hits[0] if len(hits) == 1 else None


def _pack_source(choice: str) -> str | None:
    """A git URL, a ``file://`` URL or a local folder (made absolute), for any row; None when
    ``choice`` is none of these."""
    text = choice.strip()
    if "://" in text or text.startswith("git@"):
        return text
    folder = Path(text).expanduser()
    if text and folder.is_dir():
        return str(folder.resolve())
    return None


def build_decision(plan: ImportPlan, target: ProjectSpec | str, choices: Choices) -> ImportDecision:
    """The decision the options describe, validated (``InvalidInput`` names the bad one)."""
    pack_choices: dict[str, str] = {}
    pack_urls: dict[str, str] = {}
    for handle, choice in choices.packs:
        row = find_pack(plan, handle)
        if row.key in pack_choices or row.key in pack_urls:
            raise InvalidInput(f"Two --pack options name {row.title}.", "Keep one of them.")
        cand = _candidate(row, choice)
        source = _pack_source(choice)
        if cand is not None:
            pack_choices[row.key] = cand.identity
        elif source is not None:
            pack_urls[row.key] = source
        elif row.status == "candidates":
            listed = ", ".join(c.identity for c in row.candidates)
            raise InvalidInput(
                f"{choice!r} is not one of the packs that provide {row.title}.",
                f"Use one of: {listed}; or a git URL, a local folder or a file:// URL.",
            )
        else:
            pack_urls[row.key] = choice  # validated (and refused with a reason) below
    model_urls: dict[str, str] = {}
    folders: dict[str, str] = {}
    skips: set[str] = set()
    for option, pairs, into in (("--model", choices.models, model_urls),
                                ("--model-folder", choices.folders, folders)):  # fmt: skip
        for handle, value in pairs:
            m = find_model(plan, handle)
            if m.key in into:
                raise InvalidInput(f"Two {option} options name {m.key}.", "Keep one of them.")
            into[m.key] = value
    for handle in choices.skips:
        m = find_model(plan, handle)
        if m.key in model_urls:
            raise InvalidInput(
                f"{m.key} is given a URL and skipped.", "Drop --model or --skip-model for it."
            )
        skips.add(m.key)
    for key, url in model_urls.items():  # a picked suggestion brings its folder along
        m = plan.model(key)
        picked = next((s for s in m.suggestions if s.url == url and s.directory), None)
        if m.directory is None and key not in folders and picked is not None:
            folders[key] = picked.directory
    decision = ImportDecision(
        target, pack_choices, pack_urls, model_urls, frozenset(skips), folders
    )
    validate_decision(plan, decision)
    return decision


def pack_handle(plan: ImportPlan, row: PlanPack) -> str:
    """The shortest name ``find_pack`` takes for ``row``."""
    for handle in (*row.classes[:1], row.title, row.key):
        try:
            if find_pack(plan, handle).key == row.key:
                return handle
        except InvalidInput:
            continue
    return row.key


def model_handle(plan: ImportPlan, model: PlanModel) -> str:
    try:
        if find_model(plan, model.name).key == model.key:
            return model.name
    except InvalidInput:
        pass
    return model.key


def hints(plan: ImportPlan, decision: ImportDecision) -> list[str]:
    """One block per open row: what is missing and the option(s) that settle it."""
    left = unresolved(plan, decision)
    q = shlex.quote
    lines: list[str] = []
    for p in left.packs:
        h = q(pack_handle(plan, p))
        if p.status == "candidates":
            lines.append(f"{p.title}: several packs provide it; choose one:")
            lines += [
                f"    --pack {h}={q(c.identity)}    ({c.title}"
                + (", recommended" if c.identity == p.recommended else "")
                + ")"
                for c in p.candidates
            ]
        else:
            lines.append(f"{p.title}: no known pack provides it; give its git URL:")
            lines.append(f"    --pack {h}=<git URL>")
    for m, needs_url, needs_folder in left.models:
        h = q(model_handle(plan, m))
        missing = " and ".join(
            w for w, on in (("download address", needs_url), ("folder", needs_folder)) if on
        )
        lines.append(f"{m.name}: its {missing} {'are' if ' and ' in missing else 'is'} unknown:")
        if needs_url:
            for s in m.suggestions:
                into = f", into {s.directory}" if needs_folder and s.directory else ""
                lines.append(f"    --model {h}={q(s.url)}    ({s.origin}: {s.filename}{into})")
        opts = [f"--model-folder {h}=<folder>"] if needs_folder else []
        opts += [f"--model {h}=<URL>"] if needs_url else []
        lines.append("    " + " ".join(opts))
        lines.append(f"    or: --skip-model {h}")
    if any(needs_folder for _, _, needs_folder in left.models):
        lines.append(f"folders: {', '.join(FOLDER_KEYS)}")
    return lines


def left_out(plan: ImportPlan, decision: ImportDecision) -> list[str]:
    """The rows an import under ``decision`` goes on without."""
    left = unresolved(plan, decision)
    return [f"node pack for {p.title}" for p in left.packs] + [
        f"model {m.key}" for m, _, _ in left.models
    ]
