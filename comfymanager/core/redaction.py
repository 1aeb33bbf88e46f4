"""Secrets out of every text we show or log: registered values (tokens, passwords), token
environment variables, and token-like strings (URL user-info, secret query values, Bearer
values, Hugging Face / GitHub tokens). Standard library only, so ``errors`` can use it: every
``ComfyManagerError`` is redacted when it is made."""

from __future__ import annotations

import os
import re
import threading

MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words

_SECRET_PARAM = (
    r"(?:[\w.-]*token|[\w.-]*_key|api-?key|apikey|key|auth|authorization|password|passwd|"
    r"pwd|secret|client_secret|sig|signature|credential|policy|key-pair-id|x-amz-[\w-]+|"
    r"x-goog-[\w-]+)"
)
_SECRET_NAME = r"(?:hf_token|token|access_token|api_key|apikey|password|secret)"
_TOKEN_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bhf_[A-Za-z0-9]{20,}"), "hf_" + MASK),
    (re.compile(r"\b(gh[pousr]_|github_pat_)[A-Za-z0-9_]{20,}"), r"\1" + MASK),
    (re.compile(r"\b(Bearer\s+)[A-Za-z0-9._~+/=-]{6,}", re.IGNORECASE), r"\1" + MASK),
    (
        re.compile(r"(Authorization[\"']?\s*[:=]\s*[\"']?\w+\s+)[^\s\"',}]+", re.IGNORECASE),
        r"\1" + MASK,
    ),
    (
        re.compile(r"([?&#;]" + _SECRET_PARAM + r"=)[^&#\s\"'<>]+", re.IGNORECASE),
        r"\1" + MASK,
    ),
    (  # "token": "..." in JSON, token=... in settings or environment dumps
        re.compile(
            r"((?:[\"']" + _SECRET_NAME + r"[\"']\s*:|\b" + _SECRET_NAME + r"\s*=)\s*[\"']?)"
            r"(?!\*\*\*)[^\s\"',&}]{4,}",
            re.IGNORECASE,
        ),
        r"\1" + MASK,
    ),
    (re.compile(r"(://[^/:@\s]+:)[^/@\s]+(@)"), r"\1" + MASK + r"\2"),  # user:password@host
    (re.compile(r"(://)(?!git@)[^/:@\s]{8,}(@)"), r"\1" + MASK + r"\2"),  # token@host
)

#: Environment variables whose values are tokens: masked wherever they appear.
SECRET_ENV_VARS = (
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "CIVITAI_API_TOKEN",
    "CIVITAI_TOKEN",
    "GITHUB_TOKEN",
    "GH_TOKEN",
)

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Mask ``value`` in every log line from now on (tokens, passwords); short ones are ignored."""
    if value and len(value.strip()) >= MIN_SECRET_LENGTH:
        with _secrets_lock:
            _secrets.add(value.strip())


def unregister_secret(value: str | None) -> None:
    if value:
        with _secrets_lock:
            _secrets.discard(value.strip())


def redact(text: str) -> str:
    """``text`` with registered secrets and token-like strings replaced by ``***``."""
    with _secrets_lock:
        known = set(_secrets)
    for var in SECRET_ENV_VARS:
        value = os.environ.get(var, "").strip()
        if len(value) >= MIN_SECRET_LENGTH:
            known.add(value)
    secrets = sorted(known, key=len, reverse=True)  # longest first: no partial leftovers
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, replacement in _TOKEN_PATTERNS:
        text = pattern.sub(replacement, text)
    return text
