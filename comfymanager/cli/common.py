"""What the CLI commands share: a stderr progress printer, JSON output and error printing.

Everything printed here goes through ``log.redact`` first: a URL's password, a signed link's
query, a token never reaches the terminal (or a pipe, or a CI log).
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from types import TracebackType
from typing import Any

from comfymanager.core.context import CoreContext
from comfymanager.core.errors import ComfyManagerError
from comfymanager.core.log import RedactingFormatter, RedactionFilter, redact
from comfymanager.core.progress import Progress, Reporter, format_bytes, format_duration
from comfymanager.core.text import visible


class StderrProgress:
    """Prints stage changes and, at most twice a second, a progress line to stderr."""

    def __init__(self, quiet_log: bool = True) -> None:
        self._last_stage = ""
        self._last_time = 0.0
        self._quiet_log = quiet_log

    def progress(self, p: Progress) -> None:
        now = time.monotonic()
        label = f"{p.key}: {p.stage}" if p.key else p.stage
        if label != self._last_stage:
            self._last_stage = label
            print(printable(f"== {redact(p.message or label)}"), file=sys.stderr, flush=True)
            self._last_time = now
            return
        if now - self._last_time < 0.5 or p.total is None:
            return
        self._last_time = now
        if p.unit == "bytes":
            line = f"   {format_bytes(p.done)} / {format_bytes(p.total)}"
            if p.speed:
                line += f"  {format_bytes(p.speed)}/s  ETA {format_duration(p.eta)}"
        else:
            line = printable(f"   {p.done}/{p.total} {p.message}")
        print(line, file=sys.stderr, flush=True)

    def log(self, line: str) -> None:
        if not self._quiet_log:
            print(f"   {redact(line)}", file=sys.stderr, flush=True)

    def reporter(self) -> Reporter:
        return Reporter(progress=self.progress, log=self.log)


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=None, default=str), flush=True)


def print_error(exc: ComfyManagerError, wants_json: bool = False) -> None:
    """The cause on an ``error: ...`` line and the remedy on its own ``fix: ...`` line, never
    glued into one sentence (and a JSON object on stdout with ``--json``), secrets masked."""
    fix = redact(exc.fix) if exc.fix else None
    if wants_json:
        print(json.dumps({"error": redact(exc.message), "fix": fix}), flush=True)
    print(f"error: {printable(redact(exc.message))}", file=sys.stderr, flush=True)
    if fix:
        print(f"  fix: {printable(fix)}", file=sys.stderr, flush=True)


def _redacting_excepthook(
    kind: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    sys.stderr.write(redact("".join(traceback.format_exception(kind, exc, tb))))
    sys.stderr.flush()


def guard_cli_output() -> None:
    """Mask secrets in what the CLI prints outside ``print_error``: a warning logged with no
    handler set up (Python's last-resort handler prints it raw) and the traceback of a bug."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(logging.WARNING)
        handler.setFormatter(RedactingFormatter("%(message)s"))
        handler.addFilter(RedactionFilter())
        root.addHandler(handler)
    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = _redacting_excepthook


def printable(text: object) -> str:
    """Outside text (names from a workflow, file names, messages quoting them) for one terminal
    line: control characters, bidi overrides and other invisible characters escaped
    (``\\n``, ``\\x1b``, ``\\u202e``), so a name can neither steer the terminal nor hide."""
    return visible(str(text), "terminal")


# commands whose ``name`` is a new name (a project to create, a file name), not a project's
NEW_NAME_COMMANDS = frozenset({"create", "adopt", "download", "import"})


def resolve_project_args(args: Any, ctx: CoreContext) -> None:
    """Every command that names an existing project takes its display name ("Flux Dev – test
    ✨") or its folder name (``Flux-Dev-test``); the core then gets the folder name (the id),
    so one project has one lock, one record and one set of folders whatever was typed."""
    from comfymanager.core.projects import ProjectStore

    store = ProjectStore(ctx.paths)
    name = getattr(args, "name", None)
    if getattr(args, "command", "") not in NEW_NAME_COMMANDS and isinstance(name, str) and name:
        args.name = store.resolve(name)
    project = getattr(args, "project", None)
    if isinstance(project, str) and project:
        args.project = store.resolve(project)


def setup_streams() -> None:
    """Once at CLI start: text the console's encoding cannot hold (a cp1252 pipe on Windows, a
    C locale) is written as ``\\u....`` escapes instead of raising UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is None:
            continue  # None (pythonw) or a replaced stream
        try:
            reconfigure(errors="backslashreplace")
        except (ValueError, OSError):  # a closed or detached stream
            continue
