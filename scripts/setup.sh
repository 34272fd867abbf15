#!/usr/bin/env bash
# Install what the project runs on, idempotently: the .venv (project editable + dev extras) and
# the pinned Claude Code CLI under .cache/ (linked as .venv/bin/claude for native runs).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
cache=${CHANNELCODER_CACHE:-$here/.cache}
python=${PYTHON:-python3}
version=$(tr -d '[:space:]' < server/channelcoder/sandbox/image/claude-code.version)

say() { printf 'setup: %s\n' "$*" >&2; }

# 1. Python environment. Reinstall only when pyproject.toml changed.
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $($python --version 2>&1)"
  "$python" -m venv .venv
fi
stamp=.venv/.channelcoder-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "installing channelcoder (editable) with its dev extras"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[dev]'
  printf '%s' "$want" > "$stamp"
fi
# Bytecode for the editable package: with PYTHONDONTWRITEBYTECODE set (as on these machines)
# Python would otherwise compile every module from source on every start (~30 ms per process).
# Only what changed since the last run is compiled again.
.venv/bin/python -m compileall -q server/channelcoder >/dev/null

# 2. The Claude Code CLI, pinned, under the project cache (not global).
prefix="$cache/claude-code/$version"
if [ ! -x "$prefix/node_modules/.bin/claude" ] || ! "$prefix/node_modules/.bin/claude" --version >/dev/null 2>&1; then
  command -v npm >/dev/null 2>&1 || {
    say "npm is missing; install Node.js 18+ (e.g. 'apt-get install nodejs npm') and re-run"
    exit 1
  }
  say "installing @anthropic-ai/claude-code@$version into $prefix"
  mkdir -p "$prefix"
  npm install --no-audit --no-fund --loglevel=error --prefix "$prefix" \
    "@anthropic-ai/claude-code@$version" >/dev/null
  "$prefix/node_modules/.bin/claude" --version >/dev/null
fi
ln -sfn "$prefix/node_modules/.bin/claude" .venv/bin/claude

# 3. Editor clients' toolchains (Neovim, the VS Code extension's node packages), when present.
for part in scripts/setup-*.sh; do
  [ -x "$part" ] && "$part"
done
say "ready: $(.venv/bin/claude --version) and $(.venv/bin/channelcoder --version)"
