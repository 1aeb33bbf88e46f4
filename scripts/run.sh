#!/usr/bin/env bash
# Runs comfymanager from this checkout on a fresh machine: installs uv if missing, builds the
# environment from uv.lock, then starts the app (or a command: scripts/run.sh list).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv
  export PATH="$HOME/.local/bin:$PATH"
fi
uv sync --quiet
exec uv run --no-sync comfymanager "$@"
