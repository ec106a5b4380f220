#!/usr/bin/env bash
# The sanitizer runs of deploy/test.sh (issue #11), one clang build directory each:
#
#   tests/sanitizers/run.sh asan BUILD_DIR [ctest arguments...]
#       AddressSanitizer + UndefinedBehaviorSanitizer (and LeakSanitizer): builds kpipe and every
#       unit and property test (target test_binaries), runs `ctest -L 'unit|property'`, then the
#       integration tests of KPIPE_ASAN_INTEGRATION against the sanitized kpipe. BUILD_DIR is
#       configured exactly as deploy/test.sh's fuzz step configures build-fuzz, so the daemon's
#       libraries compiled for the fuzz targets are reused.
#   tests/sanitizers/run.sh tsan BUILD_DIR [ctest arguments...]
#       ThreadSanitizer: builds only the unit tests that run more than one thread (target
#       tsan_test_binaries, see tests/CMakeLists.txt) and runs them: `ctest -L unit` there finds
#       only what was built. With KPIPE_TSAN_INTEGRATION (names, e.g. "e2e reload rebalance"),
#       also builds kpipe under TSan and runs those integration tests against it: the whole
#       daemon's threads (the io thread with the schedulers, librdkafka's, the reload validation
#       thread, the batching store's). Not in CI by default: the extra build takes ~4 minutes.
#   tests/sanitizers/run.sh configure asan|tsan BUILD_DIR
#       Only configures BUILD_DIR (deploy/test.sh's fuzz step, before it builds fuzz_targets).
#
# Every report fails its test: ASan and TSan exit non-zero on a report, UBSan is made to
# (halt_on_error=1; -fno-sanitize-recover is not used because it ignores suppressions). The last
# line says "sanitizers: <name> passed|FAILED"; the exit status is non-zero on failure.
# Options given in the environment (ASAN_OPTIONS, UBSAN_OPTIONS, TSAN_OPTIONS) come last and win.
# Extra ctest arguments narrow the unit/property tests (asan) or the unit tests (tsan), e.g.
# -R Batching.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$here/../.." && pwd)

usage() {
  echo "usage: $0 [configure] asan|tsan BUILD_DIR [ctest arguments...]" >&2
  exit 2
}
configure_only=0
if [[ ${1:-} == configure ]]; then
  configure_only=1
  shift
fi
(($# >= 2)) || usage
mode=$1 build=$2
shift 2
jobs=$(nproc)

# Line tables are all a report needs (file:line, inlined frames) and compile faster than -g.
case $mode in
  asan)
    # The same configuration as the fuzz step (KPIPE_FUZZ adds -fsanitize=fuzzer-no-link to the
    # libraries; it costs the tests little and lets both steps share every object).
    # -O1: the sanitizers' advice, and compiled faster than -O2 (this build is most of the
    # step's time on CI's 2 cores); the fuzz targets run a little slower per input.
    # shellcheck disable=SC2054  # the comma is part of the value, not a separator
    cmake_args=(-DKPIPE_FUZZ=ON -DKPIPE_SANITIZE=address,undefined
                "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG")
    ;;
  tsan)
    # -O1: TSan's own advice, and a quarter less compile time than -O2 here.
    cmake_args=(-DKPIPE_SANITIZE=thread
                "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG")
    ;;
  *) usage ;;
esac
CC=clang CXX=clang++ cmake -S "$ROOT" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DKPIPE_WERROR=ON "${cmake_args[@]}" >/dev/null
((configure_only)) && exit 0

verdict() {
  if (($1 == 0)); then
    echo "sanitizers: $mode passed" >&2
  else
    echo "sanitizers: $mode FAILED" >&2
  fi
  exit "$1"
}
elapsed() { echo "$((SECONDS - $1)) s"; }

