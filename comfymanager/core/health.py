"""A project's health: what is wrong with it, derived each time from the real records.

Nothing is stored: ``project_health`` reads the project file (install stages, packs), the last
verification (``core.verify.last_result``: node classes of its workflows, model folders), the node
scan's failed packs (``node-definitions.json``), the shared store and the download queue (a model
is fine when present or on its way; a failed download is a problem with its cause) and the last
run's record (a crash). Each ``Problem`` has a ``kind``, the ``subject`` it is about, its
``cause``, the ``fix`` in words and a machine-readable ``action`` the window maps to a Fix button
(``ACTIONS``); ``ref`` is what that action works on (a download id, a pack folder, a
``folder/name`` model key). ``Health.summary`` is the list's word for it ("Needs attention (3)").

``launch_warnings`` gives the sentences to show before a launch ("launch anyway?"): problems a
run would meet, not the last crash nor an install that blocks the launch anyway.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from comfymanager.core.context import CoreContext
from comfymanager.core.errors import ComfyManagerError
from comfymanager.core.projects import DamagedProject, Project, ProjectStore

if TYPE_CHECKING:
    from comfymanager.core.models.queue import DownloadQueue
    from comfymanager.core.run.runs import Status

log = logging.getLogger(__name__)

# what a Fix button does
CHOOSE_PACK = "choose_pack"  # pick (another) pack that provides the node class
OTHER_URL = "other_url"  # give another address for the model
RETRY_DOWNLOAD = "retry_download"  # download again (``ref`` is the queue item id)
PICK_FOLDER = "pick_folder"  # say which models folder the file belongs in
SKIP = "skip"  # leave it missing on purpose
REPAIR = "repair"  # finish or redo the install (``comfymanager repair``)
VERIFY = "verify"  # check the project's workflows against its nodes
VIEW_LOG = "view_log"  # read why the last run ended
ACTIONS = (CHOOSE_PACK, OTHER_URL, RETRY_DOWNLOAD, PICK_FOLDER, SKIP, REPAIR, VERIFY, VIEW_LOG)

# problem kinds, in the order they are listed
DAMAGED = "damaged"
INSTALL = "install"
PACK = "pack"
NODE = "node"
DOWNLOAD = "download"
MODEL = "model"
UNVERIFIED = "unverified"
CRASHED = "crashed"
KINDS = (DAMAGED, INSTALL, PACK, NODE, DOWNLOAD, MODEL, UNVERIFIED, CRASHED)
#: kinds that do not stop a launch from being useful to ask about (see ``launch_warnings``)
_NOT_AT_LAUNCH = frozenset({DAMAGED, INSTALL, CRASHED})

_ON_THE_WAY = ("queued", "downloading", "verifying", "paused")
_ERROR_LINE = re.compile(r"(error|exception|traceback|failed|killed|abort)", re.I)


@dataclass(frozen=True)
class Problem:
    kind: str
    subject: str
    cause: str
    fix: str
    action: str
    ref: str = ""

    @property
    def key(self) -> str:
        """The same problem in a later health (the checklist's row being fixed)."""
        return f"{self.kind}:{self.subject}"

    @property
    def sentence(self) -> str:
        return f"{self.subject}: {self.cause}"

    def to_json(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Health:
    project: str
    problems: tuple[Problem, ...] = ()
    busy: bool = False  # installing right now: judged when it ends

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def summary(self) -> str:
        """One line for lists and the tray: "OK" or "Needs attention (3)"."""
        return "OK" if self.ok else f"Needs attention ({len(self.problems)})"

    def of_kind(self, *kinds: str) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.kind in kinds)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "summary": self.summary,
            "problems": [p.to_json() for p in self.problems],
        }


def launch_warnings(health: Health) -> list[str]:
    """Sentences to show before launching (empty: nothing to ask)."""
    return [p.sentence for p in health.problems if p.kind not in _NOT_AT_LAUNCH]


def project_health(
    ctx: CoreContext,
    project_id: str,
    *,
    status: Status | None = None,
    queue: DownloadQueue | None = None,
) -> Health:
    """The project's problems now. ``status`` (``runs.status``) and ``queue`` (the download
    queue) may be passed when the caller has them, so a list of projects reads them once."""
    store = ProjectStore(ctx.paths)
    try:
        project = store.load(project_id)
    except DamagedProject as exc:
        return Health(
            exc.project_id,
            (Problem(DAMAGED, "project.json", exc.cause, exc.fix or "", REPAIR),),
        )
    from comfymanager.core.run.runstate import install_lock_held

    if project.install.status == "installing" and install_lock_held(ctx, project.id):
        return Health(project.id, busy=True)
    problems: list[Problem] = []
    problems += _install_problems(project)
    problems += _pack_problems(ctx, project)
    if project.install.status == "ready":
        problems += _verify_problems(ctx, project, queue)
        problems += _crash_problems(ctx, project, status)
    order = {k: i for i, k in enumerate(KINDS)}
    problems.sort(key=lambda p: order.get(p.kind, len(order)))
    return Health(project.id, tuple(problems))


