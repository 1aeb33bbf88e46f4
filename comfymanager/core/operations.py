"""Operations: every change to a project is one named kind with one core function.

``Kind`` names what can be done to a project; its ``title(project)`` is the text the job list,
the tray and the logs show, so nothing ever parses a title back. Each implemented kind has one
plain function here (``ctx``, the arguments, ``report``, ``cancel`` -> a frozen result) that the
CLI calls directly and the window submits as a job (``JobManager.submit(kind, project, fn)``).

Kinds without a function yet (update, rollback, adopt, snapshot, the pack kinds, config) are
declared so their title and their place in the window exist; whoever adds one writes its function
here and its follow-up in ``ui/outcomes.py``.

Derived state lives here too (style point 16): ``live``, ``can_start``, ``can_stop``,
``can_delete`` and ``busy`` answer from a run state plus whether the project's job queue is busy,
and every view (list, details, menus, tray) asks them instead of comparing state strings.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Any

from comfymanager.core.errors import Cancelled
from comfymanager.core.progress import NULL_REPORTER, CancelToken, Progress, Reporter

if TYPE_CHECKING:
    from pathlib import Path

    from comfymanager.core.configure import ProjectSettings
    from comfymanager.core.context import CoreContext
    from comfymanager.core.install.install import InstallResult, ProjectSpec
    from comfymanager.core.run.runs import Status
    from comfymanager.core.verify.check import EnqueueDownload
    from comfymanager.core.verify.verify import VerifyResult

# The heavy modules (install, runs pull in requests and friends) are imported by the functions,
# so ``comfymanager --help`` stays fast.


class Kind(Enum):
    """What a job does; the value is the stable name, ``title`` the text shown."""

    CREATE = "create"
    INSTALL = "install"
    REPAIR = "repair"
    REINSTALL = "reinstall"
    LAUNCH = "launch"
    STOP = "stop"
    DELETE = "delete"
    IMPORT = "import"
    VERIFY = "verify"
    UPDATE = "update"
    ROLLBACK = "rollback"
    ADOPT = "adopt"
    SNAPSHOT = "snapshot"
    PACK_ADD = "pack-add"
    PACK_REMOVE = "pack-remove"
    PACK_UPDATE = "pack-update"
    PACK_ENABLE = "pack-enable"
    PACK_DISABLE = "pack-disable"
    CONFIG = "config"
    # app-wide work, on queues that are no project's ("store", "cleanup")
    CLEANUP = "cleanup"
    STORE_SCAN = "store-scan"
    STORE_VERIFY = "store-verify"
    STORE_DELETE = "store-delete"
    CACHE_PRUNE = "cache-prune"  # uv's cache, "Clean unused" (queue "uv-cache")

    def title(self, project: str, subject: str = "") -> str:
        """The shown title; ``subject`` names what an app-wide kind works on (a model file)."""
        return _TITLES[self].format(project=project, subject=subject)

    @property
    def installs(self) -> bool:
        """The project is being (re)built while a job of this kind runs: shown as installing."""
        return self in INSTALL_KINDS


_TITLES: dict[Kind, str] = {
    Kind.CREATE: "Create project '{project}'",
    Kind.INSTALL: "Install '{project}'",
    Kind.REPAIR: "Repair '{project}'",
    Kind.REINSTALL: "Reinstall '{project}'",
    Kind.LAUNCH: "Launch '{project}'",
    Kind.STOP: "Stop '{project}'",
    Kind.DELETE: "Delete '{project}'",
    Kind.IMPORT: "Import into '{project}'",
    Kind.VERIFY: "Verify nodes of '{project}'",
    Kind.UPDATE: "Update '{project}'",
    Kind.ROLLBACK: "Roll back '{project}'",
    Kind.ADOPT: "Adopt '{project}'",
    Kind.SNAPSHOT: "Snapshot '{project}'",
    Kind.PACK_ADD: "Add node pack to '{project}'",
    Kind.PACK_REMOVE: "Remove node pack from '{project}'",
    Kind.PACK_UPDATE: "Update node packs of '{project}'",
    Kind.PACK_ENABLE: "Enable node pack in '{project}'",
    Kind.PACK_DISABLE: "Disable node pack in '{project}'",
    Kind.CONFIG: "Change settings of '{project}'",
    Kind.CLEANUP: "Removing leftovers of interrupted operations",
    Kind.STORE_SCAN: "Scan model store",
    Kind.STORE_VERIFY: "Verify {subject}",
    Kind.STORE_DELETE: "Delete {subject}",
    Kind.CACHE_PRUNE: "Clean unused files from uv's cache",
}
INSTALL_KINDS = frozenset(
    {Kind.CREATE, Kind.INSTALL, Kind.REPAIR, Kind.REINSTALL, Kind.IMPORT, Kind.ADOPT}
)


# --- derived state ---------------------------------------------------------------------------

LIVE_STATES = frozenset({"starting", "running"})


def live(state: str) -> bool:
    """A ComfyUI process of the project exists (starting or running)."""
    return state in LIVE_STATES


def busy(state: str, queued: bool) -> bool:
    """Something is changing the project: a job on its queue, or another process installing."""
    return queued or state == "installing"


def can_start(state: str, queued: bool = False) -> bool:
    return state in ("stopped", "crashed") and not queued


def can_stop(state: str) -> bool:
    """Stopping is always offered for a live run, even while a launch job waits for it."""
    return live(state)


def can_delete(state: str, queued: bool = False) -> bool:
    """A live project is stopped by the delete; an install in progress must end first."""
    return not busy(state, queued)


def can_browse(state: str) -> bool:
    return state == "running"


# --- the operations ----------------------------------------------------------------------------


def create(
    ctx: CoreContext,
    spec: ProjectSpec,
    report: Reporter = NULL_REPORTER,
    cancel: CancelToken | None = None,
) -> InstallResult:
    from comfymanager.core.install import install

    return install.create_project(ctx, spec, report=report, cancel=cancel or CancelToken())


def repair(
    ctx: CoreContext,
    project: str,
    report: Reporter = NULL_REPORTER,
    cancel: CancelToken | None = None,
    *,
    force: bool = False,
) -> InstallResult:
    """Finish an install (``force=False``) or redo every stage (``force=True``)."""
    from comfymanager.core.install import install

    return install.install_project(
        ctx, project, report=report, cancel=cancel or CancelToken(), force=force
    )


def launch(
    ctx: CoreContext,
    project: str,
    report: Reporter = NULL_REPORTER,
    cancel: CancelToken | None = None,
    *,
    port: int | None = None,
    timeout: float = 120.0,
    wait: bool = True,
    on_spawned: Callable[[Status], None] | None = None,
) -> Status:
    """Start ComfyUI and (``wait``) wait until it answers; a cancel while waiting stops it again,
    so a cancelled launch leaves nothing running. ``on_spawned(status)`` is called once the
    process exists (the window pokes its monitor, the CLI prints the port)."""
    from comfymanager.core.run import runs

    rep = report
    rep.progress(Progress(stage="start", message="Starting ComfyUI"))
    st = runs.start(ctx, project, port=port)
    if on_spawned is not None:
        on_spawned(st)
    rep.log(f"ComfyUI is starting on port {st.port}")
    if not wait:
        return st
    rep.progress(Progress(stage="wait", message=f"Waiting for ComfyUI on port {st.port}"))
    try:
        return runs.wait_ready(ctx, project, timeout=timeout, cancel=cancel)
    except Cancelled:
        rep.log("Launch cancelled: stopping ComfyUI")
        runs.stop(ctx, project)
        raise


def stop(
    ctx: CoreContext,
    project: str,
    report: Reporter = NULL_REPORTER,
    cancel: CancelToken | None = None,
    *,
    timeout: float = 10.0,
) -> Status:
    from comfymanager.core.run import runs

    report.progress(Progress(stage="stop", message="Stopping ComfyUI"))
    return runs.stop(ctx, project, timeout=timeout)


def delete(
    ctx: CoreContext,
    project: str,
    report: Reporter = NULL_REPORTER,
    cancel: CancelToken | None = None,
    *,
    keep_outputs: bool = False,
) -> Path | None:
    """Stop the project if it runs and remove its folder (never the shared models);
    ``keep_outputs`` moves its outputs to ``<data>/kept-outputs/`` first (the folder returned)."""
    from comfymanager.core.install import install

    return install.delete_project(
        ctx, project, report=report, cancel=cancel, keep_outputs=keep_outputs
    )


def verify(
    ctx: CoreContext,
    project: str,
    report: Reporter = NULL_REPORTER,
    cancel: CancelToken | None = None,
    *,
    enqueue_download: EnqueueDownload | None = None,
    force: bool = True,
) -> VerifyResult:
    """Check the project's node set in its own Python (``force``: even when nothing changed)."""
    from comfymanager.core.verify.verify import verify_project

    return verify_project(
        ctx,
        project,
        report,
        cancel or CancelToken(),
        enqueue_download=enqueue_download,
        force=force,
    )


def config(
    ctx: CoreContext,
    project: str,
    report: Reporter = NULL_REPORTER,
    cancel: CancelToken | None = None,
    **changes: Any,
) -> ProjectSettings:
    """Change a project's settings (``core/configure.configure``'s keywords); nothing is written
    when a value is refused. Applies at the next launch."""
    from comfymanager.core import configure

    report.progress(Progress(stage="config", message="Saving the project's settings"))
    return configure.settings_of(configure.configure(ctx, project, **changes))
