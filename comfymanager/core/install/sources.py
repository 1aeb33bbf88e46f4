"""git: list ComfyUI versions, clone or update a checkout at a ref, clone node packs.

Every source is a git URL or a local path (tests use local repositories). Clones go to a
temporary sibling folder and are renamed into place, so an interrupted clone never looks like a
finished one; a retry starts the clone again or, when the checkout is valid, only fetches.

No system git is required. ``find_git`` looks for a git that *works* (``git --version``
answers; the macOS ``/usr/bin/git`` stub without the developer tools fails with an xcrun error)
on PATH and in the usual install folders an app started from Finder or the Start menu does not
see. Without one, every operation runs through pygit2 (libgit2), which ships wheels for every
OS; ``backend()`` says which is in use. ``COMFYMANAGER_GIT`` forces a git binary, or ``pygit2``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from comfymanager.core import fileops, process
from comfymanager.core.errors import ExternalToolError, InvalidInput, NotFound
from comfymanager.core.install import git_lib
from comfymanager.core.killpoint import kill_point
from comfymanager.core.log import redact
from comfymanager.core.progress import CancelToken, Progress, Reporter
from comfymanager.core.projects import remove_tree

log = logging.getLogger(__name__)

GIT_HINT = "Install git (https://git-scm.com) and make sure it is on PATH."
ENV_GIT = "COMFYMANAGER_GIT"
PYGIT2 = "pygit2"
_VERSION_TIMEOUT = 10.0
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


def git_candidates(
    platform: str | None = None,
    environ: Mapping[str, str] | None = None,
    which: Callable[[str], str | None] = shutil.which,
) -> list[str]:
    """Where a git may be, best first: PATH, then the folders a GUI app's PATH lacks."""
    plat = platform or sys.platform
    env = os.environ if environ is None else environ
    found: list[str] = []
    on_path = which("git")
    if on_path:
        found.append(on_path)
    if plat == "darwin":  # Finder-started apps do not see Homebrew or MacPorts
        found += ["/opt/homebrew/bin/git", "/usr/local/bin/git", "/opt/local/bin/git"]
    elif plat == "win32":
        for var, tail in (
            ("ProgramFiles", r"Git\cmd\git.exe"),
            ("ProgramW6432", r"Git\cmd\git.exe"),
            ("ProgramFiles(x86)", r"Git\cmd\git.exe"),
            ("LOCALAPPDATA", r"Programs\Git\cmd\git.exe"),
            ("USERPROFILE", r"scoop\shims\git.exe"),
        ):
            base = env.get(var)
            if base:
                found.append(base.rstrip("\\/") + "\\" + tail)
    out: list[str] = []
    for path in found:
        if path not in out:
            out.append(path)
    return out


