#!/bin/sh
# Builds libffi.so.8 (SONAME libffi.so.8) from the jitffi-capi static
# library and libffi's version script; prints the library's path.
#
#   capi/build-libffi-so.sh [--release] [--target <triple>]
#   LD_LIBRARY_PATH=$(dirname "$(capi/build-libffi-so.sh --release)") python3 ...
#
# With --target (x86_64-unknown-linux-gnu or aarch64-unknown-linux-gnu)
# the library is built for that target, in
# target/<triple>/<profile>/jitffi-capi/, and linked with the target's C
# compiler: $CC_<triple with underscores>, else $CC when the target is the
# host, else <arch>-linux-gnu-gcc.
#
# rustc's cdylib output brings its own version script, which clashes with
# one that names versions, so we link the staticlib ourselves.
set -eu

usage() {
  echo "usage: $0 [--release] [--target <triple>]" >&2
  exit 2
}

here=$(cd "$(dirname "$0")" && pwd)
profile=debug
release=
triple=
while [ $# -gt 0 ]; do
  case "$1" in
    --release) profile=release; release=--release ;;
    --target) [ $# -ge 2 ] || usage; triple=$2; shift ;;
    --target=*) triple=${1#--target=} ;;
    *) usage ;;
  esac
  shift
done

target=${CARGO_TARGET_DIR:-$here/../target}
compiler=${CC:-cc}
if [ -n "$triple" ]; then
  case "$triple" in
    x86_64-unknown-linux-gnu | aarch64-unknown-linux-gnu) ;;
    *) echo "$0: unsupported target $triple" >&2; exit 2 ;;
  esac
  arch=${triple%%-*}
  var=CC_$(echo "$triple" | tr - _)
  eval "target_cc=\${$var:-}"
  if [ -n "$target_cc" ]; then
    compiler=$target_cc
  elif [ "$arch" != "$(uname -m)" ]; then
    compiler=$arch-linux-gnu-gcc
  fi
  if [ "$arch" != "$(uname -m)" ]; then
    # The cross linker, unless the environment or .cargo/config.toml
    # names one already.
    linker_var=CARGO_TARGET_$(echo "$triple" | tr a-z- A-Z_)_LINKER
    eval "linker=\${$linker_var:-}"
    if [ -z "$linker" ]; then
      eval "export $linker_var=\$compiler"
    fi
  fi
  libdir=$target/$triple/$profile
  # shellcheck disable=SC2086
  cargo build --manifest-path "$here/Cargo.toml" -p jitffi-capi --target "$triple" $release >&2
else
  libdir=$target/$profile
  # shellcheck disable=SC2086
  cargo build --manifest-path "$here/Cargo.toml" -p jitffi-capi $release >&2
fi

# Not in target/<profile> itself: cargo puts that directory on the loader
# path of everything it runs, where a libffi.so.8 would replace the system
# libffi in every test and benchmark.
out="$libdir/jitffi-capi"
mkdir -p "$out"
"$compiler" -shared -o "$out/libffi.so.8" \
  -Wl,--whole-archive "$libdir/libjitffi_capi.a" -Wl,--no-whole-archive \
  -Wl,--version-script="$here/libffi.map" -Wl,-soname,libffi.so.8 \
  -Wl,--gc-sections -Wl,-z,noexecstack -Wl,-z,relro -Wl,-z,now \
  -Wl,--as-needed -lgcc_s -lpthread -lm -ldl -lc
echo "$(cd "$out" && pwd)/libffi.so.8"
