#!/usr/bin/env bash
# Sign ComfyManager.app from the inside out with the hardened runtime, notarise it with
# notarytool, staple the ticket, then build, sign, notarise and staple a .dmg.
#
#   packaging/macos/sign_and_notarize.sh [APP] [DMG]
#     APP  default: dist/ComfyManager.app (built by packaging/comfymanager.spec on macOS)
#     DMG  default: dist/ComfyManager-<version>-<arch>.dmg
#
# Identity and credentials come from the environment only (CI secrets, never the repository):
#   MACOS_SIGN_IDENTITY   "Developer ID Application: Name (TEAMID)" (in the login keychain,
#                         or imported by CI from a .p12)
#   and ONE way for notarytool to log in:
#   NOTARY_KEYCHAIN_PROFILE                         a profile saved with
#                                                   `xcrun notarytool store-credentials`
#   NOTARY_KEY_PATH + NOTARY_KEY_ID + NOTARY_ISSUER App Store Connect API key (.p8)
#   APPLE_ID + APPLE_TEAM_ID + APPLE_APP_PASSWORD   Apple ID with an app-specific password
#
# Exit codes: 0 done, 2 usage or not macOS, 3 identity or credentials missing, 1 a step failed.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
APP="${1:-$ROOT/dist/ComfyManager.app}"
ENTITLEMENTS="$HERE/entitlements.plist"

missing=()
[ -n "${MACOS_SIGN_IDENTITY:-}" ] || missing+=("MACOS_SIGN_IDENTITY")
notary=()
if [ -n "${NOTARY_KEYCHAIN_PROFILE:-}" ]; then
  notary=(--keychain-profile "$NOTARY_KEYCHAIN_PROFILE")
elif [ -n "${NOTARY_KEY_PATH:-}" ] && [ -n "${NOTARY_KEY_ID:-}" ] && [ -n "${NOTARY_ISSUER:-}" ]; then
  notary=(--key "$NOTARY_KEY_PATH" --key-id "$NOTARY_KEY_ID" --issuer "$NOTARY_ISSUER")
elif [ -n "${APPLE_ID:-}" ] && [ -n "${APPLE_TEAM_ID:-}" ] && [ -n "${APPLE_APP_PASSWORD:-}" ]; then
  notary=(--apple-id "$APPLE_ID" --team-id "$APPLE_TEAM_ID" --password "$APPLE_APP_PASSWORD")
else
  missing+=("notarisation credentials: NOTARY_KEYCHAIN_PROFILE, or NOTARY_KEY_PATH + NOTARY_KEY_ID + NOTARY_ISSUER, or APPLE_ID + APPLE_TEAM_ID + APPLE_APP_PASSWORD")
fi
if [ "${#missing[@]}" -gt 0 ]; then
  {
    echo "sign_and_notarize: cannot sign: missing from the environment:"
    for m in "${missing[@]}"; do echo "  - $m"; done
    echo "Nothing was signed. Set them (CI: repository secrets) and run again;"
    echo "an unsigned build still runs after right-click > Open on older macOS only."
  } >&2
  exit 3
fi

if [ "$(uname -s)" != "Darwin" ]; then
  echo "sign_and_notarize: this runs on macOS only (codesign, notarytool, hdiutil)." >&2
  exit 2
fi
[ -d "$APP" ] || { echo "sign_and_notarize: no app bundle at $APP (build it first)." >&2; exit 2; }
for tool in codesign xcrun hdiutil ditto; do
  command -v "$tool" >/dev/null || { echo "sign_and_notarize: $tool not found." >&2; exit 2; }
done

VERSION="$(/usr/libexec/PlistBuddy -c 'Print :CFBundleShortVersionString' "$APP/Contents/Info.plist")"
ARCH="$(lipo -archs "$APP/Contents/MacOS/comfymanager" | tr ' ' '+')"
DMG="${2:-$ROOT/dist/ComfyManager-$VERSION-$ARCH.dmg}"

sign() {
  codesign --force --timestamp --options runtime --entitlements "$ENTITLEMENTS" \
    --sign "$MACOS_SIGN_IDENTITY" "$1"
}

echo "== signing Mach-O files inside $APP, deepest first"
by_depth() {  # every file under $1, deepest path first (BSD and GNU tools alike)
  find "$1" -type f | while IFS= read -r path; do
    slashes="${path//[^\/]/}"
    printf '%d\t%s\n' "${#slashes}" "$path"
  done | sort -t "$(printf '\t')" -k1,1nr | cut -f2-
}
count=0
while IFS= read -r path; do
  if file -b "$path" | grep -q 'Mach-O'; then
    sign "$path"
    count=$((count + 1))
  fi
done < <(by_depth "$APP/Contents")
echo "signed $count files"
# nested bundles (Qt frameworks, if any) after their contents, then the app itself
while IFS= read -r -d '' bundle; do sign "$bundle"; done \
  < <(find "$APP/Contents" -depth -type d \( -name '*.framework' -o -name '*.app' \) -print0)
sign "$APP"
codesign --verify --deep --strict --verbose=2 "$APP"

notarize() {
  echo "== notarising $1"
  xcrun notarytool submit "$1" "${notary[@]}" --wait --timeout 1h
}

ZIP="$(mktemp -d)/ComfyManager.zip"
ditto -c -k --keepParent "$APP" "$ZIP"
notarize "$ZIP"
xcrun stapler staple "$APP"
xcrun stapler validate "$APP"

echo "== building $DMG"
mkdir -p "$(dirname "$DMG")"
STAGE="$(mktemp -d)"
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
hdiutil create -volname "ComfyManager $VERSION" -srcfolder "$STAGE" -ov -format UDZO "$DMG"
codesign --force --timestamp --sign "$MACOS_SIGN_IDENTITY" "$DMG"
notarize "$DMG"
xcrun stapler staple "$DMG"
spctl --assess --type execute --verbose "$APP"
echo "done: $APP and $DMG are signed, notarised and stapled"
