#!/usr/bin/env bash
# Runs comfymanager from this checkout on a fresh machine: finds uv (installs it for this user
# if missing; always called by its full path), builds the app's environment from uv.lock (no
# dev tools), gets Qt's platform libraries on Linux (installs them as root on Debian/Ubuntu,
# else prints the exact command), then starts the app (or a command: scripts/run.sh list).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/common.sh
. scripts/common.sh
find_uv
"$UV" sync --no-dev --quiet
case "${1:-}" in
  "" | --*) qt_libraries quiet ;;  # the window: a command (list, start...) needs no Qt
esac
exec "$UV" run --no-sync comfymanager "$@"