def healths(ctx: CoreContext, projects: Iterable[Project]) -> dict[str, Health]:
    """Health of several projects, reading the download queue once."""
    queue = load_queue(ctx)
    return {p.id: project_health(ctx, p.id, queue=queue) for p in projects}


# --- the parts --------------------------------------------------------------------------


def _install_problems(project: Project) -> list[Problem]:
    inst = project.install
    if inst.status == "ready":
        return []
    repair = f"Run 'comfymanager repair {project.id}' (or Repair in the window)."
    if inst.status == "new":
        cause = "the install has not run"
    elif inst.status == "failed":
        cause = f"the install failed: {inst.error}" if inst.error else "the install failed"
    else:
        cause = "the install was interrupted"
    left = [s for s in _stages() if s not in inst.stages_done]
    if left and inst.status != "new":
        cause += f" (stages left: {', '.join(left)})"
    fix = inst.error_fix if inst.status == "failed" and inst.error_fix else repair
    return [Problem(INSTALL, "install", cause, fix, REPAIR)]


def _stages() -> tuple[str, ...]:
    from comfymanager.core.projects import STAGES

    return STAGES


def _pack_problems(ctx: CoreContext, project: Project) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for pack in project.packs:
        if pack.status == "failed":
            seen.add(pack.folder)
            error = _once(pack.error)
            problems.append(
                Problem(
                    PACK,
                    pack.folder,
                    f"did not install: {error}" if error else "did not install",
                    "Choose another pack (or version) for its nodes, or repair the project "
                    "to try it again.",
                    CHOOSE_PACK,
                    pack.folder,
                )
            )
    for folder, error in _failed_imports(ctx, project).items():
        if folder in seen:
            continue
        problems.append(
            Problem(
                PACK,
                folder,
                f"failed to load: {_last_line(error)}",
                "Choose another pack (or version) for its nodes; a missing Python package is "
                f"installed by 'comfymanager repair {project.id}'.",
                CHOOSE_PACK,
                folder,
            )
        )
    return problems


def _failed_imports(ctx: CoreContext, project: Project) -> dict[str, str]:
    """{pack folder: import error} from the last node scan (``node-definitions.json``)."""
    from comfymanager.core.verify import verify

    dirs = ProjectStore(ctx.paths).dirs(project.id)
    path = dirs.root / verify.DEFS_FILE
    if not path.exists():
        return {}
    try:
        return dict(verify.read_definitions(path).failed_packs)
    except ComfyManagerError as exc:
        log.warning("health of %s: %s", project.id, exc.message)
        return {}


def load_queue(ctx: CoreContext) -> DownloadQueue | None:
    from comfymanager.core.models.queue import DownloadQueue

    try:
        return DownloadQueue.load(ctx.paths.downloads_file)
    except ComfyManagerError as exc:
        log.warning("health: the download queue is unreadable: %s", exc.message)
        return None


