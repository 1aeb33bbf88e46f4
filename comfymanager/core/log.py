"""Logging, set up once: a rotating file, an in-memory ring buffer, Qt's messages, redaction.

``setup_logging(log_dir)`` attaches to the root logger:

- a rotating file ``<log_dir>/comfymanager.log`` (5 MB x 5 backups),
- a ``RingBuffer`` of the last 5000 lines that the log pane and the crash dialog read
  (``lines()``) or follow (``subscribe(callback)``; the callback runs on the logging thread),
- optionally a console handler on stderr,
- Qt's own messages (``qDebug``/``qWarning``...) routed into the ``qt`` logger.

Every handler carries the same ``RedactionFilter``: secret values registered with
``register_secret`` and text that looks like a token (``hf_...``, ``Bearer ...``,
``token=``/``sig=``/``X-Amz-*`` query values, URL user-info, the values of the token environment
variables in ``SECRET_ENV_VARS``) are masked before anything is written anywhere. Calling
``setup_logging`` again reconfigures the existing handlers instead of adding new ones.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QMessageLogContext, QtMsgType, qInstallMessageHandler

from comfymanager.core import redaction

# the redaction lives in a Qt-free module (errors use it); these names stay importable from here
MASK = redaction.MASK
MIN_SECRET_LENGTH = redaction.MIN_SECRET_LENGTH
SECRET_ENV_VARS = redaction.SECRET_ENV_VARS
redact = redaction.redact
register_secret = redaction.register_secret
unregister_secret = redaction.unregister_secret

log = logging.getLogger(__name__)

LOG_FILE_NAME = "comfymanager.log"
MAX_BYTES = 5 * 1024 * 1024
BACKUP_COUNT = 5
RING_CAPACITY = 5000
LINE_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class RedactionFilter(logging.Filter):
    """Rewrites a record's message and traceback text through ``redact`` before it is emitted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_comfymanager_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what we can, never drop the record
            message = f"{record.msg!r} % {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        record._comfymanager_redacted = True
        return True


class RedactingFormatter(logging.Formatter):
    """Belt and braces: the final formatted line goes through ``redact`` too."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


@dataclass(frozen=True)
class LogLine:
    """One formatted line in the ring buffer."""

    created: float
    level: int
    logger: str
    text: str


Subscriber = Callable[[LogLine], None]


class RingBuffer(logging.Handler):
    """The last ``capacity`` formatted log lines, readable and followable from any thread.

    Subscribers are called on the thread that logged; a Qt widget must hop to the GUI thread
    (emit a signal) rather than touch widgets from the callback.
    """

    def __init__(self, capacity: int = RING_CAPACITY) -> None:
        super().__init__()
        self._records: deque[LogLine] = deque(maxlen=capacity)
        self._subscribers: list[Subscriber] = []
        self._sub_lock = threading.Lock()
        self._in_callback = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = LogLine(record.created, record.levelno, record.name, self.format(record))
        except Exception:
            self.handleError(record)
            return
        self._records.append(line)  # deque.append is atomic
        if getattr(self._in_callback, "active", False):
            return  # a subscriber logged: keep the line, do not recurse into subscribers
        with self._sub_lock:
            subscribers = list(self._subscribers)
        self._in_callback.active = True
        try:
            for callback in subscribers:
                try:
                    callback(line)
                except Exception:  # a broken subscriber must not break logging
                    continue
        finally:
            self._in_callback.active = False

    def records(self) -> list[LogLine]:
        return list(self._records)

    def lines(self, last: int | None = None) -> list[str]:
        """The buffered lines, oldest first (only the ``last`` N when given)."""
        texts = [r.text for r in list(self._records)]
        return texts[-last:] if last else texts

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(LogLine)`` for every new line; returns the function that unsubscribes."""
        with self._sub_lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._sub_lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def clear(self) -> None:
        self._records.clear()


