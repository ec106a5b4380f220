#!/usr/bin/env bash
# Installs what is missing, builds with warnings as errors, and runs the whole test suite
# (unit, property and integration tests; the integration tests start their own brokers).
#
#   deploy/test.sh [ctest arguments...]      e.g. deploy/test.sh -L unit
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export BUILD_DIR=${BUILD_DIR:-$ROOT/build}
CMAKE_ARGS="-DKPIPE_WERROR=ON ${CMAKE_ARGS:-}" "$ROOT/deploy/setup.sh"
cd "$BUILD_DIR"
ctest --output-on-failure --timeout 900 -j "$(nproc)" "$@"
