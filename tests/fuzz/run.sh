#!/usr/bin/env bash
# tests/fuzz/run.sh - builds the fuzz targets with clang (libFuzzer, ASan, UBSan) and runs each
# for COFFER_FUZZ_SECONDS (default 20) from its seeds. A crash, a leak or a sanitizer report
# fails the run and leaves the input that caused it next to the build.
#
#   tests/fuzz/run.sh [TARGET...]   only these targets (request, page_token, render, settings,
#                                   json)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${COFFER_FUZZ_BUILD:-$ROOT/build-fuzz}
SECONDS_EACH=${COFFER_FUZZ_SECONDS:-20}
CC=clang cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOFFER_FUZZ=ON \
  -DCOFFER_TESTS=OFF -DCOFFER_BENCH=OFF >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target fuzz_request fuzz_page_token fuzz_render fuzz_settings fuzz_json >/dev/null
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp:print_suppressions=0"
failed=0
targets=(request page_token render settings json)
[ $# -eq 0 ] || targets=("$@")
for t in "${targets[@]}"; do
  corpus="$BUILD/fuzz-corpus/$t"
  mkdir -p "$corpus" "$BUILD/fuzz-artifacts"
  quiet=()
  [ "$t" = settings ] && quiet=(-close_fd_mask=2) # the parser explains each refusal on stderr
  if "$BUILD/bin/fuzz_$t" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 "${quiet[@]}" \
       -artifact_prefix="$BUILD/fuzz-artifacts/$t-" "$corpus" "$HERE/seeds/$t" \
       >"$BUILD/fuzz-$t.log" 2>&1; then
    echo "ok: fuzz_$t: $(grep -E 'DONE' "$BUILD/fuzz-$t.log" | tail -1 | tr -s ' \t' ' ')"
  else
    echo "FAIL: fuzz_$t (see $BUILD/fuzz-$t.log)"; tail -30 "$BUILD/fuzz-$t.log"
    failed=$((failed + 1))
  fi
done
[ "$failed" -eq 0 ]