def _verify_problems(
    ctx: CoreContext, project: Project, queue: DownloadQueue | None
) -> list[Problem]:
    from comfymanager.core.models.search_paths import model_present, project_search
    from comfymanager.core.verify import verify

    result = verify.last_result(ctx, project.id)
    problems: list[Problem] = []
    if result is None and project.workflows:
        problems.append(
            Problem(
                UNVERIFIED,
                "workflows",
                "its workflows were never checked against the project's nodes",
                f"Verify the project ('comfymanager verify {project.id}').",
                VERIFY,
            )
        )
    if result is not None:
        for node in result.missing:
            problems.append(
                Problem(
                    NODE,
                    node.class_type,
                    _node_cause(node.pack, node.error),
                    f"Choose a pack that provides {node.class_type}, or skip it (its nodes "
                    "stay missing)."
                    if not node.pack
                    else f"Choose another pack for {node.class_type}, repair the project, or "
                    "skip it.",
                    CHOOSE_PACK,
                    node.pack or "",
                )
            )
    queue = queue if queue is not None else load_queue(ctx)
    wanted: dict[str, tuple[str | None, str, str, str]] = {}  # key -> folder, name, status, detail
    for m in project.models:
        folder, name = m.get("directory") or None, m.get("name", "")
        if name:
            wanted[f"{folder or '?'}/{name}"] = (folder, name, "", "")
    for mc in result.models if result else ():
        wanted[mc.key] = (mc.folder, mc.name, mc.status, mc.detail)
    wanted = _with_known_folders(ctx, project, queue, wanted)
    if queue is not None:  # a failed download this project asked for, named or not
        for asked in queue.items():
            if (
                asked.state == "failed"
                and project.id in asked.requesters
                and asked.key not in wanted
            ):
                wanted[asked.key] = (asked.request.folder, asked.request.name, "", "")
    # where the project's ComfyUI reads models: an adopted install's folders too
    comfyui, roots = project_search(project, ProjectStore(ctx.paths).dirs(project.id))
    for key, (folder, name, status, detail) in wanted.items():
        if status == "skipped":
            continue
        if folder and model_present(ctx.store, folder, name, comfyui=comfyui, roots=roots):
            continue
        item = queue.find(folder, name) if (queue is not None and folder) else None
        if item is not None and item.state in _ON_THE_WAY:
            continue
        if item is not None and item.state == "failed":
            problems.append(
                Problem(
                    DOWNLOAD,
                    key,
                    f"the download failed: {item.error or 'no reason recorded'}",
                    "Retry it, or give another address for the file.",
                    RETRY_DOWNLOAD,
                    item.id,
                )
            )
        elif not folder or status == "unknown-folder":
            problems.append(
                Problem(
                    MODEL,
                    key,
                    detail or "its models folder is not known",
                    "Pick the models folder it belongs in, or skip it.",
                    PICK_FOLDER,
                    key,
                )
            )
        else:
            cause = detail or (
                "the download was cancelled"
                if item is not None and item.state == "cancelled"
                else "no download address is known"
                if status == "needs-url"
                else "missing from the model store"
            )
            problems.append(
                Problem(
                    MODEL,
                    key,
                    cause,
                    "Give an address to download it from (or put the file in the store), "
                    "or skip it.",
                    OTHER_URL,
                    key,
                )
            )
    return problems


def _with_known_folders(
    ctx: CoreContext,
    project: Project,
    queue: DownloadQueue | None,
    wanted: dict[str, tuple[str | None, str, str, str]],
) -> dict[str, tuple[str | None, str, str, str]]:
    """``wanted`` with each model of unknown folder ("?/name") moved under the folder the user
    picked since: a download of that name this project asked for, or the file in the store.
    Its problem then follows that download ("downloading" is none; a failure has its cause)."""
    out: dict[str, tuple[str | None, str, str, str]] = {}
    for key, (folder, name, status, detail) in wanted.items():
        if not folder and status != "skipped":
            found = _known_folder(ctx, project, queue, name)
            if found:
                key, folder, status, detail = f"{found}/{name}", found, "", ""
        if key not in out or not out[key][0]:
            out[key] = (folder, name, status, detail)
    return out


def _known_folder(
    ctx: CoreContext, project: Project, queue: DownloadQueue | None, name: str
) -> str | None:
    from comfymanager.core.models.folders import FOLDER_KEYS
    from comfymanager.core.models.search_paths import store_has

    if queue is not None:
        asked = [
            i
            for i in queue.items()
            if i.request.name == name and i.request.folder and project.id in i.requesters
        ]
        if asked:
            return asked[-1].request.folder
    return next((f for f in FOLDER_KEYS if store_has(ctx.store, f, name)), None)


def _crash_problems(ctx: CoreContext, project: Project, status: Status | None) -> list[Problem]:
    if status is None:
        from comfymanager.core.run import runs

        status = runs.status(ctx, project, probe_http=False)
    if status.state != "crashed":
        return []
    error = _last_error(status.last_lines)
    cause = status.message.rstrip(".") + (f": {error}" if error else "")
    return [
        Problem(
            CRASHED,
            "last run",
            cause,
            "Read the log for the cause, fix it, then start the project again.",
            VIEW_LOG,
        )
    ]


def _node_cause(pack: str | None, error: str) -> str:
    from comfymanager.core.verify.result import NOT_INSTALLED

    if pack and error == NOT_INSTALLED:
        return f"its pack {pack} is not installed"
    if pack and error:
        return f"its pack {pack} failed to load: {_last_line(error)}"
    if pack:
        return f"{pack} is installed but does not provide it"
    return "no installed pack provides it"


def _once(error: str) -> str:
    """An install error without its "(last output: X)" tail when X is already in it."""
    head, sep, tail = error.rpartition(" (last output: ")
    if sep and tail.endswith(")") and tail[:-1].strip() in head:
        return head
    return error


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else text.strip()


def _last_error(lines: Iterable[str]) -> str:
    """The most telling line of a crashed run's output: the last error-looking one."""
    own = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("[comfymanager]")]
    errors = [ln for ln in own if _ERROR_LINE.search(ln)]
    return (errors or own or [""])[-1][:300]
