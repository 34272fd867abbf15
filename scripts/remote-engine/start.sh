#!/bin/sh
# The engine's entry point: sshd in the background, dockerd in the foreground (TLS-verified
# TCP on 2376 for clients holding a certificate of the throw-away CA, the Unix socket for
# `docker system dial-stdio` behind ssh).
set -eu
certs=/etc/channelcoder-remote
# Started without --privileged (a host whose engine lacks a capability cannot grant it): sysfs
# and the cgroup hierarchies come read-only, and the inner engine needs to write them.
mount -o remount,bind,rw /sys 2>/dev/null || true
for hierarchy in /sys/fs/cgroup /sys/fs/cgroup/*/; do
  mount -o remount,bind,rw "$hierarchy" 2>/dev/null || true
done
/usr/sbin/sshd -e
exec dockerd --host unix:///var/run/docker.sock --host tcp://0.0.0.0:2376 \
  --tlsverify --tlscacert "$certs/ca.pem" --tlscert "$certs/server-cert.pem" \
  --tlskey "$certs/server-key.pem"
