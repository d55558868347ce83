#!/usr/bin/env bash
# Installs componentize-py (Python -> WASI 0.2 component) into a
# project-local venv: target/toolchains/python-venv, launcher
# target/toolchains/bin/componentize-py. Idempotent: a stamp records the
# pinned version, and a matching stamp makes this a no-op.
set -euo pipefail

version=0.25.1   # componentize-py; its bindings API is what app.py is written for

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tools="$root/target/toolchains"
venv="$tools/python-venv"
bin="$tools/bin"
stamp="$venv/.cairn-stamp"
want="componentize-py $version"

# Fast path: installed at this version and the venv's interpreter still runs
# (a venv breaks if the Python it was made from is removed).
if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && [ -x "$bin/componentize-py" ] \
   && "$venv/bin/python" -c '' 2>/dev/null; then
  echo "python: $want already installed"
  exit 0
fi

# shellcheck source=pip-venv.sh
. "$(dirname "${BASH_SOURCE[0]}")/pip-venv.sh"
pip_venv python "$venv" componentize-py "$version"
mkdir -p "$bin"

# A launcher script rather than a symlink: the venv's entry point resolves its
# interpreter by absolute path, so exec'ing it from anywhere works.
cat > "$bin/componentize-py" <<LAUNCHER
#!/bin/sh
exec "$venv/bin/componentize-py" "\$@"
LAUNCHER
chmod +x "$bin/componentize-py"

"$bin/componentize-py" --version >/dev/null
echo "$want" > "$stamp"
echo "python: installed $("$bin/componentize-py" --version)"