@dataclass(frozen=True)
class LogSetup:
    """What ``setup_logging`` installed. ``log_file`` is the current (not rotated) file."""

    log_dir: Path
    log_file: Path
    ring: RingBuffer
    file_handler: logging.handlers.RotatingFileHandler
    level: int
    handlers: tuple[logging.Handler, ...] = field(default=())


_QT_LEVELS = {
    QtMsgType.QtDebugMsg: logging.DEBUG,
    QtMsgType.QtInfoMsg: logging.INFO,
    QtMsgType.QtWarningMsg: logging.WARNING,
    QtMsgType.QtCriticalMsg: logging.ERROR,
    QtMsgType.QtFatalMsg: logging.CRITICAL,
}

_state_lock = threading.Lock()
_current: LogSetup | None = None
_console: logging.Handler | None = None
_previous_qt_handler: Any = None
_qt_installed = False


def _qt_message(mode: QtMsgType, context: QMessageLogContext, message: str) -> None:
    category = getattr(context, "category", None) or "default"
    name = "qt" if category == "default" else f"qt.{category}"
    logging.getLogger(name).log(_QT_LEVELS.get(mode, logging.WARNING), "%s", message)


def _tag(handler: logging.Handler, level: int) -> logging.Handler:
    handler.setLevel(level)
    handler.setFormatter(RedactingFormatter(LINE_FORMAT))
    handler.addFilter(RedactionFilter())
    handler._comfymanager = True  # type: ignore[attr-defined]
    return handler


def setup_logging(
    log_dir: Path,
    *,
    level: int = logging.INFO,
    console: bool = False,
    qt_messages: bool = True,
) -> LogSetup:
    """Attach the app's handlers to the root logger; safe to call again (reconfigures)."""
    global _current, _console, _previous_qt_handler, _qt_installed
    log_dir = Path(log_dir)
    log_file = log_dir / LOG_FILE_NAME
    root = logging.getLogger()
    with _state_lock:
        if _current is not None and _current.log_file != log_file:
            _remove_handlers(root)
        if _current is None or _current.log_file != log_file:
            log_dir.mkdir(parents=True, exist_ok=True)
            file_handler = logging.handlers.RotatingFileHandler(
                log_file, maxBytes=MAX_BYTES, backupCount=BACKUP_COUNT, encoding="utf-8"
            )
            from comfymanager.core import fileops  # retries Windows sharing violations

            file_handler.rotator = fileops.replace
            ring = RingBuffer()
            for handler in (file_handler, ring):
                root.addHandler(_tag(handler, level))
        else:
            file_handler, ring = _current.file_handler, _current.ring
            for handler in (file_handler, ring):
                handler.setLevel(level)
        if console and _console is None:
            _console = _tag(logging.StreamHandler(sys.stderr), level)
            root.addHandler(_console)
        elif not console and _console is not None:
            root.removeHandler(_console)
            _console = None
        elif _console is not None:
            _console.setLevel(level)
        if root.level == logging.NOTSET or root.level > level:
            root.setLevel(level)
        if qt_messages and not _qt_installed:
            _previous_qt_handler = qInstallMessageHandler(_qt_message)
            _qt_installed = True
        handlers: tuple[logging.Handler, ...] = (file_handler, ring)
        if _console is not None:
            handlers += (_console,)
        _current = LogSetup(log_dir, log_file, ring, file_handler, level, handlers)
        return _current


def current_setup() -> LogSetup | None:
    """The active setup, or None before ``setup_logging`` ran."""
    return _current


def _remove_handlers(root: logging.Logger) -> None:
    global _console
    for handler in list(root.handlers):
        if getattr(handler, "_comfymanager", False):
            root.removeHandler(handler)
            handler.close()
    _console = None


def shutdown_logging() -> None:
    """Detach and close everything ``setup_logging`` installed (tests, and the end of ``main``)."""
    global _current, _previous_qt_handler, _qt_installed
    with _state_lock:
        _remove_handlers(logging.getLogger())
        if _qt_installed:
            qInstallMessageHandler(_previous_qt_handler)
            _previous_qt_handler = None
            _qt_installed = False
        _current = None
