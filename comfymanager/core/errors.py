"""Typed errors. Every error a user can see names the cause and, where there is one, the fix."""

from __future__ import annotations

import traceback
from dataclasses import dataclass

from comfymanager.core.redaction import redact


class ComfyManagerError(Exception):
    """Base of every expected failure. ``message`` says what went wrong, ``fix`` what to do."""

    def __init__(self, message: str, fix: str | None = None) -> None:
        message = redact(message)  # a URL or a token quoted in an error never reaches the user
        fix = redact(fix) if fix else fix
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message} {self.fix}" if self.fix else self.message


class Cancelled(ComfyManagerError):
    """The user cancelled the operation; partial work was cleaned or kept for resume."""

    def __init__(self, message: str = "Cancelled.") -> None:
        super().__init__(message)


class InvalidInput(ComfyManagerError):
    """A name, path, URL or value given by the user or a file is not acceptable."""


class NotFound(ComfyManagerError):
    """A project, file or remote object does not exist."""


class Conflict(ComfyManagerError):
    """The operation collides with existing state (a name taken, a port busy, a job running)."""


class ExternalToolError(ComfyManagerError):
    """git, uv or another tool failed; ``details`` holds the last lines of its output."""

    def __init__(self, message: str, fix: str | None = None, details: str = "") -> None:
        super().__init__(message, fix)
        self.details = details


class CorruptFile(ComfyManagerError):
    """A persisted file could not be read; it was set aside, never silently overwritten."""


@dataclass(frozen=True)
class ErrorInfo:
    """What a failed job hands to the UI: a one-line title, the full sentence, the fix, details."""

    kind: str
    message: str
    fix: str | None
    details: str

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorInfo:
        if isinstance(exc, ComfyManagerError):
            details = getattr(exc, "details", "") or ""
            return cls(type(exc).__name__, exc.message, exc.fix, details)
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(
            type(exc).__name__,
            f"Unexpected error: {exc}",
            "This is a bug in comfymanager; the details below help to report it.",
            tb,
        )

    def __str__(self) -> str:
        return f"{self.message} {self.fix}" if self.fix else self.message
