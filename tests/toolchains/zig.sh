#!/usr/bin/env bash
# Installs Zig (the PyPI package ziglang, which ships the official release)
# into a project-local venv: target/toolchains/zig-venv, launcher
# target/toolchains/bin/zig. Zig bundles wasi-libc sources and links wasm
# itself, so it builds wasm32-wasi modules with nothing else. Idempotent: a
# stamp records the pinned version, and a matching stamp makes this a no-op.
set -euo pipefail

# Zig's standard library changes between releases: main.zig of the polyglot
# example is written for this one. Move them together.
version=0.17.1

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tools="$root/target/toolchains"
venv="$tools/zig-venv"
bin="$tools/bin"
stamp="$venv/.cairn-stamp"
want="ziglang $version"

if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && [ -x "$bin/zig" ] \
   && "$bin/zig" version >/dev/null 2>&1; then
  echo "zig: $want already installed"
  exit 0
fi

# shellcheck source=pip-venv.sh
. "$(dirname "${BASH_SOURCE[0]}")/pip-venv.sh"
pip_venv zig "$venv" ziglang "$version"
mkdir -p "$bin"

# `python -m ziglang` only execs the zig binary inside the package; the
# launcher execs it directly (Zig finds its lib/ beside the binary).
zig="$("$venv/bin/python" -c 'import ziglang, os; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))')"
if [ ! -x "$zig" ]; then
  echo "zig: ziglang==$version has no zig binary at $zig; pick another version in $0" >&2
  exit 1
fi
cat > "$bin/zig" <<LAUNCHER
#!/bin/sh
exec "$zig" "\$@"
LAUNCHER
chmod +x "$bin/zig"

got="$("$bin/zig" version)"
if [ "$got" != "$version" ]; then
  echo "zig: expected Zig $version, the package runs $got; reinstall with: rm -rf $venv && $0" >&2
  exit 1
fi
echo "$want" > "$stamp"
echo "zig: installed Zig $got"
