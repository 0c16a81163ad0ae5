#!/usr/bin/env bash
# Installs the Debian packages dbpulse needs to build, test and run its demo.
# Idempotent: only missing packages are installed. Needs root (or sudo).
set -euo pipefail

PKGS=(
  # toolchain
  build-essential cmake ninja-build pkg-config ccache
  # libraries (see README: why each is here)
  libpqxx-dev libpq-dev libhiredis-dev prometheus-cpp-dev libboost-dev
  libtomlplusplus-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev
  libcurl4-openssl-dev zlib1g-dev libyaml-cpp-dev libre2-dev libgtest-dev libgmock-dev
  libbenchmark-dev
  # real peers for integration tests and the demo
  postgresql-15 postgresql-contrib postgresql-15-hypopg redis-server pgbouncer
  prometheus prometheus-alertmanager
  # the peers dbpulse stands in for, run side by side with it on the same servers by
  # tests/packaging/peers_side_by_side_test.cpp (postgres_exporter 0.11, redis_exporter 1.45)
  prometheus-postgres-exporter prometheus-redis-exporter
  # tools used by tests, demo and benchmarks
  curl wrk procps python3
  # the status page's browser test (headless, DevTools over a pipe: tests/integration/
  # harness/chromium.h)
  chromium
  # a non-English locale: maintenance must classify VACUUM's warnings under any lc_messages
  locales
  # packaging/pg_versions.sh: PostgreSQL 13/14/16/17/18 for the per-major integration tests
  # (npm: see below; openssl checks the tarballs' sha512)
  openssl
  # the demo's chat server and its integration test (packaging/demo/chat-server, prom-client)
  nodejs
  # packaging: cpack DEB Depends (dpkg-shlibdeps), tests/packaging (YAML, systemd-analyze)
  dpkg-dev file python3-yaml systemd
  # libFuzzer targets in tests/fuzz (built only by a clang configuration); the layout check
  # (tests/lint/check_format.sh) and clang-tidy
  clang-14 libclang-rt-14-dev clang-format-14 clang-tidy-14
  # the container image (make image) and its pod test (tests/packaging/image_pod_test.py):
  # podman with runc (crun fails on this kind's hybrid cgroups), catatonit for the pod's
  # infra (pause) container, slirp4netns for the pod's network (no firewall rules),
  # debootstrap for a local debian:12 base without a registry
  podman buildah runc catatonit slirp4netns debootstrap
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# npm: its own package in Debian, part of nodesource's nodejs.
command -v npm >/dev/null 2>&1 || missing+=(npm)

# The German locale the maintenance test sets as lc_messages (tests/integration/
# maintenance_test.cpp); generated once into the locale archive.
ensure_test_locale() {
  if ! locale -a 2>/dev/null | grep -qix 'de_DE.utf8'; then
    $SUDO localedef -i de_DE -c -f UTF-8 de_DE.UTF-8
  fi
}

# The chat server's npm packages (a no-op once installed; not fatal for building dbpulse).
chat_server_packages() {
  bash "$(dirname "${BASH_SOURCE[0]}")/demo/chat-server/install.sh" ||
    echo "deps.sh: warning: the demo chat server's npm packages are not installed" >&2
}

if [ ${#missing[@]} -eq 0 ]; then
  ensure_test_locale
  chat_server_packages
  exit 0
fi

echo "deps.sh: installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts packaged services on install; the tests and demo run their own
# instances on free ports, so stop the system-wide ones to free memory and ports.
for svc in redis-server pgbouncer prometheus prometheus-alertmanager prometheus-node-exporter \
           prometheus-postgres-exporter prometheus-redis-exporter; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    $SUDO systemctl stop "$svc" || true
  fi
  if command -v service >/dev/null 2>&1; then $SUDO service "$svc" stop >/dev/null 2>&1 || true; fi
done
ensure_test_locale
chat_server_packages
