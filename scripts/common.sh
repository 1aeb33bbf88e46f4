# shellcheck shell=bash
# Shared by run.sh and test.sh (sourced from the repository root).

# find_uv: sets UV to the full path of a working uv, installing it for this user when missing.
# `pip install --user` puts uv in the user scripts folder, which is often not on PATH: uv is
# always called by its full path, so a later run finds it there instead of installing it again.
find_uv() {
  local candidate userbin
  userbin="$(python3 -c 'import site, os; print(os.path.join(site.getuserbase(), "bin"))' 2>/dev/null || true)"
  for candidate in "${COMFYMANAGER_UV:-}" "$(command -v uv 2>/dev/null || true)" \
      "${userbin:+$userbin/uv}" "$HOME/.local/bin/uv" "$HOME/.cargo/bin/uv"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" --version >/dev/null 2>&1; then
      UV="$candidate"
      return 0
    fi
  done
  echo "uv not found: installing it for this user (python3 -m pip install --user uv)" >&2
  python3 -m pip install --quiet --user uv \
    || python3 -m pip install --quiet --user --break-system-packages uv \
    || {
      echo "error: could not install uv. Fix: install it (https://docs.astral.sh/uv/getting-started/installation/) or set COMFYMANAGER_UV to its path." >&2
      exit 1
    }
  if [ -n "$userbin" ] && [ -x "$userbin/uv" ]; then
    UV="$userbin/uv"
    return 0
  fi
  echo "error: uv was installed but not found in $userbin. Fix: set COMFYMANAGER_UV to its path." >&2
  exit 1
}

# qt_libraries MODE: the system libraries Qt's xcb platform plugin needs (ldd on PySide6's
# libqxcb.so, mapped to Debian/Ubuntu packages by comfymanager/platform_check.py). Installed
# with apt-get when root on Debian/Ubuntu; otherwise the exact command is printed.
# MODE "required" exits on failure; "quiet" only prints.
qt_libraries() {
  local packages
  [ "$(uname -s)" = Linux ] || return 0
  packages="$("$UV" run --no-sync python -m comfymanager.platform_check --packages)" || return 0
  [ -n "$packages" ] || return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Qt's platform libraries: $packages" >&2
    # shellcheck disable=SC2086  # one word per package
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages >/dev/null
  elif command -v apt-get >/dev/null 2>&1; then
    echo "Qt needs system libraries that are missing. Run: sudo apt-get install -y $packages" >&2
    [ "$1" = required ] && exit 1
  else
    echo "Qt needs system libraries that are missing (Debian names: $packages); install your distribution's equivalents." >&2
    [ "$1" = required ] && exit 1
  fi
  return 0
}
