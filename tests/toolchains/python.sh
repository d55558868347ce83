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

python="${PYTHON:-python3}"
if ! command -v "$python" >/dev/null; then
  echo "python: '$python' not found; install Python 3.10+ (e.g. apt-get install python3 python3-venv) or set PYTHON=/path/to/python3" >&2
  exit 1
fi

echo "python: installing $want into $venv"
rm -rf "$venv"
mkdir -p "$tools" "$bin"
if ! "$python" -m venv "$venv"; then
  echo "python: '$python -m venv' failed; install the venv module (e.g. apt-get install python3-venv) or set PYTHON to a Python that has it" >&2
  exit 1
fi
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "componentize-py==$version"; then
  echo "python: pip could not install componentize-py==$version from PyPI; check network access to PyPI (pip config, proxy) and retry" >&2
  exit 1
fi

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
