#!/usr/bin/env bash
# The deployment recipe of docs/operations.md, end to end: `npm pack` here (prepack builds dist/),
# then `npm install --omit=dev <tarball>` into an empty directory, as on a server, and the installed
# `stui` must print this package's version and the serve usage. Fails loudly; removes its temp dirs.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
started=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/tmp}/stui-check-pack.XXXXXX")
trap 'rm -rf "$work"' EXIT

fail() {
  echo "check-pack: FAILED: $*" >&2
  exit 1
}

npm pack --silent --pack-destination "$work" >"$work/pack.log" 2>&1 || {
  cat "$work/pack.log" >&2
  fail "npm pack"
}
tarball=$(ls "$work"/*.tgz)
tar tzf "$tarball" >"$work/files"
for needed in package/package.json package/bin/stui.js package/dist/src/cli/main.js package/dist/src/index.js; do
  grep -qx "$needed" "$work/files" || fail "$needed is not in the tarball"
done
if grep -E '^package/(test|bench|src)/' "$work/files"; then fail "the tarball holds test, bench or source files"; fi

mkdir "$work/install"
cd "$work/install"
npm install --omit=dev --no-audit --no-fund "$tarball" >"$work/install.log" 2>&1 || {
  cat "$work/install.log" >&2
  fail "npm install --omit=dev $tarball"
}
[ ! -e node_modules/typescript ] || fail "a dev dependency (typescript) was installed"
expected=$(node -p "require('$root/package.json').version")
version=$(node_modules/.bin/stui --version) || fail "stui --version exited $?"
[ "$version" = "$expected" ] || fail "stui --version printed '$version', expected '$expected'"
node_modules/.bin/stui serve --help >"$work/help" || fail "stui serve --help exited $?"
grep -q '^usage: stui serve' "$work/help" || fail "stui serve --help printed no usage: $(cat "$work/help")"

echo "check-pack: ok: $(basename "$tarball") installs without dev dependencies, stui $version runs ($(($(date +%s) - started)) s)"