# integration TESTS OPTION_VARIABLE...: runs integration.<name>_test for each name in TESTS (in
# $build, against its kpipe), one at a time (RUN_SERIAL, as in the main run). Every report of
# every process (kpipe run, kpipe broker, kpipe test, ...) goes to a file here (log_path added to
# each OPTION_VARIABLE): any file fails the step, even where a test does not look at that
# process's exit status.
integration() {
  local tests=$1 variable started reports report
  shift
  [[ -n $tests ]] || return 0
  started=$SECONDS
  reports=$(mktemp -d "${TMPDIR:-/tmp}/kpipe-$mode-reports.XXXXXX")
  local environment=()
  for variable in "$@"; do
    environment+=("$variable=${!variable}:log_path=$reports/report")
  done
  env "${environment[@]}" "${wrap[@]}" ctest -R "^integration\\.($(echo "$tests" | tr -s ' ' '|'))_test\$" \
    --no-tests=error --output-on-failure --timeout 900 || status=1
  for report in "$reports"/*; do
    [[ -e $report ]] || continue
    echo "sanitizers: a sanitizer report of an integration test's process ($report):" >&2
    cat "$report" >&2
    status=1
  done
  rm -rf "$reports"
  echo "sanitizers: $mode integration tests $(elapsed "$started")" >&2
}

status=0
wrap=()  # tsan: setarch -R where TSan needs it
case $mode in
  asan)
    # detect_stack_use_after_return: clang builds the fake stacks in; this turns them on.
    export ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
    export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$ROOT/tests/fuzz/ubsan.supp${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
    started=$SECONDS
    if ! cmake --build "$build" --target kpipe test_binaries -j "$jobs"; then
      echo "sanitizers: the asan build failed" >&2
      verdict 1
    fi
    echo "sanitizers: asan build $(elapsed "$started")" >&2
    cd "$build"
    started=$SECONDS
    ctest -L 'unit|property' --no-tests=error --output-on-failure --timeout 600 -j "$jobs" "$@" ||
      status=1
    echo "sanitizers: asan unit and property tests $(elapsed "$started")" >&2
    # The data path end to end under the sanitized kpipe: decode, validate, dedup, the Kafka
    # producer and the HTTP sink, error routing and retries (see README, Layout and tests).
    integration "${KPIPE_ASAN_INTEGRATION-e2e bad_input blocking_errors http_sink kpipe_test}" \
      ASAN_OPTIONS UBSAN_OPTIONS
    ;;
  tsan)
    export TSAN_OPTIONS="halt_on_error=0:second_deadlock_stack=1:suppressions=$here/tsan.supp${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
    export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
    # TSan needs its fixed memory layout: with more ASLR entropy than it expects
    # (vm.mmap_rnd_bits > 28 on newer kernels) every instrumented program dies at start with
    # "unexpected memory mapping". Then the build (gtest discovery runs the tests) and the
    # tests run with ASLR off.
    probe=$(mktemp -d "${TMPDIR:-/tmp}/kpipe-tsan.XXXXXX")
    trap 'rm -rf "$probe"' EXIT
    echo 'int main(void) { return 0; }' >"$probe/probe.c"
    clang -fsanitize=thread "$probe/probe.c" -o "$probe/probe"
    if ! "$probe/probe" >/dev/null 2>&1; then
      if setarch "$(uname -m)" -R "$probe/probe"; then
        echo "sanitizers: TSan needs ASLR off here (setarch -R)" >&2
        wrap=(setarch "$(uname -m)" -R)
      else
        echo "sanitizers: TSan programs do not start here:" >&2
        "$probe/probe" || true
        verdict 1
      fi
    fi
    started=$SECONDS
    targets=(tsan_test_binaries)
    [[ -z ${KPIPE_TSAN_INTEGRATION:-} ]] || targets+=(kpipe)
    if ! "${wrap[@]}" cmake --build "$build" --target "${targets[@]}" -j "$jobs"; then
      echo "sanitizers: the tsan build failed" >&2
      verdict 1
    fi
    echo "sanitizers: tsan build $(elapsed "$started")" >&2
    cd "$build"
    started=$SECONDS
    "${wrap[@]}" ctest -L unit --no-tests=error --output-on-failure --timeout 600 -j "$jobs" "$@" ||
      status=1
    echo "sanitizers: tsan tests $(elapsed "$started")" >&2
    integration "${KPIPE_TSAN_INTEGRATION:-}" TSAN_OPTIONS UBSAN_OPTIONS
    ;;
esac
verdict "$status"
