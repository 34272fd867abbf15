#!/usr/bin/env bash
# The VS Code extension's node packages, idempotently: `npm ci` in clients/vscode when
# package-lock.json changed since the last install, then the TypeScript build. Nothing global.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
ext="$here/clients/vscode"
say() { printf 'setup-vscode: %s\n' "$*" >&2; }

[ -f "$ext/package-lock.json" ] || exit 0
if ! command -v npm >/dev/null 2>&1; then
  say "npm is missing; install Node.js 20+ (e.g. 'apt-get install nodejs npm') and re-run"
  exit 1
fi
cd "$ext"
stamp=node_modules/.channelcoder-lock
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "installing the extension's locked node packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  printf '%s' "$want" > "$stamp"
fi
npm run --silent build
