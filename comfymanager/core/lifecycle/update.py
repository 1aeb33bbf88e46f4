"""Update (or downgrade) a project's ComfyUI and packs, with a way back.

``plan_update`` says what would change and writes nothing in the project (it fetches the
source's refs into the ComfyUI clone, which the checkout does not see): the ComfyUI commits
between the two refs with their subjects, each pack's old and new version, and the requirement
files' diff. ``update`` takes a snapshot, writes the rollback intent, applies the plan under the
torch constraint, verifies the packs it touched still load, and on any failure rolls back to
that snapshot and says what failed. ``check_updates`` answers "is there an update" for a list
or a tray from ``git ls-remote`` and the registry only, bounded by a timeout.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from comfymanager.core.adopt.guard import require_managed
from comfymanager.core.context import CoreContext
from comfymanager.core.errors import Cancelled, ComfyManagerError, ExternalToolError, NotFound
from comfymanager.core.install import envs, sources
from comfymanager.core.killpoint import kill_point
from comfymanager.core.lifecycle import rollback as rb
from comfymanager.core.lifecycle import snapshots as snaps
from comfymanager.core.progress import CancelToken, Progress, Reporter
from comfymanager.core.projects import PackRecord, Project, ProjectDirs, ProjectStore
from comfymanager.core.run import runs
from comfymanager.core.text import counted

log = logging.getLogger(__name__)

CHECK_TIMEOUT = 15.0


class UpdateFailed(ComfyManagerError):
    """An update failed and the project was rolled back (or must be repaired)."""


@dataclass(frozen=True)
class PackChange:
    folder: str
    kind: str  # git | registry
    old: str  # version or short commit
    new: str
    new_commit: str = ""  # git packs: the commit to check out
    requirements_diff: tuple[str, ...] = ()
    release: bool = False  # git packs: ``new`` is a release tag (else a branch name)


@dataclass(frozen=True)
class UpdatePlan:
    project: str
    comfyui_old: str  # commit
    comfyui_new: str  # commit
    comfyui_ref: str  # the ref asked for (tag, branch, commit)
    downgrade: bool
    commits: tuple[tuple[str, str], ...]  # (commit, subject), newest first
    requirements_diff: tuple[str, ...]  # "+line" / "-line" of ComfyUI's requirements.txt
    packs: tuple[PackChange, ...] = ()
    unchecked: tuple[tuple[str, str], ...] = ()  # (pack folder, why its source gave no answer)

    @property
    def changes(self) -> bool:
        return self.comfyui_old != self.comfyui_new or bool(self.packs)

    def lines(self) -> list[str]:
        """The plan as a user reads it (the CLI prints these; a dialog can too)."""
        out: list[str] = []
        if self.comfyui_old == self.comfyui_new:
            out.append(f"ComfyUI stays at {self.comfyui_old[:10]} ({self.comfyui_ref})")
        else:
            word = "Downgrade" if self.downgrade else "Update"
            out.append(
                f"{word} ComfyUI {self.comfyui_old[:10]} -> {self.comfyui_new[:10]} "
                f"({self.comfyui_ref}), {counted(len(self.commits), 'commit')}:"
            )
            out += [f"  {c[:10]} {s}" for c, s in self.commits]
        if self.requirements_diff:
            out.append("Requirement changes:")
            out += [f"  {d}" for d in self.requirements_diff]
        for p in self.packs:
            out.append(f"Pack {p.folder}: {p.old} -> {p.new}")
            out += [f"  {d}" for d in p.requirements_diff]
        for folder, why in self.unchecked:
            out.append(f"Pack {folder}: not checked, stays as it is ({why})")
        return out


@dataclass(frozen=True)
class UpdateResult:
    plan: UpdatePlan
    applied: bool
    snapshot_id: str = ""  # the snapshot taken before (the way back)


@dataclass(frozen=True)
class UpdateCheck:
    """What a list shows as "Update available"; ``error`` when the source did not answer."""

    project: str
    comfyui_current: str
    comfyui_latest: str  # latest release tag ("" when none)
    comfyui_available: bool
    packs: tuple[PackChange, ...] = field(default_factory=tuple)
    error: str = ""
    unchecked: tuple[tuple[str, str], ...] = ()  # packs whose source did not answer

    @property
    def available(self) -> bool:
        return self.comfyui_available or bool(self.packs)


def _git_lines(repo: Path, *args: str, cancel: CancelToken | None = None) -> list[str]:
    out: list[str] = []
    sources._git(list(args), cwd=repo, cancel=cancel, on_line=out.append)
    return out


def _fetch(repo: Path, cancel: CancelToken) -> None:
    if sources.find_git() == sources.PYGIT2:
        from comfymanager.core.install import git_lib

        git_lib.fetch(repo, cancel=cancel)
        return
    _git_lines(repo, "fetch", "--tags", "--force", "origin", cancel=cancel)


def _resolve(repo: Path, ref: str, cancel: CancelToken) -> str:
    with contextlib.suppress(ExternalToolError, NotFound):
        _fetch(repo, cancel)
    return sources._resolve_ref(repo, ref)


def _commits(repo: Path, old: str, new: str) -> tuple[tuple[tuple[str, str], ...], bool]:
    if old == new or sources.find_git() == sources.PYGIT2:
        return (), False
    down = False
    lines = _git_lines(repo, "log", "--format=%H %s", f"{old}..{new}")
    if not lines:
        lines, down = _git_lines(repo, "log", "--format=%H %s", f"{new}..{old}"), True
    return tuple((ln[:40], ln[41:]) for ln in lines if len(ln) >= 40), down


def _is_ancestor(repo: Path, older: str, newer: str) -> bool:
    """True when ``older`` is in ``newer``'s history in the local clone (False when unknown)."""
    if sources.find_git() == sources.PYGIT2 or not (repo / ".git").exists():
        return False
    try:
        _git_lines(repo, "merge-base", "--is-ancestor", older, newer)
    except ExternalToolError:
        return False
    return True


