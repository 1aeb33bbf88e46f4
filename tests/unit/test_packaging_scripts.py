"""The macOS signing script refuses clearly without an identity or credentials (and signs
nothing), and the shell scripts pass shellcheck. Signing itself needs a Mac and a Developer ID:
it runs only where those exist (see docs/PLATFORMS.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "packaging" / "macos" / "sign_and_notarize.sh"
CREDENTIAL_VARS = (
    "MACOS_SIGN_IDENTITY",
    "NOTARY_KEYCHAIN_PROFILE",
    "NOTARY_KEY_PATH",
    "NOTARY_KEY_ID",
    "NOTARY_ISSUER",
    "APPLE_ID",
    "APPLE_TEAM_ID",
    "APPLE_APP_PASSWORD",
)
BASH = shutil.which("bash")
needs_bash = pytest.mark.skipif(
    BASH is None or os.name == "nt", reason="a bash script run on macOS (not Git Bash)"
)


def run(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS}
    app = tmp_path / "ComfyManager.app"
    return subprocess.run(
        [str(BASH), str(SCRIPT), str(app)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@needs_bash
def test_refuses_without_identity_or_credentials_and_names_them(tmp_path: Path) -> None:
    done = run({}, tmp_path)
    assert done.returncode == 3
    assert "MACOS_SIGN_IDENTITY" in done.stderr and "NOTARY_KEYCHAIN_PROFILE" in done.stderr
    assert "Nothing was signed" in done.stderr
    only_id = run({"MACOS_SIGN_IDENTITY": "Developer ID Application: T (ABCDE12345)"}, tmp_path)
    assert only_id.returncode == 3
    assert "MACOS_SIGN_IDENTITY" not in only_id.stderr  # it says what is still missing
    assert "APPLE_APP_PASSWORD" in only_id.stderr
    half_key = run({"MACOS_SIGN_IDENTITY": "x", "NOTARY_KEY_ID": "k"}, tmp_path)
    assert half_key.returncode == 3  # an incomplete API key is not a way to log in
    assert list(tmp_path.iterdir()) == []  # nothing written


@needs_bash
def test_with_credentials_it_checks_the_system_and_the_bundle(tmp_path: Path) -> None:
    done = run({"MACOS_SIGN_IDENTITY": "x", "NOTARY_KEYCHAIN_PROFILE": "p"}, tmp_path)
    assert done.returncode == 2
    assert ("macOS only" in done.stderr) or ("no app bundle" in done.stderr)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_shell_scripts_pass_shellcheck() -> None:
    scripts = [SCRIPT, ROOT / "packaging" / "build.sh"]
    done = subprocess.run(
        ["shellcheck", *map(str, scripts)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout
