#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time, as the ctest test fuzz_<target> (label fuzz).
#
#   run_fuzzer.sh FUZZER SEED_CORPUS_DIR ARTIFACT_DIR [DICT]
#
# The seeds are copied to a temporary corpus (new inputs go there, never into the source tree);
# the fuzzer runs for KPIPE_FUZZ_SECONDS (default 30) with -rss_limit_mb=2048 -timeout=10 and
# fails on any crash, sanitizer report, leak, timeout or OOM. The offending input is kept in
# ARTIFACT_DIR; reproduce with `FUZZER ARTIFACT_DIR/crash-...`, minimize with
# `FUZZER -minimize_crash=1 -runs=100000 ARTIFACT_DIR/crash-...`.
# Extra libFuzzer flags: KPIPE_FUZZ_FLAGS (e.g. "-jobs=2 -workers=2").
set -euo pipefail
if (($# < 3)); then
  echo "usage: $0 FUZZER SEED_CORPUS_DIR ARTIFACT_DIR [DICT]" >&2
  exit 2
fi
fuzzer=$1 seeds=$2 artifacts=$3 dict=${4:-}
seconds=${KPIPE_FUZZ_SECONDS:-30}

corpus=$(mktemp -d "${TMPDIR:-/tmp}/kpipe-corpus.XXXXXX")
trap 'rm -rf "$corpus"' EXIT
cp -R "$seeds"/. "$corpus"/
mkdir -p "$artifacts"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# UBSan only prints and goes on by default: make every report fatal, so that libFuzzer keeps the
# input; ubsan.supp lists the known harmless reports of third-party headers. Options given in
# the environment come last and win.
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$here/ubsan.supp${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

args=(-max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
      -artifact_prefix="$artifacts/")
[[ -n $dict ]] && args+=(-dict="$dict")
# Progress lines (one per new input) and the recommended dictionary are dropped; the start, the
# end, the stats and any report are kept.
set +e
# shellcheck disable=SC2086
"$fuzzer" "${args[@]}" ${KPIPE_FUZZ_FLAGS:-} "$corpus" 2>&1 |
  grep -v -E '^(#[0-9]+[[:space:]]+(NEW|REDUCE|pulse|RELOAD)[[:space:]]|[[:space:]]+NEW_FUNC)' |
  sed '/^###### Recommended dictionary/,/^###### End of recommended dictionary/d'
status=${PIPESTATUS[0]}
set -e
if ((status != 0)); then
  echo "run_fuzzer.sh: $(basename "$fuzzer") failed (exit $status); input(s) kept in $artifacts:" >&2
  ls -l "$artifacts" >&2
fi
exit "$status"