def _req_diff(repo: Path, old: str, new: str, path: str = "requirements.txt") -> tuple[str, ...]:
    if old == new or not old or sources.find_git() == sources.PYGIT2:
        return ()
    try:
        lines = _git_lines(repo, "diff", "--no-color", "-U0", old, new, "--", path)
    except ExternalToolError:
        return ()
    return tuple(
        ln
        for ln in lines
        if ln[:1] in "+-" and not ln.startswith(("+++", "---")) and ln[1:].strip()
    )


def _pack_target(url: str, cancel: CancelToken) -> tuple[str, str, bool]:
    """A pack's newest version on its remote: (label, commit, is a release): the latest
    release tag, else the default branch's head."""
    refs = sources.list_remote(url, cancel)
    tag = refs.latest_release()
    if tag:
        return tag, refs.tags[tag], True
    branch = refs.head_branch or "main"
    return branch, refs.branches.get(branch, ""), False


def _pack_changes(
    ctx: CoreContext, project: Project, dirs: ProjectDirs, cancel: CancelToken, *, fetch: bool
) -> tuple[tuple[PackChange, ...], tuple[tuple[str, str], ...]]:
    """Each enabled pack with a newer version, and the packs whose source did not answer
    (one dead remote does not stop the others)."""
    changes: list[PackChange] = []
    unchecked: list[tuple[str, str]] = []
    for folder, (path, enabled) in snaps.pack_folders(dirs).items():
        cancel.check()
        if not enabled:
            continue  # a disabled pack is left as it is
        state = snaps._pack_state(project, folder, path, enabled)
        try:
            change = _pack_change(ctx, state, path, cancel, fetch=fetch)
        except Cancelled:
            raise
        except ComfyManagerError as exc:
            unchecked.append((folder, exc.message))
            continue
        if change is not None:
            changes.append(change)
    return tuple(changes), tuple(unchecked)


def _pack_change(
    ctx: CoreContext,
    state: snaps.PackState,
    path: Path,
    cancel: CancelToken,
    *,
    fetch: bool,
) -> PackChange | None:
    from comfymanager.core.install.packs import registry_zip_url

    if state.kind == snaps.GIT:
        label, commit, release = _pack_target(state.url, cancel)
        if not commit or commit == state.commit:
            return None
        diff: tuple[str, ...] = ()
        if fetch:
            with contextlib.suppress(ComfyManagerError):
                _fetch(path, cancel)
                diff = _req_diff(path, state.commit, commit)
        old = state.commit[:10]
        if state.version:  # the recorded release, as `packs` shows it
            old = f"{state.version} ({old})"
        return PackChange(state.folder, snaps.GIT, old, label, commit, diff, release)
    if state.kind == snaps.REGISTRY and ctx.settings.registry_url:
        latest = registry_zip_url(ctx.settings.registry_url, state.registry_id, "").version
        if latest and latest != state.version:
            return PackChange(state.folder, snaps.REGISTRY, state.version, latest)
    return None


def _target_ref(project: Project, ref: str, latest: bool, packs: bool, cancel: CancelToken) -> str:
    if ref:
        return ref
    if latest or not packs:
        refs = sources.list_remote(project.comfyui_source, cancel)
        return refs.latest_release() or refs.head_branch or "master"
    return project.comfyui_commit  # only the packs


