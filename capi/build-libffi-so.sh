#!/bin/sh
# Builds libffi.so.8 (SONAME libffi.so.8) from the jitffi-capi static
# library and libffi's version script; prints the library's path.
#
#   capi/build-libffi-so.sh [--release]
#   LD_LIBRARY_PATH=$(dirname "$(capi/build-libffi-so.sh --release)") python3 ...
#
# rustc's cdylib output brings its own version script, which clashes with
# one that names versions, so we link the staticlib ourselves.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
profile=debug
cargo_flags=
case "${1:-}" in
  --release) profile=release; cargo_flags=--release ;;
  "") ;;
  *) echo "usage: $0 [--release]" >&2; exit 2 ;;
esac

target=${CARGO_TARGET_DIR:-$here/../target}
# shellcheck disable=SC2086
cargo build --manifest-path "$here/Cargo.toml" -p jitffi-capi $cargo_flags >&2

# Not in target/<profile> itself: cargo puts that directory on the loader
# path of everything it runs, where a libffi.so.8 would replace the system
# libffi in every test and benchmark.
out="$target/$profile/jitffi-capi"
mkdir -p "$out"
"${CC:-cc}" -shared -o "$out/libffi.so.8" \
  -Wl,--whole-archive "$target/$profile/libjitffi_capi.a" -Wl,--no-whole-archive \
  -Wl,--version-script="$here/libffi.map" -Wl,-soname,libffi.so.8 \
  -Wl,--gc-sections -Wl,-z,noexecstack -Wl,-z,relro -Wl,-z,now \
  -Wl,--as-needed -lgcc_s -lpthread -lm -ldl -lc
echo "$(cd "$out" && pwd)/libffi.so.8"
