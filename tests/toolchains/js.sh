#!/usr/bin/env bash
# Installs ComponentizeJS (JavaScript -> WASI 0.2 component) into a
# project-local npm folder: target/toolchains/js, launcher
# target/toolchains/bin/componentize-js (runs tests/toolchains/componentize-js.mjs).
#
# tests/toolchains/js/package.json pins the version and its package-lock.json
# pins every dependency (jco, wizer, ...): their semver ranges float, and a
# newer jco has already changed what the package pulls in. `npm install` with
# the lock present installs the locked versions. (Not `npm ci`: the lock holds
# only the optional native bindings of the platform that wrote it, and `npm ci`
# rejects such a lock as out of sync.) Idempotent: a stamp records the version
# and the lock's hash, and a matching stamp makes this a no-op.
set -euo pipefail

version=0.23.0   # @bytecodealliance/componentize-js, as tests/toolchains/js/package.json pins it

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tools="$root/target/toolchains"
home="$tools/js"
bin="$tools/bin"
stamp="$home/.cairn-stamp"
lock="$root/tests/toolchains/js/package-lock.json"
want="componentize-js $version $(sha256sum "$lock" | cut -c1-16)"
pkg="$home/node_modules/@bytecodealliance/componentize-js/package.json"

if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && [ -x "$bin/componentize-js" ] && [ -f "$pkg" ]; then
  echo "js: componentize-js $version already installed"
  exit 0
fi

for tool in node npm; do
  if ! command -v "$tool" >/dev/null; then
    echo "js: '$tool' not found; install Node.js 20+ with npm (e.g. apt-get install nodejs npm)" >&2
    exit 1
  fi
done
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  echo "js: Node.js $(node --version) is too old; ComponentizeJS $version needs Node.js 20+ (install a newer nodejs)" >&2
  exit 1
fi

echo "js: installing componentize-js $version into $home"
rm -rf "$home"
mkdir -p "$home" "$bin"
cp "$root/tests/toolchains/js/package.json" "$lock" "$home/"
if ! (cd "$home" && npm install --no-audit --no-fund --loglevel=error >npm.log 2>&1); then
  grep -m 20 'npm error' "$home/npm.log" >&2 || true
  echo "js: npm could not install tests/toolchains/js/package-lock.json (log: $home/npm.log); check access to the npm registry (npm config get registry, proxy) and retry" >&2
  exit 1
fi

cat > "$bin/componentize-js" <<LAUNCHER
#!/bin/sh
CAIRN_JS_TOOLCHAIN="$home" exec node "$root/tests/toolchains/componentize-js.mjs" "\$@"
LAUNCHER
chmod +x "$bin/componentize-js"

"$bin/componentize-js" --version >/dev/null
echo "$want" > "$stamp"
echo "js: installed $("$bin/componentize-js" --version)"
