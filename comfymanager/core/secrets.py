"""Tokens (Hugging Face, CivitAI) in the OS keyring, behind one wrapper.

``Secrets`` says which keyring backend is active. A token in the environment (``HF_TOKEN`` or
``HUGGING_FACE_HUB_TOKEN``, ``CIVITAI_API_TOKEN``) wins over a stored one, as the ecosystem's tools
do (huggingface_hub, civitai's CLI): it is read each time, never written anywhere, and masked like
any other token. ``source(name)`` says where a token comes from ("environment", "keyring",
"session") so Settings can say "from the environment (HF_TOKEN)". When no keyring is
usable (the ``fail`` or ``null`` backends, a locked or missing keychain) tokens live in memory
for this session only: they are never written to a plain-text file. ``redact`` masks every
token this process knows, plus anything that looks like a token, before text reaches a log or a
file.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

import keyring
import keyring.errors

from comfymanager.core.log import redact as log_redact
from comfymanager.core.log import register_secret

log = logging.getLogger(__name__)

SERVICE = "comfymanager"
KNOWN_NAMES = ("huggingface", "civitai")
#: Used ahead of the session and the keyring when set (CI, containers, servers, a user's shell).
ENV_TOKENS: dict[str, tuple[str, ...]] = {
    "huggingface": ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"),
    "civitai": ("CIVITAI_API_TOKEN", "CIVITAI_TOKEN"),
}


ENVIRONMENT = "environment"
KEYRING = "keyring"
SESSION = "session"


@dataclass(frozen=True)
class TokenSource:
    """Where a token comes from: ``kind`` is ENVIRONMENT, KEYRING or SESSION; ``variable`` names
    the environment variable when it is one."""

    kind: str
    variable: str = ""

    @property
    def label(self) -> str:
        """What Settings shows, e.g. "from the environment (HF_TOKEN)"."""
        if self.kind == ENVIRONMENT:
            return f"from the environment ({self.variable})"
        if self.kind == KEYRING:
            return "stored in the system keyring"
        return "kept for this session only"


def _env_lookup(name: str) -> tuple[str, str] | None:
    for var in ENV_TOKENS.get(name, ()):
        value = os.environ.get(var, "").strip()
        if value:
            _remember(value)
            return var, value
    return None


def env_token(name: str) -> str | None:
    """The token for ``name`` from its environment variables (``ENV_TOKENS``), if set."""
    found = _env_lookup(name)
    return found[1] if found else None


def _remember(value: str | None) -> None:
    """Every token value we read or store is masked by the logging setup from then on."""
    register_secret(value)


def redact(text: str) -> str:
    """``text`` with known token values and token-looking strings masked (see ``core.log``)."""
    return log_redact(text)


class Secrets:
    """Get, set and delete tokens by name (``huggingface``, ``civitai``)."""

    def __init__(self, service: str = SERVICE) -> None:
        self.service = service
        self._session: dict[str, str] = {}
        self._lock = threading.Lock()
        self._probed: bool | None = None  # the backend is looked up on first use (slow import)

    @property
    def _usable(self) -> bool:
        if self._probed is None:
            self._probed = self._probe()
            if not self._probed:
                log.info(
                    "no usable keyring (%s): tokens are kept for this session only",
                    self.backend_name(),
                )
        return self._probed

    @staticmethod
    def _probe() -> bool:
        backend = keyring.get_keyring()
        module = type(backend).__module__
        if module.startswith(("keyring.backends.fail", "keyring.backends.null")):
            return False
        try:
            priority = float(getattr(backend, "priority", 1))
        except Exception:  # some backends raise from priority when unavailable
            return False
        return priority > 0

    def backend_name(self) -> str:
        backend = keyring.get_keyring()
        name = getattr(backend, "name", "") or type(backend).__name__
        return str(name)

    def usable(self) -> bool:
        return self._usable

    def describe(self) -> str:
        if self._usable:
            return f"Tokens are stored in the system keyring ({self.backend_name()})."
        return (
            "No system keyring is available: tokens are kept until comfymanager quits "
            "and must be entered again next time."
        )

    def get(self, name: str) -> str | None:
        """The token for ``name``: the environment's first, then this session's, then the
        keyring's (see ``source``)."""
        found = self.lookup(name)
        return found[1] if found else None

    def source(self, name: str) -> TokenSource | None:
        """Where ``get(name)`` takes its token from, or None when there is none."""
        found = self.lookup(name)
        return found[0] if found else None

    def from_environment(self, name: str) -> bool:
        """True when the environment sets this token (Settings shows it read-only)."""
        return _env_lookup(name) is not None

    def lookup(self, name: str) -> tuple[TokenSource, str] | None:
        env = _env_lookup(name)
        if env is not None:
            return TokenSource(ENVIRONMENT, env[0]), env[1]
        with self._lock:
            if name in self._session:
                return TokenSource(SESSION), self._session[name]
        if not self._usable:
            return None
        try:
            value = keyring.get_password(self.service, name)
        except keyring.errors.KeyringError as exc:
            log.warning("reading %s token from the keyring failed: %s", name, type(exc).__name__)
            return None
        _remember(value)
        return (TokenSource(KEYRING), value) if value else None

    def set(self, name: str, value: str) -> None:
        value = value.strip()
        _remember(value)
        if self._usable:
            try:
                keyring.set_password(self.service, name, value)
                with self._lock:
                    self._session.pop(name, None)
                return
            except keyring.errors.KeyringError as exc:
                log.warning(
                    "saving %s token in the keyring failed (%s); keeping it for this session only",
                    name,
                    type(exc).__name__,
                )
        with self._lock:
            self._session[name] = value

    def delete(self, name: str) -> None:
        with self._lock:
            self._session.pop(name, None)
        if not self._usable:
            return
        try:
            keyring.delete_password(self.service, name)
        except keyring.errors.PasswordDeleteError:
            pass
        except keyring.errors.KeyringError as exc:
            log.warning("deleting %s token from the keyring failed: %s", name, type(exc).__name__)
