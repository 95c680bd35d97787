#!/bin/sh
# Our libffi.so.8 against the system's: one command, one table.
#
#   capi/bench.sh                        # builds the release library, measures
#   BENCH_ITERS=100000 capi/bench.sh     # shorter runs (default 300000)
#   BENCH_PASSES=3 capi/bench.sh         # passes (default 2, see below)
#   BENCH_BEFORE=<dir> capi/bench.sh     # also a "before" column: the
#                                        # libffi.so.8 in <dir> (an older build)
#
# 1. capi/c/bench.c, compiled once against the system <ffi.h>, run with
#    the system libffi and with ours (LD_LIBRARY_PATH): a repeated
#    ffi_prep_cif, ffi_call, and a closure's life (ffi_closure_alloc +
#    ffi_prep_closure_loc + ffi_closure_free) for S1-S8: the median of 11
#    runs, and of that the best of BENCH_PASSES passes, the libraries taking
#    turns (a burst of load from elsewhere then spoils one pass, not the
#    result).
# 2. CPython ctypes (python3 -m timeit, best of 7) with each library: a
#    libc call, libm's pow with argtypes/restype, a Python callback called
#    by qsort, and a CFUNCTYPE object's creation (a closure's life).
#
# Times are ns per operation; ratio = ours / libffi (below 1: ours is
# faster). The machine may be shared: compare ratios, and rerun when the
# load changes. Every run checks, through /proc/self/maps, which
# libffi.so.8 the process really mapped.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
iters=${BENCH_ITERS:-300000}
passes=${BENCH_PASSES:-2}
python=${PYTHON:-python3}
before=${BENCH_BEFORE:-}

ours_so=$("$here/build-libffi-so.sh" --release)
ours_dir=$(dirname "$ours_so")
if [ -n "$before" ]; then
  before=$(cd "$before" && pwd)
  [ -f "$before/libffi.so.8" ] || { echo "no libffi.so.8 in $before" >&2; exit 2; }
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/jitffi-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

# The system header, not ours: the same binary then runs on each library.
"${CC:-cc}" -O2 -o "$tmp/bench" "$here/c/bench.c" -lffi

# Runs $2... with the library in $1 ("system" or a directory).
with_lib() {
  lib=$1
  shift
  if [ "$lib" = system ]; then
    "$@"
  else
    LD_LIBRARY_PATH="$lib" "$@"
  fi
}

