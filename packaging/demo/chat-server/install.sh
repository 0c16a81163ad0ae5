#!/usr/bin/env bash
# Installs the chat server's npm packages (package-lock.json, exact versions) into its
# node_modules/ (ignored by git). Run by packaging/deps.sh, packaging/demo/run.sh and the
# companion integration test; a no-op when node_modules/ already matches the lock file.
# `npm ci --prefer-offline` takes what npm's cache (~/.npm) holds, so a second install
# (e.g. after a clean checkout) needs no network.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STAMP="$HERE/node_modules/.dbpulse-installed-lock.json"

command -v node >/dev/null || { echo "chat-server: node missing (bash packaging/deps.sh)" >&2; exit 1; }
command -v npm >/dev/null || { echo "chat-server: npm missing (bash packaging/deps.sh)" >&2; exit 1; }
if cmp -s "$HERE/package-lock.json" "$STAMP" 2>/dev/null; then
  exit 0
fi
(cd "$HERE" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error >&2) ||
  { echo "chat-server: npm ci failed in $HERE" >&2; exit 1; }
cp "$HERE/package-lock.json" "$STAMP"