def plan_update(
    ctx: CoreContext,
    project_id: str,
    *,
    ref: str = "",
    latest: bool = False,
    packs: bool = False,
    cancel: CancelToken | None = None,
) -> UpdatePlan:
    """What ``update`` would do. ``ref`` (tag, branch, commit; older = downgrade), else the
    latest release; with only ``packs`` ComfyUI stays."""
    cancel = cancel or CancelToken()
    store = ProjectStore(ctx.paths)
    project = store.load(project_id)
    require_managed(project, "update")
    dirs = store.dirs(project_id)
    old = sources.head_commit(dirs.comfyui) or project.comfyui_commit
    if not old:
        raise UpdateFailed(
            f"Project '{project_id}' has no ComfyUI checkout to update.",
            f"Repair it first: comfymanager repair {project_id}",
        )
    target = _target_ref(project, ref, latest, packs, cancel)
    new = _resolve(dirs.comfyui, target, cancel)
    commits, down = _commits(dirs.comfyui, old, new)
    changes, unchecked = (
        _pack_changes(ctx, project, dirs, cancel, fetch=True) if packs else ((), ())
    )
    return UpdatePlan(
        project=project_id,
        comfyui_old=old,
        comfyui_new=new,
        comfyui_ref=target,
        downgrade=down,
        commits=commits,
        requirements_diff=_req_diff(dirs.comfyui, old, new),
        packs=changes,
        unchecked=unchecked,
    )


def update(
    ctx: CoreContext,
    project_id: str,
    *,
    ref: str = "",
    latest: bool = False,
    packs: bool = False,
    dry_run: bool = False,
    verify: bool = True,
    report: Reporter,
    cancel: CancelToken,
) -> UpdateResult:
    """Plan, snapshot, apply; on any failure roll back to the snapshot and raise
    ``UpdateFailed`` naming what failed. Holds the project's lock throughout."""
    store = ProjectStore(ctx.paths)
    with runs.project_lock(ctx, project_id):
        plan = plan_update(ctx, project_id, ref=ref, latest=latest, packs=packs, cancel=cancel)
        for line in plan.lines():
            report.log(line)
        if dry_run or not plan.changes:
            return UpdateResult(plan, applied=False)
        project = store.load(project_id)
        rb._check_not_running(ctx, project)
        snap = snaps.take_snapshot(ctx, project_id, "update", report=report)
        dirs = store.dirs(project_id)
        rb.write_intent(dirs, snap.id, "update")
        where = _Step()
        try:
            _apply(ctx, store, project, dirs, plan, verify, where, report, cancel)
        except BaseException as exc:
            _undo(ctx, store, project_id, dirs, snap, where.name, exc, report)
            raise  # _undo raises; this is not reached
        rb.clear_intent(dirs)
        report.log(f"Updated; the way back is snapshot {snap.id}")
        return UpdateResult(plan, applied=True, snapshot_id=snap.id)


class _Step:
    """The step running now, for the failure message."""

    def __init__(self) -> None:
        self.name = "ComfyUI checkout"


def _apply(
    ctx: CoreContext,
    store: ProjectStore,
    project: Project,
    dirs: ProjectDirs,
    plan: UpdatePlan,
    verify: bool,
    current: _Step,
    report: Reporter,
    cancel: CancelToken,
) -> None:
    from comfymanager.core.install.packs import install_pack

    uv = envs.UvRunner(ctx.paths, ctx.settings)
    total = 3
    report.progress(Progress(stage="update", done=0, total=total, unit="steps", message="ComfyUI"))
    sources.checkout(
        project.comfyui_source,
        plan.comfyui_new,
        dirs.comfyui,
        stage="update",
        report=report,
        cancel=cancel,
    )
    kill_point("update:comfyui")
    current.name = "ComfyUI's requirements"
    envs.install_comfyui_requirements(
        uv, dirs.comfyui, dirs.venv, dirs.constraints, report=report, cancel=cancel
    )
    current.name = "ComfyUI-Manager"
    from comfymanager.core.lifecycle import manager

    manager.after_comfyui_change(ctx, project, dirs, report=report, cancel=cancel)
    if plan.comfyui_new != plan.comfyui_old:  # a packs-only update keeps the ref as it was
        project.comfyui_ref, project.comfyui_commit = plan.comfyui_ref, plan.comfyui_new
    report.progress(Progress(stage="update", done=1, total=total, unit="steps", message="Packs"))
    by_folder = {p.folder: p for p in project.packs}
    for change in plan.packs:
        cancel.check()
        current.name = f"pack {change.folder}"
        rec = by_folder.get(change.folder)
        if rec is None:
            rec = PackRecord(url="", folder=change.folder)
            project.packs.append(rec)
            by_folder[change.folder] = rec
        if change.kind == snaps.GIT:
            rec.url = rec.url or (sources.origin_url(dirs.custom_nodes / change.folder) or "")
            rec.commit = change.new_commit
            rec.version = change.new if change.release else ""  # as `packs` lists it
        else:
            state = snaps._pack_state(
                project, change.folder, dirs.custom_nodes / change.folder, True
            )
            rec.registry_id, rec.version = state.registry_id, change.new
        installed = install_pack(
            rec, dirs, uv, report=report, cancel=cancel, registry=ctx.settings.registry_url
        )
        if change.kind == snaps.GIT:
            rec.commit = installed
        rec.status, rec.error = "installed", ""
    kill_point("update:packs")
    store.save(project)
    report.progress(Progress(stage="update", done=2, total=total, unit="steps", message="Verify"))
    if verify:
        current.name = "verification"
        _verify(ctx, project, plan, report, cancel)
    report.progress(Progress(stage="update", done=total, total=total, unit="steps", message="Done"))


