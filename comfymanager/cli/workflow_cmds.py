"""Handlers of the workflow commands (``analyze``, ``import``, ``export``, ``create
--workflow/--manifest``); ``cli/workflow.py`` registers them and imports this module only when one
of them runs, so other commands do not pay for the import and download stacks."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from comfymanager.cli.common import StderrProgress, print_json, printable
from comfymanager.cli.import_choices import Choices, build_decision, hints, left_out
from comfymanager.core.context import CoreContext
from comfymanager.core.errors import ComfyManagerError, InvalidInput
from comfymanager.core.importer import apply as importer_apply
from comfymanager.core.importer.apply import ImportResult, apply_import
from comfymanager.core.importer.decision import (
    ImportDecision,
)
from comfymanager.core.importer.manifest import export_manifest
from comfymanager.core.importer.plan import (
    MODEL_LABELS,
    PACK_LABELS,
    ImportPlan,
    PlanModel,
    PlanPack,
    RegistryLookup,
    default_name,
    node_database,
    plan_from_analyses,
    plan_import,
    settled_warning,
)
from comfymanager.core.install.install import ProjectSpec
from comfymanager.core.models.download import DownloadRequest, download_file
from comfymanager.core.models.hosts import Endpoints
from comfymanager.core.models.index import ModelIndex
from comfymanager.core.progress import CancelToken, format_bytes
from comfymanager.core.projects import validate_name
from comfymanager.core.secrets import Secrets
from comfymanager.core.text import counted
from comfymanager.core.workflow.analyze import Analysis, analysis_to_json, analyze, error_to_json

log = logging.getLogger(__name__)


def _print_plan(a: Analysis, shown: str) -> None:
    out = sys.stdout
    print(printable(f"{shown} ({a.format} workflow)"), file=out)
    if a.comfyui_version:
        print(printable(f"  ComfyUI version: {a.comfyui_version}"), file=out)
    custom = [n for n in a.nodes if n.kind == "custom"]
    unknown = [n for n in a.nodes if n.kind == "unknown"]
    core = sum(1 for n in a.nodes if n.kind == "core")
    print(
        f"  Node classes: {len(a.nodes)} ({core} core, {len(custom)} custom, "
        f"{len(unknown)} unknown)",
        file=out,
    )
    for p in a.packs:
        pin = p.pack.version or (p.pack.commit[:12] if p.pack.commit else "latest")
        print(
            printable(f"  Pack: {p.pack.title} [{pin}] {p.pack.url or p.pack.id or ''}"), file=out
        )
    for n in custom:
        if n.pack is None:
            names = ", ".join(
                c.title + (" (recommended)" if c is n.recommended else "") for c in n.candidates
            )
            print(printable(f"  Choose a pack for {n.class_type}: {names}"), file=out)
    for n in unknown:
        print(printable(f"  Unknown node class: {n.class_type}"), file=out)
    for m in a.models:
        r = m.requirement
        state = {True: "present", False: "missing", None: "?"}[m.present]
        flag = "" if r.active else " (only used by muted/bypassed nodes)"
        print(printable(f"  Model: {r.directory or '?'}/{r.name} [{state}]{flag}"), file=out)
        for url in r.urls[:3]:
            print(printable(f"      {url}"), file=out)
    for w in a.warnings:
        print(printable(f"  Warning: {w}"), file=out)


def cmd_analyze(args: argparse.Namespace, ctx: CoreContext) -> int:
    """Each file on its own: a bad one is reported (a line on stderr, or an ``error`` object
    with ``--json``) and the next is analysed. Exit code 0 when every file was analysed, 1
    when one or more could not be (argparse's 2 stays for usage mistakes)."""
    db, note = node_database(ctx)
    if note:
        print(f"note: {note}", file=sys.stderr)
    store = ctx.store

    def is_present(folder: str, name: str) -> bool:
        try:
            return (store / folder / name).is_file()
        except OSError:  # a name the file system cannot hold is not in the store
            return False

    lookup = RegistryLookup(ctx.settings.registry_url, db) if args.lookup else None
    failed = 0
    analysed: list[Analysis] = []
    for given in args.files:
        try:
            analysis = analyze(Path(given), db, is_present, lookup=lookup)
        except ComfyManagerError as exc:
            failed += 1
            if args.json:
                print_json(error_to_json(given, str(exc)))
            else:
                print(f"error: {printable(exc)}", file=sys.stderr)  # the message names the file
            continue
        analysed.append(analysis)
        if args.json:
            data = analysis_to_json(analysis, given)
            if lookup is not None and lookup.failed:
                data["warnings"].append(lookup.failed)
            if args.lookup:
                data = _with_online_suggestions(ctx, analysis, data)
            print_json(data)
        else:
            _print_plan(analysis, given)
    if lookup is not None and lookup.failed and not args.json:
        print(f"note: {lookup.failed}", file=sys.stderr)
    if analysed and not args.json:
        plan = plan_from_analyses(ctx, analysed)
        if args.lookup:
            looked = _look_up_models(ctx, plan)
            for w in looked.warnings:
                if w not in plan.warnings:
                    print(f"note: {w}", file=sys.stderr)
            plan = looked
        lines = hints(plan, ImportDecision(target=""))
        if lines:
            print("To import, decide these (options of 'comfymanager import'):")
            print("\n".join(printable(f"  {line}") for line in lines))
    return 1 if failed else 0


def _with_online_suggestions(
    ctx: CoreContext, analysis: Analysis, data: dict[str, Any]
) -> dict[str, Any]:
    """``data`` with each model's suggestions as the plan has them after the online look-up
    (model list, Hugging Face, CivitAI: origin, URL, size, sha256)."""
    looked = _look_up_models(ctx, plan_from_analyses(ctx, [analysis]))
    by_key = {(m.directory, m.name): m for m in looked.models}
    for entry in data["models"]:
        row = by_key.get((entry["directory"], entry["name"]))
        if row is None:
            continue
        entry["suggestions"] = [
            {
                "origin": s.origin,
                "name": s.filename,
                "filename": s.filename,
                "directory": s.directory or None,
                "url": s.url,
                "size": s.size or None,
                "sha256": s.sha256,
            }
            for s in row.suggestions
        ]
    for w in looked.warnings:
        if w not in data["warnings"]:
            data["warnings"].append(w)
    return data


# --- import / export / create --workflow ------------------------------------------------


def _look_up_models(ctx: CoreContext, plan: ImportPlan) -> ImportPlan:
    """Hugging Face and CivitAI suggestions for models of unknown source, then sizes."""
    import requests

    from comfymanager.core.importer.search import look_up_online

    print("Looking up models of unknown source on Hugging Face and CivitAI...", file=sys.stderr)
    with requests.Session() as session:
        return look_up_online(plan, ctx, session, Secrets())


def _cli_enqueue(ctx: CoreContext, out: StderrProgress) -> importer_apply.EnqueueDownload:
    """Downloads one model at once (the command line has no background queue)."""
    store = ctx.store
    index = ModelIndex.load(store)
    endpoints = Endpoints.from_settings(ctx.settings)
    secrets = Secrets()

    def enqueue(request: DownloadRequest, requester: str = "") -> object:
        return download_file(
            request,
            store=store,
            secrets=secrets,
            endpoints=endpoints,
            report=out.reporter(),
            cancel=CancelToken(),
            index=index,
            key=request.name,
        )

    return enqueue


def _pack_choice(p: PlanPack, decision: ImportDecision | None) -> str:
    if decision is None:
        return ""
    if p.key in decision.pack_urls:
        return f" -> {decision.pack_urls[p.key]}"
    chosen = decision.pack_choices.get(p.key)
    title = next((c.title for c in p.candidates if c.identity == chosen), chosen)
    return f" -> {title}" if chosen else ""


def _model_choice(m: PlanModel, decision: ImportDecision | None) -> str:
    if decision is None:
        return ""
    if m.key in decision.skip_models:
        return " -> skipped"
    folder = decision.model_folders.get(m.key)
    into = f" into {folder}" if folder and m.directory is None else ""
    url = decision.model_urls.get(m.key)
    return f" -> {url}{into}" if url else (f" ->{into}" if into else "")


def print_import_plan(plan: ImportPlan, decision: ImportDecision | None = None) -> None:
    """The plan on stderr; with a decision, the choices made and the options still open."""
    err = sys.stderr
    names = ", ".join(str(f) for f in plan.files)
    print(printable(f"Import plan for {names}"), file=err)
    if plan.comfyui_version:
        print(printable(f"  saved with ComfyUI {plan.comfyui_version}"), file=err)
    for p in plan.packs:
        if p.status == "built-in":
            print(f"  [{PACK_LABELS[p.status]}] {len(p.classes)} core node classes", file=err)
            continue
        pin = f" @ {p.pin}" if p.pin else ""
        src = f" {p.source}" if p.source else ""
        line = f"  [{PACK_LABELS[p.status]}] {p.title}{pin}{src}{_pack_choice(p, decision)}"
        print(printable(line), file=err)
        if p.candidates:
            names = [
                c.title + (" (recommended)" if c.identity == p.recommended else "")
                for c in p.candidates
            ]
            print(printable("      candidates: " + ", ".join(names)), file=err)
    for m in plan.models:
        size = f" ({format_bytes(m.size)})" if m.size else ""
        print(
            printable(f"  [{MODEL_LABELS[m.status]}] {m.key}{size}{_model_choice(m, decision)}"),
            file=err,
        )
    unknown = f" + {plan.unknown_sizes} of unknown size" if plan.unknown_sizes else ""
    free = format_bytes(plan.free_bytes) if plan.free_bytes is not None else "?"
    print(f"  download {format_bytes(plan.download_bytes)}{unknown}; {free} free", file=err)
    chosen = set()
    if decision is not None:
        chosen = {
            c for p in plan.packs if p.key in {*decision.pack_choices, *decision.pack_urls}
            for c in p.classes
        }  # fmt: skip
    for w in plan.warnings:
        if not settled_warning(w, chosen):  # a --pack option settled it
            print(printable(f"  warning: {w}"), file=err)
    lines = hints(plan, decision or ImportDecision(target=""))
    if lines:
        print("Still open (add these options to decide):", file=err)
        print("\n".join(printable(f"  {line}") for line in lines), file=err)


def print_result(result: ImportResult) -> None:
    for item in result.items:
        detail = f": {item.detail}" if item.detail and item.status != "saved" else ""
        if item.status == "saved":
            detail = f" -> {item.detail}"
        print(printable(f"  {item.kind} {item.name}: {item.status}{detail}"), file=sys.stderr)
    if result.install_error is not None:
        print(printable(f"  install failed: {result.install_error}"), file=sys.stderr)
    from comfymanager.cli.verify import print_verification

    print_verification(result.verification, result.verify_error)


def _problems(result: ImportResult) -> list[str]:
    found = [f"{i.kind} {i.name}" for i in result.failures]
    found += [f"pack {i.name} (skipped)" for i in result.items if i.kind == "pack" and
              i.status == "skipped"]  # fmt: skip
    if result.install_error is not None:
        found.append("the project install")
    return found


def _decide(plan: ImportPlan, target: ProjectSpec | str, choices: Choices) -> ImportDecision:
    """The options as a decision; a mistake in them is a usage error (exit code 2)."""
    try:
        return build_decision(plan, target, choices)
    except InvalidInput as exc:
        print_import_plan(plan)
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _confirm(plan: ImportPlan, decision: ImportDecision, ask: bool) -> bool:
    """Without --yes: ask on a terminal, refuse otherwise. Says what goes on unresolved."""
    skipped = left_out(plan, decision)
    if ask:
        if not sys.stdin.isatty():
            raise InvalidInput(
                "Nothing was installed.",
                "Decide the open rows with the options above, and add --yes to import without "
                "asking" + (" (open rows are left out)." if skipped else "."),
            )
        more = f" without {counted(len(skipped), 'open row')}" if skipped else ""
        answer = input(f"Import these files now{more}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing was installed.", file=sys.stderr)
            return False
    if skipped:
        print(f"Going on without: {'; '.join(skipped)}.", file=sys.stderr)
    return True


def _refuse_bad_files(files: list[str]) -> None:
    """Every file that cannot be read is named (one line each) before anything is done; then
    the command stops. Reading twice costs little: the files are capped at 16 MiB."""
    from comfymanager.core.workflow.formats import load_workflow

    bad = 0
    for f in files:
        try:
            load_workflow(Path(f))
        except ComfyManagerError as exc:
            bad += 1
            print(f"error: {printable(exc)}", file=sys.stderr)
    if bad:
        raise InvalidInput(
            f"{bad} of {counted(len(files), 'file')} cannot be imported (named above); "
            "nothing was done.",
            "Fix or leave out those files and run the command again.",
        )


def _run_import(
    ctx: CoreContext,
    files: list[str],
    target: ProjectSpec | str,
    out: StderrProgress,
    *,
    lookup: bool,
    choices: Choices,
    ask: bool,
) -> ImportResult | None:
    """Plan, decide (options), show, confirm, apply. None when the user said no."""
    _refuse_bad_files(files)
    db, note = node_database(ctx)
    if note:
        print(f"note: {note}", file=sys.stderr)
    project = target if isinstance(target, str) else None  # an existing project: its packs
    plan = plan_import(ctx, [Path(f) for f in files], db=db, lookup=lookup, project=project)
    if lookup:
        plan = _look_up_models(ctx, plan)
    decision = _decide(plan, target, choices)
    print_import_plan(plan, decision)
    if not plan.fits:
        raise InvalidInput(
            f"The downloads need {format_bytes(plan.download_bytes)} but the model store has "
            f"{format_bytes(plan.free_bytes)} free.",
            "Free some space or move the model store (Settings), then try again.",
        )
    if not _confirm(plan, decision, ask):
        return None
    result = apply_import(
        ctx,
        plan,
        decision,
        report=out.reporter(),
        cancel=CancelToken(),
        enqueue_download=_cli_enqueue(ctx, out),
    )
    print_result(result)
    problems = _problems(result)
    if problems:
        raise ComfyManagerError(
            f"Import into '{result.project}' is incomplete: {', '.join(problems)} failed; "
            "the project was kept.",
            f"See the messages above and {result.project}'s install log; fix the cause, then "
            f"run 'comfymanager repair {result.project}' or import again with --project.",
        )
    return result


def create_from_files(
    args: argparse.Namespace, ctx: CoreContext, spec: ProjectSpec, out: StderrProgress
) -> ImportResult:
    """``create NAME --workflow FILE... | --manifest FILE`` (called by cli/projects.py); the
    command itself is the go-ahead: open rows are left out, and said so."""
    files = list(args.workflow or [])
    if args.manifest:
        files.insert(0, args.manifest)
    result = _run_import(
        ctx, files, spec, out, lookup=False, choices=Choices.from_args(args), ask=False
    )
    assert result is not None  # never asks
    return result


def cmd_import(args: argparse.Namespace, ctx: CoreContext) -> int:
    target: ProjectSpec | str
    if args.project:
        target = validate_name(args.project)
    else:
        target = ProjectSpec(
            name=args.name or validate_name(default_name(args.files[0])),
            torch_backend=args.torch_backend,
        )
    out = StderrProgress(quiet_log=not args.verbose)
    result = _run_import(
        ctx,
        args.files,
        target,
        out,
        lookup=args.lookup,
        choices=Choices.from_args(args),
        ask=not args.yes,
    )
    if result is None:
        return 1
    print(f"Imported into '{result.project}'.", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace, ctx: CoreContext) -> int:
    out = StderrProgress()
    data = export_manifest(ctx, args.name, report=out.reporter(), cancel=CancelToken())
    print(json.dumps(data, indent=2, ensure_ascii=False))
    return 0
