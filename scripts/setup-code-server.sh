#!/usr/bin/env bash
# A real VS Code for the extension's integration suite, idempotently: the npm package code-server
# (VS Code's workbench served to a browser; the extension host runs as a Node process here) and
# Debian's chromium, which puppeteer-core (a devDependency of clients/vscode) drives headless.
# code-server goes into .cache/code-server/<version> (git-ignored); nothing global but apt.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
cache=${CHANNELCODER_CACHE:-$here/.cache}
# The newest code-server whose install accepts Node 20 (it builds native modules for that Node).
version=4.100.3
# code-server's VS Code pins @vscode/ripgrep 1.15.11, whose install downloads ripgrep
# v13.0.0-10 from GitHub (unreachable here); its download cache is filled from Debian's rg.
ripgrep_package=1.15.11
ripgrep_release=v13.0.0-10
prefix="$cache/code-server/$version"
say() { printf 'setup-code-server: %s\n' "$*" >&2; }

apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    say "missing: $* — install them with your package manager (Debian: apt-get install $*)"
    exit 1
  fi
  say "installing Debian's $*"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
  fi
}

want=()
command -v chromium >/dev/null 2>&1 || want+=(chromium)
command -v rg >/dev/null 2>&1 || want+=(ripgrep)
command -v pkg-config >/dev/null 2>&1 || want+=(pkg-config)
[ -f /usr/include/gssapi/gssapi.h ] || want+=(libkrb5-dev)
command -v g++ >/dev/null 2>&1 || want+=(g++)
command -v make >/dev/null 2>&1 || want+=(make)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || want+=(fonts-dejavu-core)
if [ ${#want[@]} -gt 0 ]; then
  apt_install "${want[@]}"
fi

bin="$prefix/node_modules/.bin/code-server"
if [ -x "$bin" ] && [ -f "$prefix/.channelcoder-ok" ]; then
  exit 0
fi
command -v npm >/dev/null 2>&1 || { say "npm is missing; install Node.js 20 and re-run"; exit 1; }
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" != 20 ]; then
  say "code-server $version needs Node.js 20 (found $(node --version)); skipping the real-VS Code suite's install"
  exit 0
fi

case "$(uname -m)" in
  x86_64) target=x86_64-unknown-linux-musl ;;
  aarch64) target=aarch64-unknown-linux-musl ;;
  *) say "no ripgrep target for $(uname -m)"; exit 1 ;;
esac
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
seed="$scratch/vscode-ripgrep-cache-$ripgrep_package"
mkdir -p "$seed/rg"
cp "$(command -v rg)" "$seed/rg/rg"
tar -C "$seed/rg" -czf "$seed/ripgrep-$ripgrep_release-$target.tar.gz" rg

# Native modules whose prebuilt binaries are on GitHub (argon2…) are built here; node-gyp must
# find Node's headers locally rather than download them: Debian/NodeSource put them in /usr.
if [ -z "${npm_config_nodedir:-}" ] && [ -f "$(dirname "$(dirname "$(command -v node)")")/include/node/node.h" ]; then
  export npm_config_nodedir
  npm_config_nodedir=$(dirname "$(dirname "$(command -v node)")")
fi

say "installing code-server $version into $prefix (about a minute, ~300 MB)"
rm -rf "$prefix"
mkdir -p "$prefix"
# npm_config_yes: its postinstall runs a nested npm that must not stop to ask anything.
if ! TMPDIR="$scratch" npm_config_yes=true npm_config_unsafe_perm=true \
    npm install --no-audit --no-fund --loglevel=error --prefix "$prefix" "code-server@$version" \
    >"$scratch/npm.log" 2>&1; then
  tail -40 "$scratch/npm.log" >&2
  say "installing code-server failed"
  exit 1
fi
"$bin" --version >/dev/null
touch "$prefix/.channelcoder-ok"
say "code-server $("$bin" --version | head -1)"
