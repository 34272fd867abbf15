#!/usr/bin/env bash
# A second, truly remote Docker engine for the tests: dockerd in a privileged container of the
# local engine, built from the project's base image with Debian's docker.io and OpenSSH
# server. It sees none of this machine's files (nothing is mounted: its certificates and keys
# are copied in, its /var/lib/docker is a volume of its own), and it is reached over TCP with
# TLS (a throw-away CA) and over ssh:// (key authentication), both on 127.0.0.1 only.
#
#   scripts/remote-engine.sh [IMAGE...]   start it (or reuse it) and load IMAGEs into it
#
# Idempotent: a running engine of the same build is reused; images it already has are not
# loaded again. What a client needs is written to $CACHE/remote-engine/ (env, client/, ssh/).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cache=${CHANNELCODER_CACHE:-$here/.cache}
base_image=${BASE_IMAGE:-debian:bookworm-slim}
name=${REMOTE_ENGINE_NAME:-channelcoder-remote-engine}
tls_port=${REMOTE_ENGINE_TLS_PORT:-23760}
ssh_port=${REMOTE_ENGINE_SSH_PORT:-23722}
dir=$cache/remote-engine
context=$here/scripts/remote-engine

say() { printf 'remote-engine: %s\n' "$*" >&2; }

"$here/scripts/engine.sh"
command -v openssl >/dev/null && command -v ssh-keygen >/dev/null || {
  say "installing openssl and openssh-client"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl openssh-client >/dev/null
}

make_keys() {
  local certs=$dir/certs client=$dir/client ssh=$dir/ssh
  [ -s "$dir/keys.done" ] && return 0
  rm -rf "$certs" "$client" "$ssh"
  mkdir -p "$certs" "$client" "$ssh"
  say "making a throw-away CA, server and client certificates, ssh keys"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=channelcoder test CA" \
    -keyout "$dir/ca-key.pem" -out "$certs/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$certs/server-key.pem" -out "$dir/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$dir/server.ext"
  openssl x509 -req -days 3650 -in "$dir/server.csr" -CA "$certs/ca.pem" -CAkey "$dir/ca-key.pem" \
    -CAcreateserial -extfile "$dir/server.ext" -out "$certs/server-cert.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=channelcoder test client" \
    -keyout "$client/key.pem" -out "$dir/client.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' >"$dir/client.ext"
  openssl x509 -req -days 3650 -in "$dir/client.csr" -CA "$certs/ca.pem" -CAkey "$dir/ca-key.pem" \
    -CAcreateserial -extfile "$dir/client.ext" -out "$client/cert.pem" 2>/dev/null
  cp "$certs/ca.pem" "$client/ca.pem"
  ssh-keygen -q -t ed25519 -N "" -C "channelcoder remote engine" -f "$certs/ssh_host_ed25519_key"
  ssh-keygen -q -t ed25519 -N "" -C "channelcoder remote client" -f "$ssh/id_ed25519"
  cp "$ssh/id_ed25519.pub" "$certs/authorized_keys"
  chmod 600 "$certs"/*key* "$client/key.pem" "$ssh/id_ed25519"
  date -u >"$dir/keys.done"
}

client_files() {
  local ssh=$dir/ssh host_key
  host_key=$(cut -d' ' -f1,2 "$dir/certs/ssh_host_ed25519_key.pub")
  printf '[127.0.0.1]:%s %s\n' "$ssh_port" "$host_key" >"$ssh/known_hosts"
  cat >"$ssh/config" <<CONF
Host 127.0.0.1
  IdentityFile $ssh/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $ssh/known_hosts
  StrictHostKeyChecking yes
  LogLevel ERROR
CONF
  mkdir -p "$dir/bin"
  printf '#!/bin/sh\nexec %s -F %s "$@"\n' "$(command -v ssh)" "$ssh/config" >"$dir/bin/ssh"
  chmod 755 "$dir/bin/ssh"
  cat >"$dir/env" <<ENV
REMOTE_TLS_HOST=tcp://127.0.0.1:$tls_port
REMOTE_CERT_PATH=$dir/client
REMOTE_SSH_HOST=ssh://root@127.0.0.1:$ssh_port
REMOTE_SSH_BIN=$dir/bin
ENV
}

remote() {
  DOCKER_HOST=tcp://127.0.0.1:$tls_port DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=$dir/client \
    docker "$@"
}

# What --privileged gives, minus the capabilities this machine's own bounding set lacks (an
# engine inside a restricted VM or container cannot hand those out and refuses --privileged).
unprivileged_flags() {
  local names=(CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP
    LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER
    SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE
    SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP
    MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF
    CHECKPOINT_RESTORE)
  local bound bit
  bound=$((16#$(awk '/^CapBnd/ { print $2 }' /proc/self/status)))
  flags=(--cap-add ALL --security-opt seccomp=unconfined --security-opt apparmor=unconfined
    --security-opt systempaths=unconfined --device-cgroup-rule 'a *:* rwm')
  for bit in "${!names[@]}"; do
    (( (bound >> bit) & 1 )) || flags+=(--cap-drop "${names[$bit]}")
  done
}

start_container() {
  docker rm -f "$name" >/dev/null 2>&1 || true
  docker create --name "$name" "$@" --label "io.channelcoder.remote-keys=$keys" \
    -p "127.0.0.1:$tls_port:2376" -p "127.0.0.1:$ssh_port:22" \
    -v "$name-data:/var/lib/docker" "$image" >/dev/null
  docker cp "$dir/certs/." "$name:/etc/channelcoder-remote/"
  docker start "$name" >/dev/null 2>&1
}

make_keys
client_files
tag=$(cat "$context/Dockerfile" "$context/sshd_config" "$context/start.sh" | sha256sum | cut -c1-12)
image=channelcoder-remote-engine:$tag
if ! docker image inspect "$image" >/dev/null 2>&1; then
  say "building $image from $base_image (Debian's docker.io and openssh-server)"
  docker build -q --build-arg "BASE_IMAGE=$base_image" -t "$image" "$context" >/dev/null
fi

# Another checkout's engine (its own throw-away CA and keys) is replaced, not reused.
keys=$(cat "$dir"/certs/* | sha256sum | cut -c1-12)
running=$(docker inspect -f '{{.State.Running}} {{.Config.Image}} {{index .Config.Labels "io.channelcoder.remote-keys"}}' \
  "$name" 2>/dev/null || true)
if [ "$running" != "true $image $keys" ]; then
  say "starting $name (TLS on 127.0.0.1:$tls_port, ssh on 127.0.0.1:$ssh_port)"
  start_container --privileged || {
    say "the local engine cannot grant every capability; starting it with all it can grant"
    unprivileged_flags
    start_container "${flags[@]}"
  }
fi
for _ in $(seq 1 120); do
  remote version >/dev/null 2>&1 && break
  sleep 0.5
done
remote version >/dev/null 2>&1 || {
  say "the remote engine did not answer within 60 s; its last log lines:"
  docker logs --tail 20 "$name" >&2 || true
  exit 1
}

for wanted in "$base_image" "$@"; do
  remote image inspect "$wanted" >/dev/null 2>&1 && continue
  say "loading $wanted into the remote engine"
  docker save "$wanted" | remote load -q >/dev/null
done
say "ready: DOCKER_HOST=tcp://127.0.0.1:$tls_port (TLS) or ssh://root@127.0.0.1:$ssh_port"