def git_works(path: str, timeout: float = _VERSION_TIMEOUT) -> bool:
    """True when ``path --version`` answers ``git version ...`` in time (the macOS stub does
    not: it fails with an xcrun error, or hangs on the "install developer tools" dialog)."""
    if not Path(path).is_file():
        return False
    kwargs: dict[str, Any] = {}
    if sys.platform == "win32":
        kwargs["creationflags"] = getattr(subprocess, "CREATE_NO_WINDOW", 0)
    try:
        done = subprocess.run(
            [path, "--version"],
            capture_output=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            env=git_env(),
            check=False,
            **kwargs,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.info("%s does not run: %s", path, exc)
        return False
    text = done.stdout.decode("utf-8", "replace").strip()
    if done.returncode != 0 or not text.startswith("git version"):
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        log.info("%s is not a working git: %s", path, err[-1] if err else text or done.returncode)
        return False
    return True


_found: dict[tuple[str, str], str] = {}
_found_lock = threading.Lock()


def find_git(environ: Mapping[str, str] | None = None) -> str:
    """The working git binary to use, or ``PYGIT2`` when there is none. Remembered per PATH."""
    env = os.environ if environ is None else environ
    forced = env.get(ENV_GIT, "").strip()
    if forced:
        if forced.lower() == PYGIT2:
            return PYGIT2
        return process.resolve_executable(forced, f"{ENV_GIT} names a git that does not exist.")
    key = (env.get("PATH", ""), sys.platform)
    with _found_lock:
        if key in _found:
            return _found[key]
        choice = next((c for c in git_candidates(environ=env) if git_works(c)), PYGIT2)
        if choice == PYGIT2:
            log.info("No working git found; using pygit2 (libgit2 %s)", _pygit2_version())
        _found[key] = choice
        return choice


def forget_git() -> None:
    """Look for git again next time (after the user installed one)."""
    with _found_lock:
        _found.clear()


def backend() -> str:
    """``git`` or ``pygit2``: what the next operation will use."""
    return PYGIT2 if find_git() == PYGIT2 else "git"


def _pygit2_version() -> str:
    try:
        import pygit2

        return str(pygit2.LIBGIT2_VERSION)
    except ImportError:
        return "missing"


def _git(
    args: list[str],
    *,
    cwd: Path | None = None,
    report: Reporter | None = None,
    cancel: CancelToken | None = None,
    what: str = "git",
    on_line: Callable[[str], None] | None = None,
) -> process.ProcessOutcome:
    git = find_git()
    if git == PYGIT2:  # callers branch on the backend before getting here
        raise NotFound("No working git was found.", GIT_HINT)
    if sys.platform == "win32":  # deep custom_nodes/site-packages paths exceed 260 characters
        args = ["-c", "core.longpaths=true", *args]

    def sink(line: str) -> None:
        if report:
            report.log(line)
        if on_line:
            on_line(line)

    outcome = process.run_tool([git, *args], cwd=cwd, on_line=sink, cancel=cancel, env=git_env())
    try:
        return process.check(outcome, what)
    except ExternalToolError as exc:  # a git URL may carry a password or token
        raise ExternalToolError(
            redact(exc.message), redact(exc.fix) if exc.fix else None, redact(exc.details)
        ) from None


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
    if find_git() == PYGIT2:
        lines = git_lib.ls_remote(src, cancel)
    else:
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
    if find_git() == PYGIT2:
        return git_lib.head(repo)
    try:
        out: list[str] = []
        _git(["rev-parse", "HEAD"], cwd=repo, on_line=out.append)
        return out[-1].strip() if out else None
    except ExternalToolError:
        return None


def origin_url(repo: Path) -> str | None:
    """The address ``repo`` was cloned from (its ``origin``), or None."""
    if not (repo / ".git").exists():
        return None
    if find_git() == PYGIT2:
        return git_lib.origin_url(repo)
    out: list[str] = []
    try:
        _git(["config", "--get", "remote.origin.url"], cwd=repo, on_line=out.append)
    except ExternalToolError:
        return None
    return out[-1].strip() if out else None


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


def _object_progress(report: Reporter, stage: str) -> Callable[[int, int], None]:
    last = [-1]

    def on_progress(done: int, total: int) -> None:
        pct = done * 100 // total if total else 0
        if pct != last[0]:  # libgit2 calls per object: report each percent once
            last[0] = pct
            report.progress(
                Progress(
                    stage=stage,
                    done=done,
                    total=total or None,
                    unit="objects",
                    message=f"{stage}: receiving objects",
                )
            )

    return on_progress


def _resolve_ref(repo: Path, ref: str) -> str:
    """The commit ``ref`` names in ``repo``: a tag, a remote branch, or a (short) commit."""
    if find_git() == PYGIT2:
        found = git_lib.resolve(repo, ref)
        if found:
            return found
        raise NotFound(
            f"The version {ref!r} does not exist in this repository.",
            "Pick a tag, branch or commit that the source has.",
        )
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
        report.stage(stage, f"Cloning {redact(src)}")
        if find_git() == PYGIT2:
            git_lib.clone(src, tmp, cancel=cancel, on_progress=_object_progress(report, stage))
        else:
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
        report.log(f"Fetching {redact(src)} for {ref}")
        if find_git() == PYGIT2:
            git_lib.fetch(dest, cancel=cancel, commit=ref if _HEX.match(ref) else "")
            commit = _resolve_ref(dest, ref)
            git_lib.checkout(dest, commit)
            return commit
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
    if find_git() == PYGIT2:
        git_lib.checkout(dest, commit)
        return commit
    _git(
        ["-c", "advice.detachedHead=false", "checkout", "--force", commit],
        cwd=dest,
        report=report,
        cancel=cancel,
        what=f"Checking out {ref}",
    )
    return commit
