"""git: list ComfyUI versions, clone or update a checkout at a ref, clone node packs.

Every source is a git URL or a local path (tests use local repositories). Clones go to a
temporary sibling folder and are renamed into place, so an interrupted clone never looks like a
finished one; a retry starts the clone again or, when the checkout is valid, only fetches.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from comfymanager.core import fileops, process
from comfymanager.core.errors import ExternalToolError, InvalidInput, NotFound
from comfymanager.core.killpoint import kill_point
from comfymanager.core.progress import CancelToken, Progress, Reporter
from comfymanager.core.projects import remove_tree

log = logging.getLogger(__name__)

GIT_HINT = "Install git (https://git-scm.com) and make sure it is on PATH."
_SEMVER_TAG = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")
_HEX = re.compile(r"^[0-9a-fA-F]{7,40}$")
_PROGRESS = re.compile(
    r"(Receiving objects|Resolving deltas|Updating files):\s+(\d+)% \((\d+)/(\d+)\)"
)


@dataclass(frozen=True)
class RemoteRefs:
    tags: dict[str, str]  # name -> commit
    branches: dict[str, str]
    head_branch: str

    def releases(self) -> list[str]:
        """Semver release tags, newest first."""

        def key(tag: str) -> tuple[int, ...]:
            m = _SEMVER_TAG.match(tag)
            assert m
            return tuple(int(x) for x in m.groups())

        return sorted((t for t in self.tags if _SEMVER_TAG.match(t)), key=key, reverse=True)

    def latest_release(self) -> str | None:
        rel = self.releases()
        return rel[0] if rel else None


def git_env() -> dict[str, str]:
    return process.clean_env({"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "LC_ALL": "C"})


def _git(
    args: list[str],
    *,
    cwd: Path | None = None,
    report: Reporter | None = None,
    cancel: CancelToken | None = None,
    what: str = "git",
    on_line: Callable[[str], None] | None = None,
) -> process.ProcessOutcome:
    git = process.resolve_executable("git", GIT_HINT)

    def sink(line: str) -> None:
        if report:
            report.log(line)
        if on_line:
            on_line(line)

    outcome = process.run_tool([git, *args], cwd=cwd, on_line=sink, cancel=cancel, env=git_env())
    return process.check(outcome, what)


def validate_source(source: str) -> str:
    s = source.strip()
    if not s:
        raise InvalidInput("The ComfyUI source is empty.", "Give a git URL or a local folder.")
    if s.startswith("-"):
        raise InvalidInput(f"{s!r} is not a git URL or folder.")
    if re.match(r"^(https?|ssh|git|file)://", s) or re.match(r"^[\w.-]+@[\w.-]+:", s):
        return s
    p = Path(s).expanduser()
    if not p.exists():
        raise NotFound(
            f"The source folder {p} does not exist.",
            "Give a git URL (https://...) or an existing local repository.",
        )
    return str(p.resolve())


def list_remote(source: str, cancel: CancelToken | None = None) -> RemoteRefs:
    """Tags and branches of ``source`` via ``git ls-remote`` (no clone needed)."""
    src = validate_source(source)
    lines: list[str] = []
    _git(
        ["ls-remote", "--symref", src, "HEAD", "refs/tags/*", "refs/heads/*"],
        cancel=cancel,
        what=f"Listing versions of {src}",
        on_line=lines.append,
    )
    tags: dict[str, str] = {}
    branches: dict[str, str] = {}
    head = ""
    for line in lines:
        if line.startswith("ref: ") and line.endswith("\tHEAD"):
            head = line[5:].split("\t")[0].removeprefix("refs/heads/")
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            continue
        sha, ref = parts
        if ref.startswith("refs/tags/"):
            name = ref.removeprefix("refs/tags/")
            if name.endswith("^{}"):
                tags[name[:-3]] = sha  # peeled: the commit a tag points at
            else:
                tags.setdefault(name, sha)
        elif ref.startswith("refs/heads/"):
            branches[ref.removeprefix("refs/heads/")] = sha
    return RemoteRefs(tags, branches, head)


def head_commit(repo: Path) -> str | None:
    if not (repo / ".git").exists():
        return None
    try:
        out: list[str] = []
        _git(["rev-parse", "HEAD"], cwd=repo, on_line=out.append)
        return out[-1].strip() if out else None
    except ExternalToolError:
        return None


def _progress_line(report: Reporter, stage: str) -> Callable[[str], None]:
    def on_line(line: str) -> None:
        m = _PROGRESS.search(line)
        if m:
            report.progress(
                Progress(
                    stage=stage,
                    done=int(m.group(3)),
                    total=int(m.group(4)),
                    unit="objects",
                    message=f"{stage}: {m.group(1).lower()}",
                )
            )

    return on_line


def _resolve_ref(repo: Path, ref: str) -> str:
    """The commit ``ref`` names in ``repo``: a tag, a remote branch, or a (short) commit."""
    for candidate in (
        f"refs/tags/{ref}^{{commit}}",
        f"refs/remotes/origin/{ref}^{{commit}}",
        f"{ref}^{{commit}}",
    ):
        out: list[str] = []
        try:
            _git(["rev-parse", "--verify", "--quiet", candidate], cwd=repo, on_line=out.append)
        except ExternalToolError:
            continue
        if out:
            return out[-1].strip()
    raise NotFound(
        f"The version {ref!r} does not exist in this repository.",
        "Pick a tag, branch or commit that the source has.",
    )


def checkout(
    source: str, ref: str, dest: Path, *, stage: str, report: Reporter, cancel: CancelToken
) -> str:
    """Make ``dest`` a checkout of ``source`` at ``ref`` (tag, branch, commit); return the commit.

    Idempotent: a valid existing checkout is fetched only when ``ref`` is missing from it.
    """
    src = validate_source(source)
    if head_commit(dest) is None:
        tmp = dest.with_name(dest.name + ".partial")
        for leftover in (tmp, dest):  # an interrupted clone, or a folder without a valid .git
            if leftover.exists():
                remove_tree(leftover)
        report.stage(stage, f"Cloning {src}")
        _git(
            ["clone", "--progress", "--no-checkout", src, str(tmp)],
            report=report,
            cancel=cancel,
            what=f"Cloning {src}",
            on_line=_progress_line(report, stage),
        )
        kill_point("clone-before-rename")
        fileops.rename(tmp, dest)  # retried while an indexer or antivirus holds the new clone
    cancel.check()
    try:
        commit = _resolve_ref(dest, ref)
    except NotFound:
        report.log(f"Fetching {src} for {ref}")
        _git(
            ["fetch", "--tags", "--force", "origin"],
            cwd=dest,
            report=report,
            cancel=cancel,
            what=f"Fetching {src}",
        )
        if _HEX.match(ref):
            with contextlib.suppress(ExternalToolError):
                _git(["fetch", "origin", ref], cwd=dest, report=report, cancel=cancel)
        commit = _resolve_ref(dest, ref)
    _git(
        ["-c", "advice.detachedHead=false", "checkout", "--force", commit],
        cwd=dest,
        report=report,
        cancel=cancel,
        what=f"Checking out {ref}",
    )
    return commit
