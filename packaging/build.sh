#!/usr/bin/env bash
# Build the one-folder bundle with PyInstaller, then run the built program once.
#
#   packaging/build.sh [--dist DIR] [--work DIR] [--no-smoke]
#
# Result: DIR/comfymanager/ (default dist/comfymanager/). PyInstaller is not a project
# dependency: it is added for this run only (uv run --with). The check afterwards runs
# `--version`, then `--smoke-test` (offscreen Qt, throw-away data folder) when the GUI entry
# comfymanager/app.py exists, otherwise `--help`.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIST="$ROOT/dist"
WORK="$ROOT/build/pyinstaller"
SMOKE=1
while [ $# -gt 0 ]; do
  case "$1" in
    --dist) DIST="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    --no-smoke) SMOKE=0; shift ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done
cd "$ROOT"
start=$(date +%s)
uv run --no-sync --with 'pyinstaller>=6.10,<7' pyinstaller --noconfirm --log-level WARN \
  --distpath "$DIST" --workpath "$WORK" packaging/comfymanager.spec
echo "built $DIST/comfymanager in $(( $(date +%s) - start )) s"

BUNDLE="$DIST/comfymanager"
PROGRAM="$BUNDLE/comfymanager"
[ -f "$BUNDLE/comfymanager-cli.exe" ] && PROGRAM="$BUNDLE/comfymanager-cli.exe"
[ -x "$PROGRAM" ] || { echo "no program at $PROGRAM" >&2; exit 1; }
UV_BIN="$BUNDLE/_internal/uv/uv"
[ -f "$UV_BIN.exe" ] && UV_BIN="$UV_BIN.exe"
"$UV_BIN" --version >/dev/null || { echo "bundled uv does not run: $UV_BIN" >&2; exit 1; }
[ "$SMOKE" = 1 ] || exit 0

"$PROGRAM" --version
if [ -f "$ROOT/comfymanager/app.py" ]; then
  SMOKE_DATA="$(mktemp -d)"
  trap 'rm -rf "$SMOKE_DATA"' EXIT
  QT_QPA_PLATFORM=offscreen "$PROGRAM" --data-dir "$SMOKE_DATA" --smoke-test
  echo "smoke test passed"
else
  "$PROGRAM" --help >/dev/null
  echo "comfymanager/app.py does not exist yet: checked --version and --help only"
fi
