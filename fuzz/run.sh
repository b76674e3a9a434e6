#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer targets (fuzz/CMakeLists.txt, clang + ASan + UBSan) into
# build-fuzz/ and runs each for FUZZ_SECONDS, one after another, then prints per target the
# executions, executions per second, new corpus entries and crashes. Exit status 1 when any target
# crashed, leaked, timed out or ran out of memory; the input that did it is kept under
# build-fuzz/artifacts/<target>/ and the log under build-fuzz/logs/<target>.log. Reproduce one:
#     build-fuzz/<target> build-fuzz/artifacts/<target>/crash-...
# Usage: fuzz/run.sh [target ...]     (default: every fuzz/*_fuzz.cpp)
# One allocation above 512 MB is a crash too: the largest image a 4 KB input can hold legitimately
# (1032:1 deflate, 1-bit palette expanded to RGB floats) needs ~410 MB.
# Environment: FUZZ_SECONDS (60 per target), FUZZ_BUILD (build-fuzz), FUZZ_JOBS (2 build jobs),
# CXX_FUZZ (clang++-14). Each target starts from its seeds in fuzz/corpus/<target>/ plus what
# earlier runs found (build-fuzz/corpus/<target>/, which grows run after run; the seeds in the
# repository are never written).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD:-$root/build-fuzz}
seconds=${FUZZ_SECONDS:-60}
cxx=${CXX_FUZZ:-clang++-14}
command -v "$cxx" >/dev/null || { echo "fuzz: $cxx not found (make fuzz installs clang-14)" >&2; exit 1; }

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root/fuzz" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" "${launcher[@]}" >/dev/null
fi
cmake --build "$build" -j "${FUZZ_JOBS:-2}"

if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for src in "$root"/fuzz/*_fuzz.cpp; do targets+=("$(basename "$src" .cpp)"); done
fi

# The dictionary of each target: JSON tokens for JSON inputs, PNG chunk names for PNG.
dict_of() {
  case "$1" in
    png_fuzz) echo "$root/fuzz/dicts/png.dict" ;;
    *) echo "$root/fuzz/dicts/json.dict" ;;
  esac
}

mkdir -p "$build/logs"
failed=0
summary=()
for t in "${targets[@]}"; do
  [ -x "$build/$t" ] || { echo "fuzz: no target $t in $build" >&2; exit 1; }
  work="$build/corpus/$t" artifacts="$build/artifacts/$t"
  mkdir -p "$work" "$artifacts"
  seeds=()
  [ -d "$root/fuzz/corpus/$t" ] && seeds=("$root/fuzz/corpus/$t")
  echo "fuzz: $t for ${seconds}s" >&2
  marker="$build/logs/.$t.start"
  touch "$marker"
  rc=0
  "$build/$t" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10 \
    -print_final_stats=1 -dict="$(dict_of "$t")" -artifact_prefix="$artifacts/" "$work" "${seeds[@]}" \
    >"$build/logs/$t.log" 2>&1 || rc=$?
  stat() { sed -n "s/^stat::$1: *//p" "$build/logs/$t.log" | tail -1; }
  execs=$(stat number_of_executed_units) rate=$(stat average_exec_per_sec)
  found=$(stat new_units_added) rss=$(stat peak_rss_mb)
  crashes=$(find "$artifacts" -type f -newer "$marker" | wc -l)
  if [ "$rc" -ne 0 ]; then
    failed=1
    crashes=$((crashes > 0 ? crashes : 1))
    echo "fuzz: $t FAILED (exit $rc): see $build/logs/$t.log" >&2
    find "$artifacts" -type f -newer "$marker" -printf '  input: %p\n' >&2
  fi
  summary+=("$(printf '%-20s %12s %10s %9s %8s %8s' "$t" "${execs:-?}" "${rate:-?}" \
               "${found:-?}" "${rss:-?}" "$crashes")")
done

printf '%-20s %12s %10s %9s %8s %8s\n' target executions exec/s new_units rss_mb crashes
printf '%s\n' "${summary[@]}"
exit "$failed"
