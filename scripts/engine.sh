#!/usr/bin/env bash
# Make a Docker engine available and the sandbox's base image present.
#
# Idempotent: an engine that already answers is reused and never restarted. Only when none
# answers and we are root on Debian is docker.io installed and dockerd started in the
# background (logged to $CACHE/dockerd.log). When the base image is absent and no registry
# answers, it is bootstrapped with debootstrap + docker import.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cache=${CHANNELCODER_CACHE:-$here/.cache}
base_image=${BASE_IMAGE:-debian:bookworm-slim}
mkdir -p "$cache"

say() { printf 'engine: %s\n' "$*" >&2; }

engine_answers() { timeout 20 docker info >/dev/null 2>&1; }

start_engine() {
  if [ "$(id -u)" != 0 ] || [ ! -r /etc/debian_version ]; then
    say "no Docker engine answers (DOCKER_HOST=${DOCKER_HOST:-unset})."
    say "hint: start Docker (e.g. 'sudo systemctl start docker') and make sure your user may use it"
    say "      (member of the 'docker' group), or run 'make engine' as root on Debian to install one."
    exit 1
  fi
  if [ -n "${DOCKER_HOST:-}" ]; then
    say "DOCKER_HOST=$DOCKER_HOST does not answer; refusing to start a local engine in its place."
    say "hint: unset DOCKER_HOST to use a local engine, or start the engine it points at."
    exit 1
  fi
  if ! command -v dockerd >/dev/null 2>&1; then
    say "installing docker.io (Debian package)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq docker.io >/dev/null
  fi
  if pgrep -x dockerd >/dev/null 2>&1; then
    say "dockerd is running but does not answer yet; waiting for it"
  else
    say "starting dockerd in the background (log: $cache/dockerd.log)"
    setsid nohup dockerd >"$cache/dockerd.log" 2>&1 </dev/null &
  fi
  for _ in $(seq 1 120); do
    engine_answers && return 0
    sleep 0.5
  done
  say "dockerd did not answer within 60 s; last lines of $cache/dockerd.log:"
  tail -n 20 "$cache/dockerd.log" >&2 || true
  exit 1
}

debian_mirror() {
  local uri
  uri=$(grep -h -E '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
    grep -v security | head -n 1 | awk '{ if ($1 == "deb") print $2; else print $2 }')
  printf '%s' "${uri:-http://deb.debian.org/debian}"
}

ensure_base_image() {
  docker image inspect "$base_image" >/dev/null 2>&1 && return 0
  say "pulling $base_image"
  if timeout 60 docker pull -q "$base_image" >/dev/null 2>&1; then
    return 0
  fi
  if [ "$base_image" != "debian:bookworm-slim" ]; then
    say "cannot pull $base_image and only debian:bookworm-slim can be bootstrapped locally."
    exit 1
  fi
  if [ "$(id -u)" != 0 ]; then
    say "cannot pull $base_image and bootstrapping it needs root (debootstrap)."
    say "hint: run 'sudo make engine' once, or 'docker pull $base_image' where a registry answers."
    exit 1
  fi
  command -v debootstrap >/dev/null 2>&1 || {
    say "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  }
  local rootfs="$cache/rootfs-bookworm"
  rm -rf "$rootfs"
  say "no registry answers: bootstrapping $base_image from $(debian_mirror) (about 30 s)"
  debootstrap --variant=minbase bookworm "$rootfs" "$(debian_mirror)" >"$cache/debootstrap.log" 2>&1 || {
    tail -n 20 "$cache/debootstrap.log" >&2
    exit 1
  }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import - "$base_image" >/dev/null
  rm -rf "$rootfs"
  say "imported $base_image"
}

if engine_answers; then
  say "reusing the Docker engine that answers"
else
  start_engine
fi
ensure_base_image
