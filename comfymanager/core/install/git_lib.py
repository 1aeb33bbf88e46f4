"""The git operations ``sources`` needs, through pygit2 (libgit2) when no working git exists.

Same contract as the command-line path: ``ls_remote`` returns the lines ``git ls-remote
--symref`` would print, ``clone`` reports "Receiving objects" progress and honours the cancel
token, ``fetch`` takes tags and branches, ``resolve`` accepts a tag, a remote branch or a
(short) commit, ``checkout`` detaches HEAD at a commit with a forced checkout. Errors become
``ExternalToolError`` naming what failed; nothing here prints or prompts.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from comfymanager.core.errors import Cancelled, ExternalToolError, NotFound
from comfymanager.core.progress import CancelToken

_REFSPECS = ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]


def _pygit2() -> Any:
    try:
        import pygit2
    except ImportError as exc:  # pragma: no cover - a dependency; only a broken install lacks it
        raise NotFound(
            "No working git was found, and pygit2 (the built-in git) cannot be loaded.",
            "Install git (https://git-scm.com), or reinstall comfymanager.",
        ) from exc
    return pygit2


def libgit2_version() -> str:
    """The libgit2 version pygit2 carries (raises NotFound when pygit2 cannot be loaded)."""
    return str(_pygit2().LIBGIT2_VERSION)


@contextlib.contextmanager
def _errors(what: str) -> Iterator[None]:
    pygit2 = _pygit2()
    try:
        yield
    except (pygit2.GitError, KeyError, ValueError, OSError) as exc:
        raise ExternalToolError(
            f"{what} failed: {exc}",
            "Check the address and the network; see the log for details.",
            details=str(exc),
        ) from exc


def _callbacks(cancel: CancelToken | None, on_progress: Callable[[int, int], None] | None) -> Any:
    pygit2 = _pygit2()

    class Callbacks(pygit2.RemoteCallbacks):  # type: ignore[misc, name-defined]
        def transfer_progress(self, stats: Any) -> None:
            if cancel is not None and cancel.cancelled:
                raise Cancelled()  # libgit2 aborts the transfer and pygit2 re-raises this
            if on_progress is not None:
                on_progress(int(stats.received_objects), int(stats.total_objects))

    return Callbacks()


def _open(repo: Path) -> Any:
    pygit2 = _pygit2()
    flags = pygit2.enums.RepositoryOpenFlag.NO_SEARCH
    r = pygit2.Repository(str(repo), flags)
    if sys.platform == "win32":
        try:
            on = r.config.get_bool("core.longpaths")
        except (KeyError, pygit2.GitError):
            on = False
        if not on:
            r.config["core.longpaths"] = True
    return r


def ls_remote(source: str, cancel: CancelToken | None = None) -> list[str]:
    """``git ls-remote --symref SOURCE`` output lines, read without a local clone."""
    pygit2 = _pygit2()
    with (
        tempfile.TemporaryDirectory(prefix="cm-lsremote-") as tmp,
        _errors(f"Listing versions of {source}"),
    ):
        repo = pygit2.init_repository(tmp, bare=True)
        remote = repo.remotes.create_anonymous(source)
        callbacks = _callbacks(cancel, None)
        if hasattr(remote, "list_heads"):
            heads = [(h.name, str(h.oid), h.symref_target) for h in remote.list_heads(callbacks)]
        else:  # pygit2 < 1.18
            heads = [
                (h["name"], str(h["oid"]), h.get("symref_target"))
                for h in remote.ls_remotes(callbacks)
            ]
    lines: list[str] = []
    for name, oid, symref in heads:
        if name == "HEAD" and symref:
            lines.append(f"ref: {symref}\tHEAD")
        lines.append(f"{oid}\t{name}")
    return lines


def clone(
    source: str,
    dest: Path,
    *,
    cancel: CancelToken | None,
    on_progress: Callable[[int, int], None] | None = None,
) -> None:
    pygit2 = _pygit2()
    with _errors(f"Cloning {source}"):
        repo = pygit2.clone_repository(source, str(dest), callbacks=_callbacks(cancel, on_progress))
        if sys.platform == "win32":
            repo.config["core.longpaths"] = True


def fetch(repo: Path, *, cancel: CancelToken | None, commit: str = "") -> None:
    """Fetch branches and tags from origin; with ``commit``, also try that object directly."""
    with _errors(f"Fetching into {repo}"):
        r = _open(repo)
        r.remotes["origin"].fetch(_REFSPECS, callbacks=_callbacks(cancel, None))
    if commit:
        pygit2 = _pygit2()
        with contextlib.suppress(pygit2.GitError):  # servers may refuse unadvertised objects
            _open(repo).remotes["origin"].fetch([commit], callbacks=_callbacks(cancel, None))


def head(repo: Path) -> str | None:
    pygit2 = _pygit2()
    try:
        return str(_open(repo).head.target)
    except (pygit2.GitError, KeyError, ValueError, OSError):
        return None


def origin_url(repo: Path) -> str | None:
    pygit2 = _pygit2()
    try:
        url = _open(repo).remotes["origin"].url
    except (pygit2.GitError, KeyError, ValueError, OSError):
        return None
    return str(url) if url else None


def resolve(repo: Path, ref: str) -> str | None:
    """The commit ``ref`` names (tag, remote branch, local ref, or a commit); None if none."""
    pygit2 = _pygit2()
    r = _open(repo)
    for candidate in (f"refs/tags/{ref}", f"refs/remotes/origin/{ref}", ref):
        try:
            obj = r.revparse_single(candidate)
            return str(obj.peel(pygit2.Commit).id)
        except (pygit2.GitError, KeyError, ValueError, pygit2.InvalidSpecError):
            continue
    return None


def checkout(repo: Path, commit: str) -> None:
    pygit2 = _pygit2()
    with _errors(f"Checking out {commit}"):
        r = _open(repo)
        target = r.get(commit)
        if target is None:
            raise KeyError(commit)
        target = target.peel(pygit2.Commit)
        r.checkout_tree(target, strategy=pygit2.enums.CheckoutStrategy.FORCE)
        r.set_head(target.id)
