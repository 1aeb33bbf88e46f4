"""One running app per data root and user: a second launch hands its files to the first.

The first instance listens on a ``QLocalServer`` whose name comes from the user and the data
root (``server_name(data_root)``), so two data roots run two independent apps. A later launch
connects, sends one line of JSON and exits::

    {"v": 1, "cmd": "activate", "files": ["/abs/path/workflow.json"]}

and the first answers ``{"v": 1, "ok": true}`` and emits ``activated(files)`` (raise the window,
import the files). A socket left behind by a crashed instance is removed when connecting to it
fails. The connect-or-listen step runs under a ``QLockFile`` so that two launches at the same
moment cannot both become the first.

Usage in ``main``::

    instance = SingleInstance()
    if not instance.listen(server_name(paths.root), files=args.files):
        return 0  # the running app took over
    instance.activated.connect(window.on_activated)
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QByteArray, QDir, QLockFile, QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 1024 * 1024
CONNECT_TIMEOUT_MS = 1000
REPLY_TIMEOUT_MS = 5000
LOCK_TIMEOUT_MS = 10000


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers): fall back to the uid/home
        return str(getattr(os, "getuid", lambda: Path.home().name)())


# A Unix socket path must fit sockaddr_un.sun_path: 104 bytes on macOS (108 on Linux), with
# the terminating NUL. macOS's per-user temp folder alone is ~50 characters.
SOCKET_PATH_MAX = 103


def server_name(
    data_root: Path,
    user: str | None = None,
    temp_dir: str | None = None,
    os_name: str | None = None,
) -> str:
    """The local-socket name for ``data_root`` and ``user``: safe characters, and short enough
    that Qt's socket file (``temp_dir``/name on macOS and Linux) fits in ``sun_path``; when the
    readable name does not fit, a hashed one does (under ``/tmp`` if even that is too long)."""
    who = re.sub(r"[^A-Za-z0-9_.-]", "_", user if user is not None else _user())[:32]
    root = os.path.normcase(str(Path(data_root).expanduser().resolve()))
    digest = hashlib.sha256(f"{who}\0{root}".encode()).hexdigest()[:16]
    readable = f"comfymanager-{who}-{digest}"
    if (os_name or sys.platform) == "win32":  # named pipes: no such limit
        return readable
    tmp = (temp_dir if temp_dir is not None else QDir.tempPath()).rstrip("/")
    for name in (readable, f"cm-{digest}"):
        if len(f"{tmp}/{name}".encode()) <= SOCKET_PATH_MAX:
            return name
    return f"/tmp/cm-{digest}"  # an absolute name: Qt uses it as the socket path


def encode_message(files: Sequence[str | Path]) -> bytes:
    paths = [str(Path(f).expanduser().resolve()) for f in files]
    message = {"v": PROTOCOL_VERSION, "cmd": "activate", "files": paths}
    return json.dumps(message, ensure_ascii=True).encode("ascii") + b"\n"


def decode_message(line: bytes) -> list[str]:
    """The file list of an ``activate`` message; ValueError names what is wrong with it."""
    try:
        message = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from exc
    if not isinstance(message, dict):
        raise ValueError("not a JSON object")
    if message.get("v") != PROTOCOL_VERSION:
        raise ValueError(f"unsupported protocol version {message.get('v')!r}")
    if message.get("cmd") != "activate":
        raise ValueError(f"unknown command {message.get('cmd')!r}")
    files = message.get("files", [])
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise ValueError("'files' must be a list of paths")
    return files


class SingleInstance(QObject):
    """Owns the local server of the first instance.

    Signals:
        activated(list[str]): another launch asked us to come forward; the absolute paths it
            was given (possibly empty). Emitted on the GUI thread.
    """

    activated = Signal(list)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._server = QLocalServer(self)
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._server.newConnection.connect(self._on_server_new_connection)
        self._buffers: dict[QLocalSocket, QByteArray] = {}
        self.name = ""

    # The second launch and the first share this one entry point.
    def listen(self, name: str, files: Sequence[str | Path] = ()) -> bool:
        """True: we are the first instance and now listen on ``name``. False: a running
        instance accepted ``files`` and this process should exit."""
        self.name = name
        lock = QLockFile(QDir(QDir.tempPath()).filePath(f"{name}.lock"))
        lock.setStaleLockTime(30000)
        if not lock.tryLock(LOCK_TIMEOUT_MS):
            log.warning("Could not take the start-up lock %s; continuing without it", name)
        try:
            if self._hand_over(name, files) is not None:
                return False  # someone listens: never two apps on one data root
            QLocalServer.removeServer(name)  # nobody answered: a stale socket, if any
            if not self._server.listen(name):
                log.warning(
                    "Cannot listen on %s (%s); running without single-instance hand-over",
                    name,
                    self._server.errorString(),
                )
                return True
            log.info("Listening for other launches on %s", self._server.fullServerName())
            return True
        finally:
            if lock.isLocked():
                lock.unlock()

    def close(self) -> None:
        self._server.close()

    @property
    def is_listening(self) -> bool:
        return self._server.isListening()

    def _hand_over(self, name: str, files: Sequence[str | Path]) -> bool | None:
        """None: nobody listens. True: the running instance took the files. False: it is
        there but did not answer properly (treated as running: never two apps on one root)."""
        socket = QLocalSocket()
        socket.connectToServer(name)
        if not socket.waitForConnected(CONNECT_TIMEOUT_MS):
            return None
        try:
            socket.write(encode_message(files))
            socket.flush()
            while socket.bytesToWrite() > 0:
                if not socket.waitForBytesWritten(REPLY_TIMEOUT_MS):
                    log.warning("The running instance did not read our message")
                    return False
            reply = QByteArray()
            while b"\n" not in bytes(reply.data()):
                if not socket.waitForReadyRead(REPLY_TIMEOUT_MS):
                    log.warning("The running instance did not answer on %s", name)
                    return False
                reply.append(socket.readAll())
            answer = json.loads(bytes(reply.data()).split(b"\n", 1)[0])
            if not answer.get("ok"):
                log.warning("The running instance refused: %s", answer.get("error"))
                return False
            log.info("Handed %d file(s) over to the running instance", len(files))
            return True
        except (ValueError, AttributeError) as exc:
            log.warning("Unreadable answer from the running instance: %s", exc)
            return False
        finally:
            socket.disconnectFromServer()

    def _on_server_new_connection(self) -> None:
        while self._server.hasPendingConnections():
            socket = self._server.nextPendingConnection()
            if socket is None:
                break
            self._buffers[socket] = QByteArray()
            socket.readyRead.connect(lambda s=socket: self._on_socket_ready_read(s))
            socket.disconnected.connect(lambda s=socket: self._on_socket_disconnected(s))
            if socket.bytesAvailable():
                self._on_socket_ready_read(socket)

    def _on_socket_ready_read(self, socket: QLocalSocket) -> None:
        buffer = self._buffers.get(socket)
        if buffer is None:
            return
        buffer.append(socket.readAll())
        data = bytes(buffer.data())
        if b"\n" not in data:
            if len(data) > MAX_MESSAGE_BYTES:
                self._reply(socket, {"ok": False, "error": "message too long"})
            return
        line = data.split(b"\n", 1)[0]
        del self._buffers[socket]
        try:
            files = decode_message(line)
        except ValueError as exc:
            log.warning("Ignored a message from another launch: %s", exc)
            self._reply(socket, {"ok": False, "error": str(exc)})
            return
        self._reply(socket, {"ok": True})
        log.info("Another launch asked to activate (%d file(s))", len(files))
        self.activated.emit(files)

    def _reply(self, socket: QLocalSocket, body: dict[str, object]) -> None:
        self._buffers.pop(socket, None)
        socket.write(json.dumps({"v": PROTOCOL_VERSION, **body}).encode("ascii") + b"\n")
        socket.flush()
        socket.disconnectFromServer()

    def _on_socket_disconnected(self, socket: QLocalSocket) -> None:
        self._buffers.pop(socket, None)
        socket.deleteLater()
