#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: finds uv (installs it for this user if missing;
# always called by its full path), builds the dev environment, gets Qt's system libraries
# (installs them as root on Debian/Ubuntu, else prints the command), checks lint and types (ruff,
# mypy strict for core), then runs pytest. Tests that need the node database snapshot read it
# from ../shared/data/comfyui-manager or COMFYMANAGER_TEST_NODE_DB (they fail under CI=1).
set -euo pipefail
cd "$(dirname "$0")/.."
export QT_QPA_PLATFORM=offscreen
# shellcheck source=scripts/common.sh
. scripts/common.sh
find_uv
git --version >/dev/null
"$UV" sync --group dev --quiet
qt_libraries quiet
# lint and types first: cheap, and a failure names the file and line
"$UV" run --no-sync ruff check --quiet .
"$UV" run --no-sync mypy comfymanager/core
exec "$UV" run --no-sync pytest -p no:cacheprovider "$@"