# Fails unless a process given the library in $1 mapped the one in $2.
check_mapped() {
  wrong=0
  if [ "$1" = system ]; then
    # Any absolute path but ours (or the "before" build).
    case "$2" in
      /*) ;;
      *) wrong=1 ;;
    esac
    case "$2" in
      "$ours_dir"/*) wrong=1 ;;
    esac
    if [ -n "$before" ]; then
      case "$2" in
        "$before"/*) wrong=1 ;;
      esac
    fi
  else
    case "$2" in
      "$1"/*) ;;
      *) wrong=1 ;;
    esac
  fi
  if [ "$wrong" = 1 ]; then
    echo "a run meant for the library in $1 mapped $2" >&2
    exit 1
  fi
}

# bench.c with the library in $1, into $2.
run_bench() {
  with_lib "$1" "$tmp/bench" -i "$iters" >"$2"
  mapped=$(sed -n 's/^libffi //p' "$2")
  check_mapped "$1" "$mapped"
  echo "$mapped"
}

echo "running capi/c/bench.c: $passes passes x $iters iterations x 11 runs per cell..." >&2
: >"$tmp/sys.txt"
: >"$tmp/before.txt"
: >"$tmp/ours.txt"
pass=0
while [ "$pass" -lt "$passes" ]; do
  pass=$((pass + 1))
  sys_lib=$(run_bench system "$tmp/run.txt")
  cat "$tmp/run.txt" >>"$tmp/sys.txt"
  if [ -n "$before" ]; then
    before_lib=$(run_bench "$before" "$tmp/run.txt")
    cat "$tmp/run.txt" >>"$tmp/before.txt"
  fi
  our_lib=$(run_bench "$ours_dir" "$tmp/run.txt")
  cat "$tmp/run.txt" >>"$tmp/ours.txt"
done
echo "libffi: $sys_lib"
[ -n "$before" ] && echo "before: $before_lib"
echo "ours:   $our_lib"
echo
awk -v have_before="${before:+1}" '
  # The best of the passes for each cell.
  function keep(arr, s, k, v) { if (!((s, k) in arr) || v < arr[s, k]) arr[s, k] = v }
  FILENAME ~ /sys.txt$/ && /^S[0-9]/ {
    if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 }
    for (k = 2; k <= 4; k++) keep(sys, $1, k, $k + 0)
  }
  FILENAME ~ /before.txt$/ && /^S[0-9]/ { for (k = 2; k <= 4; k++) keep(bef, $1, k, $k + 0) }
  FILENAME ~ /ours.txt$/ && /^S[0-9]/ { for (k = 2; k <= 4; k++) keep(our, $1, k, $k + 0) }
  END {
    split("ffi_prep_cif (repeat)|ffi_call|closure alloc+prep+free", title, "|")
    w = have_before ? 35 : 26
    printf "%-4s", ""
    for (k = 1; k <= 3; k++) printf " | %-*s", w, title[k]
    printf "\n%-4s", "sig"
    for (k = 1; k <= 3; k++) {
      if (have_before) printf " | %8s %8s %8s %7s", "libffi", "before", "ours", "ratio"
      else printf " | %8s %8s %8s", "libffi", "ours", "ratio"
    }
    printf "\n"
    for (i = 1; i <= n; i++) {
      s = order[i]
      printf "%-4s", s
      for (k = 2; k <= 4; k++) {
        ratio = sys[s, k] > 0 ? sprintf("%.2f", our[s, k] / sys[s, k]) : "-"
        if (have_before) printf " | %8.1f %8.1f %8.1f %7s", sys[s, k], bef[s, k], our[s, k], ratio
        else printf " | %8.1f %8.1f %8s", sys[s, k], our[s, k], ratio
      }
      printf "\n"
    }
  }' "$tmp/sys.txt" "$tmp/before.txt" "$tmp/ours.txt"

# CPython ctypes. Python's _ctypes finds libffi.so.8 through the loader's
# search path, so LD_LIBRARY_PATH selects ours; check that it did.
if ! command -v "$python" >/dev/null 2>&1; then
  echo
  echo "($python not found: no ctypes benchmark)"
  exit 0
fi

py_libffi() {
  with_lib "$1" "$python" -c 'import ctypes
for l in open("/proc/self/maps"):
    if "libffi.so" in l:
        print(l.split()[-1])
        break
else:
    print("?")'
}
libs="system"
[ -n "$before" ] && libs="$libs $before"
libs="$libs $ours_dir"
for lib in $libs; do
  check_mapped "$lib" "$(py_libffi "$lib")"
done

echo
echo "CPython $("$python" -c 'import sys; print(sys.version.split()[0])') ctypes: python3 -m timeit (best of 7), ns per loop"
echo "(each library checked in the interpreter's /proc/self/maps)"
echo

# timeit's best time in ns for setup $2 and statement $3, with the
# library in $1.
timeit() {
  out=$(with_lib "$1" "$python" -m timeit -r 7 -u nsec -s "$2" "$3")
  # timeit prints 3 significant digits: "152 nsec", "5.16e+03 nsec".
  echo "$out" | sed -n 's/.*best of [0-9]*: \([0-9.e+]*\) nsec per loop.*/\1/p'
}

libc='import ctypes; libc = ctypes.CDLL(None)'
cases='labs(-5)|'"$libc"'; f = libc.labs|f(-5)
pow(2.0, 3.0), argtypes set|'"$libc"'; m = ctypes.CDLL("libm.so.6"); f = m.pow; f.argtypes = [ctypes.c_double, ctypes.c_double]; f.restype = ctypes.c_double|f(2.0, 3.0)
qsort of 8 ints, Python callback|'"$libc"'; CMP = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int)); cmp = CMP(lambda a, b: a[0] - b[0]); q = libc.qsort; q.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, CMP]; q.restype = None; a = (ctypes.c_int * 8)()|a[:] = (5, 3, 7, 1, 8, 2, 6, 4); q(a, 8, 4, cmp)
CFUNCTYPE object made and freed|'"$libc"'; F = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int); g = lambda x: x|F(g)'

if [ -n "$before" ]; then
  printf "%-34s %9s %9s %9s %7s\n" "ctypes" "libffi" "before" "ours" "ratio"
else
  printf "%-34s %9s %9s %7s\n" "ctypes" "libffi" "ours" "ratio"
fi
echo "$cases" | while IFS='|' read -r name setup stmt; do
  t_sys=$(timeit system "$setup" "$stmt")
  t_before=
  [ -n "$before" ] && t_before=$(timeit "$before" "$setup" "$stmt")
  t_ours=$(timeit "$ours_dir" "$setup" "$stmt")
  awk -v n="$name" -v a="$t_sys" -v p="$t_before" -v b="$t_ours" 'BEGIN {
    r = a > 0 ? sprintf("%.2f", b / a) : "-"
    if (p != "") printf "%-34s %9.0f %9.0f %9.0f %7s\n", n, a, p, b, r
    else printf "%-34s %9.0f %9.0f %7s\n", n, a, b, r
  }'
done
