#!/usr/bin/env bash
# Installs the C toolchain for Cairn tasks:
#   - Debian's clang, lld (wasm-ld), wasi-libc and the wasm32 compiler-rt
#     builtins (apt): `clang --target=wasm32-wasi` then builds wasip1 core
#     modules with no --sysroot (Debian's clang finds /usr/include/wasm32-wasi
#     and /usr/lib/wasm32-wasi by itself);
#   - the wit-bindgen CLI (crates.io, C generator only) for typed tasks, into
#     target/toolchains/bin/wit-bindgen.
# Symlinks clang and wasm-ld into target/toolchains/bin/ too, so a build finds
# every C tool in one place. Idempotent: a stamp records what was installed,
# and a matching stamp (with the files still there) makes this a no-op.
set -euo pipefail

# The same release as the Rust guests' wit-bindgen crate: its C generator
# reads this WIT (WASI 0.2.12 with @since gates) and profile.c is written
# against its output.
wit_bindgen_version=0.63.0
apt_packages=(clang lld wasi-libc libclang-rt-14-dev-wasm32)

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tools="$root/target/toolchains"
bin="$tools/bin"
stamp="$tools/c.stamp"
want="apt ${apt_packages[*]}; wit-bindgen-cli $wit_bindgen_version"

# What the build needs from the apt packages: if any is gone, reinstall.
needed_files=(
  /usr/bin/clang /usr/bin/wasm-ld
  /usr/lib/wasm32-wasi/libc.a /usr/lib/wasm32-wasi/crt1-command.o
  /usr/lib/wasm32-wasi/crt1-reactor.o /usr/include/wasm32-wasi/stdio.h
)
have_apt_files() {
  local f
  for f in "${needed_files[@]}"; do [ -e "$f" ] || return 1; done
  compgen -G '/usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a' >/dev/null
}

if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && have_apt_files \
   && [ -x "$bin/wit-bindgen" ] && [ -L "$bin/clang" ]; then
  echo "c: $want already installed"
  exit 0
fi
mkdir -p "$bin"

if ! have_apt_files; then
  echo "c: installing ${apt_packages[*]} with apt-get"
  if ! command -v apt-get >/dev/null; then
    echo "c: apt-get not found; this needs Debian/Ubuntu packages ${apt_packages[*]} (or an equivalent clang with wasm32-wasi support and wasi-libc)" >&2
    exit 1
  fi
  sudo=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then sudo=(sudo); else
      echo "c: not root and no sudo; as root run: apt-get update && apt-get install -y ${apt_packages[*]}" >&2
      exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  # A fresh machine may have no package lists yet: update once and retry.
  if ! "${sudo[@]}" apt-get install -y -q "${apt_packages[@]}" >/dev/null; then
    "${sudo[@]}" apt-get update -q >/dev/null || true
    if ! "${sudo[@]}" apt-get install -y -q "${apt_packages[@]}" >/dev/null; then
      echo "c: apt-get could not install ${apt_packages[*]}; check apt sources (Debian bookworm has them all), then run: apt-get update && apt-get install -y ${apt_packages[*]}" >&2
      exit 1
    fi
  fi
  if ! have_apt_files; then
    echo "c: after apt-get, still missing one of: ${needed_files[*]} or libclang_rt.builtins-wasm32.a; the package names may differ on this release (apt-cache search wasi-libc / libclang-rt dev-wasm32)" >&2
    exit 1
  fi
fi
ln -sfn /usr/bin/clang "$bin/clang"
ln -sfn /usr/bin/wasm-ld "$bin/wasm-ld"

# Captured, not piped: under pipefail, `grep -q` may exit before the writer
# is done and fail the pipeline with SIGPIPE.
have="$("$bin/wit-bindgen" --version 2>/dev/null || true)"
if ! grep -q " $wit_bindgen_version\b" <<<"$have"; then
  echo "c: building wit-bindgen-cli $wit_bindgen_version with cargo (a few minutes on 2 cores)"
  if ! command -v cargo >/dev/null; then
    echo "c: cargo not found; install Rust (rustup), then rerun $0" >&2
    exit 1
  fi
  # Run from the repo so rust-toolchain.toml picks the compiler. Only the C
  # generator is needed: the other generators roughly double the build.
  if ! (cd "$root" && cargo install wit-bindgen-cli --version "$wit_bindgen_version" --locked \
          --no-default-features --features c --root "$tools" --quiet); then
    echo "c: cargo install wit-bindgen-cli --version $wit_bindgen_version failed; check access to crates.io and the Rust toolchain, then rerun $0" >&2
    exit 1
  fi
fi

# Check both link models: command (main) and reactor (a typed task's exports).
check="$tools/c-check"
rm -rf "$check"
mkdir -p "$check"
printf '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n' > "$check/hello.c"
printf '#include <stdlib.h>\n__attribute__((export_name("f"))) int f(int n) { return (int)(long)malloc(n); }\n' > "$check/lib.c"
if ! "$bin/clang" --target=wasm32-wasi -O2 "$check/hello.c" -o "$check/hello.wasm" \
   || ! "$bin/clang" --target=wasm32-wasi -mexec-model=reactor -O2 "$check/lib.c" -o "$check/lib.wasm"; then
  echo "c: clang --target=wasm32-wasi cannot link against wasi-libc (see above); reinstall with: apt-get install --reinstall ${apt_packages[*]}" >&2
  exit 1
fi
rm -rf "$check"

echo "$want" > "$stamp"
echo "c: installed $("$bin/clang" --version | head -1), $("$bin/wit-bindgen" --version)"
