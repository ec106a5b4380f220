#!/usr/bin/env bash
# Installs what is missing, builds with warnings as errors, and runs the whole test suite
# (unit, property and integration tests; the integration tests start their own brokers).
# Then fuzzes (tests/fuzz): a second build with clang, libFuzzer and ASan+UBSan in FUZZ_BUILD_DIR
# (default build-fuzz), each fuzz target for KPIPE_FUZZ_SECONDS (default 30; 0 skips this step).
# Then the sanitizer runs (tests/sanitizers/run.sh; KPIPE_SANITIZERS=0 skips them): in the same
# FUZZ_BUILD_DIR, every unit and property test and a few integration tests under ASan+UBSan;
# in TSAN_BUILD_DIR (default build-tsan), the unit tests that run threads under TSan.
# Every step always runs; the exit status is non-zero when any failed.
#
#   deploy/test.sh [ctest arguments...]      e.g. deploy/test.sh -L unit
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export BUILD_DIR=${BUILD_DIR:-$ROOT/build}
CMAKE_ARGS="-DKPIPE_WERROR=ON ${CMAKE_ARGS:-}" "$ROOT/deploy/setup.sh"
cd "$BUILD_DIR"
status=0
ctest --output-on-failure --timeout 900 -j "$(nproc)" "$@" || status=$?

# Fuzzing: only what the fuzz targets need is built (about 3 minutes on 2 cores), then each
# target runs for KPIPE_FUZZ_SECONDS from its seed corpus (tests/fuzz/corpus/).
verdict() { if (($1 == 0)); then echo passed; else echo FAILED; fi; }
summary="tests $(verdict "$status")"
FUZZ_BUILD_DIR=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
fuzz_seconds=${KPIPE_FUZZ_SECONDS:-30}
if ((fuzz_seconds > 0)); then
  export KPIPE_FUZZ_SECONDS=$fuzz_seconds
  fuzz_status=0
  echo "test.sh: fuzzing in $FUZZ_BUILD_DIR, ${fuzz_seconds}s per target" >&2
  # Configured as the ASan+UBSan run below configures it, so that it reuses these objects.
  if "$ROOT/tests/sanitizers/run.sh" configure asan "$FUZZ_BUILD_DIR" &&
    cmake --build "$FUZZ_BUILD_DIR" --target fuzz_targets -j "$(nproc)"; then
    (cd "$FUZZ_BUILD_DIR" &&
      ctest -L fuzz --output-on-failure --timeout $((fuzz_seconds * 2 + 300)) -j "$(nproc)") ||
      fuzz_status=$?
  else
    echo "test.sh: the fuzz build failed" >&2
    fuzz_status=1
  fi
  summary+=", fuzzing $(verdict "$fuzz_status")"
  ((fuzz_status == 0)) || status=1
fi

# Sanitizers (about 10 minutes on 2 cores after the fuzz step, measured from clean build dirs:
# ASan build 4.7 min, its unit and property tests 1.1, its integration tests 2.2; TSan build and
# tests 1.8): ASan+UBSan extends the fuzz build to kpipe and the tests; TSan builds the daemon
# libraries the threaded tests need, and those.
if [[ ${KPIPE_SANITIZERS:-1} != 0 ]]; then
  for mode in asan tsan; do
    if [[ $mode == asan ]]; then dir=$FUZZ_BUILD_DIR; else dir=${TSAN_BUILD_DIR:-$ROOT/build-tsan}; fi
    echo "test.sh: $mode tests in $dir" >&2
    mode_status=0
    "$ROOT/tests/sanitizers/run.sh" "$mode" "$dir" || mode_status=1
    summary+=", $mode $(verdict "$mode_status")"
    ((mode_status == 0)) || status=1
  done
fi
echo "test.sh: $summary" >&2
exit "$status"
