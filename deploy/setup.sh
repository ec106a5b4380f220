#!/usr/bin/env bash
# Installs what kpipe needs from Debian bookworm (only what is missing), then builds it.
#
#   deploy/setup.sh            install + build (build/, RelWithDebInfo)
#   deploy/setup.sh --no-build install only
# Environment: BUILD_DIR (default build), CMAKE_ARGS (extra cmake arguments).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
  # libraries
  librdkafka-dev libyaml-cpp-dev rapidjson-dev libvalijson-dev libboost-dev prometheus-cpp-dev
  libhiredis-dev liblmdb-dev libsystemd-dev
  libssl-dev
  # tests (openssl: the HTTP sink tests make their certificates with it)
  libgtest-dev libgmock-dev librapidcheck-dev libbenchmark-dev openssl
  # demo and integration tests: third-party Kafka clients, HTTP client
  kcat python3 python3-kafka curl procps redis-server lmdb-utils
  # alert rules and dashboard checks: promtool (package prometheus), YAML for the rule files
  prometheus python3-yaml
  # systemd unit checks (systemd-analyze verify/security, systemd-sysusers, systemd-tmpfiles)
  systemd
  # container test: podman, runc (crun refuses hybrid cgroups), -p (netavark, iptables), base image
  podman buildah runc netavark aardvark-dns iptables mmdebstrap debootstrap
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=; [[ $(id -u) == 0 ]] || SUDO=sudo
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

[[ ${1:-} == --no-build ]] && exit 0
# shellcheck disable=SC2086
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja ${CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)"
echo "setup: built $BUILD_DIR/daemon/kpipe" >&2