def _verify(
    ctx: CoreContext, project: Project, plan: UpdatePlan, report: Reporter, cancel: CancelToken
) -> None:
    """The packs that loaded before must still load (ComfyUI changed: every pack; otherwise
    the packs updated). A scan that cannot run is said, not counted as a failure."""
    from comfymanager.core.verify.verify import verify_project

    try:
        result = verify_project(ctx, project.id, report, cancel, force=True)
    except Cancelled:
        raise
    except ComfyManagerError as exc:
        report.log(f"Verification not done: {exc}")
        return
    was_failing = {p.folder for p in project.packs if p.status == "failed"}
    touched = {c.folder for c in plan.packs}
    broken = {
        folder: err
        for folder, err in result.failed_packs.items()
        if folder not in was_failing and (plan.comfyui_old != plan.comfyui_new or folder in touched)
    }
    if broken:
        folder, err = next(iter(sorted(broken.items())))
        raise UpdateFailed(f"Pack {folder} no longer imports after the update: {err}")


def _undo(
    ctx: CoreContext,
    store: ProjectStore,
    project_id: str,
    dirs: ProjectDirs,
    snap: snaps.Snapshot,
    step: str,
    exc: BaseException,
    report: Reporter,
) -> None:
    cause = exc.message if isinstance(exc, ComfyManagerError) else repr(exc)
    if isinstance(exc, Cancelled):
        cause = "cancelled"
    report.log(f"The update failed at {step}: {cause}; rolling back to snapshot {snap.id}")
    try:
        rb.restore(ctx, store.load(project_id), dirs, snap, report, CancelToken())
    except ComfyManagerError as again:
        raise UpdateFailed(
            f"The update failed at {step} ({cause}), and going back to snapshot {snap.id} "
            f"failed too ({again.message}).",
            f"Run: comfymanager repair {project_id} (it finishes going back).",
        ) from exc
    rb.clear_intent(dirs)
    if isinstance(exc, Cancelled):
        raise exc
    fix = exc.fix if isinstance(exc, ComfyManagerError) and exc.fix else None
    raise UpdateFailed(
        f"The update failed at {step}: {cause}. The project was rolled back to snapshot "
        f"{snap.id}, as it was before.",
        fix or "See the log above for what failed; the project is unchanged.",
    ) from exc


def check_updates(
    ctx: CoreContext, project_id: str, *, packs: bool = True, timeout: float = CHECK_TIMEOUT
) -> UpdateCheck:
    """Is an update available? ``git ls-remote`` of the ComfyUI source and each git pack, the
    registry for registry packs; nothing in the project is touched, and after ``timeout``
    seconds the answer carries an error instead of waiting."""
    store = ProjectStore(ctx.paths)
    project = store.load(project_id)
    dirs = store.dirs(project_id)
    current = project.comfyui_commit
    cancel = CancelToken()
    timer = threading.Timer(timeout, cancel.cancel)
    timer.daemon = True
    timer.start()
    try:
        refs = sources.list_remote(project.comfyui_source, cancel)
        latest = refs.latest_release() or ""
        latest_commit = refs.tags.get(latest, "") if latest else ""
        newer = bool(latest_commit) and latest_commit != current
        if newer and _is_ancestor(dirs.comfyui, latest_commit, current):
            newer = False  # the project is ahead of the latest release (a branch, a commit)
        changes, unchecked = (
            _pack_changes(ctx, project, dirs, cancel, fetch=False) if packs else ((), ())
        )
        return UpdateCheck(project_id, current, latest, newer, changes, unchecked=unchecked)
    except Cancelled:
        return UpdateCheck(
            project_id, current, "", False, error=f"No answer within {timeout:.0f} s"
        )
    except ComfyManagerError as exc:
        return UpdateCheck(project_id, current, "", False, error=exc.message)
    finally:
        timer.cancel()
