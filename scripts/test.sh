#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs uv if missing, builds the dev
# environment with uv, installs the Qt system libraries when root on Debian, checks lint and
# types (ruff, mypy strict for core), then runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export QT_QPA_PLATFORM=offscreen
if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv
  export PATH="$HOME/.local/bin:$PATH"
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && ! ldconfig -p | grep -q libEGL.so.1; then
  apt-get update -qq && apt-get install -y -qq libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3 >/dev/null
fi
git --version >/dev/null
uv sync --group dev --quiet
# lint and types first: cheap, and a failure names the file and line
uv run --no-sync ruff check --quiet .
uv run --no-sync mypy comfymanager/core
exec uv run --no-sync pytest -p no:cacheprovider "$@"
