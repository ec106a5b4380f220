#!/usr/bin/env bash
# Installs what is missing, builds with warnings as errors, and runs the whole test suite
# (unit, property and integration tests; the integration tests start their own brokers).
# Then fuzzes (tests/fuzz): a second build with clang, libFuzzer and ASan+UBSan in FUZZ_BUILD_DIR
# (default build-fuzz), each fuzz target for KPIPE_FUZZ_SECONDS (default 30; 0 skips this step).
# Both test runs always run; the exit status is non-zero when either failed.
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
fuzz_seconds=${KPIPE_FUZZ_SECONDS:-30}
if ((fuzz_seconds > 0)); then
  export KPIPE_FUZZ_SECONDS=$fuzz_seconds
  FUZZ_BUILD_DIR=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
  fuzz_status=0
  echo "test.sh: fuzzing in $FUZZ_BUILD_DIR, ${fuzz_seconds}s per target" >&2
  if CC=clang CXX=clang++ cmake -S "$ROOT" -B "$FUZZ_BUILD_DIR" -G Ninja -DKPIPE_FUZZ=ON \
    -DKPIPE_SANITIZE=address,undefined -DKPIPE_WERROR=ON >/dev/null &&
    cmake --build "$FUZZ_BUILD_DIR" --target fuzz_targets -j "$(nproc)"; then
    (cd "$FUZZ_BUILD_DIR" &&
      ctest -L fuzz --output-on-failure --timeout $((fuzz_seconds * 2 + 300)) -j "$(nproc)") ||
      fuzz_status=$?
  else
    echo "test.sh: the fuzz build failed" >&2
    fuzz_status=1
  fi
  verdict() { if (($1 == 0)); then echo passed; else echo FAILED; fi; }
  echo "test.sh: tests $(verdict "$status"), fuzzing $(verdict "$fuzz_status")" >&2
  ((fuzz_status == 0)) || status=1
fi
exit "$status"
